/**
 * Faster kernels for tfjs's wasm backend, registered in place of its own (which stay
 * underneath as the fallback, and come back with {@linkcode unregisterFastKernels}):
 *
 * - `BatchMatMul`, `_FusedMatMul`: OpenBLAS's `cblas_sgemm` through Deno FFI, directly on the
 *   tensors in the backend's WebAssembly memory (`kernels_matmul.ts`). Forward passes and
 *   gradients both go through them (tfjs derives a product's gradient from more products).
 * - `Identity` and same-dtype `Cast` without a copy, `Sum` and `Mean` over leading or
 *   trailing axes through `cblas_sgemv`, matrix `Transpose` through `cblas_somatcopy` (`kernels_misc.ts`).
 *
 * Registered by `initEngine` for the wasm backend when OpenBLAS can be loaded (FFI allowed,
 * Debian's libopenblas0 installed), together with the fused kernels of `fused.ts`;
 * `RI_FAST_KERNELS=0` keeps tfjs's own kernels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blasThreads, openBlas } from "../linalg/openblas.ts";
import { kernelCounts, type KernelFactory } from "./kernel_util.ts";
import { batchMatMulKernel, fusedMatMulKernel } from "./kernels_matmul.ts";
import { registerFusedKernels, unregisterFusedKernels } from "./fused.ts";
import {
  castKernel,
  identityKernel,
  meanKernel,
  sumKernel,
  transposeKernel,
} from "./kernels_misc.ts";

/** The kernels this module replaces on the wasm backend, with their factories. */
const FAST_KERNELS: Record<string, KernelFactory> = {
  BatchMatMul: batchMatMulKernel,
  _FusedMatMul: fusedMatMulKernel,
  Identity: identityKernel,
  Cast: castKernel,
  Sum: sumKernel,
  Mean: meanKernel,
  Transpose: transposeKernel,
};

/** Names of the kernels this module replaces on the wasm backend. */
export const FAST_KERNEL_NAMES: readonly string[] = Object.keys(FAST_KERNELS);

/** What {@linkcode registerFastKernels} did. */
export interface FastKernelsInfo {
  /** True when the OpenBLAS kernels are registered. */
  active: boolean;
  /** "OpenBLAS sgemm, 2 threads", or why not. */
  detail: string;
}

const originals = new Map<string, tf.KernelConfig>();

/**
 * How many calls of `kernel` (of every replaced kernel when omitted) the registered kernels
 * handled themselves (`fast`) and passed to tfjs's own kernels (`original`) since the process
 * started: for profiles, and for tests that must exercise one path.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { fastKernelCounts } from "./kernels.ts";
 * const { fast, original } = fastKernelCounts("BatchMatMul");
 * ok(Number.isInteger(fast) && fast >= 0 && Number.isInteger(original) && original >= 0);
 * ```
 */
export function fastKernelCounts(kernel?: string): { fast: number; original: number } {
  return kernelCounts(kernel);
}

/**
 * `RI_FAST_KERNELS` unless it is `0`/`false`/`off` (then tfjs's own kernels stay).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { fastKernelsFromEnv } from "./kernels.ts";
 * equal(fastKernelsFromEnv(), Deno.env.get("RI_FAST_KERNELS") !== "0");
 * ```
 */
export function fastKernelsFromEnv(): boolean {
  if (
    Deno.permissions.querySync({ name: "env", variable: "RI_FAST_KERNELS" }).state !== "granted"
  ) {
    return true;
  }
  const value = Deno.env.get("RI_FAST_KERNELS")?.trim().toLowerCase();
  return !(value === "0" || value === "false" || value === "off");
}

/**
 * Registers the fast kernels for the wasm backend (which
 * must be imported, and is usually started by `initEngine`). Does nothing, and says why, when
 * OpenBLAS cannot be loaded. Calling it again is harmless.
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { initEngine } from "./backend.ts";
 * import { fastKernelsActive, registerFastKernels } from "./kernels.ts";
 * await initEngine({ backend: "wasm" });
 * const { active } = registerFastKernels();
 * equal(fastKernelsActive(), active);
 * // with or without them, the product is the same: every entry of ones(64)·ones(64) is 64
 * ok(tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).dataSync().every((v) => v === 64));
 * ```
 */
export function registerFastKernels(): FastKernelsInfo {
  const blas = openBlas();
  if (!blas) return { active: false, detail: "OpenBLAS unavailable (see linalgInfo())" };
  for (const name of FAST_KERNEL_NAMES) {
    if (originals.has(name)) continue;
    const original = tf.getKernel(name, "wasm");
    if (!original) {
      throw new Error(`registerFastKernels: no ${name} kernel for wasm; import the wasm backend`);
    }
    originals.set(name, original);
    const fast = FAST_KERNELS[name](blas, original);
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ ...original, kernelFunc: fast as unknown as tf.KernelFunc });
  }
  registerFusedKernels();
  return { active: true, detail: `OpenBLAS sgemm, ${blasThreads()} threads` };
}

/**
 * Puts tfjs's own wasm kernels back.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { fastKernelsActive, unregisterFastKernels } from "./kernels.ts";
 * unregisterFastKernels();
 * equal(fastKernelsActive(), false);
 * ```
 */
export function unregisterFastKernels(): void {
  for (const [name, original] of originals) {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel(original);
  }
  originals.clear();
  unregisterFusedKernels();
}

/**
 * True while the OpenBLAS kernels are registered.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { fastKernelsActive, unregisterFastKernels } from "./kernels.ts";
 * unregisterFastKernels();
 * equal(fastKernelsActive(), false);
 * ```
 */
export function fastKernelsActive(): boolean {
  return originals.size > 0;
}

export { MIN_BATCHED_MACS, planProduct, type ProductPlan } from "./kernels_matmul.ts";
