/**
 * Notebook display of TensorFlow.js tensors: shape, dtype and summary statistics, with a
 * heatmap for a 2-D tensor and a curve for a 1-D one, instead of a wall of numbers. The
 * notebook display reads the tensor asynchronously; the functions below take what they need
 * through `dataSync()` (pass a tensor whose values are on the host, or its read copy). Importing
 * this module (or `mod.ts`) installs it on `tf.Tensor.prototype`; terminal printing of tensors
 * is left as tfjs does it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Figure, heatmap, lines, stack, table } from "./figure.ts";
import { formatNumber } from "./format.ts";
import { JUPYTER_DISPLAY, type MimeBundle } from "./jupyter.ts";

/**
 * What the display needs of a tensor; every tfjs `tf.Tensor` has it (declared here so the
 * public API names no tfjs-internal type).
 */
export interface TensorLike {
  /** Dimensions. */
  readonly shape: number[];
  /** tfjs dtype ("float32", "int32", "bool", "string", "complex64"). */
  readonly dtype: string;
  /** Number of elements. */
  readonly size: number;
  /** Number of dimensions. */
  readonly rank: number;
  /** True once the tensor's memory was released. */
  readonly isDisposed: boolean;
  /** The values, row-major. */
  dataSync(): ArrayLike<number | string>;
}

/** Summary statistics of a tensor's finite values. */
export interface TensorSummary {
  /** Shape. */
  shape: number[];
  /** tfjs dtype. */
  dtype: string;
  /** Number of elements. */
  size: number;
  /** Smallest finite value (NaN if none or not numeric). */
  min: number;
  /** Largest finite value. */
  max: number;
  /** Mean of finite values. */
  mean: number;
  /** Standard deviation of finite values (population). */
  std: number;
  /** Count of NaN elements. */
  nans: number;
  /** Count of ±Infinity elements. */
  infinities: number;
}

/**
 * Summary statistics of a tensor (reads its data synchronously).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { tensorSummary } from "./tensor.ts";
 * const t = tf.tensor2d([[1, 2], [3, NaN]]);
 * deepEqual(tensorSummary(t), {
 *   shape: [2, 2],
 *   dtype: "float32",
 *   size: 4,
 *   min: 1,
 *   max: 3,
 *   mean: 2,
 *   std: Math.sqrt(2 / 3), // population std of 1, 2, 3
 *   nans: 1,
 *   infinities: 0,
 * });
 * t.dispose();
 * ```
 */
export function tensorSummary(t: TensorLike): TensorSummary {
  const base = { shape: t.shape, dtype: t.dtype, size: t.size };
  if (!isNumeric(t)) return { ...base, ...EMPTY_STATS };
  const data = t.dataSync() as ArrayLike<number>;
  // Welford's update: a plain sum of squares loses the variance when |mean| ≫ std.
  let n = 0, mean = 0, m2 = 0, nans = 0, infinities = 0;
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (Number.isNaN(v)) nans++;
    else if (!Number.isFinite(v)) infinities++;
    else {
      n++;
      const delta = v - mean;
      mean += delta / n;
      m2 += delta * (v - mean);
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return {
    ...base,
    min: n ? min : NaN,
    max: n ? max : NaN,
    mean: n ? mean : NaN,
    std: n ? Math.sqrt(m2 / n) : NaN,
    nans,
    infinities,
  };
}

const EMPTY_STATS = { min: NaN, max: NaN, mean: NaN, std: NaN, nans: 0, infinities: 0 };

function isNumeric(t: TensorLike): boolean {
  return t.dtype === "float32" || t.dtype === "int32" || t.dtype === "bool";
}

/**
 * One line describing a tensor: dtype, shape and statistics.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { tensorText } from "./tensor.ts";
 * const t = tf.tensor1d([1, 2, 3]);
 * equal(
 *   tensorText(t),
 *   "Tensor float32 [3] · min 1 · max 3 · mean 2 · std 0.8165 · values [1, 2, 3]",
 * );
 * t.dispose();
 * equal(tensorText(t), "Tensor float32 [3] (disposed)");
 * ```
 */
export function tensorText(t: TensorLike): string {
  if (t.isDisposed) return `Tensor ${t.dtype} [${t.shape.join(", ")}] (disposed)`;
  const s = tensorSummary(t);
  const parts = [`Tensor ${s.dtype} [${s.shape.join(", ")}]`];
  if (isNumeric(t)) {
    parts.push(
      `min ${formatNumber(s.min)}`,
      `max ${formatNumber(s.max)}`,
      `mean ${formatNumber(s.mean)}`,
      `std ${formatNumber(s.std)}`,
    );
    if (s.nans) parts.push(`${s.nans} NaN`);
    if (s.infinities) parts.push(`${s.infinities} ±Inf`);
  }
  if (s.size <= 12 && t.dtype !== "complex64") {
    const values = Array.from(
      t.dataSync() as ArrayLike<number | string>,
      (v) => typeof v === "number" ? formatNumber(v) : JSON.stringify(v),
    );
    parts.push(`values [${values.join(", ")}]`);
  }
  return parts.join(" · ");
}

const MAX_CELLS = 64;

/**
 * The figure shown for a tensor: a statistics table, plus a heatmap (2-D; large matrices as
 * block means of at most 64×64 blocks) or a curve (1-D).
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { specOf } from "./figure.ts";
 * import { tensorFigure } from "./tensor.ts";
 * const t = tf.tensor2d([[1, -2], [3, 4]]);
 * const fig = tensorFigure(t); // a statistics table above a heatmap
 * equal(specOf(fig).kind, "stack");
 * deepEqual(fig.toText().split("\n").slice(3, 8), [
 *   "   4   -2    4  1.500  2.291    0     0",
 *   "",
 *   "      0    1",
 *   "0   1 ▓ -2 ░",
 *   "1   3 █  4 █",
 * ]);
 * t.dispose();
 * ```
 */
export function tensorFigure(t: TensorLike): Figure {
  const s = tensorSummary(t);
  const stats = table({
    title: `Tensor ${s.dtype} [${s.shape.join(", ")}]`,
    columns: ["size", "min", "max", "mean", "std", "NaN", "±Inf"],
    rows: [[s.size, s.min, s.max, s.mean, s.std, s.nans, s.infinities]],
    digits: 4,
  });
  if (!isNumeric(t) || s.size === 0 || t.isDisposed) return stats;
  if (t.rank === 2) return stack([stats, matrixHeatmap(t, s)]);
  if (t.rank === 1) return stack([stats, vectorCurve(t)]);
  return stats;
}

const MAX_POINTS = 1000;

// Long vectors are drawn as means of consecutive blocks, at most MAX_POINTS of them.
function vectorCurve(t: TensorLike): Figure {
  const data = t.dataSync() as ArrayLike<number>;
  const step = Math.ceil(data.length / MAX_POINTS);
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < data.length; i += step) {
    x.push(i);
    y.push(blockMean(data, data.length, 0, i, 1, step, 1));
  }
  const title = step > 1 ? `means of ${step} consecutive elements` : undefined;
  return lines({ series: [{ name: "value", x, y }], xTitle: "index", title });
}

