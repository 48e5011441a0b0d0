/**
 * Small helpers for row-major matrices held in Float32Arrays: copying column and row blocks
 * between matrices and scaling columns, as the spectral merge methods assemble their factors.
 *
 * @module
 */

/** A row-major matrix view: its values and its dimensions. */
export interface Matrix {
  /** Row-major values, rows × cols of them. */
  data: Float32Array;
  /** Number of rows. */
  rows: number;
  /** Number of columns. */
  cols: number;
}

/**
 * Copies `count` columns of `src` starting at column `from` into `dst` starting at column `to`
 * (both with the same number of rows).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { copyColumns } from "./matrix.ts";
 * const dst = { data: new Float32Array(4), rows: 2, cols: 2 };
 * copyColumns({ data: new Float32Array([1, 2, 3, 4]), rows: 2, cols: 2 }, 1, dst, 0, 1);
 * deepEqual(dst.data, new Float32Array([2, 0, 4, 0]));
 * ```
 */
export function copyColumns(
  src: Matrix,
  from: number,
  dst: Matrix,
  to: number,
  count: number,
): void {
  if (src.rows !== dst.rows) throw new Error(`copyColumns: ${src.rows} vs ${dst.rows} rows`);
  if (from + count > src.cols || to + count > dst.cols) {
    throw new Error(`copyColumns: columns out of range`);
  }
  for (let i = 0; i < src.rows; i++) {
    const s = i * src.cols + from;
    dst.data.set(src.data.subarray(s, s + count), i * dst.cols + to);
  }
}

/**
 * Copies `count` rows of `src` starting at row `from` into `dst` starting at row `to` (both
 * with the same number of columns).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { copyRows } from "./matrix.ts";
 * const dst = { data: new Float32Array(4), rows: 2, cols: 2 };
 * copyRows({ data: new Float32Array([1, 2, 3, 4]), rows: 2, cols: 2 }, 1, dst, 0, 1);
 * deepEqual(dst.data, new Float32Array([3, 4, 0, 0]));
 * ```
 */
export function copyRows(src: Matrix, from: number, dst: Matrix, to: number, count: number): void {
  if (src.cols !== dst.cols) throw new Error(`copyRows: ${src.cols} vs ${dst.cols} columns`);
  if (from + count > src.rows || to + count > dst.rows) {
    throw new Error(`copyRows: rows out of range`);
  }
  dst.data.set(src.data.subarray(from * src.cols, (from + count) * src.cols), to * dst.cols);
}

/**
 * Multiplies column j of the rows×cols matrix `data` by `factors[j]`, in place.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { scaleColumns } from "./matrix.ts";
 * const data = new Float32Array([1, 1, 1, 1]);
 * deepEqual(scaleColumns(data, 2, 2, new Float32Array([2, 3])), new Float32Array([2, 3, 2, 3]));
 * deepEqual(data, new Float32Array([2, 3, 2, 3])); // in place
 * ```
 */
export function scaleColumns(
  data: Float32Array,
  rows: number,
  cols: number,
  factors: Float32Array,
): Float32Array {
  for (let i = 0; i < rows; i++) {
    const row = i * cols;
    for (let j = 0; j < cols; j++) data[row + j] *= factors[j];
  }
  return data;
}

/**
 * The mean of `values` (accumulated in double precision).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { meanValue } from "./matrix.ts";
 * equal(meanValue(new Float32Array([1, 2, 6])), 3);
 * ```
 */
export function meanValue(values: Float32Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return values.length === 0 ? 0 : sum / values.length;
}
