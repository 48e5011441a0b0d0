/**
 * Two kernels where tfjs's wasm backend does needless work, found by profiling a ViT training
 * step (bench/profile_step.ts):
 *
 * - `Identity` copied its input. tfjs calls it for every tensor a gradient saves (the engine
 *   clones them), so a step copied each saved activation. Tensors are immutable, so ours
 *   shares the data and counts a reference, as tfjs's cpu backend and wasm's own `Reshape` do.
 * - `Sum` over leading axes (a bias gradient: the column sums of dy) transposed the whole input
 *   first. Ours is one `cblas_sgemv` with a vector of ones, reading the input in place.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { callOriginal, countFast, type KernelFactory } from "./kernel_util.ts";

/**
 * `Identity` without a copy: the output shares the input's data (one more reference).
 *
 * @example
 * ```ts ignore
 * tf.registerKernel({ ...original, kernelFunc: identityKernel(blas, original) });
 * ```
 */
export const identityKernel: KernelFactory = (_blas, original) => (args) => {
  const x = args.inputs.x!;
  if (x.dtype === "string") return callOriginal(original, args);
  args.backend.incRef(x.dataId);
  countFast("Identity");
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};

// CBLAS enum values (cblas.h)
const ROW_MAJOR = 101;
const TRANS = 112;

let ones = new Float32Array(0);

/** A vector of at least `n` ones (grown on demand, kept for the next call). */
function onesOf(n: number): Float32Array {
  if (ones.length < n) ones = new Float32Array(Math.max(n, 2 * ones.length)).fill(1);
  return ones;
}

/**
 * The leading axes a sum reduces, as their count, or -1 when the reduction is not over a
 * leading block of axes (or is over all of them, which the wasm kernel does without a
 * transpose).
 */
function leadingAxes(axis: unknown, shape: number[]): number {
  const axes = [...new Set(tf.util.parseAxisParam(axis as number | number[], shape))].sort(
    (a, b) => a - b,
  );
  const leading = axes.length > 0 && axes.every((a, i) => a === i);
  return leading && axes.length < shape.length ? axes.length : -1;
}

/**
 * `Sum` over leading axes as y = Xᵀ·1 with X the input seen as [rows, columns]; other sums go to
 * the wasm kernel.
 *
 * @example
 * ```ts ignore
 * tf.registerKernel({ ...original, kernelFunc: sumKernel(blas, original) });
 * ```
 */
export const sumKernel: KernelFactory = (blas, original) => (args) => {
  const x = args.inputs.x!;
  const count = x.dtype === "float32" ? leadingAxes(args.attrs.axis, x.shape) : -1;
  const rows = x.shape.slice(0, count).reduce((p, d) => p * d, 1);
  const cols = x.shape.slice(count).reduce((p, d) => p * d, 1);
  if (count < 0 || rows === 0 || cols === 0) return callOriginal(original, args);
  const outShape = args.attrs.keepDims
    ? x.shape.map((d, i) => (i < count ? 1 : d))
    : x.shape.slice(count);
  const out = args.backend.makeOutput(outShape, "float32"); // allocate before the views
  const y = args.backend.typedArrayFromHeap(out);
  const values = args.backend.typedArrayFromHeap(x);
  countFast("Sum");
  blas.cblas_sgemv(ROW_MAJOR, TRANS, rows, cols, 1, values, cols, onesOf(rows), 1, 0, y, 1);
  return out;
};
