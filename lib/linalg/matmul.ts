/**
 * Matrix products of row-major Float32Arrays on the host: OpenBLAS `cblas_sgemm` when it is
 * loaded, else a JavaScript loop that accumulates in float64.
 *
 * @module
 */
import { checkDimension, checkMatrix } from "./check.ts";
import { openBlas } from "./openblas.ts";

/** Options of {@linkcode matmul}. */
export interface MatmulOptions {
  /** `a` is stored as k×m and used transposed. */
  transA?: boolean;
  /** `b` is stored as n×k and used transposed. */
  transB?: boolean;
}

// CBLAS enum values (cblas.h)
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/**
 * C = op(A)·op(B) for row-major float32 matrices, where op(A) is m×k and op(B) is k×n (A is
 * stored k×m when `transA`, B is stored n×k when `transB`). Returns C, m×n row-major.
 * NaN and infinities propagate as IEEE arithmetic says; they are not errors here.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { matmul } from "./matmul.ts";
 * const a = new Float32Array([1, 2, 3, 4, 5, 6]); // 2×3
 * const b = new Float32Array([1, 0, 0, 1, 1, 1]); // 3×2
 * deepStrictEqual(matmul(a, b, 2, 3, 2), new Float32Array([4, 5, 10, 11]));
 * deepStrictEqual(matmul(a, a, 2, 3, 2, { transB: true }), new Float32Array([14, 32, 32, 77])); // A·Aᵀ
 * ```
 */
export function matmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  options: MatmulOptions = {},
): Float32Array {
  for (const [name, value] of [["m", m], ["k", k], ["n", n]] as const) {
    checkDimension("matmul", name, value);
  }
  const { transA = false, transB = false } = options;
  checkMatrix("matmul", transA ? "a (k×m, transA)" : "a (m×k)", a, transA ? k : m, transA ? m : k);
  checkMatrix("matmul", transB ? "b (n×k, transB)" : "b (k×n)", b, transB ? n : k, transB ? k : n);
  const c = new Float32Array(m * n);
  const blas = openBlas();
  if (blas) {
    blas.cblas_sgemm(
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
  } else {
    jsMatmul(a, b, m, k, n, transA, transB, c);
  }
  return c;
}

/**
 * The fallback: row by row, each row of C accumulated in float64 from rows of B, four rows of B
 * per pass so the accumulator is loaded and stored a quarter as often.
 */
function jsMatmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
  c: Float32Array,
): void {
  const rowsB = transB ? transpose(b, n, k) : b; // k×n, so the inner loop runs along memory
  const rowsA = transA ? transpose(a, k, m) : a; // m×k
  const acc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    const offA = i * k;
    let p = 0;
    for (; p + 4 <= k; p += 4) {
      const a0 = rowsA[offA + p], a1 = rowsA[offA + p + 1];
      const a2 = rowsA[offA + p + 2], a3 = rowsA[offA + p + 3];
      const o0 = p * n, o1 = o0 + n, o2 = o1 + n, o3 = o2 + n;
      for (let j = 0; j < n; j++) {
        acc[j] += a0 * rowsB[o0 + j] + a1 * rowsB[o1 + j] + a2 * rowsB[o2 + j] +
          a3 * rowsB[o3 + j];
      }
    }
    for (; p < k; p++) {
      const ap = rowsA[offA + p], o = p * n;
      for (let j = 0; j < n; j++) acc[j] += ap * rowsB[o + j];
    }
    c.set(acc, i * n);
  }
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  }
  return t;
}
