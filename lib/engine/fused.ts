/**
 * Fused kernels: one tfjs kernel (and one for its gradient) where a chain of a dozen small ops
 * stood, registered for the wasm backend beside the OpenBLAS ones (`kernels.ts`). A training
 * step of the benchmark ViT ran about 3 500 tfjs kernels, and tfjs spends several
 * microseconds of JavaScript (dispatch, autodiff tape, a fresh tensor per result) on each:
 * these kernels remove most of them and the passes over memory between them.
 *
 * | op                   | replaces                                                        |
 * | -------------------- | --------------------------------------------------------------- |
 * | {@linkcode fusedAdamW}      | AdamW's 15 ops per variable (lib/train/adamw.ts)         |
 * | {@linkcode fusedAddPairs}   | θ0 + τ' for every parameter, forward and backward (RI)   |
 * | {@linkcode fusedLayerNorm}  | LayerNorm's 9 ops forward and ~25 backward               |
 * | {@linkcode fusedQuickGelu}  | x·σ(1.702x): 3 ops forward, 6 backward                   |
 * | {@linkcode fusedHeadsKl}    | per head: log-softmax, KL, mean, weighted sum (riLoss)   |
 *
 * Each op returns `undefined` when its kernel is not registered for the active backend
 * (WebGPU, tfjs's cpu backend, `RI_FAST_KERNELS=0`): the caller then runs its unfused ops,
 * which stay the reference. The loops live in `simd.ts` (WebAssembly SIMD on the backend's own
 * heap) and `fused_math.ts` (the per-head KL), and agree with the unfused ops to float32
 * rounding (AdamW bit for bit).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { KernelArgs, WasmBackend } from "./kernel_util.ts";
import { type AdamWConstants, headsKlArrays, headsKlGradArrays } from "./fused_math.ts";
import { type SimdKernels, simdKernels } from "./simd.ts";

/** Names of the fused kernels (registered for wasm by {@linkcode registerFusedKernels}). */
export const FUSED = {
  adamW: "RiAdamW",
  addPairs: "RiAddPairs",
  layerNorm: "RiLayerNorm",
  layerNormGrad: "RiLayerNormGrad",
  layerNormGammaGrad: "RiLayerNormGammaGrad",
  quickGelu: "RiQuickGelu",
  quickGeluGrad: "RiQuickGeluGrad",
  headsKl: "RiHeadsKl",
  headsKlGrad: "RiHeadsKlGrad",
  pack: "RiPack",
} as const;

type Kernel = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** The wasm backend with the parts the SIMD kernels need. */
interface Backend extends WasmBackend {
  getMemoryOffset(dataId: tf.DataId): number;
  wasm: { asm: { memory: WebAssembly.Memory } };
}

const simdByBackend = new WeakMap<object, SimdKernels | null>();

/** The SIMD kernels instantiated on this backend's memory (null where wasm SIMD is missing). */
function simdOf(backend: WasmBackend): SimdKernels | null {
  let k = simdByBackend.get(backend);
  if (k === undefined) {
    const memory = (backend as Backend).wasm?.asm?.memory;
    k = memory instanceof WebAssembly.Memory ? simdKernels(memory) ?? null : null;
    simdByBackend.set(backend, k);
  }
  return k;
}

/** Allocates the outputs; returns them with the byte addresses of inputs and outputs. */
function allocate(
  args: KernelArgs,
  shapes: number[][],
  inputs: tf.TensorInfo[],
): { outs: tf.TensorInfo[]; at: number[] } {
  const backend = args.backend as Backend;
  const outs = shapes.map((s) => backend.makeOutput(s, "float32"));
  return { outs, at: [...inputs, ...outs].map((t) => backend.getMemoryOffset(t.dataId)) };
}

function input(args: KernelArgs, name: string): tf.TensorInfo {
  const t = args.inputs[name];
  if (!t) throw new Error(`fused kernel: missing input "${name}"`);
  if (t.dtype !== "float32") throw new Error(`fused kernel: input "${name}" is ${t.dtype}`);
  return t;
}

