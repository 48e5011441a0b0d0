/**
 * The result type of a thin singular value decomposition, shared by the LAPACK path
 * (`svd.ts`) and the JavaScript one (`svd_js.ts`).
 *
 * @module
 */

/** A thin SVD A = U·diag(s)·Vᵀ of an m×n matrix, k = min(m, n). */
export interface SvdResult {
  /** Left singular vectors, m×k row-major (orthonormal columns). */
  u: Float32Array;
  /** Singular values, k of them, descending, non-negative. */
  s: Float32Array;
  /** Right singular vectors transposed, k×n row-major (orthonormal rows). */
  vt: Float32Array;
  /** min(m, n). */
  k: number;
}
