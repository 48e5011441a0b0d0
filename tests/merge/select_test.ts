import { deepStrictEqual, throws } from "node:assert/strict";
import { AbsKthSelector } from "../../lib/merge/select.ts";
import { tiesThresholds } from "../../lib/merge/ties.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { Rng } from "../../lib/tensor/random.ts";

/** The k-th smallest |x| by sorting (the obvious reference). */
function bySorting(chunks: Float32Array[], k: number): number {
  const all = chunks.flatMap((c) => Array.from(c, Math.abs)).sort((a, b) => a - b);
  return all[k - 1];
}

Deno.test("radix selection finds the exact k-th smallest |x| across chunks", () => {
  const rng = new Rng(1, "select");
  const special = [0, -0, 1e-45, -1e-45, 3.4e38, -3.4e38, 1, -1, 1, 0.5, -0.5];
  const chunks = [
    Float32Array.from(
      { length: 5000 },
      () => (rng.uniform() - 0.5) * 10 ** (rng.uniform() * 8 - 4),
    ),
    Float32Array.from(special),
    Float32Array.from({ length: 3000 }, () => Math.round((rng.uniform() - 0.5) * 16) / 8),
  ];
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const ranks = [1, 2, 3, 7, 100, 4000, 5005, 6000, total - 1, total];
  const selector = new AbsKthSelector(ranks);
  for (const chunk of chunks) ranks.forEach((_, t) => selector.countHigh(t, chunk));
  selector.settleHigh();
  for (const chunk of chunks) ranks.forEach((_, t) => selector.countLow(t, chunk));
  deepStrictEqual(selector.values(), ranks.map((k) => bySorting(chunks, k)));
});

Deno.test("radix selection rejects ranks beyond the data", () => {
  const selector = new AbsKthSelector([4]);
  selector.countHigh(0, new Float32Array([1, 2, 3]));
  throws(() => selector.settleHigh(), /4-th smallest of 3 values/);
});

Deno.test("TIES thresholds follow kthvalue(D − ⌊D·k/100⌋) over the whole model", async () => {
  const values = [0.5, -3, 2, 2, -2, 0.25, 7, 0, -1, 4];
  const tau = new MemorySource("τ", {
    a: { shape: [4], data: Float32Array.from(values.slice(0, 4)) },
    b: { shape: [2, 3], data: Float32Array.from(values.slice(4)) },
  });
  // D = 10: k = 20 keeps 2 → the 8th smallest |x| = 3; k = 35 keeps 3 → 7th = 2 (ties kept)
  deepStrictEqual(await tiesThresholds([tau], 20), [3]);
  deepStrictEqual(await tiesThresholds([tau], 35), [2]);
  deepStrictEqual(await tiesThresholds([tau], 100), [0]);
  deepStrictEqual(await tiesThresholds([tau], 5), [7]); // keeps ⌊0.5⌋ = 0 → the largest
});