const size = (t: tf.TensorInfo) => t.shape.reduce((p, d) => p * d, 1);
const lastAxis = (t: tf.TensorInfo) => t.shape[t.shape.length - 1];

const adamWKernel: Kernel = (args) => {
  const [w, m, v, g] = ["w", "m", "v", "g"].map((n) => input(args, n));
  const { outs, at } = allocate(args, [w.shape, w.shape, w.shape], [w, m, v, g]);
  const c = args.attrs as unknown as AdamWConstants;
  simdOf(args.backend)!.adamw(
    size(w),
    ...(at as [number, number, number, number, number, number, number]),
    c.beta1,
    1 - c.beta1,
    c.beta2,
    1 - c.beta2,
    c.lr,
    c.decay,
    c.c1,
    c.c2,
    c.epsilon,
    1,
  );
  return outs;
};

const addPairsKernel: Kernel = (args) => {
  const count = Number(args.attrs.count);
  const a = Array.from({ length: count }, (_, i) => input(args, `a${i}`));
  const b = Array.from({ length: count }, (_, i) => input(args, `b${i}`));
  const { outs, at } = allocate(args, a.map((t) => t.shape), [...a, ...b]);
  const simd = simdOf(args.backend)!;
  for (let i = 0; i < count; i++) simd.add(size(a[i]), at[i], at[count + i], at[2 * count + i]);
  return outs;
};

const layerNormKernel: Kernel = (args) => {
  const [x, gamma, beta] = ["x", "gamma", "beta"].map((n) => input(args, n));
  const d = lastAxis(x);
  const { outs, at } = allocate(args, [x.shape], [x, gamma, beta]);
  simdOf(args.backend)!.layerNorm(
    size(x) / d,
    d,
    at[0],
    at[3],
    at[1],
    at[2],
    Number(args.attrs.eps),
  );
  return outs[0];
};

const layerNormGradKernel: Kernel = (args) => {
  const [dy, x, gamma] = ["dy", "x", "gamma"].map((n) => input(args, n));
  const d = lastAxis(x);
  const { outs, at } = allocate(args, [x.shape], [dy, x, gamma]);
  simdOf(args.backend)!.layerNormGrad(
    size(x) / d,
    d,
    at[0],
    at[1],
    at[3],
    at[2],
    Number(args.attrs.eps),
  );
  return outs[0];
};

const layerNormGammaGradKernel: Kernel = (args) => {
  const [dy, x] = ["dy", "x"].map((n) => input(args, n));
  const d = lastAxis(x);
  const { outs, at } = allocate(args, [[d]], [dy, x]);
  args.backend.typedArrayFromHeap(outs[0]).fill(0);
  simdOf(args.backend)!.layerNormGammaGrad(
    size(x) / d,
    d,
    at[0],
    at[1],
    at[2],
    Number(args.attrs.eps),
  );
  return outs[0];
};

const quickGeluKernel: Kernel = (args) => {
  const x = input(args, "x");
  const { outs, at } = allocate(args, [x.shape], [x]);
  simdOf(args.backend)!.quickGelu(size(x), at[0], at[1]);
  return outs[0];
};

const quickGeluGradKernel: Kernel = (args) => {
  const [dy, x] = ["dy", "x"].map((n) => input(args, n));
  const { outs, at } = allocate(args, [x.shape], [dy, x]);
  simdOf(args.backend)!.quickGeluGrad(size(x), at[0], at[1], at[2]);
  return outs[0];
};

/** Heap views of `inputs` after allocating outputs of `shapes` (for the JavaScript kernels). */
function outputsAndViews(
  backend: WasmBackend,
  shapes: number[][],
  inputs: tf.TensorInfo[],
): { outs: tf.TensorInfo[]; views: Float32Array[]; ins: Float32Array[] } {
  // every allocation first: the heap may grow (and detach older views) while allocating
  const outs = shapes.map((s) => backend.makeOutput(s, "float32"));
  return {
    outs,
    views: outs.map((o) => backend.typedArrayFromHeap(o)),
    ins: inputs.map((t) => backend.typedArrayFromHeap(t)),
  };
}

