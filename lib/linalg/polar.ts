/**
 * Polar factors (the nearest matrix with orthonormal rows or columns, P = U·Vᵀ for A = U Σ Vᵀ)
 * of the two shapes the spectral merges meet, each from a problem smaller than the SVD of the
 * whole matrix and as accurate as it:
 *
 * - {@linkcode polarFactorLong}, a matrix at least twice as long as wide (m ≥ 2n, or its
 *   transpose): the float64 Gram G = AᵀA = RᵀR (Cholesky), the float32 SVD of the square
 *   R = X Σ Yᵀ, then P = A·Y Σ⁻¹ Yᵀ (A = QR with Q = A R⁻¹, so polar(A) = Q·X Yᵀ = A Y Σ⁻¹ Yᵀ).
 *   The Gram is formed and factored in float64, where squaring the condition number costs
 *   nothing at float32's accuracy (κ² ε₆₄ ≤ ε₃₂ up to κ ≈ 10⁴·⁵), so R carries A's singular
 *   vectors and values as well as A does, and the SVD of R has the float32 SVD's error bound
 *   on an n×n matrix instead of an m×n one. Measured with one thread for 3072×768: 0.28 s
 *   against 0.46 s for the SVD of A.
 * - {@linkcode polarFactorBordered}, a stack [A; B] of s rows on top of c orthonormal rows (Iso-CTS's
 *   task-specific right singular vectors above the common ones): its Gram matrix
 *   G = [[AAᵀ, ABᵀ], [BAᵀ, I]] differs from the identity only on the subspace spanned by the
 *   first s coordinates and the range of (ABᵀ)ᵀ, at most 2s dimensions. With an orthonormal
 *   basis Q of it, G = I + Q(H − I)Qᵀ for H = QᵀGQ, so G^−½ = I + Q(H^−½ − I)Qᵀ and
 *   P = G^−½·[A; B] from one float64 eigenproblem of size ≤ 2s instead of the SVD of the whole
 *   (s + c)×n stack (Iso-CTS on 768×768: s = 152, c = 616). It needs B's rows orthonormal to
 *   float64 rounding: computed singular vectors are orthonormal to float32 rounding (10⁻⁷ to
 *   10⁻⁶), and in a stack with σ_min ≈ 10⁻³ that deviation moves the polar factor by 10⁻³, so B
 *   is first made orthonormal in float64 (one Löwdin step, a change of B of the order of its
 *   own rounding). The SVD of the stack takes B's deviation as part of the input instead; the
 *   two differ by that much on such stacks, and the float64 reference agrees with this one
 *   (tests/merge/spectral_fast_test.ts).
 *
 * @module
 */
import { checkDimension, checkMatrix } from "./check.ts";
import { symmetricEigen64 } from "./eigen.ts";
import { cholesky64, gram64, matmul64 } from "./gram.ts";
import { matmul } from "./matmul.ts";
import { svd } from "./svd.ts";

/**
 * The polar factor of the m×n row-major `a` when one side is at least twice the other, from the
 * Cholesky factor of its float64 Gram matrix and the SVD of that square factor (see the module
 * documentation); undefined without OpenBLAS, for a matrix not that long, or when `a` is
 * numerically rank deficient (the Gram is not positive definite): then take
 * {@linkcode polarFactor} from `svd.ts`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { polarFactorLong } from "./polar.ts";
 * const p = polarFactorLong(new Float32Array([2, 0, 0, -3, 0, 0]), 3, 2);
 * if (p) deepEqual([...p].map((v) => Math.round(v * 1e6) / 1e6), [1, 0, 0, -1, 0, 0]);
 * ```
 */
export function polarFactorLong(a: Float32Array, m: number, n: number): Float32Array | undefined {
  checkDimension("polarFactorLong", "m", m);
  checkDimension("polarFactorLong", "n", n);
  checkMatrix("polarFactorLong", "a", a, m, n, { finite: true });
  const tall = m >= n, r = Math.min(m, n);
  if (Math.max(m, n) < 2 * r) return undefined;
  const g = gram64(new Float64Array(a), m, n, tall);
  const chol = g && cholesky64(g, r);
  if (!chol) return undefined;
  const { s, vt } = svd(new Float32Array(chol), r, r); // R = X Σ Yᵀ, vt = Yᵀ
  if (!(s[r - 1] > 0)) return undefined;
  const scaled = vt.slice(); // Σ⁻¹ Yᵀ
  for (let i = 0; i < r; i++) {
    const f = 1 / s[i];
    for (let j = 0; j < r; j++) scaled[i * r + j] *= f;
  }
  const f = matmul(vt, scaled, r, r, r, { transA: true }); // Y Σ⁻¹ Yᵀ (symmetric)
  return tall ? matmul(a, f, m, r, n) : matmul(f, a, m, m, n);
}

/**
 * B's rows made orthonormal to float64 rounding, in place: B − ½(BBᵀ − I)B, the first-order
 * Löwdin step (BBᵀ)^−½B, whose error is O(‖BBᵀ − I‖²) (below 10⁻¹¹ for rows orthonormal to
 * float32 rounding, as computed singular vectors are).
 */
