import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { dareInPlace, dareKeepMask } from "../../lib/merge/dare.ts";

Deno.test("DARE masks are reproducible, keyed by seed, task and tensor, with rate 1 − p", () => {
  const a = dareKeepMask(3, 1, "layer.weight", 100000, 0.9);
  deepStrictEqual(a, dareKeepMask(3, 1, "layer.weight", 100000, 0.9));
  const kept = a.reduce((s, v) => s + v, 0);
  assert(Math.abs(kept / 100000 - 0.1) < 0.005, `kept fraction ${kept / 100000}`);
  const others = [
    dareKeepMask(4, 1, "layer.weight", 100000, 0.9),
    dareKeepMask(3, 2, "layer.weight", 100000, 0.9),
    dareKeepMask(3, 1, "layer.bias", 100000, 0.9),
  ];
  for (const b of others) assert(a.some((v, i) => v !== b[i]));
  equal(dareKeepMask(0, 0, "w", 1000, 0).every((v) => v === 1), true);
});

Deno.test("DARE divides survivors by exactly 1 − p and zeroes the rest", () => {
  const settings = { p: 0.75, seed: 9, rescale: true, linearOnly: false };
  const data = dareInPlace(new Float32Array(1000).fill(3), 0, "w", [1000], settings);
  const mask = dareKeepMask(9, 0, "w", 1000, 0.75);
  data.forEach((v, i) => equal(v, mask[i] ? 12 : 0));
});

Deno.test("DARE with linear_only drops only in blocks' linear weights", () => {
  const settings = { p: 0.5, seed: 1, rescale: true, linearOnly: true };
  const weight = "vision_model.encoder.layers.0.mlp.fc1.weight";
  const w = dareInPlace(new Float32Array(64).fill(1), 0, weight, [8, 8], settings);
  assert(w.some((v) => v === 0) && w.some((v) => v === 2));
  const bias = "vision_model.encoder.layers.0.mlp.fc1.bias";
  deepStrictEqual(
    dareInPlace(new Float32Array(8).fill(1), 0, bias, [8], settings),
    new Float32Array(8).fill(1),
  );
  const pos = "vision_model.embeddings.position_embedding.weight";
  deepStrictEqual(
    dareInPlace(new Float32Array(4).fill(1), 0, pos, [2, 2], settings),
    new Float32Array(4).fill(1),
  );
});
