/**
 * OpenBLAS (Debian's `libopenblas0`) through Deno FFI: `cblas_sgemm`/`cblas_dgemm` for matrix
 * products, `cblas_ssyrk`/`cblas_dsyrk` for Gram matrices, `dpotrf_` (Cholesky), LAPACK's `sgesdd_`/`sgesvd_` for the SVD and `ssyevr_`/`dsyevr_`/`ssyevd_`/`dsyevd_` for
 * symmetric eigenproblems. Loaded once, on first use, and only when the
 * process may use FFI (`--allow-ffi`); otherwise callers take the JavaScript fallback.
 *
 * Threads: OpenBLAS would start one thread per core, which on a shared machine (or a 16-core
 * GPU host next to other work) takes every core from everything else. We set its thread count
 * to `RI_BLAS_THREADS` if set, else `OPENBLAS_NUM_THREADS` if set, else 2.
 *
 * `RI_LINALG=js` (or {@linkcode setLinalgFallback}) forces the JavaScript path.
 *
 * @module
 */

/** Candidate file names of the library, most specific first. */
const LIBRARY_NAMES = ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"];

/** Threads OpenBLAS uses when no environment variable says otherwise. */
export const DEFAULT_BLAS_THREADS = 2;

/** `n` copies of `value`, typed as a tuple so that the FFI signatures below keep their types. */
function repeat<const T, N extends number>(value: T, n: N): Repeat<T, N> {
  return Array(n).fill(value) as Repeat<T, N>;
}

/** The tuple of `N` elements `T`. */
type Repeat<T, N extends number, A extends T[] = []> = A["length"] extends N ? A
  : Repeat<T, N, [...A, T]>;

/**
 * A Fortran (LAPACK) routine: every argument by reference, then one hidden length per CHARACTER
 * argument (passing them keeps gfortran-built LAPACK safe whatever its calling convention
 * assumes).
 */
const fortran = <R extends number, C extends number>(references: R, characters: C) =>
  ({
    parameters: [...repeat("buffer", references), ...repeat("usize", characters)],
    result: "void",
  }) as const;

/** `cblas_?gemm` in float32 or float64 (`real`, the type of alpha and beta). */
const gemm = <F extends "f32" | "f64">(real: F) =>
  ({
    // order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
    parameters: [
      ...repeat("i32", 6),
      real,
      "buffer",
      "i32",
      "buffer",
      "i32",
      real,
      "buffer",
      "i32",
    ],
    result: "void",
  }) as const;

/** `cblas_?syrk` in float32 or float64 (`real`, the type of alpha and beta). */
const syrk = <F extends "f32" | "f64">(real: F) =>
  ({
    // order, uplo, trans, N, K, alpha, A, lda, beta, C, ldc: C ← alpha·op(A)·op(A)ᵀ + beta·C
    parameters: [...repeat("i32", 5), real, "buffer", "i32", real, "buffer", "i32"],
    result: "void",
  }) as const;

