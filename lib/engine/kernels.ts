/**
 * Faster matrix-product kernels for tfjs's wasm backend: `BatchMatMul` and `_FusedMatMul` run
 * OpenBLAS's `cblas_sgemm` (through Deno FFI) directly on the tensors in the backend's
 * WebAssembly memory, without copies. Forward passes and gradients both go through these
 * kernels (tfjs derives a product's gradient from more products).
 *
 * The original kernels stay registered underneath: batches of tiny products (where a call
 * costs more than the arithmetic), empty ones, non-float32 inputs and unusual bias shapes go to them, and
 * {@linkcode unregisterFastKernels} restores them. `RI_FAST_KERNELS=0` keeps tfjs's own
 * kernels (for comparisons).
 *
 * Safety of the zero-copy views: the wasm memory can grow (and then its old ArrayBuffer
 * detaches) only while the wasm module allocates. Each kernel allocates its output first and
 * takes its views afterwards, and nothing allocates between taking the views and the
 * synchronous sgemm calls.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { blasThreads, openBlas, type OpenBlasSymbols } from "../linalg/openblas.ts";

/** The kernels this module replaces on the wasm backend. */
export const FAST_KERNEL_NAMES = ["BatchMatMul", "_FusedMatMul"] as const;

/**
 * A batch of products goes to the original wasm kernel when each product has fewer
 * multiply-adds (m·n·k) than this: each sgemm call costs about 1 µs of overhead, while the
 * wasm kernel runs the whole batch in one call. Measured on the project machine (512 products,
 * bench/kernels_bench.ts): 4×4×4 each, wasm 0.26 ms vs sgemm 0.44 ms; 8×8×8, 0.67 vs 0.48 ms;
 * 17×16×17, 7.5 vs 1.2 ms. A single product always goes to sgemm: it was never slower, even at
 * 4×4×4 (tfjs's per-op overhead of ~8 µs dominates both).
 */
export const MIN_BATCHED_MACS = 256;

/** What {@linkcode registerFastKernels} did. */
export interface FastKernelsInfo {
  /** True when the OpenBLAS kernels are registered. */
  active: boolean;
  /** "OpenBLAS sgemm, 2 threads", or why not. */
  detail: string;
}

/** The slice of tfjs-backend-wasm's BackendWasm that the kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  disposeData(dataId: tf.DataId): boolean;
}

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo | undefined>;
  backend: WasmBackend;
  attrs: Record<string, unknown>;
}

const originals = new Map<string, tf.KernelConfig>();
const counts = { blas: 0, original: 0 };

/**
 * How many products the registered kernels sent to OpenBLAS and to the original kernels since
 * the process started (for profiles, and for tests that must exercise one path).
 *
 * @example
 * ```ts
 * import { fastKernelCounts } from "./kernels.ts";
 * const { blas, original } = fastKernelCounts();
 * ```
 */
export function fastKernelCounts(): { blas: number; original: number } {
  return { ...counts };
}

/**
 * `RI_FAST_KERNELS` unless it is `0`/`false`/`off` (then tfjs's own kernels stay).
 *
 * @example
 * ```ts
 * import { fastKernelsFromEnv } from "./kernels.ts";
 * console.log(fastKernelsFromEnv()); // true unless RI_FAST_KERNELS=0
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
 * Registers the OpenBLAS-backed `BatchMatMul` and `_FusedMatMul` for the wasm backend (which
 * must be imported, and is usually started by `initEngine`). Does nothing, and says why, when
 * OpenBLAS cannot be loaded. Calling it again is harmless.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initEngine } from "./backend.ts";
 * import { registerFastKernels } from "./kernels.ts";
 * await initEngine({ backend: "wasm" });
 * console.log(registerFastKernels().detail);
 * tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).print();
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
    const fast = name === "BatchMatMul" ? batchMatMul(blas, original) : fusedMatMul(blas, original);
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ ...original, kernelFunc: fast as unknown as tf.KernelFunc });
  }
  return { active: true, detail: `OpenBLAS sgemm, ${blasThreads()} threads` };
}

/**
 * Puts tfjs's own wasm kernels back.
 *
 * @example
 * ```ts
 * import { unregisterFastKernels } from "./kernels.ts";
 * unregisterFastKernels();
 * ```
 */
