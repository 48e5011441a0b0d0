import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine/backend.ts";
import {
  FUSED,
  fusedAddPairs,
  fusedAvailable,
  fusedHeadsKl,
  fusedLayerNorm,
  fusedQuickGelu,
  registerFusedKernels,
  unregisterFusedKernels,
} from "../../lib/engine/fused.ts";
import { packedGradients } from "../../lib/engine/gradients.ts";
import { simdKernels } from "../../lib/engine/simd.ts";
import { AdamW } from "../../lib/train/adamw.ts";
import { trainStep } from "../../lib/train/step.ts";
import { riLoss } from "../../lib/ri/loss.ts";
import { headLogits, headsLogits, makeHead } from "../../lib/models/head.ts";
import { gaussianMatrix, maxAbsDiff } from "../linalg/random.ts";

await initEngine({ backend: "wasm" });

function randn(shape: number[], seed: number, scale = 1): tf.Tensor {
  const size = shape.reduce((p, d) => p * d, 1);
  return tf.tensor(gaussianMatrix(1, size, seed).map((v) => v * scale), shape);
}

/** Runs `work` unfused (the reference ops) and fused; returns both results as arrays. */
function bothWays(work: () => tf.Tensor[]): { plain: Float32Array[]; fused: Float32Array[] } {
  const run = () =>
    tf.tidy(work).map((t) => {
      const data = t.dataSync() as Float32Array;
      t.dispose();
      return data;
    });
  unregisterFusedKernels();
  const plain = run();
  registerFusedKernels();
  assert(fusedAvailable(FUSED.layerNorm), "fused kernels did not register");
  return { plain, fused: run() };
}

function assertClose(
  label: string,
  r: { plain: Float32Array[]; fused: Float32Array[] },
  rel = 1e-5,
) {
  r.plain.forEach((want, i) => {
    let scale = 1e-6;
    for (const v of want) scale = Math.max(scale, Math.abs(v));
    const diff = maxAbsDiff(r.fused[i], want);
    assert(diff <= rel * scale, `${label}: output ${i} differs by ${diff} (scale ${scale})`);
  });
}

/** The unfused LayerNorm, as lib/models/vit.ts writes it. */
function plainLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number) {
  const axis = x.rank - 1;
  const mean = x.mean(axis, true);
  const centered = x.sub(mean);
  const variance = centered.square().mean(axis, true);
  return centered.mul(variance.add(eps).rsqrt()).mul(gamma).add(beta);
}

Deno.test("fused LayerNorm equals the unfused ops, forward and every gradient (row widths 64, 66, 3)", () => {
  for (const [rows, d] of [[37, 64], [5, 66], [9, 3]]) {
    const x = randn([rows, d], 1, 3), gamma = randn([d], 2), beta = randn([d], 3);
    const dy = randn([rows, d], 4);
    const r = bothWays(() => {
      const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        (fusedLayerNorm(x, g, b, 1e-5) ?? plainLayerNorm(x, g, b, 1e-5)).mul(dy).sum();
      const grads = tf.grads(f)([x, gamma, beta]);
      return [
        fusedLayerNorm(x, gamma, beta, 1e-5) ?? plainLayerNorm(x, gamma, beta, 1e-5),
        ...grads,
      ];
    });
    assertClose(`LayerNorm [${rows}, ${d}]`, r, 2e-5);
    tf.dispose([x, gamma, beta, dy]);
  }
});

Deno.test("fused quick-GELU equals x·σ(1.702x), forward and gradient, across the exp range", () => {
  const values = Array.from({ length: 1003 }, (_, i) => -60 + 0.12 * i);
  const x = tf.tensor1d(values), dy = randn([values.length], 5);
  const r = bothWays(() => {
    const f = (x: tf.Tensor) =>
      (fusedQuickGelu(x) ?? x.mul(tf.sigmoid(x.mul(1.702)))).mul(dy).sum();
    return [fusedQuickGelu(x) ?? x.mul(tf.sigmoid(x.mul(1.702))), tf.grad(f)(x)];
  });
  assertClose("quick-GELU", r, 2e-6);
  tf.dispose([x, dy]);
});

