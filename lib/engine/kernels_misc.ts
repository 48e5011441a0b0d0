/**
 * Kernels where tfjs's wasm backend does needless or slow work, found by profiling a ViT
 * training step (bench/profile_step.ts):
 *
 * - `Identity` copied its input. tfjs calls it for every tensor a gradient saves (the engine
 *   clones them), so a step copied each saved activation. Tensors are immutable, so ours
 *   shares the data and counts a reference, as tfjs's cpu backend and wasm's own `Reshape` do.
 *   `Cast` to the same dtype likewise.
 * - `Sum` over leading axes (a bias gradient: the column sums of dy) transposed the whole input
 *   first, and sums and means over the last axes (layer norm) ran at ~2 ns per value. Ours
 *   are one `cblas_sgemv` with a vector of ones, reading the input in place (6–20× faster).
 * - `Transpose` of a matrix (or a batch of matrices) was 6–18× slower than OpenBLAS's blocked
 *   out-of-place transpose `cblas_somatcopy`, which ours uses.
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

/**
 * `Cast` to the dtype the input already has, without a copy; other casts go to the wasm kernel.
 *
 * @example
 * ```ts ignore
 * tf.registerKernel({ ...original, kernelFunc: castKernel(blas, original) });
 * ```
 */
export const castKernel: KernelFactory = (_blas, original) => (args) => {
  const x = args.inputs.x!;
  if (x.dtype === "string" || args.attrs.dtype !== x.dtype) return callOriginal(original, args);
  args.backend.incRef(x.dataId);
  countFast("Cast");
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};

// CBLAS enum values (cblas.h)
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

let ones = new Float32Array(0);

/** A vector of at least `n` ones (grown on demand, kept for the next call). */
function onesOf(n: number): Float32Array {
  if (ones.length < n) ones = new Float32Array(Math.max(n, 2 * ones.length)).fill(1);
  return ones;
}

/**
 * How a reduction over `axis` maps onto a matrix-vector product: the input seen as
 * [rows, cols], reduced over its rows (`leading`: the reduced axes come first) or over its
 * columns (the reduced axes come last, or are all of them); undefined otherwise.
 */
function reductionPlan(
  axis: unknown,
  shape: number[],
): { rows: number; cols: number; leading: boolean; count: number } | undefined {
  const axes = [...new Set(tf.util.parseAxisParam(axis as number | number[], shape))].sort(
    (a, b) => a - b,
  );
  const rank = shape.length;
  if (axes.length === 0) return undefined;
  const leading = axes.every((a, i) => a === i) && axes.length < rank;
  const trailing = axes.every((a, i) => a === rank - axes.length + i);
  if (!leading && !trailing) return undefined;
  const split = leading ? axes.length : rank - axes.length;
  const rows = shape.slice(0, split).reduce((p, d) => p * d, 1);
  const cols = shape.slice(split).reduce((p, d) => p * d, 1);
  return { rows, cols, leading, count: leading ? rows : cols };
}

/**
 * `Sum` (or `Mean`, with `mean`) over a leading or a trailing block of axes of a float32
 * tensor as one `cblas_sgemv` with a vector of ones: y = Xᵀ·1 or X·1 (scaled by 1/count for a
 * mean), reading the input in place. Other reductions go to the wasm kernel.
 */
function reductionKernel(mean: boolean): KernelFactory {
  const name = mean ? "Mean" : "Sum";
  return (blas, original) => (args) => {
    const x = args.inputs.x!;
    const plan = x.dtype === "float32" ? reductionPlan(args.attrs.axis, x.shape) : undefined;
    if (!plan || plan.rows === 0 || plan.cols === 0) return callOriginal(original, args);
    const axes = tf.util.parseAxisParam(args.attrs.axis as number | number[], x.shape);
    const outShape = args.attrs.keepDims
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    const out = args.backend.makeOutput(outShape, "float32"); // allocate before the views
    const y = args.backend.typedArrayFromHeap(out);
    const values = args.backend.typedArrayFromHeap(x);
    const { rows, cols, leading, count } = plan;
    countFast(name);
    blas.cblas_sgemv(
      ROW_MAJOR,
      leading ? TRANS : NO_TRANS,
      rows,
      cols,
      mean ? 1 / count : 1,
      values,
      cols,
      onesOf(leading ? rows : cols),
      1,
      0,
      y,
      1,
    );
    return out;
  };
}

/**
 * `Sum` over leading or trailing axes through `cblas_sgemv`.
 *
 * @example
 * ```ts ignore
 * tf.registerKernel({ ...original, kernelFunc: sumKernel(blas, original) });
 * ```
 */
export const sumKernel: KernelFactory = reductionKernel(false);

/**
 * `Mean` over leading or trailing axes through `cblas_sgemv`.
 *
 * @example
 * ```ts ignore
 * tf.registerKernel({ ...original, kernelFunc: meanKernel(blas, original) });
 * ```
 */
export const meanKernel: KernelFactory = reductionKernel(true);

/**
 * A permutation with size-1 axes dropped and runs of axes that stay adjacent merged: the same
 * memory movement on fewer, larger axes. `[128, 17, 64]` with perm `[0, 2, 1]` stays as it is;
 * `[2, 3, 4, 5]` with `[2, 3, 0, 1]` becomes `[6, 20]` with `[1, 0]`.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { collapsePermutation } from "./kernels_misc.ts";
 * deepStrictEqual(collapsePermutation([2, 3, 4, 5], [2, 3, 0, 1]), { shape: [6, 20], perm: [1, 0] });
 * ```
 */
export function collapsePermutation(
  shape: readonly number[],
  perm: readonly number[],
): { shape: number[]; perm: number[] } {
  const kept = perm.filter((axis) => shape[axis] !== 1);
  const groups: number[][] = []; // input axes of each merged axis, in output order
  for (const axis of kept) {
    const last = groups[groups.length - 1];
    if (last && last[last.length - 1] + 1 === axis) last.push(axis);
    else groups.push([axis]);
  }
  const byInput = [...groups].sort((a, b) => a[0] - b[0]);
  return {
    shape: byInput.map((g) => g.reduce((p, axis) => p * shape[axis], 1)),
    perm: groups.map((g) => byInput.indexOf(g)),
  };
}

/**
 * `Transpose` of float32 matrices, or batches of them, through `cblas_somatcopy`; other
 * permutations go to the wasm kernel.
 *
 * @example
 * ```ts ignore
 * tf.registerKernel({ ...original, kernelFunc: transposeKernel(blas, original) });
 * ```
 */
export const transposeKernel: KernelFactory = (blas, original) => (args) => {
  const x = args.inputs.x!;
  const perm = args.attrs.perm as number[];
  const collapsed = collapsePermutation(x.shape, perm);
  const batched = collapsed.perm.join() === "0,2,1";
  const empty = x.shape.some((d) => d === 0);
  if (x.dtype !== "float32" || empty || !(batched || collapsed.perm.join() === "1,0")) {
    return callOriginal(original, args);
  }
  const [batch, rows, cols] = batched ? collapsed.shape : [1, ...collapsed.shape];
  const out = args.backend.makeOutput(perm.map((axis) => x.shape[axis]), "float32");
  const to = args.backend.typedArrayFromHeap(out); // views after the allocation
  const from = args.backend.typedArrayFromHeap(x);
  countFast("Transpose");
  const size = rows * cols;
  for (let b = 0; b < batch; b++) {
    const src = from.subarray(b * size), dst = to.subarray(b * size);
    blas.cblas_somatcopy(ROW_MAJOR, TRANS, rows, cols, 1, src, cols, dst, rows);
  }
  return out;
};
