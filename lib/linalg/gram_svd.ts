/**
 * What the spectral merges keep, computed without a full SVD: the top k singular triplets of a
 * matrix ({@linkcode topSvd}) and the polar factor ({@linkcode polarFactorGram}), both from the
 * symmetric eigenproblem of the Gram matrix on the smaller side (`eigen.ts`). A full SVD
 * reduces the whole m×n matrix to bidiagonal form; here one product forms the r×r Gram
 * (r = min(m, n)) and LAPACK's MRRR solver reduces it to tridiagonal form and computes only the
 * k pairs asked for. Measured with one thread for a 768×768 matrix: SVD 150 ms, Gram + top 96
 * pairs 35 ms.
 *
 * Accuracy. For A = U Σ Vᵀ and G = AᵀA = V Σ² Vᵀ, a backward-stable eigensolver in precision ε
 * gives eigenvalues within c·ε·σ₁² and eigenvectors within c·ε·σ₁²/gap(σ²), so the singular
 * pair j is within (σ₁/2σ_j) times the bound c·ε·σ₁/gap(σ) of a backward-stable SVD in the same
 * precision. {@linkcode topSvd} therefore works in float32 when σ₁/σ_k ≤ 4 (at most twice the
 * float32 SVD's bound), in float64 when σ₁/σ_k ≤ 10⁴ (then σ₁/2σ_k · ε₆₄ is far below ε₃₂),
 * and takes the float32 SVD otherwise (a matrix of numerical rank below k). The polar factor
 * P = A (AᵀA)^−½ from a float32 Gram amplifies errors in G by up to σ₁²/σ_r² in the
 * directions of small singular values, so {@linkcode polarFactorGram} takes that path only for
 * well-conditioned matrices (σ₁/σ_r ≤ 4, within that factor of the SVD's bound) and otherwise
 * the Cholesky factor of the float64 Gram and the float32 SVD of that square factor
 * (`polar.ts`). Gram matrices come from `?syrk` (`gram.ts`).
 *
 * @module
 */
import { checkDimension, checkMatrix } from "./check.ts";
import { symmetricEigen, symmetricEigen64 } from "./eigen.ts";
import { matmul } from "./matmul.ts";
import { gram32, gram64 as gram64OrUndefined, matmul64 } from "./gram.ts";
import { openBlas } from "./openblas.ts";
import { polarFactorLong } from "./polar.ts";
import { polarFactor, svd } from "./svd.ts";
import type { SvdResult } from "./svd_result.ts";

/** How {@linkcode topSvd} computed its result. */
export type TopSvdPath = "gram32" | "gram64" | "svd";

/** σ₁/σ_k up to which the float32 Gram path is used (its bound at most twice the SVD's). */
export const GRAM32_RATIO = 4;

/** σ₁/σ_k up to which the float64 Gram path is used. */
export const GRAM64_RATIO = 1e4;

/** A float64 product through `cblas_dgemm` (OpenBLAS is loaded wherever this is called). */
function gemm64(
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
  transA = false,
  transB = false,
): Float64Array {
  return matmul64(a, b, m, k, n, transA, transB)!;
}

/** The float64 Gram matrix (OpenBLAS is loaded wherever this is called). */
function gram64(a: Float64Array, m: number, n: number, right = n <= m): Float64Array {
  return gram64OrUndefined(a, m, n, right)!;
}

/**
 * The top k singular triplets of the m×n row-major matrix `a` (not modified), from the Gram
 * matrix's eigenpairs (see the module documentation for the precision chosen and its bound):
 * `u` m×k, `s` (k, descending), `vt` k×n, as {@linkcode svd} returns them truncated, plus the
 * path taken.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { topSvd } from "./gram_svd.ts";
 * const { s, k } = topSvd(new Float32Array([3, 0, 0, 0, 0, 2]), 2, 3, 1);
 * deepEqual([k, ...s], [1, 3]);
 * ```
 */