export function unregisterFastKernels(): void {
  for (const [name, original] of originals) {
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel(original);
  }
  originals.clear();
}

/**
 * True while the OpenBLAS kernels are registered.
 *
 * @example
 * ```ts
 * import { fastKernelsActive } from "./kernels.ts";
 * console.log(fastKernelsActive());
 * ```
 */
export function fastKernelsActive(): boolean {
  return originals.size > 0;
}

/** How one (batched, broadcast) product maps onto sgemm calls. */
export interface ProductPlan {
  /** Shape of the result: broadcast batch dimensions, then m, n. */
  outShape: number[];
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Element offsets of each sgemm's A and B; the i-th C starts at i·m·n. */
  aOffsets: number[];
  bOffsets: number[];
}

/**
 * Plans C = op(A)·op(B) over the last two axes with NumPy-style broadcasting of the leading
 * ones, or returns an error message when the shapes do not fit. A batch of products that
 * shares one B (and uses A untransposed) becomes a single sgemm with m·batch rows.
 *
 * @example
 * ```ts
 * import { planProduct } from "./kernels.ts";
 * const plan = planProduct([2, 3, 4], [4, 5], false, false);
 * if (typeof plan !== "string") console.log(plan.outShape, plan.m, plan.aOffsets); // [2, 3, 5] 6 [0]
 * ```
 */
export function planProduct(
  aShape: readonly number[],
  bShape: readonly number[],
  transA: boolean,
  transB: boolean,
): ProductPlan | string {
  if (aShape.length < 2 || bShape.length < 2) return "operands must have rank ≥ 2";
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const [kb, n] = transB ? [bc, br] : [br, bc];
  if (k !== kb) return `inner dimensions ${k} and ${kb} differ`;
  const batchA = aShape.slice(0, -2), batchB = bShape.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const padA = [...Array(rank - batchA.length).fill(1), ...batchA];
  const padB = [...Array(rank - batchB.length).fill(1), ...batchB];
  const batch: number[] = [];
  for (let i = 0; i < rank; i++) {
    if (padA[i] !== padB[i] && padA[i] !== 1 && padB[i] !== 1) {
      return `batch dimensions [${batchA}] and [${batchB}] do not broadcast`;
    }
    batch.push(Math.max(padA[i], padB[i]));
  }
  const outShape = [...batch, m, n];
  const count = batch.reduce((p, d) => p * d, 1);
  const sharedB = padB.every((d) => d === 1);
  if (sharedB && !transA) {
    // A's batch is contiguous rows: one product with count·m rows.
    return { outShape, m: m * count, n, k, transA, transB, aOffsets: [0], bOffsets: [0] };
  }
  const aOffsets: number[] = [], bOffsets: number[] = [];
  const stridesA = batchStrides(padA, ar * ac), stridesB = batchStrides(padB, br * bc);
  for (let flat = 0; flat < count; flat++) {
    let rest = flat, offA = 0, offB = 0;
    for (let d = rank - 1; d >= 0; d--) {
      const index = rest % batch[d];
      rest = (rest - index) / batch[d];
      offA += (padA[d] === 1 ? 0 : index) * stridesA[d];
      offB += (padB[d] === 1 ? 0 : index) * stridesB[d];
    }
    aOffsets.push(offA);
    bOffsets.push(offB);
  }
  return { outShape, m, n, k, transA, transB, aOffsets, bOffsets };
}

function batchStrides(dims: number[], matrixSize: number): number[] {
  const strides = new Array(dims.length);
  let stride = matrixSize;
  for (let d = dims.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= dims[d];
  }
  return strides;
}

// CBLAS enum values (cblas.h)
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** Runs the planned sgemm calls; with `beta` 1, C's prior contents (a bias) are added to. */
function runPlan(
  blas: OpenBlasSymbols,
  plan: ProductPlan,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  beta: number,
): void {
  const { m, n, k, transA, transB } = plan;
  const lda = transA ? m : k, ldb = transB ? k : n;
  const ta = transA ? TRANS : NO_TRANS, tb = transB ? TRANS : NO_TRANS;
  const size = m * n;
  counts.blas++;
  for (let i = 0; i < plan.aOffsets.length; i++) {
    blas.cblas_sgemm(
      ROW_MAJOR,
      ta,
      tb,
      m,
      n,
      k,
      1,
      a.subarray(plan.aOffsets[i]),
      lda,
      b.subarray(plan.bOffsets[i]),
      ldb,
      beta,
      c.subarray(i * size),
      n,
    );
  }
}

