import { deepStrictEqual } from "node:assert/strict";
import { TiesMerger } from "../../lib/merge/ties.ts";
import { merge } from "../../lib/merge/merge.ts";
import { MemorySource } from "../../lib/tensor/source.ts";

const f = (v: number[]) => Float32Array.from(v);

Deno.test("TIES elects the majority sign where the trimmed sum is exactly zero", () => {
  const taus = [f([1, 2, -3]), f([-1, 2, 1])];
  // entry 0 sums to 0: the majority sign (+) picks task 0's +1
  deepStrictEqual(new TiesMerger([0, 0], 1, "sum").tensor("w", [3], taus), f([1, 4, -3]));
  deepStrictEqual(new TiesMerger([0, 0], -1, "sum").tensor("w", [3], taus), f([-1, 4, -3]));
  // majority 0 (as in the original's torch.where(γ > 0, …)): zero γ keeps negative entries
  deepStrictEqual(new TiesMerger([0, 0], 0, "mean").tensor("w", [3], taus), f([-1, 2, -3]));
});

Deno.test("TIES trims below each task's threshold and keeps ties at it", () => {
  const taus = [f([0.5, -1, 1, 2]), f([3, 3, -3, 0.1])];
  const m = new TiesMerger([1, 3], 1, "mean");
  // task 0 keeps |x| ≥ 1: [0, -1, 1, 2]; task 1 keeps |x| ≥ 3: [3, 3, -3, 0]
  deepStrictEqual(m.tensor("w", [4], taus), f([3, 3, -3, 2]));
});

Deno.test("TIES through the driver: whole-model threshold and majority over all tensors", async () => {
  const t = (a: number[], b: number[]) =>
    new MemorySource("τ", { a: { shape: [2], data: f(a) }, b: { shape: [2], data: f(b) } });
  // τ0 = [4, -1 | 1, 0.5], τ1 = [-4, 2 | 3, -1]; k = 50 keeps the 2 largest of each task
  const m = await merge("ties", [t([4, -1], [1, 0.5]), t([-4, 2], [3, -1])], {
    params: { k: 50, merge: "sum" },
    scaling: 1,
  });
  deepStrictEqual(m.summary.notes, { tiesThresholds: [1, 2], tiesMajoritySign: 1 });
  // trimmed: τ0 = [4, -1 | 1, 0], τ1 = [-4, 2 | 3, 0]; entry a0 sums to 0 → majority + → 4
  deepStrictEqual(m.get("a").data, f([4, 2]));
  deepStrictEqual(m.get("b").data, f([4, 0]));
});
