import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine/backend.ts";
import {
  fastKernelCounts,
  fastKernelsActive,
  planProduct,
  registerFastKernels,
  unregisterFastKernels,
} from "../../lib/engine/kernels.ts";
import { collapsePermutation } from "../../lib/engine/kernels_misc.ts";
import { gaussianMatrix, maxAbsDiff } from "../linalg/random.ts";

await initEngine({ backend: "wasm" });

/** A tensor of the given shape with seeded normal values. */
function randn(shape: number[], seed: number): tf.Tensor {
  const size = shape.reduce((p, d) => p * d, 1);
  return tf.tensor(gaussianMatrix(1, size, seed), shape);
}

/**
 * Runs `work` with tfjs's own kernels and with ours; returns both outputs, as arrays. `work`
 * gets `fast` so that it can give the original kernel operands it supports (it mishandles
 * batch broadcasting, so those operands are broadcast explicitly for it).
 */
function bothWays(
  work: (fast: boolean) => tf.Tensor[],
  expectProducts = true,
): { original: Float32Array[]; fast: Float32Array[] } {
  const run = (fast: boolean) =>
    tf.tidy(() => work(fast)).map((t) => {
      const data = t.dataSync() as Float32Array;
      t.dispose();
      return data;
    });
  unregisterFastKernels();
  const original = run(false);
  assert(registerFastKernels().active, "OpenBLAS kernels did not register");
  const products = () => {
    const [b, f] = [fastKernelCounts("BatchMatMul"), fastKernelCounts("_FusedMatMul")];
    return { fast: b.fast + f.fast, original: b.original + f.original };
  };
  const before = products();
  const fast = run(true);
  const after = products();
  if (expectProducts) {
    assert(after.fast > before.fast, "no product went through OpenBLAS");
    equal(after.original, before.original, "a product fell back to tfjs's kernel");
  }
  return { original, fast };
}

/** `x` with its batch axes broadcast to `batch` (the last two axes kept). */
function broadcastBatch(x: tf.Tensor, batch: number[]): tf.Tensor {
  return tf.broadcastTo(x.reshape([...Array(batch.length + 2 - x.rank).fill(1), ...x.shape]), [
    ...batch,
    ...x.shape.slice(-2),
  ]);
}

/** Each output of ours within a float32 rounding tolerance of the original kernel's. */
function assertClose(label: string, outputs: { original: Float32Array[]; fast: Float32Array[] }) {
  outputs.original.forEach((expected, i) => {
    let scale = 1;
    for (const v of expected) scale = Math.max(scale, Math.abs(v));
    const diff = maxAbsDiff(outputs.fast[i], expected);
    assert(diff <= 2e-5 * scale, `${label}: output ${i} differs by ${diff} (scale ${scale})`);
  });
}

/** [a shape, b shape, transposeA, transposeB]: 2-D, batched, broadcast, shared B. */
const PRODUCTS: [number[], number[], boolean, boolean][] = [
  [[33, 47], [47, 29], false, false],
  [[47, 33], [47, 29], true, false],
  [[33, 47], [29, 47], false, true],
  [[47, 33], [29, 47], true, true],
  [[4, 17, 16], [4, 17, 16], false, true], // attention scores
  [[4, 17, 17], [4, 17, 16], false, false], // attention mixing
  [[3, 20, 24], [24, 30], false, false], // shared B: one sgemm with 60 rows
  [[3, 24, 20], [24, 30], true, false],
  [[20, 24], [3, 24, 30], false, false], // shared A
  [[2, 1, 12, 24], [3, 24, 30], false, false], // broadcast [2,1] with [3]
  [[1, 3, 24, 12], [2, 1, 30, 24], true, true],
];

Deno.test("BatchMatMul through sgemm matches tfjs's kernel: transposes, batches, broadcasting", () => {
  for (const [sa, sb, ta, tb] of PRODUCTS) {
    const label = `${sa}×${sb} transposeA=${ta} transposeB=${tb}`;
    const outputs = bothWays((fast) => {
      let a = randn(sa, 1), b = randn(sb, 2);
      const plan = planProduct(sa, sb, ta, tb);
      if (typeof plan === "string") throw new Error(plan);
      if (!fast) [a, b] = [a, b].map((x) => broadcastBatch(x, plan.outShape.slice(0, -2)));
      return [tf.matMul(a, b, ta, tb)];
    });
    assertClose(label, outputs);
  }
});

