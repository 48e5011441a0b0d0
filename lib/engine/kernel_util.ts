/**
 * What the fast wasm kernels share: the slice of tfjs-backend-wasm's backend they use, their
 * arguments, and the count of calls that took the fast path or fell back.
 *
 * Safety of the zero-copy views: the wasm memory can grow (and then its old ArrayBuffer
 * detaches) only while the wasm module allocates. Every kernel allocates its output first and
 * takes its views of the heap afterwards, and nothing allocates between taking the views and
 * the synchronous FFI calls that use them.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { OpenBlasSymbols } from "../linalg/openblas.ts";

/** The slice of tfjs-backend-wasm's BackendWasm that the kernels use. */
export interface WasmBackend {
  /** Allocates an output tensor in the wasm heap. */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of a tensor's values in the wasm heap (valid until the heap grows). */
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  /** Drops one reference to a tensor's data. */
  disposeData(dataId: tf.DataId): boolean;
  /** Adds one reference to a tensor's data. */
  incRef(dataId: tf.DataId): void;
}

/** A kernel call's arguments, as tfjs passes them. */
export interface KernelArgs {
  /** Named input tensors. */
  inputs: Record<string, tf.TensorInfo | undefined>;
  /** The wasm backend. */
  backend: WasmBackend;
  /** The op's attributes. */
  attrs: Record<string, unknown>;
}

/** Makes a fast kernel function from OpenBLAS and the kernel it replaces (its fallback). */
export type KernelFactory = (
  blas: OpenBlasSymbols,
  original: tf.KernelConfig,
) => (args: KernelArgs) => tf.TensorInfo;

const counts = new Map<string, { fast: number; original: number }>();

function countsOf(kernel: string): { fast: number; original: number } {
  let c = counts.get(kernel);
  if (!c) counts.set(kernel, c = { fast: 0, original: 0 });
  return c;
}

/**
 * How many calls of `kernel` (of all kernels when omitted) the registered kernels handled
 * themselves (`fast`) and passed to the original kernels (`original`) since the process
 * started.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { countFast, kernelCounts } from "./kernel_util.ts";
 * const before = kernelCounts("BatchMatMul");
 * countFast("BatchMatMul");
 * const { fast, original } = kernelCounts("BatchMatMul");
 * equal(fast, before.fast + 1);
 * equal(original, before.original);
 * ```
 */
export function kernelCounts(kernel?: string): { fast: number; original: number } {
  if (kernel !== undefined) return { ...countsOf(kernel) };
  const total = { fast: 0, original: 0 };
  for (const c of counts.values()) {
    total.fast += c.fast;
    total.original += c.original;
  }
  return total;
}

/**
 * Records a call that a fast kernel handled itself.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { countFast, kernelCounts } from "./kernel_util.ts";
 * const before = kernelCounts("Sum").fast;
 * countFast("Sum");
 * equal(kernelCounts("Sum").fast, before + 1);
 * ```
 */
export function countFast(kernel: string): void {
  countsOf(kernel).fast++;
}

/**
 * Passes a call to the kernel that was registered before ours (and counts it).
 *
 * @example
 * ```ts ignore
 * return callOriginal(original, args);
 * ```
 */
export function callOriginal(original: tf.KernelConfig, args: KernelArgs): tf.TensorInfo {
  countsOf(original.kernelName).original++;
  return original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
}