Deno.test("the SIMD exp behind the sigmoid is within float32 rounding of Math.exp", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const k = simdKernels(memory)!;
  const f = new Float32Array(memory.buffer);
  // quick-GELU of u/1.702 is u/1.702·σ(u): σ(u) = 1/(1 + e^−u) exercises exp(−u)
  const n = 2001;
  for (let i = 0; i < n; i++) f[i] = Math.fround((-80 + 0.08 * i) / 1.702);
  k.quickGelu(n, 0, 4 * 4096);
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const u = Math.fround(Math.fround(1.702) * f[i]);
    const want = f[i] / (1 + Math.exp(-u));
    if (want !== 0) worst = Math.max(worst, Math.abs(f[4096 + i] - want) / Math.abs(want));
  }
  assert(worst < 4e-7, `worst relative error ${worst}`);
});

Deno.test("AdamW's fused update is bit for bit the unfused one, with and without decay", () => {
  const run = (fused: boolean) => {
    if (fused) registerFusedKernels();
    else unregisterFusedKernels();
    const a = tf.variable(randn([7, 5], 6)), b = tf.variable(randn([3], 7));
    const opt = new AdamW({ a, b }, { weightDecay: 0.1, decays: (n) => n === "a" });
    for (let step = 0; step < 4; step++) {
      const grads = { a: randn([7, 5], 10 + step), b: randn([3], 20 + step) };
      opt.step(grads, 0.01 * (step + 1));
      tf.dispose(Object.values(grads));
    }
    const out = [...a.dataSync(), ...b.dataSync()];
    opt.dispose();
    tf.dispose([a, b]);
    return out;
  };
  deepStrictEqual(run(true), run(false));
});

Deno.test("packed gradients equal variableGrads; an unused variable gets none", () => {
  registerFusedKernels();
  const a = tf.variable(randn([4, 3], 8)), b = tf.variable(randn([3], 9));
  const unused = tf.variable(tf.ones([2]));
  const loss = () => a.matMul(b.reshape([3, 1])).square().sum().add(b.sum()) as tf.Scalar;
  const want = tf.variableGrads(loss, [a, b]);
  const before = tf.memory().numTensors;
  const got = packedGradients(loss, [a, unused, b])!;
  deepStrictEqual(got.offsets, [0, 12, 14]);
  deepStrictEqual(got.reached, [true, false, true]);
  const flat = got.flat.dataSync();
  assert(maxAbsDiff(flat.slice(0, 12), want.grads[a.name].dataSync() as Float32Array) < 1e-5);
  deepStrictEqual([...flat.slice(12, 14)], [0, 0]);
  assert(maxAbsDiff(flat.slice(14), want.grads[b.name].dataSync() as Float32Array) < 1e-5);
  equal(got.value.dataSync()[0], want.value.dataSync()[0]);
  tf.dispose([got.value, got.flat]);
  equal(tf.memory().numTensors, before, "packedGradients leaked tensors");
  tf.dispose([want.value, ...Object.values(want.grads), a, b, unused]);
});

Deno.test("trainStep fused (packed, clipped, in place) equals trainStep unfused", () => {
  const run = (fused: boolean) => {
    if (fused) registerFusedKernels();
    else unregisterFusedKernels();
    const x = randn([16, 6], 11), t = randn([16, 2], 12);
    const w = tf.variable(randn([6, 2], 13)), bias = tf.variable(randn([2], 14));
    const idle = tf.variable(tf.ones([3]));
    const opt = new AdamW({ w, idle, bias }, { weightDecay: 0.05 });
    const before = tf.memory().numTensors;
    const losses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const loss = trainStep(
        () => x.matMul(w).add(bias).sub(t).square().mean().mul(40) as tf.Scalar,
        opt,
        { lr: 0.05, clipNorm: i % 2 === 0 ? 1 : undefined },
      );
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    equal(tf.memory().numTensors, before, "trainStep leaked tensors");
    const out = [...w.dataSync(), ...bias.dataSync(), ...idle.dataSync(), ...losses];
    opt.dispose();
    tf.dispose([x, t, w, bias, idle]);
    return Float32Array.from(out);
  };
  const plain = run(false), fused = run(true);
  assert(maxAbsDiff(plain, fused) < 1e-5, `differ by ${maxAbsDiff(plain, fused)}`);
  deepStrictEqual([...fused.slice(14, 17)], [1, 1, 1]); // unused: no decay
});

