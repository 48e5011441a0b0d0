/**
 * Matrix products for the wasm backend through OpenBLAS's `cblas_sgemm`: `BatchMatMul` and
 * `_FusedMatMul` (bias and activation), on the tensors in the wasm heap without copies.
 * Transposed operands cost nothing extra (sgemm reads them in place), batches broadcast as in
 * NumPy, and a batch that shares one right-hand matrix becomes a single product.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { OpenBlasSymbols } from "../linalg/openblas.ts";
import { callOriginal, countFast, type KernelArgs, type KernelFactory } from "./kernel_util.ts";

/**
 * A batch of products goes to the original wasm kernel when each product has fewer
 * multiply-adds (m·n·k) than this: each sgemm call costs about 1 µs of overhead, while the
 * wasm kernel runs the whole batch in one call. Measured on the project machine (512 products):
 * 4×4×4 each, wasm 0.26 ms vs sgemm 0.44 ms; 8×8×8, 0.67 vs 0.48 ms; 17×16×17, 7.5 vs 1.2 ms.
 * A single product always goes to sgemm: it was never slower, even at 4×4×4 (tfjs's per-op
 * overhead of ~8 µs dominates both).
 */
export const MIN_BATCHED_MACS = 256;

/** How one (batched, broadcast) product maps onto sgemm calls. */
export interface ProductPlan {
  /** Shape of the result: broadcast batch dimensions, then m, n. */
  outShape: number[];
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Element offsets of each sgemm's A and B; the i-th C starts at i·m·n. */
  aOffsets: number[];
  bOffsets: number[];
}

/**
 * Plans C = op(A)·op(B) over the last two axes with NumPy-style broadcasting of the leading
 * ones, or returns an error message when the shapes do not fit. A batch of products that
 * shares one B (and uses A untransposed) becomes a single sgemm with m·batch rows.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { planProduct } from "./kernels.ts";
 * const plan = planProduct([2, 3, 4], [4, 5], false, false);
 * if (typeof plan === "string") throw new Error(plan);
 * deepStrictEqual([plan.outShape, plan.m, plan.aOffsets], [[2, 3, 5], 6, [0]]);
 * ```
 */
export function planProduct(
  aShape: readonly number[],
  bShape: readonly number[],
  transA: boolean,
  transB: boolean,
): ProductPlan | string {
  if (aShape.length < 2 || bShape.length < 2) return "operands must have rank ≥ 2";
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const [kb, n] = transB ? [bc, br] : [br, bc];
  if (k !== kb) return `inner dimensions ${k} and ${kb} differ`;
  const batchA = aShape.slice(0, -2), batchB = bShape.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const padA = [...Array(rank - batchA.length).fill(1), ...batchA];
  const padB = [...Array(rank - batchB.length).fill(1), ...batchB];
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    if (padA[i] !== padB[i] && padA[i] !== 1 && padB[i] !== 1) {
      return `batch dimensions [${batchA}] and [${batchB}] do not broadcast`;
    }
    batch.push(Math.max(padA[i], padB[i]));
  }
  const outShape = [...batch, m, n];
  const count = batch.reduce((p, d) => p * d, 1);
  const sharedB = padB.every((d) => d === 1);
  if (sharedB && !transA) {
    // A's batch is contiguous rows: one product with count·m rows.
    return { outShape, m: m * count, n, k, transA, transB, aOffsets: [0], bOffsets: [0] };
  }
  const aOffsets: number[] = [], bOffsets: number[] = [];
  const stridesA = batchStrides(padA, ar * ac), stridesB = batchStrides(padB, br * bc);
  for (let flat = 0; flat < count; flat++) {
    let rest = flat, offA = 0, offB = 0;
    for (let d = rank - 1; d >= 0; d--) {
      const index = rest % batch[d];
      rest = (rest - index) / batch[d];
      offA += (padA[d] === 1 ? 0 : index) * stridesA[d];
      offB += (padB[d] === 1 ? 0 : index) * stridesB[d];
    }
    aOffsets.push(offA);
    bOffsets.push(offB);
  }
  return { outShape, m, n, k, transA, transB, aOffsets, bOffsets };
}

function batchStrides(dims: number[], matrixSize: number): number[] {
  const strides = new Array(dims.length);
  let stride = matrixSize;
  for (let d = dims.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= dims[d];
  }
  return strides;
}

