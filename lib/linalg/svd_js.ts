/**
 * The JavaScript SVD, used when OpenBLAS cannot be loaded: float64 throughout, with the
 * symmetric eigendecomposition from ml-matrix (JAMA's Householder tridiagonalisation + QL).
 *
 * Why through the Gram matrix: ml-matrix's own SVD takes ~20 s on a 3072×768 matrix, the
 * Gram route ~4 s. Squaring loses accuracy only relative to float64: eigenvalues of the
 * float64 Gram matrix carry absolute errors near 1e-16·σ₁², so a singular value σ is off by
 * about 1e-16·σ₁²/σ, far below float32's own resolution (6e-8·σ₁) for every σ above 1e-8·σ₁.
 * The other side's vectors come from A·v/σ; where σ is so small that this division is noise,
 * they are re-orthogonalised, and completed to an orthonormal basis where nothing is left.
 *
 * @module
 */
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import type { SvdResult } from "./svd_result.ts";

/** Below this fraction of σ₁ the vectors A·v/σ are re-orthogonalised (Gram–Schmidt, twice). */
const REORTHOGONALISE_BELOW = 1e-3;

/**
 * Thin SVD of an m×n row-major matrix in JavaScript. Use `svd` from `svd.ts`, which checks
 * its input and picks OpenBLAS when it can.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { jsSvd } from "./svd_js.ts";
 * deepStrictEqual(jsSvd(new Float32Array([0, 2, 1, 0]), 2, 2).s, new Float32Array([2, 1]));
 * ```
 */
export function jsSvd(a: Float32Array, m: number, n: number): SvdResult {
  // Work on the short side. With X = Aᵀ for a tall A (X = A for a wide one), X is k×L with
  // k = min(m, n); the eigenvectors W of G = X·Xᵀ are V (tall) or U (wide), and the other
  // side's vectors are the rows of Wᵀ·X divided by σ (A·V = U·S, Aᵀ·U = V·S).
  const tall = m >= n;
  const k = tall ? n : m;
  const long = tall ? m : n;
  const x = shortSideRows(a, m, n, tall);
  const { values, vectors } = symmetricEigen(crossDots(x, x, true));
  const s = Float32Array.from(values, (v) => Math.sqrt(Math.max(v, 0)));
  // (Wᵀ·X)[i][c] = w[i]·(column c of X): dot products again, against the columns of X.
  const other = crossDots(vectors, columnsOf(x, long));
  orthonormalise(other, values);
  const eigenSide = (i: number, j: number) => vectors[i][j]; // vector i, component j
  const otherSide = (i: number, j: number) => other[i][j];
  const u = new Float32Array(m * k);
  const vt = new Float32Array(k * n);
  const uOf = tall ? otherSide : eigenSide;
  const vOf = tall ? eigenSide : otherSide;
  for (let r = 0; r < m; r++) for (let i = 0; i < k; i++) u[r * k + i] = uOf(i, r);
  for (let i = 0; i < k; i++) for (let c = 0; c < n; c++) vt[i * n + c] = vOf(i, c);
  return { u, s, vt, k };
}

/** The columns of a list of rows (each of length `length`), as rows. */
function columnsOf(rows: Float64Array[], length: number): Float64Array[] {
  const cols = Array.from({ length }, () => new Float64Array(rows.length));
  rows.forEach((row, i) => {
    for (let c = 0; c < length; c++) cols[c][i] = row[c];
  });
  return cols;
}

/** The rows of Aᵀ (tall) or of A (wide) as float64 arrays. */
function shortSideRows(a: Float32Array, m: number, n: number, tall: boolean): Float64Array[] {
  if (!tall) {
    return Array.from({ length: m }, (_, r) => Float64Array.from(a.subarray(r * n, r * n + n)));
  }
  const rows = Array.from({ length: n }, () => new Float64Array(m));
  for (let r = 0; r < m; r++) for (let c = 0; c < n; c++) rows[c][r] = a[r * n + c];
  return rows;
}

/**
 * P·Qᵀ as rows: out[i][j] = p[i]·q[j] (equal-length float64 rows), two by two so each load
 * feeds two products. With `symmetric` (q = p) only j ≥ i is computed and mirrored.
 */