const headsKlKernel: Kernel = (args) => {
  const [z, p] = ["z", "p"].map((n) => input(args, n));
  const widths = args.attrs.widths as number[], weights = args.attrs.weights as number[];
  const { outs, views, ins } = outputsAndViews(args.backend, [[], [widths.length]], [z, p]);
  const kl = new Float64Array(widths.length);
  headsKlArrays(ins[0], ins[1], widths, kl);
  let total = 0;
  for (let h = 0; h < widths.length; h++) total += weights[h] * kl[h];
  views[0][0] = total;
  views[1].set(kl);
  return outs;
};

const headsKlGradKernel: Kernel = (args) => {
  const [z, p, dTotal, dHeads] = ["z", "p", "dTotal", "dHeads"].map((n) => input(args, n));
  const widths = args.attrs.widths as number[], weights = args.attrs.weights as number[];
  const { outs, views, ins } = outputsAndViews(args.backend, [z.shape], [z, p, dTotal, dHeads]);
  const dt = ins[2][0];
  const effective = weights.map((w, h) => dt * w + ins[3][h]);
  headsKlGradArrays(ins[0], ins[1], widths, effective, 1, views[0]);
  return outs[0];
};

/** Copies inputs x0…x(k−1) into one flat [total] tensor at `offsets` (zeros elsewhere). */
const packKernel: Kernel = (args) => {
  const offsets = args.attrs.offsets as number[];
  const total = Number(args.attrs.total);
  const parts = offsets.map((_, i) => input(args, `x${i}`));
  const { outs, views, ins } = outputsAndViews(args.backend, [[total]], parts);
  const covered = parts.reduce((n, t) => n + size(t), 0);
  if (covered < total) views[0].fill(0);
  parts.forEach((_, i) => views[0].set(ins[i], offsets[i]));
  return outs[0];
};

const KERNELS: Record<string, Kernel> = {
  [FUSED.pack]: packKernel,
  [FUSED.adamW]: adamWKernel,
  [FUSED.addPairs]: addPairsKernel,
  [FUSED.layerNorm]: layerNormKernel,
  [FUSED.layerNormGrad]: layerNormGradKernel,
  [FUSED.layerNormGammaGrad]: layerNormGammaGradKernel,
  [FUSED.quickGelu]: quickGeluKernel,
  [FUSED.quickGeluGrad]: quickGeluGradKernel,
  [FUSED.headsKl]: headsKlKernel,
  [FUSED.headsKlGrad]: headsKlGradKernel,
};

/**
 * A new tensor object sharing `t`'s data (no kernel, no copy): what a gradient that passes dy
 * through unchanged returns, so that no two tape entries hold the same tensor object.
 */
