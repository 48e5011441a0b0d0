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

/** One precision's LAPACK routines (`s…`/`d…`), arrays and workspace size. */
interface Precision<T extends Float32Array | Float64Array> {
  /** LAPACK's prefix: `s` float32, `d` float64. */
  prefix: "s" | "d";
  /** A zeroed array of n values. */
  make(n: number): T;
  /** lwork from the workspace query's answer (a float32 answer may round below the need). */
  lwork(query: number): number;
}

const FLOAT32: Precision<Float32Array> = {
  prefix: "s",
  make: (n) => new Float32Array(n),
  lwork: (query) => Math.ceil(query * (1 + 1e-6)) + 16,
};

const FLOAT64: Precision<Float64Array> = {
  prefix: "d",
  make: (n) => new Float64Array(n),
  lwork: (query) => Math.ceil(query) + 16,
};

/** A LAPACK driver run twice: the workspace query (lwork = liwork = −1), then the solve. */
function withWorkspace<T extends Float32Array | Float64Array>(
  p: Precision<T>,
  call: (work: T, lwork: number, iwork: Int32Array, liwork: number) => void,
): void {
  const query = p.make(1), iquery = new Int32Array(1);
  call(query, -1, iquery, -1);
  const lwork = p.lwork(query[0]), liwork = iquery[0] + 16;
  call(p.make(lwork), lwork, new Int32Array(liwork), liwork);
}

/** The `top` largest eigenpairs (`?syevd_` for all n, `?syevr_` for fewer). */
function eigenPairs<T extends Float32Array | Float64Array>(
  p: Precision<T>,
  fn: string,
  a: T,
  n: number,
  top: number,
): EigenResult<T> | undefined {
  check(fn, a, n, top);
  const blas = openBlas();
  if (!blas) return undefined;
  if (top === n) return allPairs(blas, p, a, n);
  const x = a.slice() as T; // LAPACK overwrites its input
  const w = p.make(n), z = p.make(n * top);
  const isuppz = new Int32Array(2 * top), found = int(0), info = int(0);
  const zero = p.make(1);
  const routine = `${p.prefix}syevr` as const;
  withWorkspace(p, (work, lwork, iwork, liwork) => {
    blas[`${routine}_`](
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
    if (info[0] !== 0) throw lapackError(routine, info[0]);
  });
  const values = new Float64Array(w.subarray(0, top)).reverse();
  return { values, vectors: reverseRows(z, top, n), k: top };
}

/** Every eigenpair by `?syevd_`. */
function allPairs<T extends Float32Array | Float64Array>(
  blas: OpenBlasSymbols,
  p: Precision<T>,
  a: T,
  n: number,
): EigenResult<T> {
  const x = a.slice() as T, w = p.make(n), info = int(0);
  const routine = `${p.prefix}syevd` as const;
  withWorkspace(p, (work, lwork, iwork, liwork) => {
    blas[`${routine}_`](
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
    if (info[0] !== 0) throw lapackError(routine, info[0]);
  });
  return { values: new Float64Array(w).reverse(), vectors: reverseRows(x, n, n), k: n };
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
  return eigenPairs(FLOAT32, "symmetricEigen", a, n, top);
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
  return eigenPairs(FLOAT64, "symmetricEigen64", a, n, top);
}