Deno.test("θ0 + τ as one kernel: sums and gradients of both sides", () => {
  const base = [randn([3, 2], 15), randn([5], 16)];
  const tau = [randn([3, 2], 17), randn([5], 18)];
  const r = bothWays(() => {
    const f = (t0: tf.Tensor, t1: tf.Tensor) => {
      const sums = fusedAddPairs(base, [t0, t1]) ?? [base[0].add(t0), base[1].add(t1)];
      return sums[0].square().sum().add(sums[1].mul(3).sum());
    };
    return [
      ...(fusedAddPairs(base, tau) ?? [base[0].add(tau[0]), base[1].add(tau[1])]),
      ...tf.grads(f)(tau),
    ];
  });
  assertClose("add pairs", r, 1e-6);
  tf.dispose([...base, ...tau]);
});

Deno.test("riLoss with KL through the fused kernel equals the unfused one, value, parts and gradient", () => {
  const widths = [10, 2, 4];
  const logits = widths.map((w, j) => randn([8, w], 30 + j, 3) as tf.Tensor2D);
  const targets = widths.map((w, j) => tf.softmax(randn([8, w], 40 + j, 2)) as tf.Tensor2D);
  // one exact zero target, whose p·log p term is 0
  const zeroed = tf.tensor2d([[0, 1], ...Array.from({ length: 7 }, () => [0.5, 0.5])]);
  targets[1] = zeroed;
  const r = bothWays(() => {
    const loss = riLoss(logits, targets, 1, { alpha: 0.7, distance: "kl" });
    const grads = tf.grads((...l: tf.Tensor[]) =>
      riLoss(l as tf.Tensor2D[], targets, 1, { alpha: 0.7, distance: "kl" }).total
    )(logits);
    return [loss.total, loss.parts.own, loss.parts.others, ...grads];
  });
  assertClose("riLoss KL", r, 2e-6);
  tf.dispose([...logits, ...targets]);
});

Deno.test("fusedHeadsKl: per-head KL, and the total's weights", () => {
  registerFusedKernels();
  const z = tf.tensor2d([[0, 0, 1]]), p = tf.tensor2d([[1, 0, 1]]);
  const r = fusedHeadsKl(z, p, [2, 1], [2, 5])!;
  const perHead = r.perHead.dataSync();
  assert(Math.abs(perHead[0] - Math.LN2) < 1e-6 && Math.abs(perHead[1]) < 1e-7);
  assert(Math.abs(r.total.dataSync()[0] - 2 * Math.LN2) < 1e-6);
  tf.dispose([z, p, r.total, r.perHead]);
});

Deno.test("headsLogits equals headLogits of each head", () => {
  const heads = [
    makeHead("a", ["0", "1", "2"], randn([3, 5], 50) as tf.Tensor2D, 20),
    makeHead("b", ["0", "1"], randn([2, 5], 51) as tf.Tensor2D, 7),
  ];
  const f = randn([4, 5], 52) as tf.Tensor2D;
  const together = headsLogits(heads, f);
  heads.forEach((h, j) => {
    const alone = headLogits(h, f);
    assert(
      maxAbsDiff(together[j].dataSync() as Float32Array, alone.dataSync() as Float32Array) < 1e-5,
    );
    alone.dispose();
  });
  tf.dispose([...together, f, ...heads.map((h) => h.weight)]);
});
