/**
 * Eigenvalues and eigenvectors of real symmetric matrices through LAPACK (OpenBLAS): the top k
 * pairs by `ssyevr_`/`dsyevr_` (MRRR, only the pairs asked for after the tridiagonal
 * reduction), or every pair by `dsyevd_` (divide and conquer). Available only where OpenBLAS is
 * loaded (see `openblas.ts`); the functions return undefined elsewhere and callers take an SVD.
 *
 * A symmetric row-major matrix is its own column-major transpose, so LAPACK reads it as it is;
 * its column-major eigenvector matrix Z (n×k) is, read row-major, k×n with one eigenvector per
 * row, which is the layout returned here (largest eigenvalue first).
 *
 * @module
 */
import { checkDimension } from "./check.ts";
import { openBlas, type OpenBlasSymbols } from "./openblas.ts";

/** Eigenpairs of a symmetric matrix, largest eigenvalue first. */
export interface EigenResult<T extends Float32Array | Float64Array> {
  /** Eigenvalues, descending (k of them). */
  values: Float64Array;
  /** Eigenvectors as the rows of a k×n row-major matrix (row i belongs to values[i]). */
  vectors: T;
  /** How many pairs. */
  k: number;
}

const ch = (c: string) => new Uint8Array([c.charCodeAt(0)]);
const int = (v: number) => new Int32Array([v]);

function check(fn: string, a: Float32Array | Float64Array, n: number, top: number): void {
  checkDimension(fn, "n", n);
  checkDimension(fn, "top", top);
  if (top > n) throw new RangeError(`${fn}: top ${top} exceeds n = ${n}`);
  if (a.length !== n * n) {
    throw new RangeError(`${fn}: a has ${a.length} values, expected n² = ${n * n}`);
  }
}

/** LAPACK reported failure (info > 0: no convergence). */
function lapackError(fn: string, info: number): Error {
  return info < 0
    ? new Error(`${fn}: argument ${-info} is invalid (a bug here)`)
    : new Error(`${fn}: the eigensolver did not converge (info ${info})`);
}

/** Reverses the order of k rows of length n (ascending LAPACK order → descending). */
function reverseRows<T extends Float32Array | Float64Array>(z: T, k: number, n: number): T {
  const out = new (z.constructor as { new (length: number): T })(k * n);
  for (let i = 0; i < k; i++) out.set(z.subarray((k - 1 - i) * n, (k - i) * n), i * n);
  return out;
}

/**
 * The `top` largest eigenpairs of the symmetric n×n float32 matrix `a` (row-major; not
 * modified), by `ssyevr_` (`ssyevd_` for all of them); undefined where OpenBLAS is not loaded.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { symmetricEigen } from "./eigen.ts";
 * const e = symmetricEigen(new Float32Array([2, 0, 0, 5]), 2, 1);
 * if (e) deepEqual([[...e.values], [...e.vectors].map(Math.abs)], [[5], [0, 1]]);
 * ```
 */
export function symmetricEigen(
  a: Float32Array,
  n: number,
  top = n,
): EigenResult<Float32Array> | undefined {
  check("symmetricEigen", a, n, top);
  const blas = openBlas();
  if (!blas) return undefined;
  if (top === n) return allPairs32(blas, a, n);
  const x = a.slice(); // LAPACK overwrites its input
  const w = new Float32Array(n), z = new Float32Array(n * top);
  const isuppz = new Int32Array(2 * top), found = int(0), info = int(0);
  const zero = new Float32Array(1);
  const call = (work: Float32Array, lwork: number, iwork: Int32Array, liwork: number) => {
    blas.ssyevr_(
      ch("V"),
      ch(top === n ? "A" : "I"),
      ch("L"),
      int(n),
      x,
      int(n),
      zero,
      zero,
      int(n - top + 1),
      int(n),
      zero,
      found,
      w,
      z,
      int(n),
      isuppz,
      work,
      int(lwork),
      iwork,
      int(liwork),
      info,
      1n,
      1n,
      1n,
    );
    if (info[0] !== 0) throw lapackError("ssyevr", info[0]);
  };
  const query = new Float32Array(1), iquery = new Int32Array(1);
  call(query, -1, iquery, -1);
  const lwork = Math.ceil(query[0] * (1 + 1e-6)) + 16, liwork = iquery[0] + 16;
  call(new Float32Array(lwork), lwork, new Int32Array(liwork), liwork);
  const values = new Float64Array(w.subarray(0, top)).reverse();
  return { values, vectors: reverseRows(z, top, n), k: top };
}