export function topSvd(
  a: Float32Array,
  m: number,
  n: number,
  k: number,
): SvdResult & { path: TopSvdPath } {
  checkDimension("topSvd", "m", m);
  checkDimension("topSvd", "n", n);
  checkDimension("topSvd", "k", k);
  const r = Math.min(m, n);
  if (k > r) throw new RangeError(`topSvd: k = ${k} exceeds min(m, n) = ${r}`);
  checkMatrix("topSvd", "a", a, m, n, { finite: true });
  if (openBlas()) {
    const e32 = symmetricEigen(gram32(a, m, n), r, k)!;
    if (ratio(e32.values) <= GRAM32_RATIO) {
      return { ...fromGram32(a, m, n, e32.values, e32.vectors, k), path: "gram32" };
    }
    const a64 = new Float64Array(a);
    const e64 = symmetricEigen64(gram64(a64, m, n), r, k)!;
    if (ratio(e64.values) <= GRAM64_RATIO) {
      return { ...fromGram64(a64, m, n, e64.values, e64.vectors, k), path: "gram64" };
    }
  }
  const f = svd(a, m, n);
  return { ...truncate(f, m, n, k), path: "svd" };
}

/** σ₁/σ_k from Gram eigenvalues (descending), Infinity when σ_k is 0 or below rounding. */
function ratio(values: Float64Array): number {
  const last = values[values.length - 1];
  return last > 0 ? Math.sqrt(values[0] / last) : Infinity;
}

/**
 * U (m×k), σ, Vᵀ (k×n) from the Gram eigenpairs, products in float32; `right` says the
 * eigenvectors are right singular vectors (of AᵀA).
 */
function fromGram32(
  a: Float32Array,
  m: number,
  n: number,
  values: Float64Array,
  vectors: Float32Array,
  k: number,
  right = n <= m,
): SvdResult {
  const s = Float32Array.from(values, (v) => Math.sqrt(v));
  if (right) {
    // G = AᵀA: rows of `vectors` are right singular vectors; U = A V Σ⁻¹
    const u = matmul(a, vectors, m, n, k, { transB: true });
    scaleColumns(u, m, k, s);
    return { u, s, vt: vectors, k };
  }
  // G = AAᵀ: rows are left singular vectors; Vᵀ = Σ⁻¹ Uᵀ A
  const vt = matmul(vectors, a, k, m, n);
  scaleRows(vt, k, n, s);
  return { u: transpose(vectors, k, m), s, vt, k };
}

/**
 * As fromGram32, with the products in float64 (rounded to float32 at the end); `right` says the
 * eigenvectors are right singular vectors (of AᵀA).
 */
function fromGram64(
  a: Float64Array,
  m: number,
  n: number,
  values: Float64Array,
  vectors: Float64Array,
  k: number,
  right = n <= m,
): SvdResult {
  const s64 = values.map((v) => Math.sqrt(v));
  const s = new Float32Array(s64);
  if (right) {
    const u = gemm64(a, vectors, m, n, k, false, true);
    for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) u[i * k + j] /= s64[j];
    return { u: new Float32Array(u), s, vt: new Float32Array(vectors), k };
  }
  const vt = gemm64(vectors, a, k, m, n);
  for (let j = 0; j < k; j++) for (let c = 0; c < n; c++) vt[j * n + c] /= s64[j];
  return { u: new Float32Array(transpose(vectors, k, m)), s, vt: new Float32Array(vt), k };
}

/** The first k triplets of a thin SVD. */
function truncate(f: SvdResult, m: number, n: number, k: number): SvdResult {
  if (k === f.k) return f;
  const u = new Float32Array(m * k);
  for (let i = 0; i < m; i++) u.set(f.u.subarray(i * f.k, i * f.k + k), i * k);
  return { u, s: f.s.slice(0, k), vt: f.vt.slice(0, k * n), k };
}

function scaleColumns(x: Float32Array, rows: number, cols: number, s: Float32Array): void {
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) x[i * cols + j] /= s[j];
}

function scaleRows(x: Float32Array, rows: number, cols: number, s: Float32Array): void {
  for (let j = 0; j < rows; j++) for (let c = 0; c < cols; c++) x[j * cols + c] /= s[j];
}

