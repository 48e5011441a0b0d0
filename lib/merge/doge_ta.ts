/**
 * DOGE-TA, "Modeling Multi-Task Model Merging as Adaptive Projective Gradient Descent" (Wei et
 * al., ICML 2025; arXiv 2501.01230), data-free, as FusionBench's `DOGE_TA_Algorithm` runs it.
 * On the linear weights of the transformer blocks, per layer with task matrices V_t:
 * 1. λ_t = λ / ‖V_t‖_F (λ = 0.07), S = Σ_t λ_t V_t, c = Σ_t λ_t.
 * 2. A shared modification δ (m×n, from 0) minimises
 *      L(δ) = Σ_j ‖rowsum(V_j ⊙ (V_j − S − c·δ))‖²
 *    by 400 Adam steps (lr 1e-4), each gradient with its component in the shared subspace
 *    removed, g ← g − P·g: P = U_k U_kᵀ, U_k the top k = ⌊r/6⌋ left singular vectors of the
 *    matrix of every task's top ⌊r/T⌋ left singular vectors (r = min(m, n)).
 * 3. Each task keeps its own top-K% magnitudes (K = 30, one threshold per task over all these
 *    layers): M = Σ_t λ_t (V_t + δ) ⊙ mask_t.
 * Every other tensor stays at θ0; θ = θ0 + α·M with α = 1.
 *
 * The gradient is formed in closed form, ∇L = −2c Σ_j diag(r_j) V_j with r_j the row sums of
 * step 2, and Adam is PyTorch's update order (as in `wudi.ts`).
 *
 * @module
 */
import { matmul } from "../linalg/matmul.ts";
import { svd } from "../linalg/svd.ts";
import type { TensorSource } from "../tensor/source.ts";
import { numel } from "../tensor/host.ts";
import { copyColumns } from "./matrix.ts";
import type { MergeMethod, Params, TensorMerger } from "./method.ts";
import { numberParam, scalingParam } from "./params.ts";
import { isBlockLinearWeight } from "./rules.ts";
import { tiesThresholds } from "./ties.ts";