function matrixHeatmap(t: TensorLike, s: TensorSummary): Figure {
  const [rows, cols] = t.shape;
  const data = t.dataSync() as ArrayLike<number>;
  const br = Math.ceil(rows / MAX_CELLS);
  const bc = Math.ceil(cols / MAX_CELLS);
  const values: number[][] = [];
  for (let i0 = 0; i0 < rows; i0 += br) {
    const row: number[] = [];
    for (let j0 = 0; j0 < cols; j0 += bc) row.push(blockMean(data, cols, i0, j0, br, bc, rows));
    values.push(row);
  }
  const blocked = br > 1 || bc > 1;
  const diverging = s.min < 0 && s.max > 0;
  return heatmap({
    values,
    rowLabels: values.map((_, i) => String(i * br)),
    columnLabels: values[0].map((_, j) => String(j * bc)),
    title: blocked ? `block means of ${br}×${bc} elements` : undefined,
    xTitle: "column",
    yTitle: "row",
    scale: diverging ? "diverging" : "sequential",
    showValues: !blocked && rows * cols <= 100,
  });
}

function blockMean(
  data: ArrayLike<number>,
  cols: number,
  i0: number,
  j0: number,
  br: number,
  bc: number,
  rows: number,
): number {
  let sum = 0;
  let n = 0;
  for (let i = i0; i < Math.min(rows, i0 + br); i++) {
    for (let j = j0; j < Math.min(cols, j0 + bc); j++) {
      const v = Number(data[i * cols + j]);
      if (Number.isFinite(v)) (sum += v), n++;
    }
  }
  return n ? sum / n : NaN;
}

/**
 * The MIME bundle of a tensor (what the kernel shows once the display is installed).
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { tensorBundle } from "./tensor.ts";
 * const t = tf.eye(3);
 * const bundle = tensorBundle(t);
 * equal(
 *   bundle["text/plain"],
 *   "Tensor float32 [3, 3] · min 0 · max 1 · mean 0.3333 · std 0.4714 · " +
 *     "values [1, 0, 0, 0, 1, 0, 0, 0, 1]",
 * );
 * deepEqual(Object.keys(bundle), ["text/plain", "text/html", "image/svg+xml"]);
 * t.dispose();
 * ```
 */
export function tensorBundle(t: TensorLike): MimeBundle {
  if (t.isDisposed) return { "text/plain": tensorText(t) };
  return { ...tensorFigure(t).toBundle(), "text/plain": tensorText(t) };
}

/**
 * Gives every tfjs tensor the notebook display of {@linkcode tensorBundle}, reading its values
 * asynchronously first (a synchronous read throws on WebGPU in Deno, and waits for the device
 * anywhere). Runs when this module is imported; calling it again is harmless.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { bundleOf } from "./jupyter.ts";
 * import { installTensorDisplay } from "./tensor.ts";
 * installTensorDisplay();
 * const t = tf.tensor1d([1, 2, 3]);
 * const bundle = await bundleOf(t); // what the kernel shows
 * equal(
 *   bundle["text/plain"],
 *   "Tensor float32 [3] · min 1 · max 3 · mean 2 · std 0.8165 · values [1, 2, 3]",
 * );
 * t.dispose();
 * ```
 */
export function installTensorDisplay(): void {
  Object.defineProperty(tf.Tensor.prototype, JUPYTER_DISPLAY, {
    value: async function (this: TensorLike & { data(): Promise<ArrayLike<number | string>> }) {
      if (this.isDisposed) return tensorBundle(this);
      const values = await this.data();
      const { shape, dtype, size, rank } = this;
      return tensorBundle({ shape, dtype, size, rank, isDisposed: false, dataSync: () => values });
    },
    configurable: true,
    writable: true,
  });
}

installTensorDisplay();
