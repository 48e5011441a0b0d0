/**
 * Gram matrices AᵀA and AAᵀ of row-major matrices, in float32 and float64, and the Cholesky
 * factor of a symmetric positive definite float64 matrix. A Gram matrix is symmetric, so
 * OpenBLAS's `?syrk` computes one triangle (half the multiplications of a general product) and
 * the other is copied; without OpenBLAS the float32 Gram comes from `matmul`'s fallback.
 *
 * @module
 */
import { checkDimension, checkMatrix } from "./check.ts";
import { matmul } from "./matmul.ts";
import { openBlas } from "./openblas.ts";

// CBLAS enum values (cblas.h)
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;
const UPPER = 121;

/**
 * C = op(A)·op(B) in float64 through `cblas_dgemm` (op(A) m×k, op(B) k×n, row-major; A stored
 * k×m when `transA`, B stored n×k when `transB`); undefined where OpenBLAS is not loaded.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { matmul64 } from "./gram.ts";
 * const c = matmul64(new Float64Array([1, 2]), new Float64Array([3, 4]), 1, 2, 1);
 * if (c) deepEqual([...c], [11]);
 * ```
 */
export function matmul64(
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
  transA = false,
  transB = false,
): Float64Array | undefined {
  for (const [name, value] of [["m", m], ["k", k], ["n", n]] as const) {
    checkDimension("matmul64", name, value);
  }
  if (a.length !== m * k || b.length !== k * n) {
    throw new RangeError(
      `matmul64: a has ${a.length} values and b ${b.length}, expected ${m * k} and ${k * n}`,
    );
  }
  const blas = openBlas();
  if (!blas) return undefined;
  const c = new Float64Array(m * n);
  blas.cblas_dgemm(
    ROW_MAJOR,
    transA ? TRANS : NO_TRANS,
    transB ? TRANS : NO_TRANS,
    m,
    n,
    k,
    1,
    a,
    transA ? m : k,
    b,
    transB ? k : n,
    0,
    c,
    n,
  );
  return c;
}

/** Copies the upper triangle of the n×n row-major `c` into its lower triangle. */
function mirrorUpper(c: Float32Array | Float64Array, n: number): void {
  for (let i = 1; i < n; i++) {
    const row = i * n;
    for (let j = 0; j < i; j++) c[row + j] = c[j * n + i];
  }
}

/**
 * The float32 Gram matrix of the m×n row-major `a`: AᵀA (n×n) when `right`, else AAᵀ (m×m); by
 * default on the smaller side. Both triangles are filled.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { gram32 } from "./gram.ts";
 * const a = new Float32Array([1, 2, 3, 4, 5, 6]); // 2×3
 * deepEqual([...gram32(a, 2, 3)], [14, 32, 32, 77]); // AAᵀ, the smaller side
 * deepEqual([...gram32(a, 2, 3, true)], [17, 22, 27, 22, 29, 36, 27, 36, 45]); // AᵀA
 * ```
 */
export function gram32(a: Float32Array, m: number, n: number, right = n <= m): Float32Array {
  checkDimension("gram32", "m", m);
  checkDimension("gram32", "n", n);
  checkMatrix("gram32", "a", a, m, n);
  const blas = openBlas();
  if (!blas) {
    return right
      ? matmul(a, a, n, m, n, { transA: true })
      : matmul(a, a, m, n, m, { transB: true });
  }
  const size = right ? n : m, depth = right ? m : n;
  const c = new Float32Array(size * size);
  blas.cblas_ssyrk(ROW_MAJOR, UPPER, right ? TRANS : NO_TRANS, size, depth, 1, a, n, 0, c, size);
  mirrorUpper(c, size);
  return c;
}

/**
 * The float64 Gram matrix of the m×n row-major `a` (AᵀA when `right`, else AAᵀ; by default on
 * the smaller side), both triangles filled; undefined where OpenBLAS is not loaded.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { gram64 } from "./gram.ts";
 * const g = gram64(new Float64Array([1, 2, 3, 4, 5, 6]), 2, 3);
 * if (g) deepEqual([...g], [14, 32, 32, 77]);
 * ```
 */
export function gram64(
  a: Float64Array,
  m: number,
  n: number,
  right = n <= m,
): Float64Array | undefined {
  checkDimension("gram64", "m", m);
  checkDimension("gram64", "n", n);
  if (a.length !== m * n) {
    throw new RangeError(`gram64: a has ${a.length} values, expected ${m}×${n} = ${m * n}`);
  }
  const blas = openBlas();
  if (!blas) return undefined;
  const size = right ? n : m, depth = right ? m : n;
  const c = new Float64Array(size * size);
  blas.cblas_dsyrk(ROW_MAJOR, UPPER, right ? TRANS : NO_TRANS, size, depth, 1, a, n, 0, c, size);
  mirrorUpper(c, size);
  return c;
}

/**
 * The Cholesky factor R (upper triangular, row-major, zeros below the diagonal) of the
 * symmetric positive definite n×n float64 matrix `g` (not modified), G = RᵀR, by LAPACK's
 * `dpotrf_`; undefined when `g` is not numerically positive definite or OpenBLAS is not loaded.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { cholesky64 } from "./gram.ts";
 * const r = cholesky64(new Float64Array([4, 2, 2, 5]), 2);
 * if (r) deepEqual([...r], [2, 1, 0, 2]);
 * ```
 */
export function cholesky64(g: Float64Array, n: number): Float64Array | undefined {
  checkDimension("cholesky64", "n", n);
  if (g.length !== n * n) {
    throw new RangeError(`cholesky64: g has ${g.length} values, expected n² = ${n * n}`);
  }
  const blas = openBlas();
  if (!blas) return undefined;
  // Row-major G is its own column-major transpose; LAPACK's column-major lower factor L
  // (G = LLᵀ), read row-major, is R = Lᵀ in the upper triangle.
  const r = g.slice(), info = new Int32Array(1);
  blas.dpotrf_(LOWER, new Int32Array([n]), r, new Int32Array([n]), info, 1n);
  if (info[0] < 0) throw new Error(`dpotrf: argument ${-info[0]} is invalid (a bug here)`);
  if (info[0] > 0) return undefined;
  for (let i = 1; i < n; i++) r.fill(0, i * n, i * n + i);
  return r;
}

const LOWER = new Uint8Array(["L".charCodeAt(0)]);