Deno.test("matMul gradients through sgemm match tfjs's kernels", () => {
  // tfjs's matMul gradient does not reduce broadcast batch axes: equal batches only
  const unbroadcast = PRODUCTS.filter(([sa, sb]) =>
    sa.slice(0, -2).join() === sb.slice(0, -2).join()
  );
  for (const [sa, sb, ta, tb] of unbroadcast) {
    const label = `grad ${sa}×${sb} transposeA=${ta} transposeB=${tb}`;
    assertClose(
      label,
      bothWays(() => {
        const a = randn(sa, 3), b = randn(sb, 4);
        const f = (x: tf.Tensor, y: tf.Tensor) => {
          const p = tf.matMul(x, y, ta, tb);
          return p.mul(randn(p.shape, 5)).sum(); // a weighted sum, so dy is not all ones
        };
        return tf.grads(f)([a, b]);
      }),
    );
  }
});

const ACTIVATIONS = ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"] as const;
type Activation = typeof ACTIVATIONS[number];

/** What tfjs's fused activations compute, from plain ops. */
function activate(x: tf.Tensor, activation: Activation, alpha: tf.Tensor): tf.Tensor {
  if (activation === "relu") return tf.relu(x);
  if (activation === "relu6") return tf.relu6(x);
  if (activation === "elu") return tf.elu(x);
  if (activation === "sigmoid") return tf.sigmoid(x);
  if (activation === "leakyrelu") return tf.leakyRelu(x, 0.15);
  if (activation === "prelu") return tf.prelu(x, alpha);
  return x;
}

Deno.test("_FusedMatMul through sgemm: bias, every activation, and their gradients", () => {
  // Reference: the same product, bias and activation as separate ops on tfjs's own kernels
  // (tfjs 4.22's wasm _FusedMatMul itself gets the bias wrong whenever a batch has more than
  // one product or an operand is transposed, so it is compared only without those, below).
  for (const activation of ACTIVATIONS) {
    for (const [ta, tb] of [[false, false], [true, true], [false, true]]) {
      const label = `fused ${activation} transposeA=${ta} transposeB=${tb}`;
      assertClose(
        label,
        bothWays((fast) => {
          const a = randn(ta ? [2, 40, 36] : [2, 36, 40], 6);
          const b = randn(tb ? [2, 24, 40] : [2, 40, 24], 7);
          const bias = randn([24], 8);
          const alpha = randn([24], 9).mul(0.1);
          const weights = randn([2, 36, 24], 10);
          const product = (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) =>
            fast
              ? tf.fused.matMul({
                a: x as tf.Tensor3D,
                b: w as tf.Tensor3D,
                transposeA: ta,
                transposeB: tb,
                bias: c,
                activation,
                preluActivationWeights: activation === "prelu" ? alpha : undefined,
                leakyreluAlpha: 0.15,
              })
              : activate(tf.matMul(x, w, ta, tb).add(c), activation, alpha);
          const f = (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) =>
            product(x, w, c).mul(weights).sum();
          return [product(a, b, bias), ...tf.grads(f)([a, b, bias])];
        }),
      );
    }
  }
});

Deno.test("_FusedMatMul through sgemm matches tfjs's fused kernel where that one is right", () => {
  for (const activation of ACTIVATIONS) {
    assertClose(
      `single fused ${activation}`,
      bothWays(() => [
        tf.fused.matMul({
          a: randn([30, 20], 11) as tf.Tensor2D,
          b: randn([20, 25], 12) as tf.Tensor2D,
          bias: randn([25], 13),
          activation,
          preluActivationWeights: activation === "prelu" ? randn([25], 14) : undefined,
          leakyreluAlpha: 0.15,
        }),
      ]),
    );
  }
});

Deno.test("fused products without bias, and with a [1, n] bias, stay correct", () => {
  assertClose(
    "no bias",
    bothWays(() => [
      tf.fused.matMul({
        a: randn([30, 20], 11) as tf.Tensor2D,
        b: randn([20, 25], 12) as tf.Tensor2D,
      }),
    ]),
  );
  // tfjs's wasm kernel takes only rank-1 biases; ours also takes [1, n]: check that against
  // the unfused composition.
  const a = randn([30, 20], 13) as tf.Tensor2D, b = randn([20, 25], 14) as tf.Tensor2D;
  const bias = randn([1, 25], 15);
  registerFastKernels();
  const fused = tf.fused.matMul({ a, b, bias, activation: "relu" });
  unregisterFastKernels();
  const composed = tf.relu(tf.matMul(a, b).add(bias));
  registerFastKernels();
  assertClose("[1, n] bias", {
    original: [composed.dataSync() as Float32Array],
    fast: [fused.dataSync() as Float32Array],
  });
  tf.dispose([a, b, bias, fused, composed]);
});

