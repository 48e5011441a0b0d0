import { deepStrictEqual, notDeepStrictEqual, ok as assert } from "node:assert/strict";
import { Rng } from "../../lib/tensor/random.ts";

Deno.test("a seed fixes the whole sequence; labels give independent streams", () => {
  const a = new Rng(5), b = new Rng(5);
  deepStrictEqual(a.normals(100), b.normals(100));
  notDeepStrictEqual(new Rng(5).normals(10), new Rng(6).normals(10));
  const root = new Rng(5);
  const x = root.fork("x").normals(10);
  root.normals(1000); // consuming the parent does not move a forked stream
  deepStrictEqual(root.fork("x").normals(10), x);
  notDeepStrictEqual(root.fork("y").normals(10), x);
});

Deno.test("normal variates have mean 0 and variance 1; uniforms lie in [0, 1)", () => {
  const v = new Rng(1).normals(200_000);
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const variance = v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length;
  assert(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert(Math.abs(variance - 1) < 0.02, `variance ${variance}`);
  const rng = new Rng(2);
  for (let i = 0; i < 10_000; i++) {
    const u = rng.uniform();
    assert(u >= 0 && u < 1);
  }
});

Deno.test("a permutation holds every index once", () => {
  const p = new Rng(3).permutation(1000);
  deepStrictEqual([...p].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  notDeepStrictEqual([...p], Array.from({ length: 1000 }, (_, i) => i));
});