function alias(t: tf.Tensor): tf.Tensor {
  const backend = tf.backend() as unknown as WasmBackend;
  backend.incRef(t.dataId);
  return tf.engine().makeTensorFromTensorInfo({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
}

const run = (name: string, inputs: tf.NamedTensorMap, attrs: object = {}) =>
  tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap);

const GRADIENTS: tf.GradConfig[] = [
  {
    kernelName: FUSED.addPairs,
    gradFunc: (dy, _saved, attrs) => {
      const dys = Array.isArray(dy) ? dy : [dy];
      const out: Record<string, () => tf.Tensor> = {};
      for (let i = 0; i < Number(attrs.count); i++) {
        out[`a${i}`] = () => alias(dys[i]);
        out[`b${i}`] = () => alias(dys[i]);
      }
      return out;
    },
  },
  {
    kernelName: FUSED.layerNorm,
    inputsToSave: ["x", "gamma"],
    gradFunc: (dy, saved, attrs) => {
      const [x, gamma] = saved;
      const g = dy as tf.Tensor;
      const eps = attrs.eps;
      return {
        x: () => run(FUSED.layerNormGrad, { dy: g, x, gamma }, { eps }) as tf.Tensor,
        gamma: () => run(FUSED.layerNormGammaGrad, { dy: g, x }, { eps }) as tf.Tensor,
        beta: () => tf.sum(g.reshape([-1, gamma.size]), 0),
      };
    },
  },
  {
    kernelName: FUSED.quickGelu,
    inputsToSave: ["x"],
    gradFunc: (dy, [x]) => ({
      x: () => run(FUSED.quickGeluGrad, { dy: dy as tf.Tensor, x }) as tf.Tensor,
    }),
  },
  {
    kernelName: FUSED.headsKl,
    inputsToSave: ["z", "p"],
    gradFunc: (dy, [z, p], attrs) => {
      const [dTotal, dHeads] = dy as tf.Tensor[];
      return {
        z: () =>
          run(FUSED.headsKlGrad, { z, p, dTotal, dHeads }, {
            widths: attrs.widths,
            weights: attrs.weights,
          }) as tf.Tensor,
      };
    },
  },
];

let registered = false;

/**
 * `RI_FUSED` unless it is `0`/`false`/`off` (then only the OpenBLAS kernels of `kernels.ts`
 * replace tfjs's: for measuring what the fused kernels bring).
 */
function fusedFromEnv(): boolean {
  if (Deno.permissions.querySync({ name: "env", variable: "RI_FUSED" }).state !== "granted") {
    return true;
  }
  const value = Deno.env.get("RI_FUSED")?.trim().toLowerCase();
  return !(value === "0" || value === "false" || value === "off");
}

/**
 * Registers the fused kernels for the wasm backend and their gradients (once; harmless to
 * repeat). `initEngine` calls it through `registerFastKernels`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { fusedAvailable, registerFusedKernels } from "./fused.ts";
 * await initEngine({ backend: "wasm" });
 * registerFusedKernels();
 * equal(fusedAvailable("RiAdamW"), true);
 * ```
 */
export function registerFusedKernels(): void {
  if (registered || !fusedFromEnv()) return;
  const backend = tf.findBackend("wasm");
  if (!backend || !simdOf(backend as unknown as WasmBackend)) return; // no wasm SIMD here
  for (const [kernelName, kernelFunc] of Object.entries(KERNELS)) {
    tf.registerKernel({
      kernelName,
      backendName: "wasm",
      kernelFunc: kernelFunc as unknown as tf.KernelFunc,
    });
  }
  for (const config of GRADIENTS) tf.registerGradient(config);
  registered = true;
}

/**
 * Removes the fused kernels (their gradients stay registered: they are only reached through
 * the kernels).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { FUSED, fusedAvailable, registerFusedKernels, unregisterFusedKernels } from "./fused.ts";
 * await initEngine({ backend: "wasm" });
 * registerFusedKernels();
 * unregisterFusedKernels();
 * equal(fusedAvailable(FUSED.adamW), false);
 * registerFusedKernels(); // they can be registered again
 * equal(fusedAvailable(FUSED.adamW), true);
 * ```
 */
export function unregisterFusedKernels(): void {
  if (!registered) return;
  for (const name of Object.keys(KERNELS)) tf.unregisterKernel(name, "wasm");
  registered = false;
}

/**
 * True when fused kernel `name` runs on the active backend.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { fusedAvailable } from "./fused.ts";
 * equal(fusedAvailable("NoSuchKernel"), false);
 * ```
 */
export function fusedAvailable(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * One AdamW update of variable `w` with moments `m`, `v` and gradient `g` as one kernel
 * (assigning the three variables), or false when the kernel is not available (the caller then
 * runs the unfused update).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { equal, ok } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { fusedAdamW } from "./fused.ts";
 * await initEngine({ backend: "wasm" });
 * const [w, m, v] = [tf.variable(tf.ones([2])), tf.variable(tf.zeros([2])), tf.variable(tf.zeros([2]))];
 * const c = { beta1: 0.9, beta2: 0.999, lr: 0.1, decay: 1, c1: 0.1, c2: 0.001, epsilon: 1e-8 };
 * equal(fusedAdamW(w, m, v, tf.ones([2]), c), true);
 * ok(Math.abs(w.dataSync()[0] - 0.9) < 1e-6); // Adam's first step: lr·sign(g)
 * ```
 */
export function fusedAdamW(
  w: tf.Variable,
  m: tf.Variable,
  v: tf.Variable,
  g: tf.Tensor,
  constants: AdamWConstants,
): boolean {
  if (!fusedAvailable(FUSED.adamW)) return false;
  const [w1, m1, v1] = run(FUSED.adamW, { w, m, v, g }, constants) as tf.Tensor[];
  w.assign(w1);
  m.assign(m1);
  v.assign(v1);
  tf.dispose([w1, m1, v1]);
  return true;
}

/**
 * `a[i] + b[i]` for every pair, as one kernel whose gradient passes dy to both sides, or
 * undefined when the kernel is not available.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { deepEqual } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { fusedAddPairs } from "./fused.ts";
 * await initEngine({ backend: "wasm" });
 * const [s] = fusedAddPairs([tf.ones([2])], [tf.ones([2])])!;
 * deepEqual([...s.dataSync()], [2, 2]);
 * ```
 */
export function fusedAddPairs(
  a: readonly tf.Tensor[],
  b: readonly tf.Tensor[],
): tf.Tensor[] | undefined {
  if (!fusedAvailable(FUSED.addPairs) || a.length !== b.length || a.length === 0) return undefined;
  const inputs: tf.NamedTensorMap = {};
  for (let i = 0; i < a.length; i++) {
    if (!tf.util.arraysEqual(a[i].shape, b[i].shape) || a[i].dtype !== "float32") return undefined;
    inputs[`a${i}`] = a[i];
    inputs[`b${i}`] = b[i];
  }
  const out = run(FUSED.addPairs, inputs, { count: a.length });
  return Array.isArray(out) ? out : [out];
}

/**
 * LayerNorm over the last axis (`(x − μ)/√(σ² + eps)·γ + β`) as one kernel, or undefined when
 * the kernel is not available.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { deepEqual } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { fusedLayerNorm } from "./fused.ts";
 * await initEngine({ backend: "wasm" });
 * const y = fusedLayerNorm(tf.tensor2d([[1, 3]]), tf.ones([2]), tf.zeros([2]), 0)!;
 * deepEqual([...y.dataSync()], [-1, 1]);
 * ```
 */
export function fusedLayerNorm<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
): T | undefined {
  if (!fusedAvailable(FUSED.layerNorm) || x.dtype !== "float32") return undefined;
  return run(FUSED.layerNorm, { x, gamma, beta }, { eps }) as T;
}

/**
 * Quick-GELU `x·σ(1.702·x)` as one kernel, or undefined when the kernel is not available.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { ok } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { fusedQuickGelu } from "./fused.ts";
 * await initEngine({ backend: "wasm" });
 * const [y0, y1] = fusedQuickGelu(tf.tensor1d([0, 1]))!.dataSync();
 * ok(y0 === 0 && Math.abs(y1 - 1 / (1 + Math.exp(-1.702))) < 1e-6);
 * ```
 */
export function fusedQuickGelu<T extends tf.Tensor>(x: T): T | undefined {
  if (!fusedAvailable(FUSED.quickGelu) || x.dtype !== "float32") return undefined;
  return run(FUSED.quickGelu, { x }) as T;
}

/**
 * Σ_h weights[h]·KL_h, KL_h = mean over rows of KL(p ‖ softmax(z)) on head h's block of
 * columns (`widths[h]` of them, side by side), as one kernel: returns the weighted total and
 * the per-head values [H], or undefined when the kernel is not available.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { ok } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { fusedHeadsKl } from "./fused.ts";
 * await initEngine({ backend: "wasm" });
 * const r = fusedHeadsKl(tf.tensor2d([[0, 0, 0]]), tf.tensor2d([[1, 0, 1]]), [2, 1], [1, 1])!;
 * ok(Math.abs(r.total.dataSync()[0] - Math.LN2) < 1e-6); // ln 2 + 0
 * ```
 */
export function fusedHeadsKl(
  z: tf.Tensor2D,
  p: tf.Tensor2D,
  widths: readonly number[],
  weights: readonly number[],
): { total: tf.Scalar; perHead: tf.Tensor1D } | undefined {
  if (!fusedAvailable(FUSED.headsKl) || z.dtype !== "float32") return undefined;
  const [total, perHead] = run(FUSED.headsKl, { z, p }, {
    widths: [...widths],
    weights: [...weights],
  }) as tf.Tensor[];
  return { total: total as tf.Scalar, perHead: perHead as tf.Tensor1D };
}

/**
 * Σ x² over a float32 tensor, read on the host (a wasm tensor: no device wait), or undefined
 * where the SIMD kernels do not run.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { equal } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { fusedSumSquares } from "./fused.ts";
 * await initEngine({ backend: "wasm" });
 * equal(fusedSumSquares(tf.tensor1d([3, 4])), 25);
 * ```
 */
export function fusedSumSquares(x: tf.Tensor): number | undefined {
  if (!fusedAvailable(FUSED.pack) || x.dtype !== "float32") return undefined;
  const backend = tf.backend() as unknown as Backend;
  return simdOf(backend)!.sumSquares(x.size, backend.getMemoryOffset(x.dataId));
}

/**
 * One AdamW update of `w`, `m`, `v` with the gradient `flat[offset … offset + w.size)` times
 * `gradScale` (the global-norm clipping factor, 1 without clipping), as one SIMD pass. The
 * update is in place where no other tensor shares the variables' data, else into new data that
 * the variables are assigned. Returns false where the SIMD kernels do not run.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { equal, ok } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { fusedAdamWAt } from "./fused.ts";
 * await initEngine({ backend: "wasm" });
 * const [w, m, v] = [tf.variable(tf.ones([2])), tf.variable(tf.zeros([2])), tf.variable(tf.zeros([2]))];
 * const c = { beta1: 0.9, beta2: 0.999, lr: 0.1, decay: 1, c1: 0.1, c2: 0.001, epsilon: 1e-8 };
 * equal(fusedAdamWAt(w, m, v, tf.tensor1d([9, 1, 1]), 1, c, 1), true);
 * ok(Math.abs(w.dataSync()[1] - 0.9) < 1e-6);
 * ```
 */
export function fusedAdamWAt(
  w: tf.Variable,
  m: tf.Variable,
  v: tf.Variable,
  flat: tf.Tensor,
  offset: number,
  constants: AdamWConstants,
  gradScale: number,
): boolean {
  if (!fusedAvailable(FUSED.adamW) || offset + w.size > flat.size) return false;
  const backend = tf.backend() as unknown as Backend & { refCount(id: tf.DataId): number };
  const vars = [w, m, v];
  const inPlace = vars.every((t) => backend.refCount(t.dataId) === 1) &&
    new Set(vars.map((t) => t.dataId)).size === 3;
  // allocate first: the heap may move while allocating
  const outs = inPlace ? [] : vars.map(() => backend.makeOutput([...w.shape], "float32"));
  const at = (t: { dataId: tf.DataId }) => backend.getMemoryOffset(t.dataId);
  const [pw, pm, pv] = vars.map(at);
  const targets = inPlace ? [pw, pm, pv] : outs.map(at);
  const c = constants;
  simdOf(backend)!.adamw(
    w.size,
    pw,
    pm,
    pv,
    at(flat) + 4 * offset,
    targets[0],
    targets[1],
    targets[2],
    c.beta1,
    1 - c.beta1,
    c.beta2,
    1 - c.beta2,
    c.lr,
    c.decay,
    c.c1,
    c.c2,
    c.epsilon,
    gradScale,
  );
  outs.forEach((out, i) => {
    const t = tf.engine().makeTensorFromTensorInfo(out);
    vars[i].assign(t);
    t.dispose();
  });
  return true;
}