function crossDots(p: Float64Array[], q: Float64Array[], symmetric = false): Float64Array[] {
  const out = p.map(() => new Float64Array(q.length));
  const length = p[0].length;
  for (let i = 0; i < p.length; i += 2) {
    const p0 = p[i], p1 = p[Math.min(i + 1, p.length - 1)];
    for (let j = symmetric ? i : 0; j < q.length; j += 2) {
      const q0 = q[j], q1 = q[Math.min(j + 1, q.length - 1)];
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (let c = 0; c < length; c++) {
        const a0 = p0[c], a1 = p1[c], b0 = q0[c], b1 = q1[c];
        s00 += a0 * b0;
        s01 += a0 * b1;
        s10 += a1 * b0;
        s11 += a1 * b1;
      }
      // At an odd end the partner row was clamped to the last one; its sums are dropped.
      const sums = [s00, s01, s10, s11];
      for (let di = 0; di < 2 && i + di < p.length; di++) {
        for (let dj = 0; dj < 2 && j + dj < q.length; dj++) {
          out[i + di][j + dj] = sums[2 * di + dj];
          if (symmetric) out[j + dj][i + di] = sums[2 * di + dj];
        }
      }
    }
  }
  return out;
}

/** Eigenpairs of a symmetric k×k matrix, eigenvalues descending; vectors[i] is the i-th. */
function symmetricEigen(g: Float64Array[]): { values: number[]; vectors: Float64Array[] } {
  const evd = new EigenvalueDecomposition(new Matrix(g), { assumeSymmetric: true });
  const w = evd.eigenvectorMatrix;
  const order = evd.realEigenvalues.map((v, i) => [v, i]).sort((p, q) => q[0] - p[0]);
  return {
    values: order.map(([v]) => v),
    vectors: order.map(([, col]) => Float64Array.from(w.getColumn(col))),
  };
}

/**
 * Turns columns y[i] ≈ σᵢ·xᵢ into orthonormal xᵢ, in place. Columns with σᵢ ≥ 1e-3·σ₁ are
 * normalised (their directions are accurate to ~1e-16·σ₁²/σᵢ² in float64); smaller ones are
 * also Gram–Schmidt'ed twice against all earlier columns, and a column with nothing left
 * (rank deficiency) is replaced by a unit vector orthogonalised the same way.
 */
function orthonormalise(y: Float64Array[], values: number[]): void {
  const top = Math.sqrt(Math.max(values[0], 0));
  let nextUnit = 0;
  for (let i = 0; i < y.length; i++) {
    const sigma = Math.sqrt(Math.max(values[i], 0));
    if (top > 0 && sigma >= REORTHOGONALISE_BELOW * top) {
      scale(y[i], 1 / norm(y[i]));
      continue;
    }
    const before = norm(y[i]);
    if (before > 0) projectOut(y, i);
    // Most of the column lay in earlier columns' span: it was rounding noise, not a direction.
    if (!(before > 0) || norm(y[i]) < 0.5 * before) {
      nextUnit = completeWithUnitVector(y, i, nextUnit);
    }
    scale(y[i], 1 / norm(y[i]));
  }
}

/**
 * Sets y[i] to a unit vector orthogonalised against y[0..i-1]. Some unit vector keeps at least
 * sqrt((L-i)/L) of its length (the squared residuals of all L sum to L-i); take the first that
 * keeps half of that. Returns where the next search starts.
 */
function completeWithUnitVector(y: Float64Array[], i: number, start: number): number {
  const length = y[i].length;
  const enough = 0.5 * Math.sqrt((length - i) / length);
  for (let t = 0; t < length; t++) {
    y[i].fill(0);
    y[i][(start + t) % length] = 1;
    projectOut(y, i);
    if (norm(y[i]) >= enough) return start + t + 1;
  }
  throw new Error(`svd (JavaScript): no direction left to complete column ${i}`); // unreachable
}

/** y[i] minus its projections on y[0..i-1] (orthonormal), done twice for stability. */
function projectOut(y: Float64Array[], i: number): void {
  const yi = y[i];
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < i; j++) {
      const yj = y[j];
      let dot = 0;
      for (let r = 0; r < yi.length; r++) dot += yi[r] * yj[r];
      for (let r = 0; r < yi.length; r++) yi[r] -= dot * yj[r];
    }
  }
}

function norm(x: Float64Array): number {
  let sum = 0;
  for (let r = 0; r < x.length; r++) sum += x[r] * x[r];
  return Math.sqrt(sum);
}

function scale(x: Float64Array, factor: number): void {
  for (let r = 0; r < x.length; r++) x[r] *= factor;
}