Deno.test("kernels leak no tensors and survive the wasm memory growing under them", () => {
  registerFastKernels();
  const backend = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array }; numDataIds(): number };
  const before = { tensors: tf.memory().numTensors, data: backend.numDataIds() };
  const a = randn([300, 200], 16), b = randn([200, 250], 17), bias = randn([250], 18);
  tf.tidy(() => {
    tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: "relu" });
  });
  // An output bigger than the heap's free space: makeOutput grows the memory, which detaches
  // every earlier view; the kernel must take its views afterwards.
  const heapBefore = backend.wasm.HEAPU8.buffer.byteLength;
  const rows = Math.ceil(heapBefore / 4 / 250) + 1000;
  const tall = tf.ones([rows, 1]);
  const threes = tf.fill([1, 250], 3);
  const product = tf.matMul(tall, threes); // k = 1: every entry is 3
  assert(backend.wasm.HEAPU8.buffer.byteLength > heapBefore, "the wasm memory did not grow");
  const values = product.dataSync();
  equal(values.length, rows * 250);
  assert(values.every((v) => v === 3), "product computed on a detached view");
  tf.dispose([a, b, bias, tall, threes, product]);
  equal(tf.memory().numTensors, before.tensors);
  equal(backend.numDataIds(), before.data);
});

Deno.test("batches of tiny products and empty ones go to tfjs's kernel", () => {
  registerFastKernels();
  const before = fastKernelCounts("BatchMatMul");
  const [tiny, empty] = tf.tidy(() => [
    tf.matMul(tf.fill([64, 4, 4], 2), tf.fill([64, 4, 4], 3)),
    tf.matMul(tf.ones([0, 5]), tf.ones([5, 3])),
  ]);
  const after = fastKernelCounts("BatchMatMul");
  equal(after.original - before.original, 2);
  equal(after.fast, before.fast);
  assert((tiny.dataSync() as Float32Array).every((v) => v === 24));
  equal(empty.shape.join(), "0,3");
  tf.dispose([tiny, empty]);
});

Deno.test("Sum and Mean through sgemv match tfjs's kernels; other reductions fall back", () => {
  const cases: [number[], number | number[] | undefined, boolean, boolean][] = [
    // shape, axis, keepDims, takes the fast path
    [[50, 30], 0, false, true],
    [[50, 30], [0], true, true],
    [[50, 30], 1, false, true],
    [[50, 30], -1, true, true],
    [[4, 5, 6], [0, 1], false, true],
    [[4, 5, 6], [1, 0], true, true],
    [[4, 5, 6], -3, false, true],
    [[4, 5, 6], [1, 2], true, true],
    [[4, 5, 6], 1, false, false],
    [[4, 5, 6], [0, 2], false, false],
    [[50, 30], undefined, false, true], // every axis
    [[0, 3], 0, false, false], // empty
  ];
  for (const kernel of ["Sum", "Mean"] as const) {
    for (const [shape, axis, keepDims, fast] of cases) {
      const reduce = kernel === "Sum" ? tf.sum : tf.mean;
      const before = fastKernelCounts(kernel);
      const outputs = bothWays(() => [reduce(randn(shape, 20), axis, keepDims)], false);
      const after = fastKernelCounts(kernel);
      const label = `${kernel} ${shape} axis ${axis} keepDims ${keepDims}`;
      equal(after.fast - before.fast, fast ? 1 : 0, `${label}: fast path taken or not as expected`);
      assertClose(label, outputs);
    }
  }
  const ints = tf.tensor2d([[1, 2], [3, 4]], [2, 2], "int32");
  equal(tf.sum(ints, 0).dtype, "int32");
  equal(tf.sum(ints, 0).dataSync().join(), "4,6");
});

Deno.test("Identity shares data: clones stay valid and variables stay independent", () => {
  registerFastKernels();
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const data = backend.numDataIds();
  const x = tf.tensor1d([1, 2, 3]);
  const before = fastKernelCounts("Identity").fast;
  const y = tf.clone(x);
  equal(fastKernelCounts("Identity").fast, before + 1);
  equal(backend.numDataIds(), data + 1, "the clone copied its data");
  x.dispose();
  equal(y.dataSync().join(), "1,2,3");
  const v = tf.variable(y);
  const z = tf.tensor1d([7, 8, 9]);
  v.assign(z);
  equal(y.dataSync().join(), "1,2,3");
  equal(v.dataSync().join(), "7,8,9");
  tf.dispose([y, v, z]);
  equal(backend.numDataIds(), data);
});