/** DOGE-TA's settings. */
export interface DogeSettings {
  /** λ: the task weights are λ/‖V_t‖. */
  lambda: number;
  /** The shared subspace keeps ⌊r/subspace⌋ directions. */
  subspace: number;
  /** Adam steps per layer. */
  iterations: number;
  /** Adam learning rate. */
  lr: number;
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

/**
 * The projector P = U_k U_kᵀ (rows×rows) onto the shared subspace of one layer's tasks.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { dogeProjector } from "./doge_ta.ts";
 * const p = dogeProjector([new Float32Array([1, 0, 0, 0])], 2, 2, 2); // k = ⌊2/2⌋ = 1
 * ok([1, 0, 0, 0].every((v, i) => Math.abs(p[i] - v) < 1e-6)); // onto the first axis
 * ```
 */
export function dogeProjector(
  taus: readonly Float32Array[],
  rows: number,
  cols: number,
  subspace: number,
): Float32Array {
  const r = Math.min(rows, cols);
  const each = Math.trunc(r / taus.length);
  const stacked = { data: new Float32Array(rows * r), rows, cols: r };
  taus.forEach((tau, t) => {
    const f = svd(tau, rows, cols);
    copyColumns({ data: f.u, rows, cols: f.k }, 0, stacked, t * each, each);
  });
  const k = Math.trunc(r / subspace);
  if (k === 0) return new Float32Array(rows * rows); // no shared subspace: nothing projected
  const f = svd(stacked.data, rows, r);
  const uk = { data: new Float32Array(rows * k), rows, cols: k };
  copyColumns({ data: f.u, rows, cols: f.k }, 0, uk, 0, k);
  return matmul(uk.data, uk.data, rows, k, rows, { transB: true });
}

/**
 * The shared modification δ of one layer: `iterations` projected Adam steps on L(δ) from 0.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { dogeDelta } from "./doge_ta.ts";
 * const taus = [new Float32Array([1, 0, 0, 1]), new Float32Array([0, 1, 1, 0])];
 * const d = dogeDelta(taus, 2, 2, { lambda: 0.07, subspace: 6, iterations: 10, lr: 1e-4 });
 * // r = 2 < subspace: nothing is projected out; 10 Adam steps of lr 1e-4 move each entry by 1e-3
 * ok(d.every((v) => Math.abs(v - 1e-3) < 1e-6));
 * ```
 */
export function dogeDelta(
  taus: readonly Float32Array[],
  rows: number,
  cols: number,
  settings: DogeSettings,
): Float32Array {
  const lambdas = taus.map((tau) => settings.lambda / frobenius(tau));
  const c = Math.fround(lambdas.reduce((a, b) => a + b, 0));
  const shared = new Float32Array(rows * cols);
  taus.forEach((tau, t) => {
    for (let i = 0; i < shared.length; i++) shared[i] += Math.fround(tau[i] * lambdas[t]);
  });
  const projector = dogeProjector(taus, rows, cols, settings.subspace);
  const delta = new Float32Array(rows * cols);
  const first = new Float32Array(delta.length);
  const second = new Float32Array(delta.length);
  const grad = new Float32Array(delta.length);
  const rowSums = new Float64Array(rows);
  for (let step = 1; step <= settings.iterations; step++) {
    grad.fill(0);
    for (const v of taus) {
      for (let a = 0; a < rows; a++) {
        let sum = 0;
        for (let b = a * cols; b < (a + 1) * cols; b++) {
          sum += v[b] * (v[b] - shared[b] - c * delta[b]);
        }
        rowSums[a] = sum;
      }
      for (let a = 0; a < rows; a++) {
        const f = -2 * c * rowSums[a];
        for (let b = a * cols; b < (a + 1) * cols; b++) grad[b] += f * v[b];
      }
    }
    const inSubspace = matmul(projector, grad, rows, rows, cols);
    const stepSize = settings.lr / (1 - BETA1 ** step);
    const correction2 = Math.sqrt(1 - BETA2 ** step);
    for (let i = 0; i < delta.length; i++) {
      const g = Math.fround(grad[i] - inSubspace[i]);
      first[i] += (1 - BETA1) * (g - first[i]);
      second[i] = second[i] * BETA2 + (1 - BETA2) * g * g;
      const denom = Math.fround(Math.fround(Math.sqrt(second[i]) / correction2) + EPS);
      delta[i] -= stepSize * (first[i] / denom);
    }
  }
  return delta;
}

function frobenius(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.fround(Math.sqrt(s));
}

/** The task vectors restricted to the tensors DOGE-TA merges. */
function mergedTensors(task: TensorSource): TensorSource {
  const names = task.names().filter((n) => isBlockLinearWeight(n, task.shape(n)));
  return {
    label: task.label,
    names: () => names,
    shape: (name) => task.shape(name),
    read: (name) => task.read(name),
  };
}

function dogeMerger(params: Params, thresholds: readonly number[]): TensorMerger {
  const settings: DogeSettings = {
    lambda: numberParam(params, "lambda"),
    subspace: numberParam(params, "subspace"),
    iterations: numberParam(params, "iterations"),
    lr: numberParam(params, "lr"),
  };
  return {
    notes: { dogeThresholds: [...thresholds] },
    tensor: (name, shape, taus) => {
      if (!isBlockLinearWeight(name, shape)) return new Float32Array(numel(shape));
      const [rows, cols] = shape;
      const delta = dogeDelta(taus, rows, cols, settings);
      const out = new Float32Array(rows * cols);
      taus.forEach((tau, t) => {
        const lambda = Math.fround(settings.lambda / frobenius(tau));
        for (let i = 0; i < out.length; i++) {
          if (Math.abs(tau[i]) >= thresholds[t]) {
            out[i] += Math.fround((tau[i] + delta[i]) * lambda);
          }
        }
      });
      return out;
    },
  };
}

/**
 * The DOGE-TA method (FusionBench's configuration: λ = 0.07, subspace 6, K = 30 %, 400 Adam
 * steps at lr 1e-4).
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { dogeTa } from "./doge_ta.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const w = "vision_model.encoder.layers.0.mlp.fc1.weight";
 * const tau = (v: number[]) => new MemorySource("τ", { [w]: { shape: [2, 2], data: new Float32Array(v) } });
 * const m = await merge(dogeTa, [tau([1, 0.5, 0, 0]), tau([0, 0.5, 0, 1])], { params: { iterations: 5 } });
 * const [a, b, c, d] = m.get(w).data; // λ_t = 0.07/‖τ_t‖ ≈ 0.0626 on the top-30 % entries, plus δ
 * ok(Math.abs(a - 0.0626) < 1e-3 && Math.abs(b - 0.0627) < 1e-3 && Math.abs(d - 0.0626) < 1e-3);
 * equal(c, 0); // in neither task's mask
 * ```
 */
export const dogeTa: MergeMethod = {
  name: "doge_ta",
  title: "DOGE-TA (adaptive projective gradient descent, task arithmetic)",
  paper: "Wei et al., Modeling Multi-Task Model Merging as Adaptive Projective Gradient " +
    "Descent, ICML 2025 (arXiv 2501.01230)",
  code: "tanganke/fusion_bench fusion_bench/method/doge_ta/doge_ta.py (DOGE_TA_Algorithm)",
  summary: "Per block linear layer, a shared δ by 400 Adam steps projected off the tasks' " +
    "shared subspace; M = Σ_t (λ/‖τ_t‖)·(τ_t + δ) ⊙ top-30% mask of τ_t.",
  tensorRule: "the linear weights of transformer blocks (HF q/k/v/out_proj, fc1, fc2; " +
    "open_clip in_proj, out_proj, c_fc, c_proj): optimised and masked; every other tensor " +
    "stays at θ0",
  usesLinalg: true,
  fusionBench: {
    params: {},
    note: "FusionBench selects keys containing 'encoder' and 'weight' but not 'layer_norm': " +
      "the same tensors for HF CLIP names, none for open_clip's; here both schemes' block " +
      "linear weights",
  },
  params: [
    {
      name: "lambda",
      type: "number",
      default: 0.07,
      min: 0,
      minExclusive: true,
      source: "tanganke/fusion_bench@54c9e8c config/method/doge_ta/doge_ta.yaml (lamda: 0.07)",
      meaning: "task weight numerator: λ_t = λ/‖τ_t‖ per layer",
    },
    {
      name: "subspace",
      type: "number",
      default: 6,
      min: 1,
      source: "tanganke/fusion_bench@54c9e8c config/method/doge_ta/doge_ta.yaml (subspace: 6)",
      meaning: "the shared subspace keeps ⌊r/subspace⌋ directions",
    },
    {
      name: "k",
      type: "number",
      default: 30,
      min: 0,
      max: 100,
      minExclusive: true,
      source: "tanganke/fusion_bench@54c9e8c config/method/doge_ta/doge_ta.yaml (K: 30)",
      meaning: "percent of each task's entries kept by magnitude (over the merged tensors)",
    },
    {
      name: "iterations",
      type: "integer",
      default: 400,
      min: 0,
      source: "tanganke/fusion_bench@54c9e8c doge_ta.py (range(400) in optimize_delta)",
      meaning: "Adam steps per layer",
    },
    {
      name: "lr",
      type: "number",
      default: 1e-4,
      min: 0,
      minExclusive: true,
      source: "tanganke/fusion_bench@54c9e8c doge_ta.py (torch.optim.Adam lr=1e-4)",
      meaning: "Adam learning rate",
    },
    scalingParam(1, "fixed: FusionBench adds the merged vector to θ0 as it is"),
  ],
  treatment: (name, shape) => isBlockLinearWeight(name, shape) ? "matrix" : "pretrained",
  prepare: async ({ tasks, params, progress }) => {
    const thresholds = await tiesThresholds(
      tasks.map(mergedTensors),
      numberParam(params, "k"),
      progress,
    );
    return dogeMerger(params, thresholds);
  },
};