function orthonormalRows(b: Float64Array, c: number, n: number): Float64Array {
  const d = gram64(b, c, n, false)!;
  for (let i = 0; i < c; i++) d[i * c + i] -= 1;
  const db = matmul64(d, b, c, c, n)!;
  for (let i = 0; i < b.length; i++) b[i] -= 0.5 * db[i];
  return b;
}

/** Eigenvalues of CCᵀ below this fraction of the largest are left out of range(Cᵀ)'s basis. */
const RANGE_TOLERANCE = 1e-16;

/**
 * The polar factor (orthonormal rows) of the (s + c)×n row-major stack [A; B], A s×n on top of
 * B c×n whose rows are orthonormal, from a float64 eigenproblem of size at most 2s (see the
 * module documentation); undefined without OpenBLAS or when the stack is numerically rank
 * deficient (then take the SVD of the stack).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { polarFactorBordered } from "./polar.ts";
 * // A = [2, 0, 0] above B = [0, 1, 0]: already orthogonal rows, A's is normalised
 * const p = polarFactorBordered(new Float32Array([2, 0, 0]), 1, new Float32Array([0, 1, 0]), 1, 3);
 * if (p) deepEqual([...p].map((v) => Math.round(v * 1e6) / 1e6), [1, 0, 0, 0, 1, 0]);
 * ```
 */
export function polarFactorBordered(
  a: Float32Array,
  s: number,
  b: Float32Array,
  c: number,
  n: number,
): Float32Array | undefined {
  checkDimension("polarFactorBordered", "s", s);
  checkDimension("polarFactorBordered", "c", c);
  checkDimension("polarFactorBordered", "n", n);
  if (s + c > n) {
    throw new RangeError(`polarFactorBordered: ${s} + ${c} rows exceed the ${n} columns`);
  }
  checkMatrix("polarFactorBordered", "a", a, s, n, { finite: true });
  checkMatrix("polarFactorBordered", "b", b, c, n, { finite: true });
  const a64 = new Float64Array(a), b64 = orthonormalRows(new Float64Array(b), c, n);
  const coupling = matmul64(a64, b64, s, n, c, false, true); // C = ABᵀ, s×c
  if (!coupling) return undefined;
  const top = gram64(a64, s, n, false)!; // AAᵀ, s×s
  // an orthonormal basis Y of range(Cᵀ): CCᵀ = X Λ Xᵀ, Y = Cᵀ X Λ^−½, and C·Y = X Λ^½
  const e = symmetricEigen64(gram64(coupling, s, c, false)!, s)!;
  let kept = 0;
  while (kept < s && e.values[kept] > RANGE_TOLERANCE * e.values[0]) kept++;
  const size = s + kept;
  const x = e.vectors.subarray(0, kept * s); // kept×s, one eigenvector per row
  const y = kept > 0 ? matmul64(x, coupling, kept, s, c)! : new Float64Array(0); // (Cᵀ X)ᵀ
  for (let i = 0; i < kept; i++) {
    const f = 1 / Math.sqrt(e.values[i]);
    for (let j = 0; j < c; j++) y[i * c + j] *= f;
  }
  // H = QᵀGQ = [[AAᵀ, CY], [(CY)ᵀ, I]] over Q = [first s coordinates | Y]
  const h = new Float64Array(size * size);
  for (let i = 0; i < s; i++) h.set(top.subarray(i * s, i * s + s), i * size);
  for (let i = 0; i < kept; i++) {
    const root = Math.sqrt(e.values[i]);
    for (let j = 0; j < s; j++) {
      const v = x[i * s + j] * root; // (CY)_{j,i} = X_{j,i} λ_i^½
      h[j * size + s + i] = v;
      h[(s + i) * size + j] = v;
    }
    h[(s + i) * size + s + i] = 1;
  }
  const eh = symmetricEigen64(h, size)!;
  if (!(eh.values[size - 1] > 0)) return undefined;
  // F = Z (Θ^−½ − I) Zᵀ
  const zs = eh.vectors.slice();
  for (let i = 0; i < size; i++) {
    const f = 1 / Math.sqrt(eh.values[i]) - 1;
    for (let j = 0; j < size; j++) zs[i * size + j] *= f;
  }
  const f = matmul64(eh.vectors, zs, size, size, size, true, false)!;
  // QᵀS = [A; Yᵀ B] (size×n), then W = F·QᵀS, P = S + Q·W
  const projected = new Float64Array(size * n);
  projected.set(a64);
  if (kept > 0) projected.set(matmul64(y, b64, kept, c, n)!, s * n);
  const w = matmul64(f, projected, size, size, n)!;
  const out = new Float32Array((s + c) * n);
  for (let i = 0; i < s * n; i++) out[i] = a64[i] + w[i];
  const back = kept > 0
    ? matmul64(y, w.subarray(s * n), c, kept, n, true, false)!
    : new Float64Array(c * n);
  for (let i = 0; i < c * n; i++) out[s * n + i] = b64[i] + back[i];
  return out;
}