Deno.test("Transpose through somatcopy matches tfjs's kernel; other permutations fall back", () => {
  const cases: [number[], number[], boolean][] = [
    // shape, perm, takes the fast path
    [[37, 23], [1, 0], true],
    [[5, 17, 16], [0, 2, 1], true],
    [[2, 3, 4, 5], [2, 3, 0, 1], true], // merges to a [6, 20] matrix
    [[1, 7, 1, 9], [3, 2, 1, 0], true], // size-1 axes drop out
    [[3, 4, 5, 6], [0, 1, 3, 2], true], // batch of 12 matrices
    [[6, 4, 3, 5], [0, 2, 1, 3], false], // the attention head split keeps its last axis
    [[3, 4, 5], [2, 0, 1], true], // [12, 5] -> [5, 12]
    [[3, 4, 5], [1, 2, 0], true],
    [[3, 4, 5], [1, 0, 2], false],
    [[2, 0, 3], [2, 1, 0], false], // empty
  ];
  for (const [shape, perm, fast] of cases) {
    const before = fastKernelCounts("Transpose");
    const outputs = bothWays(() => [tf.transpose(randn(shape, 21), perm)], false);
    const after = fastKernelCounts("Transpose");
    const label = `transpose ${shape} perm ${perm}`;
    equal(after.fast - before.fast, fast ? 1 : 0, `${label}: fast path taken or not as expected`);
    assertClose(label, outputs);
  }
  const ints = tf.tensor2d([[1, 2], [3, 4]], [2, 2], "int32");
  equal(tf.transpose(ints).dataSync().join(), "1,3,2,4");
});

Deno.test("collapsePermutation merges axes that stay adjacent and drops size-1 axes", () => {
  deepStrictEqual(collapsePermutation([2, 3, 4, 5], [2, 3, 0, 1]), {
    shape: [6, 20],
    perm: [1, 0],
  });
  deepStrictEqual(collapsePermutation([1, 7, 1, 9], [3, 2, 1, 0]), { shape: [7, 9], perm: [1, 0] });
  deepStrictEqual(collapsePermutation([6, 4, 3, 5], [0, 2, 1, 3]), {
    shape: [6, 4, 3, 5],
    perm: [0, 2, 1, 3],
  });
  deepStrictEqual(collapsePermutation([3, 4, 5], [0, 1, 2]), { shape: [60], perm: [0] });
});

Deno.test("Cast to the same dtype shares data; other casts convert", () => {
  registerFastKernels();
  const x = tf.tensor1d([1.5, -2.5, 3]);
  const before = fastKernelCounts("Cast");
  const same = tf.cast(x, "float32");
  const ints = tf.cast(x, "int32");
  const after = fastKernelCounts("Cast");
  equal(after.fast - before.fast, 1);
  equal(after.original - before.original, 1);
  x.dispose();
  equal(same.dataSync().join(), "1.5,-2.5,3");
  equal(ints.dataSync().join(), "1,-2,3");
  tf.dispose([same, ints]);
});

Deno.test("planProduct maps batches and broadcasting onto sgemm calls", () => {
  const shared = planProduct([2, 3, 4], [4, 5], false, false);
  assert(typeof shared !== "string");
  equal(shared.m, 6); // two batches of 3 rows become one product
  equal(shared.aOffsets.length, 1);
  const broadcast = planProduct([2, 1, 3, 4], [3, 4, 5], false, false);
  assert(typeof broadcast !== "string");
  equal(broadcast.outShape.join(), "2,3,3,5");
  equal(broadcast.aOffsets.join(), "0,0,0,12,12,12");
  equal(broadcast.bOffsets.join(), "0,20,40,0,20,40");
  equal(planProduct([3, 4], [5, 6], false, false), "inner dimensions 4 and 5 differ");
  equal(
    planProduct([2, 3, 4], [3, 4, 5], false, false),
    "batch dimensions [2] and [3] do not broadcast",
  );
});

Deno.test("initEngine registers the kernels and says so; RI_FAST_KERNELS=0 keeps tfjs's", async () => {
  assert(fastKernelsActive());
  const info = await initEngine({ backend: "wasm" });
  assert(/OpenBLAS sgemm, \d+ threads/.test(info.adapter), info.adapter);
  const script = new URL("../../lib/engine/backend.ts", import.meta.url).href;
  const code = `const { initEngine } = await import("${script}");
console.log((await initEngine({ backend: "wasm" })).adapter);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { RI_FAST_KERNELS: "0" },
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  equal(new TextDecoder().decode(out.stdout).trim(), "CPU (WebAssembly SIMD, 1 thread)");
});