function transpose<T extends Float32Array | Float64Array>(x: T, rows: number, cols: number): T {
  const t = new (x.constructor as { new (length: number): T })(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

/** A thin SVD from a Gram eigendecomposition, with the whole basis on one side. */
export interface GramSvd extends SvdResult {
  /**
   * The whole orthonormal basis of `side` (m vectors of length m when left, n of length n when
   * right) as the rows of a square matrix, in order of decreasing Gram eigenvalue (beyond
   * min(m, n), a basis of the null space).
   */
  basis: Float32Array;
  /** Which side `basis` holds. */
  side: "left" | "right";
}

/**
 * The top k singular triplets of the m×n matrix `a`, and the whole singular basis of one side
 * (`side`; by default the smaller, the right one for a square matrix), from the eigenpairs of
 * the Gram matrix on that side, all of them (`ssyevd_`/`dsyevd_`): in float32 when σ₁/σ_k ≤
 * {@linkcode GRAM32_RATIO}, else in float64. Undefined without OpenBLAS, or when σ₁/σ_k >
 * {@linkcode GRAM64_RATIO} (numerical rank below k: the caller takes an SVD).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { gramSvd } from "./gram_svd.ts";
 * const d = gramSvd(new Float32Array([0, 2, 3, 0]), 2, 2, 1, "left");
 * if (d) deepEqual([[...d.s], d.side, [...d.basis].map(Math.abs)], [[3], "left", [0, 1, 1, 0]]);
 * ```
 */
export function gramSvd(
  a: Float32Array,
  m: number,
  n: number,
  k: number,
  side: "left" | "right" = n <= m ? "right" : "left",
): GramSvd | undefined {
  checkDimension("gramSvd", "m", m);
  checkDimension("gramSvd", "n", n);
  checkDimension("gramSvd", "k", k);
  const right = side === "right";
  const size = right ? n : m;
  if (k > Math.min(m, n)) {
    throw new RangeError(`gramSvd: k = ${k} exceeds min(m, n) = ${Math.min(m, n)}`);
  }
  checkMatrix("gramSvd", "a", a, m, n, { finite: true });
  if (!openBlas()) return undefined;
  const e32 = symmetricEigen(gram32(a, m, n, right), size)!;
  if (ratio(e32.values.subarray(0, k)) <= GRAM32_RATIO) {
    const head = e32.vectors.slice(0, k * size);
    const top = fromGram32(a, m, n, e32.values.subarray(0, k), head, k, right);
    return { ...top, basis: e32.vectors, side };
  }
  const a64 = new Float64Array(a);
  const { values, vectors } = symmetricEigen64(gram64(a64, m, n, right), size)!;
  if (ratio(values.subarray(0, k)) > GRAM64_RATIO) return undefined;
  const head = vectors.subarray(0, k * size);
  const top = fromGram64(a64, m, n, values.subarray(0, k), head, k, right);
  return { ...top, basis: new Float32Array(vectors), side };
}

/**
 * The polar factor U·Vᵀ of the m×n matrix `a` (as {@linkcode polarFactor}), for a matrix at
 * least twice as long as wide: from the float32 Gram eigendecomposition, P = A·W Λ^−½ Wᵀ for
 * AᵀA = W Λ Wᵀ (m ≥ n) or W Λ^−½ Wᵀ·A for AAᵀ (m < n), when σ₁/σ_r ≤
 * {@linkcode POLAR32_RATIO}; otherwise from the Cholesky factor of its float64 Gram and the SVD
 * of that square factor (`polar.ts`, {@linkcode polarFactorLong}, as accurate as the SVD of
 * `a`). A square-ish or rank-deficient matrix, and any without OpenBLAS, takes the SVD of `a`.
 * The float32 Gram path's error grows as (σ₁/σ_r)² times float32's where the SVD's grows as
 * σ₁/σ_r times it, so it is only taken where the two are within that ratio; an
 * ill-conditioned matrix (the stacked singular vectors of TSV-M and Iso-CTS often have
 * σ₁/σ_r ≈ 10³) goes on to the float64 Gram's Cholesky factor.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { polarFactorGram } from "./gram_svd.ts";
 * const p = polarFactorGram(new Float32Array([2, 0, 0, -3, 0, 0]), 3, 2);
 * deepEqual([...p].map((v) => Math.round(v * 1e6) / 1e6), [1, 0, 0, -1, 0, 0]);
 * ```
 */
export function polarFactorGram(a: Float32Array, m: number, n: number): Float32Array {
  checkDimension("polarFactorGram", "m", m);
  checkDimension("polarFactorGram", "n", n);
  checkMatrix("polarFactorGram", "a", a, m, n, { finite: true });
  const r = Math.min(m, n);
  if (openBlas() && Math.max(m, n) >= 2 * r) {
    const p = polarFactorGram32(a, m, n) ?? polarFactorLong(a, m, n);
    if (p) return p;
  }
  return polarFactor(a, m, n);
}

/** σ₁/σ_r up to which {@linkcode polarFactorGram} may work in float32. */
export const POLAR32_RATIO = 4;

/**
 * The polar factor from the float32 Gram eigendecomposition, or undefined when σ₁/σ_r exceeds
 * {@linkcode POLAR32_RATIO} (then its errors, up to (σ₁/σ_r)² times float32's, would exceed
 * the float32 SVD's by more than that ratio).
 */
function polarFactorGram32(a: Float32Array, m: number, n: number): Float32Array | undefined {
  const r = Math.min(m, n);
  const { values, vectors } = symmetricEigen(gram32(a, m, n), r)!;
  if (!(values[r - 1] > 0) || values[0] / values[r - 1] > POLAR32_RATIO ** 2) return undefined;
  const scaled = new Float32Array(vectors.length);
  for (let i = 0; i < r; i++) {
    const f = 1 / Math.sqrt(values[i]);
    for (let j = 0; j < r; j++) scaled[i * r + j] = vectors[i * r + j] * f;
  }
  const f = matmul(vectors, scaled, r, r, r, { transA: true });
  return n <= m ? matmul(a, f, m, n, n) : matmul(f, a, m, m, n);
}

/** ‖A‖²_F/‖(I − QQᵀ)A‖²_F up to which {@linkcode projectedTopSvd} subtracts Gram matrices. */
export const CANCELLATION_LIMIT = 4;

/**
 * The top k singular triplets of (I − QQᵀ)·A, A m×n and Q m×c with orthonormal columns (the
 * part of A outside Q's column space), as {@linkcode topSvd} returns them. Without forming the
 * projection: its Gram matrix is AᵀA − CᵀC with C = QᵀA (c×n), and U = (A·V − Q·(C·V))·Σ⁻¹.
 * The subtraction loses ‖A‖²/‖(I − QQᵀ)A‖² times float32's precision, so beyond
 * {@linkcode CANCELLATION_LIMIT} (or without the float32 Gram path's conditions) the
 * projection is formed and {@linkcode topSvd} takes it.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { projectedTopSvd } from "./gram_svd.ts";
 * // A = diag(3, 2); removing the first axis leaves σ = 2 on the second
 * const f = projectedTopSvd(new Float32Array([3, 0, 0, 2]), 2, 2, new Float32Array([1, 0]), 1, 1);
 * deepEqual([...f.s], [2]);
 * ```
 */
export function projectedTopSvd(
  a: Float32Array,
  m: number,
  n: number,
  q: Float32Array,
  c: number,
  k: number,
): SvdResult & { path: TopSvdPath | "projected" } {
  checkDimension("projectedTopSvd", "k", k);
  checkMatrix("projectedTopSvd", "q", q, m, c);
  const coefficients = matmul(q, a, c, m, n, { transA: true }); // C = QᵀA
  if (openBlas() && k <= Math.min(m, n)) {
    const gram = gram32(a, m, n, true), common = gram32(coefficients, c, n, true);
    const total = trace(gram, n), inside = trace(common, n); // ‖A‖², ‖QᵀA‖²
    if (total > 0 && total <= CANCELLATION_LIMIT * (total - inside)) {
      for (let i = 0; i < gram.length; i++) gram[i] -= common[i];
      const e = symmetricEigen(gram, n, k)!;
      if (ratio(e.values) <= GRAM32_RATIO) {
        const s = Float32Array.from(e.values, (v) => Math.sqrt(v));
        const u = matmul(a, e.vectors, m, n, k, { transB: true }); // A·V
        const cv = matmul(coefficients, e.vectors, c, n, k, { transB: true }); // C·V
        const qcv = matmul(q, cv, m, c, k);
        for (let i = 0; i < u.length; i++) u[i] -= qcv[i];
        scaleColumns(u, m, k, s);
        return { u, s, vt: e.vectors, k, path: "projected" };
      }
    }
  }
  const projected = matmul(q, coefficients, m, c, n);
  for (let i = 0; i < projected.length; i++) projected[i] = a[i] - projected[i];
  return topSvd(projected, m, n, k);
}

function trace(g: Float32Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += g[i * n + i];
  return s;
}