/** Every eigenpair of a float32 symmetric matrix by `ssyevd_`. */
function allPairs32(blas: OpenBlasSymbols, a: Float32Array, n: number): EigenResult<Float32Array> {
  const x = a.slice(), w = new Float32Array(n), info = int(0);
  const call = (work: Float32Array, lwork: number, iwork: Int32Array, liwork: number) => {
    blas.ssyevd_(
      ch("V"),
      ch("L"),
      int(n),
      x,
      int(n),
      w,
      work,
      int(lwork),
      iwork,
      int(liwork),
      info,
      1n,
      1n,
    );
    if (info[0] !== 0) throw lapackError("ssyevd", info[0]);
  };
  const query = new Float32Array(1), iquery = new Int32Array(1);
  call(query, -1, iquery, -1);
  const lwork = Math.ceil(query[0] * (1 + 1e-6)) + 16, liwork = iquery[0] + 16;
  call(new Float32Array(lwork), lwork, new Int32Array(liwork), liwork);
  return { values: new Float64Array(w).reverse(), vectors: reverseRows(x, n, n), k: n };
}

/**
 * The `top` largest eigenpairs (all of them by default) of the symmetric n×n float64 matrix `a`
 * (row-major; not modified): `dsyevd_` for all, `dsyevr_` for some; undefined where OpenBLAS
 * is not loaded.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { symmetricEigen64 } from "./eigen.ts";
 * const e = symmetricEigen64(new Float64Array([2, 1, 1, 2]), 2);
 * if (e) deepEqual([...e.values].map((v) => Math.round(v * 1e12) / 1e12), [3, 1]);
 * ```
 */
export function symmetricEigen64(
  a: Float64Array,
  n: number,
  top = n,
): EigenResult<Float64Array> | undefined {
  check("symmetricEigen64", a, n, top);
  const blas = openBlas();
  if (!blas) return undefined;
  const x = a.slice();
  const w = new Float64Array(n), info = int(0);
  const query = new Float64Array(1), iquery = new Int32Array(1);
  if (top === n) {
    const call = (work: Float64Array, lwork: number, iwork: Int32Array, liwork: number) => {
      blas.dsyevd_(
        ch("V"),
        ch("L"),
        int(n),
        x,
        int(n),
        w,
        work,
        int(lwork),
        iwork,
        int(liwork),
        info,
        1n,
        1n,
      );
      if (info[0] !== 0) throw lapackError("dsyevd", info[0]);
    };
    call(query, -1, iquery, -1);
    const lwork = Math.ceil(query[0]) + 16, liwork = iquery[0] + 16;
    call(new Float64Array(lwork), lwork, new Int32Array(liwork), liwork);
    return { values: w.slice().reverse(), vectors: reverseRows(x, n, n), k: n };
  }
  const z = new Float64Array(n * top), isuppz = new Int32Array(2 * top), found = int(0);
  const zero = new Float64Array(1);
  const call = (work: Float64Array, lwork: number, iwork: Int32Array, liwork: number) => {
    blas.dsyevr_(
      ch("V"),
      ch("I"),
      ch("L"),
      int(n),
      x,
      int(n),
      zero,
      zero,
      int(n - top + 1),
      int(n),
      zero,
      found,
      w,
      z,
      int(n),
      isuppz,
      work,
      int(lwork),
      iwork,
      int(liwork),
      info,
      1n,
      1n,
      1n,
    );
    if (info[0] !== 0) throw lapackError("dsyevr", info[0]);
  };
  call(query, -1, iquery, -1);
  const lwork = Math.ceil(query[0]) + 16, liwork = iquery[0] + 16;
  call(new Float64Array(lwork), lwork, new Int32Array(liwork), liwork);
  return { values: w.slice(0, top).reverse(), vectors: reverseRows(z, top, n), k: top };
}