/** A plan worth running through sgemm, or undefined (use the original kernel). */
function fastPlan(args: KernelArgs): ProductPlan | undefined {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  if (a.dtype !== "float32" || b.dtype !== "float32") return undefined;
  const plan = planProduct(
    a.shape,
    b.shape,
    Boolean(args.attrs.transposeA),
    Boolean(args.attrs.transposeB),
  );
  if (typeof plan === "string") return undefined; // the original kernel reports the error
  const single = plan.aOffsets.length === 1;
  const empty = plan.m === 0 || plan.n === 0 || plan.k === 0;
  return !empty && (single || plan.m * plan.n * plan.k >= MIN_BATCHED_MACS) ? plan : undefined;
}

function batchMatMul(blas: OpenBlasSymbols, original: tf.KernelConfig) {
  return (args: KernelArgs): tf.TensorInfo => {
    const plan = fastPlan(args);
    if (!plan) return callOriginal(original, args);
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const out = args.backend.makeOutput(plan.outShape, "float32"); // allocate before the views
    const heap = (t: tf.TensorInfo) => args.backend.typedArrayFromHeap(t);
    runPlan(blas, plan, heap(a), heap(b), heap(out), 0);
    return out;
  };
}

function callOriginal(original: tf.KernelConfig, args: KernelArgs): tf.TensorInfo {
  counts.original++;
  return original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
}

/** Activations tfjs's `_FusedMatMul` may ask for, as the kernels that apply them. */
const ACTIVATION_KERNELS: Record<string, string> = {
  relu: "Relu",
  relu6: "Relu6",
  elu: "Elu",
  sigmoid: "Sigmoid",
  leakyrelu: "LeakyRelu",
  prelu: "Prelu",
};

function fusedMatMul(blas: OpenBlasSymbols, original: tf.KernelConfig) {
  return (args: KernelArgs): tf.TensorInfo => {
    const plan = fastPlan(args);
    const { a, b, bias, preluActivationWeights } = args.inputs;
    const activation = String(args.attrs.activation ?? "linear");
    const supported = activation === "linear" || activation in ACTIVATION_KERNELS;
    if (!plan || !supported || (bias && !rowBias(bias, plan.n))) {
      return callOriginal(original, args);
    }
    const backend = args.backend;
    const out = backend.makeOutput(plan.outShape, "float32"); // allocate before the views
    const c = backend.typedArrayFromHeap(out);
    if (bias) fillRows(c, backend.typedArrayFromHeap(bias), plan.n);
    runPlan(
      blas,
      plan,
      backend.typedArrayFromHeap(a!),
      backend.typedArrayFromHeap(b!),
      c,
      bias ? 1 : 0,
    );
    if (activation === "linear") return out;
    // The activation runs as the wasm backend's own (SIMD) kernel on the product.
    const kernel = tf.getKernel(ACTIVATION_KERNELS[activation], "wasm")!;
    const result = kernel.kernelFunc({
      inputs: activation === "prelu" ? { x: out, alpha: preluActivationWeights! } : { x: out },
      backend: backend as unknown as tf.KernelBackend,
      attrs: activation === "leakyrelu" ? { alpha: Number(args.attrs.leakyreluAlpha ?? 0.2) } : {},
    }) as tf.TensorInfo;
    backend.disposeData(out.dataId);
    return result;
  };
}

/** True when `bias` adds the same n values to every row (shape [n], [1, n], [1, 1, n], …). */
function rowBias(bias: tf.TensorInfo, n: number): boolean {
  const size = bias.shape.reduce((p, d) => p * d, 1);
  return bias.dtype === "float32" && size === n && bias.shape.slice(0, -1).every((d) => d === 1);
}

/** Copies the n-vector `bias` into every row of `c`. */
function fillRows(c: Float32Array, bias: Float32Array, n: number): void {
  for (let off = 0; off < c.length; off += n) c.set(bias, off);
}
