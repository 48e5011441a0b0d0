/**
 * Argument checks shared by the host linear algebra: sizes, lengths and finiteness, with
 * errors that name the function, the parameter and what was expected.
 *
 * @module
 */
import { firstNonFinite } from "../tensor/host.ts";

/**
 * Throws unless `value` is a positive integer (a matrix dimension).
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkDimension } from "./check.ts";
 * checkDimension("svd", "m", 3);
 * throws(() => checkDimension("svd", "m", 1.5));
 * ```
 */
export function checkDimension(fn: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${fn}: ${name} must be a positive integer, got ${value}`);
  }
}

/**
 * Throws unless `data` is a Float32Array holding a `rows`×`cols` row-major matrix, and, with
 * `finite`, unless every value is finite (the error gives the row and column of the first bad
 * value).
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkMatrix } from "./check.ts";
 * checkMatrix("svd", "a", new Float32Array(6), 2, 3, { finite: true });
 * throws(() => checkMatrix("svd", "a", new Float32Array(5), 2, 3));
 * throws(() => checkMatrix("svd", "a", new Float32Array([NaN, 0]), 1, 2, { finite: true }));
 * ```
 */
export function checkMatrix(
  fn: string,
  name: string,
  data: Float32Array,
  rows: number,
  cols: number,
  options: { finite?: boolean } = {},
): void {
  if (!(data instanceof Float32Array)) {
    throw new TypeError(`${fn}: ${name} must be a Float32Array, got ${typeName(data)}`);
  }
  if (data.length !== rows * cols) {
    throw new RangeError(
      `${fn}: ${name} has ${data.length} values, expected ${rows}×${cols} = ${rows * cols}`,
    );
  }
  if (!options.finite) return;
  const bad = firstNonFinite(data);
  if (bad >= 0) {
    const row = Math.floor(bad / cols);
    throw new RangeError(
      `${fn}: ${name} holds ${data[bad]} at row ${row}, column ${bad - row * cols} ` +
        `(index ${bad}); expected finite values`,
    );
  }
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as object).constructor?.name ?? "object";
}