const SYMBOLS = {
  cblas_sgemm: gemm("f32"),
  cblas_sgemv: {
    // order, trans, M, N, alpha, A, lda, X, incX, beta, Y, incY
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  cblas_somatcopy: {
    // order, trans, rows, cols, alpha, A, lda, B, ldb (OpenBLAS extension: B = alpha·op(A))
    parameters: ["i32", "i32", "i32", "i32", "f32", "buffer", "i32", "buffer", "i32"],
    result: "void",
  },
  // jobz, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, iwork, info, len(jobz)
  sgesdd_: fortran(14, 1),
  // jobu, jobvt, m, n, a, lda, s, u, ldu, vt, ldvt, work, lwork, info, len(jobu), len(jobvt)
  sgesvd_: fortran(14, 2),
  cblas_saxpy: {
    // n, alpha, x, incx, y, incy: y ← alpha·x + y
    parameters: ["i32", "f32", "buffer", "i32", "buffer", "i32"],
    result: "void",
  },
  cblas_sscal: {
    // n, alpha, x, incx: x ← alpha·x
    parameters: ["i32", "f32", "buffer", "i32"],
    result: "void",
  },
  cblas_sasum: {
    // n, x, incx → Σ|x|
    parameters: ["i32", "buffer", "i32"],
    result: "f32",
  },
  cblas_dgemm: gemm("f64"),
  cblas_ssyrk: syrk("f32"),
  cblas_dsyrk: syrk("f64"),
  // uplo, n, a, lda, info, len(uplo)
  dpotrf_: fortran(5, 1),
  // Symmetric eigensolvers, float32 and float64 alike:
  // jobz, range, uplo, n, a, lda, vl, vu, il, iu, abstol, m, w, z, ldz, isuppz, work, lwork,
  // iwork, liwork, info, len(jobz), len(range), len(uplo)
  ssyevr_: fortran(21, 3),
  dsyevr_: fortran(21, 3),
  // jobz, uplo, n, a, lda, w, work, lwork, iwork, liwork, info, len(jobz), len(uplo)
  dsyevd_: fortran(11, 2),
  ssyevd_: fortran(11, 2),
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
  openblas_get_num_threads: { parameters: [], result: "i32" },
  openblas_get_config: { parameters: [], result: "pointer" },
} as const;

/** The OpenBLAS functions this project calls. */
export type OpenBlasSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Which implementation the host linear algebra (SVD, polar factor, matmul) uses. */
export interface LinalgInfo {
  /** `openblas` (LAPACK/CBLAS through FFI) or `js` (ml-matrix and float64 loops). */
  path: "openblas" | "js";
  /** Library version and thread count, or why the fallback is in use. */
  detail: string;
}

let loaded:
  | { lib: Deno.DynamicLibrary<typeof SYMBOLS>; detail: string; threads: number }
  | undefined;
let loadError = "";
let tried = false;
let forced = envForcesFallback();

/**
 * Forces the JavaScript fallback (`true`) or returns to OpenBLAS when it can load (`false`).
 * Used by tests and benchmarks to compare the two paths.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { linalgInfo, setLinalgFallback } from "./openblas.ts";
 * setLinalgFallback(true);
 * equal(linalgInfo().path, "js");
 * setLinalgFallback(false);
 * ```
 */
export function setLinalgFallback(force: boolean): void {
  forced = force;
}

/**
 * Says which path the host linear algebra takes now, and why.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { linalgInfo } from "./openblas.ts";
 * const { path, detail } = linalgInfo();
 * ok(["openblas", "js"].includes(path) && detail.length > 0);
 * ```
 */
export function linalgInfo(): LinalgInfo {
  if (forced) return { path: "js", detail: "JavaScript fallback forced (RI_LINALG=js or by call)" };
  const blas = openBlas();
  if (blas) return { path: "openblas", detail: loaded!.detail };
  return { path: "js", detail: `JavaScript fallback: ${loadError}` };
}

/**
 * The loaded OpenBLAS functions, or undefined when the fallback applies (FFI not permitted,
 * library missing, or the fallback forced).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { linalgInfo, openBlas } from "./openblas.ts";
 * // loaded exactly when the host linear algebra says it runs on OpenBLAS
 * equal(openBlas() !== undefined, linalgInfo().path === "openblas");
 * ```
 */
export function openBlas(): OpenBlasSymbols | undefined {
  if (forced) return undefined;
  if (!tried) {
    tried = true;
    load();
  }
  return loaded?.lib.symbols;
}

/**
 * The threads OpenBLAS was given, or undefined when it is not in use.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { blasThreads } from "./openblas.ts";
 * const threads = blasThreads(); // undefined when OpenBLAS is not loaded; 2 by default
 * ok(threads === undefined || (Number.isInteger(threads) && threads >= 1));
 * ```
 */
export function blasThreads(): number | undefined {
  return openBlas() ? loaded!.threads : undefined;
}

/**
 * The thread count to give OpenBLAS: `RI_BLAS_THREADS`, else `OPENBLAS_NUM_THREADS`, else 2.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { blasThreadsFromEnv } from "./openblas.ts";
 * const threads = blasThreadsFromEnv(); // 2 unless an environment variable says otherwise
 * ok(Number.isInteger(threads) && threads >= 1);
 * ```
 */
export function blasThreadsFromEnv(): number {
  for (const name of ["RI_BLAS_THREADS", "OPENBLAS_NUM_THREADS"]) {
    const value = readEnv(name);
    if (value === undefined || value === "") continue;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`${name}="${value}": expected a positive integer thread count`);
    }
    return n;
  }
  return DEFAULT_BLAS_THREADS;
}

function load(): void {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    loadError = "FFI not permitted (run with --allow-ffi to use OpenBLAS)";
    return;
  }
  const failures: string[] = [];
  for (const name of LIBRARY_NAMES) {
    try {
      const lib = Deno.dlopen(name, SYMBOLS);
      const threads = blasThreadsFromEnv();
      lib.symbols.openblas_set_num_threads(threads);
      loaded = { lib, detail: `${configText(lib)}, ${threads} threads`, threads };
      return;
    } catch (err) {
      failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  loadError = "OpenBLAS not found (Debian: apt-get install libopenblas0): " +
    failures.join("; ");
}

function configText(lib: Deno.DynamicLibrary<typeof SYMBOLS>): string {
  const ptr = lib.symbols.openblas_get_config();
  const text = ptr ? Deno.UnsafePointerView.getCString(ptr) : "OpenBLAS";
  // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64" -> name, version
  return text.split(" ").slice(0, 2).join(" ");
}

function envForcesFallback(): boolean {
  return readEnv("RI_LINALG")?.toLowerCase() === "js";
}

function readEnv(name: string): string | undefined {
  // Query first: a bare Deno.env.get would prompt on an interactive terminal.
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined; // no --allow-env: behave as if unset
  }
  return Deno.env.get(name);
}