// CBLAS enum values (cblas.h)
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** Runs the planned sgemm calls; with `beta` 1, C's prior contents (a bias) are added to. */
function runPlan(
  blas: OpenBlasSymbols,
  plan: ProductPlan,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  beta: number,
  kernel: string,
): void {
  const { m, n, k, transA, transB } = plan;
  const lda = transA ? m : k, ldb = transB ? k : n;
  const ta = transA ? TRANS : NO_TRANS, tb = transB ? TRANS : NO_TRANS;
  const size = m * n;
  countFast(kernel);
  for (let i = 0; i < plan.aOffsets.length; i++) {
    blas.cblas_sgemm(
      ROW_MAJOR,
      ta,
      tb,
      m,
      n,
      k,
      1,
      a.subarray(plan.aOffsets[i]),
      lda,
      b.subarray(plan.bOffsets[i]),
      ldb,
      beta,
      c.subarray(i * size),
      n,
    );
  }
}

/** A plan worth running through sgemm, or undefined (use the original kernel). */
function fastPlan(args: KernelArgs): ProductPlan | undefined {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  if (a.dtype !== "float32" || b.dtype !== "float32") return undefined;
  const plan = planProduct(
    a.shape,
    b.shape,
    Boolean(args.attrs.transposeA),
    Boolean(args.attrs.transposeB),
  );
  if (typeof plan === "string") return undefined; // the original kernel reports the error
  const single = plan.aOffsets.length === 1;
  const empty = plan.m === 0 || plan.n === 0 || plan.k === 0;
  return !empty && (single || plan.m * plan.n * plan.k >= MIN_BATCHED_MACS) ? plan : undefined;
}

/**
 * `BatchMatMul` through sgemm.
 *
 * @example
 * ```ts ignore
 * tf.registerKernel({ ...original, kernelFunc: batchMatMulKernel(blas, original) });
 * ```
 */
export const batchMatMulKernel: KernelFactory = (blas, original) => (args) => {
  const plan = fastPlan(args);
  if (!plan) return callOriginal(original, args);
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const out = args.backend.makeOutput(plan.outShape, "float32"); // allocate before the views
  const heap = (t: tf.TensorInfo) => args.backend.typedArrayFromHeap(t);
  runPlan(blas, plan, heap(a), heap(b), heap(out), 0, "BatchMatMul");
  return out;
};

/** Activations tfjs's `_FusedMatMul` may ask for, as the kernels that apply them. */
const ACTIVATION_KERNELS: Record<string, string> = {
  relu: "Relu",
  relu6: "Relu6",
  elu: "Elu",
  sigmoid: "Sigmoid",
  leakyrelu: "LeakyRelu",
  prelu: "Prelu",
};

/**
 * `_FusedMatMul` through sgemm: a row bias is copied into the output first and sgemm adds the
 * product to it; the activation runs as the wasm backend's own kernel.
 *
 * @example
 * ```ts ignore
 * tf.registerKernel({ ...original, kernelFunc: fusedMatMulKernel(blas, original) });
 * ```
 */
export const fusedMatMulKernel: KernelFactory = (blas, original) => (args) => {
  const plan = fastPlan(args);
  const { a, b, bias, preluActivationWeights } = args.inputs;
  const activation = String(args.attrs.activation ?? "linear");
  const supported = activation === "linear" || activation in ACTIVATION_KERNELS;
  if (!plan || !supported || (bias && !rowBias(bias, plan.n))) {
    return callOriginal(original, args);
  }
  const backend = args.backend;
  const out = backend.makeOutput(plan.outShape, "float32"); // allocate before the views
  const c = backend.typedArrayFromHeap(out);
  if (bias) fillRows(c, backend.typedArrayFromHeap(bias), plan.n);
  runPlan(
    blas,
    plan,
    backend.typedArrayFromHeap(a!),
    backend.typedArrayFromHeap(b!),
    c,
    bias ? 1 : 0,
    "_FusedMatMul",
  );
  if (activation === "linear") return out;
  // The activation runs as the wasm backend's own (SIMD) kernel on the product.
  const kernel = tf.getKernel(ACTIVATION_KERNELS[activation], "wasm")!;
  const result = kernel.kernelFunc({
    inputs: activation === "prelu" ? { x: out, alpha: preluActivationWeights! } : { x: out },
    backend: backend as unknown as tf.KernelBackend,
    attrs: activation === "leakyrelu" ? { alpha: Number(args.attrs.leakyreluAlpha ?? 0.2) } : {},
  }) as tf.TensorInfo;
  backend.disposeData(out.dataId);
  return result;
};

/** True when `bias` adds the same n values to every row (shape [n], [1, n], [1, 1, n], …). */
function rowBias(bias: tf.TensorInfo, n: number): boolean {
  const size = bias.shape.reduce((p, d) => p * d, 1);
  return bias.dtype === "float32" && size === n && bias.shape.slice(0, -1).every((d) => d === 1);
}

/** Copies the n-vector `bias` into every row of `c`. */
function fillRows(c: Float32Array, bias: Float32Array, n: number): void {
  for (let off = 0; off < c.length; off += n) c.set(bias, off);
}
