/**
 * Solving square linear systems A X = B on the host in float64: LU factorisation with partial
 * (row) pivoting, then forward and back substitution for every column of B. This is what
 * RegMean's closed form (Σ_t G_t)^{-1} Σ_t G_t W_t needs; it is the same solution as
 * `torch.inverse(A) @ B`, computed without forming the inverse.
 *
 * Cost: n³/3 + n²k multiply-adds for an n × n system with k right-hand sides.
 *
 * @module
 */
import { checkDimension } from "./check.ts";

/**
 * X with A X = B, for A n × n and B n × k (both row-major); throws when A is singular (a zero
 * pivot after row exchanges) or holds NaN/±Infinity.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { solveLinear } from "./solve.ts";
 * // [[2, 1], [1, 3]] X = [[3], [5]] → X = [[0.8], [1.4]]
 * const x = solveLinear(new Float64Array([2, 1, 1, 3]), 2, new Float64Array([3, 5]), 1);
 * ok(Math.abs(x[0] - 0.8) < 1e-12 && Math.abs(x[1] - 1.4) < 1e-12);
 * ```
 */
export function solveLinear(
  a: Float64Array,
  n: number,
  b: Float64Array,
  k: number,
  label = "A",
): Float64Array {
  checkDimension("solveLinear", "n", n);
  checkDimension("solveLinear", "k", k);
  if (a.length !== n * n) {
    throw new Error(`solveLinear: ${label} has ${a.length} values, not ${n}²`);
  }
  if (b.length !== n * k) {
    throw new Error(`solveLinear: the right-hand side has ${b.length} values, not ${n} × ${k}`);
  }
  const lu = Float64Array.from(a);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    // Partial pivoting: the largest |value| of column c at or below the diagonal.
    let p = c, best = Math.abs(lu[c * n + c]);
    for (let r = c + 1; r < n; r++) {
      const v = Math.abs(lu[r * n + c]);
      if (v > best) best = v, p = r;
    }
    if (!(best > 0) || !Number.isFinite(best)) {
      throw new Error(
        `solveLinear: ${label} (${n} × ${n}) is singular or not finite at column ${c} ` +
          `(largest pivot ${best})`,
      );
    }
    if (p !== c) {
      swapRows(lu, n, p, c);
      swapRows(x, k, p, c);
    }
    const pivot = lu[c * n + c];
    for (let r = c + 1; r < n; r++) {
      const f = lu[r * n + c] / pivot;
      if (f === 0) continue;
      lu[r * n + c] = f;
      for (let j = c + 1; j < n; j++) lu[r * n + j] -= f * lu[c * n + j];
      for (let j = 0; j < k; j++) x[r * k + j] -= f * x[c * k + j];
    }
  }
  // Back substitution, row by row from the bottom.
  for (let r = n - 1; r >= 0; r--) {
    for (let c = r + 1; c < n; c++) {
      const u = lu[r * n + c];
      if (u === 0) continue;
      for (let j = 0; j < k; j++) x[r * k + j] -= u * x[c * k + j];
    }
    const d = lu[r * n + r];
    for (let j = 0; j < k; j++) x[r * k + j] /= d;
  }
  return x;
}

function swapRows(m: Float64Array, width: number, i: number, j: number): void {
  const a = m.subarray(i * width, (i + 1) * width);
  const tmp = Float64Array.from(a);
  a.set(m.subarray(j * width, (j + 1) * width));
  m.set(tmp, j * width);
}
