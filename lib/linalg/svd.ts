/**
 * Thin singular value decomposition and polar factor of row-major float32 matrices: LAPACK
 * (OpenBLAS's `sgesdd_`, with `sgesvd_` as a retry) through FFI when it is loaded, else the
 * JavaScript path in `svd_js.ts`.
 *
 * @module
 */
import { checkDimension, checkMatrix } from "./check.ts";
import { matmul } from "./matmul.ts";
import { openBlas, type OpenBlasSymbols } from "./openblas.ts";
import { jsSvd } from "./svd_js.ts";
import type { SvdResult } from "./svd_result.ts";

export type { SvdResult };

/** LAPACK driver: divide and conquer (fast) or the QR-iteration one (the robust retry). */
export type SvdDriver = "gesdd" | "gesvd";

/**
 * Thin SVD of the m×n row-major matrix `a` (not modified). Singular vectors are unique only up
 * to sign (and within repeated singular values), so compare them sign-invariantly.
 * Throws on non-finite input or a size mismatch.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { svd } from "./svd.ts";
 * const { u, s, vt, k } = svd(new Float32Array([3, 0, 0, 0, -2, 0]), 2, 3);
 * equal(k, 2);
 * deepStrictEqual(s, new Float32Array([3, 2]));
 * equal(u.length, 4);
 * equal(vt.length, 6);
 * ```
 */
export function svd(a: Float32Array, m: number, n: number): SvdResult {
  checkDimension("svd", "m", m);
  checkDimension("svd", "n", n);
  checkMatrix("svd", "a", a, m, n, { finite: true });
  const blas = openBlas();
  if (!blas) return jsSvd(a, m, n);
  try {
    return lapackSvd(blas, a, m, n, "gesdd");
  } catch (err) {
    if (!(err instanceof ConvergenceError)) throw err;
    return lapackSvd(blas, a, m, n, "gesvd"); // gesdd rarely fails where gesvd succeeds
  }
}

/**
 * The polar factor U·Vᵀ of the m×n matrix `a`: the nearest matrix with orthonormal columns
 * (m ≥ n) or rows (m < n) in the Frobenius norm. Unique when `a` has full rank.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { polarFactor } from "./svd.ts";
 * deepStrictEqual(polarFactor(new Float32Array([2, 0, 0, -3]), 2, 2), new Float32Array([1, 0, 0, -1]));
 * ```
 */
export function polarFactor(a: Float32Array, m: number, n: number): Float32Array {
  const { u, vt, k } = svd(a, m, n);
  return matmul(u, vt, m, k, n);
}

/** LAPACK reported that the SVD did not converge. */
class ConvergenceError extends Error {}

/**
 * SVD through one LAPACK driver. Exported for tests of both drivers; use {@linkcode svd}.
 *
 * LAPACK is column-major, so it sees our row-major m×n A as the n×m matrix X = Aᵀ. From
 * X = Ux·S·VTx we get A = VTxᵀ·S·Uxᵀ, and the column-major buffers of VTx (k×m) and Ux (n×k),
 * read row-major, are exactly A's U (m×k) and Vᵀ (k×n): no transposes are needed. That holds
 * for a wide or square A (X is tall). A tall A (m > n) is transposed first so that LAPACK
 * again gets a tall matrix: its drivers are slower on wide ones (measured with one thread,
 * sgesdd: 3072×768 in 0.38 s, its 768×3072 transpose in 0.55 s), and the three transposes
 * cost O(m·n), against the SVD's O(m·n²).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { openBlas } from "./openblas.ts";
 * import { lapackSvd } from "./svd.ts";
 * const blas = openBlas();
 * if (blas) {
 *   const { s } = lapackSvd(blas, new Float32Array([0, 2, 1, 0]), 2, 2, "gesvd");
 *   deepStrictEqual(s, new Float32Array([2, 1]));
 * }
 * ```
 */
export function lapackSvd(
  blas: OpenBlasSymbols,
  a: Float32Array,
  m: number,
  n: number,
  driver: SvdDriver,
): SvdResult {
  const k = Math.min(m, n);
  // LAPACK gets A itself (column-major, tall) when m > n, else Aᵀ (tall or square)
  const tall = m > n;
  const [rows, cols] = tall ? [m, n] : [n, m];
  const x = tall ? transposed(blas, a, m, n) : a.slice(); // LAPACK overwrites its input
  const s = new Float32Array(k);
  // LAPACK's U (rows×k) and VT (k×cols), column-major: Vᵀ and U of A when A is not tall
  const ux = new Float32Array(rows * k);
  const vtx = new Float32Array(k * cols);
  const dims = { rows: int(rows), cols: int(cols), lda: int(rows), ldux: int(rows), ldvtx: int(k) };
  const info = int(0);
  const call = (work: Float32Array, lwork: number, iwork: Int32Array) => {
    if (driver === "gesdd") {
      blas.sgesdd_(
        JOB_S,
        dims.rows,
        dims.cols,
        x,
        dims.lda,
        s,
        ux,
        dims.ldux,
        vtx,
        dims.ldvtx,
        work,
        int(lwork),
        iwork,
        info,
        1n,
      );
    } else {
      blas.sgesvd_(
        JOB_S,
        JOB_S,
        dims.rows,
        dims.cols,
        x,
        dims.lda,
        s,
        ux,
        dims.ldux,
        vtx,
        dims.ldvtx,
        work,
        int(lwork),
        info,
        1n,
        1n,
      );
    }
    if (info[0] < 0) throw new Error(`${driver}: argument ${-info[0]} is invalid (a bug here)`);
    if (info[0] > 0) throw new ConvergenceError(`${driver} did not converge (info ${info[0]})`);
  };
  const iwork = new Int32Array(driver === "gesdd" ? 8 * k : 1);
  const query = new Float32Array(1);
  call(query, -1, iwork); // workspace query: the optimal size comes back in query[0]
  // The size comes back as a float32; round up generously so rounding can never shorten it.
  const lwork = Math.ceil(query[0] * (1 + 1e-6)) + 16;
  call(new Float32Array(lwork), lwork, iwork);
  if (!tall) return { u: vtx, s, vt: ux, k };
  // Column-major U (m×k) and VT (k×n) are row-major k×m and n×k: transpose them back.
  return { u: transposed(blas, ux, k, m), s, vt: transposed(blas, vtx, n, k), k };
}

/** The transpose (cols×rows, row-major) of a row-major rows×cols matrix. */
function transposed(blas: OpenBlasSymbols, a: Float32Array, rows: number, cols: number) {
  const out = new Float32Array(rows * cols);
  blas.cblas_somatcopy(ROW_MAJOR, TRANS, rows, cols, 1, a, cols, out, rows);
  return out;
}

// CBLAS enum values (cblas.h)
const ROW_MAJOR = 101;
const TRANS = 112;

/** jobz / jobu / jobvt = 'S': the thin factors. */
const JOB_S = new Uint8Array(["S".charCodeAt(0)]);

function int(value: number): Int32Array {
  return new Int32Array([value]);
}
