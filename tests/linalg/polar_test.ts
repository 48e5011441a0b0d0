/**
 * Gram matrices by `?syrk`, the float64 Cholesky factor, and the two polar factors of
 * lib/linalg/polar.ts against a float64 reference P = A·W Λ^−½ Wᵀ (the float64 eigenpairs of
 * the float64 Gram, accurate to κ²·ε₆₄ ≈ 10⁻¹⁰ here) and against the float32 SVD's polar factor.
 *
 * The tolerance: each fast polar factor must be as close to the float64 reference as the
 * float32 SVD's is, within a factor of 2 (plus 10⁻⁶): the inputs are ill-conditioned (σ₁/σ_min
 * ≈ 10³, as the stacked singular vectors of TSV-M and Iso-CTS are), where float32 determines
 * the polar factor only to about κ·ε₃₂.
 */
import { ok as assert } from "node:assert/strict";
import { cholesky64, gram32, gram64, matmul64 } from "../../lib/linalg/gram.ts";
import { symmetricEigen64 } from "../../lib/linalg/eigen.ts";
import { matmul } from "../../lib/linalg/matmul.ts";
import { openBlas } from "../../lib/linalg/openblas.ts";
import { polarFactorBordered, polarFactorLong } from "../../lib/linalg/polar.ts";
import { polarFactor, svd } from "../../lib/linalg/svd.ts";
import { gaussianMatrix, maxAbsDiff } from "./random.ts";

const blas = openBlas() !== undefined;

/** The polar factor in float64 from the float64 Gram's eigenpairs (rows ≥ cols). */
function referencePolar(a: Float32Array, m: number, n: number): Float64Array {
  const a64 = new Float64Array(a);
  const { values, vectors } = symmetricEigen64(gram64(a64, m, n, true)!, n)!;
  const scaled = vectors.slice();
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) scaled[i * n + j] /= Math.sqrt(values[i]);
  }
  return matmul64(a64, matmul64(vectors, scaled, n, n, n, true)!, m, n, n)!;
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

/** rows×cols with orthonormal columns times singular values from 1 down to `smallest`. */
function conditioned(rows: number, cols: number, smallest: number, seed: number): Float32Array {
  const u = svd(gaussianMatrix(rows, cols, seed), rows, cols).u; // orthonormal columns
  const v = svd(gaussianMatrix(cols, cols, seed + 1), cols, cols).u;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) u[i * cols + j] *= smallest ** (j / (cols - 1));
  }
  return matmul(u, v, rows, cols, cols, { transB: true });
}

Deno.test({
  name: "gram32, gram64 and cholesky64 equal the general products",
  ignore: !blas,
  fn: () => {
    const a = gaussianMatrix(70, 30, 1);
    const want = matmul(a, a, 30, 70, 30, { transA: true });
    assert(maxAbsDiff(gram32(a, 70, 30), want) < 1e-4);
    assert(maxAbsDiff(gram32(a, 70, 30, false), matmul(a, a, 70, 30, 70, { transB: true })) < 1e-4);
    const g = gram64(new Float64Array(a), 70, 30)!;
    assert(maxAbsDiff(g, want) < 1e-4);
    const r = cholesky64(g, 30)!;
    assert(maxAbsDiff(matmul64(r, r, 30, 30, 30, true)!, g) < 1e-10);
    for (let i = 1; i < 30; i++) for (let j = 0; j < i; j++) assert(r[i * 30 + j] === 0);
    assert(cholesky64(new Float64Array([1, 2, 2, 1]), 2) === undefined); // indefinite
  },
});

Deno.test({
  name: "polarFactorLong is as accurate as the SVD's polar factor, tall and wide",
  ignore: !blas,
  fn: () => {
    const m = 600, n = 150;
    const a = conditioned(m, n, 1e-3, 5);
    const want = referencePolar(a, m, n);
    const exact = maxAbsDiff(polarFactor(a, m, n), want);
    const long = polarFactorLong(a, m, n)!;
    assert(maxAbsDiff(long, want) <= 2 * exact + 1e-6, `${maxAbsDiff(long, want)} vs ${exact}`);
    const wide = polarFactorLong(transpose(a, m, n), n, m)!;
    assert(maxAbsDiff(transpose(wide, n, m), want) <= 2 * exact + 1e-6);
    assert(polarFactorLong(gaussianMatrix(20, 15, 6), 20, 15) === undefined); // not 2× long
  },
});

Deno.test({
  name: "polarFactorBordered equals the float64 polar factor of [A; B], B orthonormal",
  ignore: !blas,
  fn: () => {
    const s = 40, c = 110, n = 150; // square stack, as Iso-CTS's V_all
    // B: c orthonormal rows (float32 rounding); A: rows mostly inside B's span, so that the
    // stack is ill-conditioned (σ_min ≈ 10⁻³ of σ₁)
    const b = transpose(svd(gaussianMatrix(n, c, 7), n, c).u, n, c);
    const inside = matmul(gaussianMatrix(s, c, 8), b, s, c, n);
    const noise = gaussianMatrix(s, n, 9);
    const a = inside.map((v, i) => 0.1 * v + 2e-3 * noise[i]);
    const stack = new Float32Array((s + c) * n);
    stack.set(a);
    stack.set(b, s * n);
    const want = transpose(
      new Float32Array(referencePolar(transpose(stack, s + c, n), n, s + c)),
      n,
      s + c,
    );
    const singular = svd(stack, s + c, n).s;
    assert(singular[0] / singular[s + c - 1] > 100, "the stack should be ill-conditioned");
    const exact = maxAbsDiff(polarFactor(stack, s + c, n), want);
    const got = polarFactorBordered(a, s, b, c, n)!;
    assert(maxAbsDiff(got, want) <= 2 * exact + 1e-6, `${maxAbsDiff(got, want)} vs ${exact}`);
    // orthonormal rows
    const gram = matmul(got, got, s + c, n, s + c, { transB: true });
    for (let i = 0; i < s + c; i++) gram[i * (s + c) + i] -= 1;
    assert(maxAbsDiff(gram, new Float32Array(gram.length)) < 1e-4);
  },
});
