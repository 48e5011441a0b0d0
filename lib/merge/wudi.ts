/**
 * WUDI-Merging (Cheng et al., ICML 2025, "Whoever Started the Interference Should End It";
 * docs/METHODS.md, `wudi`). Per linear layer, M minimises the data-free interference loss
 *
 *   L(M) = Σ_t (1/‖Δ_t‖_F²) · ‖(M − Δ_t) Δ_tᵀ‖_F²,
 *
 * by Adam as the official code runs it: start at the TA sum Σ_t Δ_t, lr 1e-5, β = (0.9, 0.999),
 * ε = 1e-8, no weight decay, 300 steps; the merged model uses α = 1.
 *
 * Implementation: Adam is written on Float32Arrays (PyTorch's update order), and the gradient
 * is computed in closed form, ∇L = 2(M·A − B) with A = Σ_t w_t Δ_tᵀΔ_t (n×n) and
 * B = Σ_t w_t Δ_t Δ_tᵀ Δ_t (m×n), w_t = 1/‖Δ_t‖², both formed once; each step is then one
 * m×n×n product (OpenBLAS sgemm through `lib/linalg`). A task whose Δ_t is zero contributes
 * nothing (its term is 0; the original would divide 0 by 0).
 *
 * @module
 */
import { matmul } from "../linalg/matmul.ts";
import { meanOf, sumOf } from "./elementwise.ts";
import type { MergeMethod, Params, TensorMerger, Treatment } from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { isBlockLinearWeight } from "./rules.ts";

/** WUDI's optimisation settings. */
export interface WudiSettings {
  /** Adam steps. */
  iterations: number;
  /** Adam learning rate. */
  lr: number;
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

/** A = Σ_t w_t Δ_tᵀΔ_t and B = Σ_t w_t Δ_t Δ_tᵀΔ_t with w_t = 1/‖Δ_t‖² (zero tasks skipped). */
function lossTerms(taus: readonly Float32Array[], rows: number, cols: number) {
  const a = new Float32Array(cols * cols);
  const b = new Float32Array(rows * cols);
  for (const tau of taus) {
    let squared = 0;
    for (const v of tau) squared += v * v;
    if (squared === 0) continue;
    const w = 1 / Math.fround(squared);
    const gram = matmul(tau, tau, cols, rows, cols, { transA: true });
    const product = matmul(tau, gram, rows, cols, cols);
    for (let i = 0; i < a.length; i++) a[i] += w * gram[i];
    for (let i = 0; i < b.length; i++) b[i] += w * product[i];
  }
  return { a, b };
}

/**
 * The WUDI merge of one matrix: `iterations` Adam steps on L(M) from the TA sum.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { wudiMergeMatrix } from "./wudi.ts";
 * const a = new Float32Array([1, 0, 0, 0]), b = new Float32Array([0, 0, 0, 1]);
 * // orthogonal tasks do not interfere: the TA sum is already optimal
 * const merged = wudiMergeMatrix([a, b], 2, 2, { iterations: 10, lr: 1e-5 });
 * ok([1, 0, 0, 1].every((v, i) => Math.abs(merged[i] - v) < 1e-6));
 * ```
 */
export function wudiMergeMatrix(
  taus: readonly Float32Array[],
  rows: number,
  cols: number,
  settings: WudiSettings,
): Float32Array {
  const { a, b } = lossTerms(taus, rows, cols);
  const m = sumOf(taus);
  const first = new Float32Array(m.length);
  const second = new Float32Array(m.length);
  for (let step = 1; step <= settings.iterations; step++) {
    const grad = matmul(m, a, rows, cols, cols);
    const stepSize = settings.lr / (1 - BETA1 ** step);
    const correction2 = Math.sqrt(1 - BETA2 ** step);
    for (let i = 0; i < m.length; i++) {
      const g = Math.fround(2 * (grad[i] - b[i]));
      first[i] += (1 - BETA1) * (g - first[i]);
      second[i] = second[i] * BETA2 + (1 - BETA2) * g * g;
      const denom = Math.fround(Math.fround(Math.sqrt(second[i]) / correction2) + EPS);
      m[i] -= stepSize * (first[i] / denom);
    }
  }
  return m;
}

function wudiTreatment(name: string, shape: readonly number[], params: Params): Treatment {
  if (stringParam(params, "tensors") === "linear") {
    return isBlockLinearWeight(name, shape) ? "matrix" : "pretrained";
  }
  return shape.length === 2 ? "matrix" : "mean";
}

function wudiMerger(params: Params): TensorMerger {
  const settings = { iterations: numberParam(params, "iterations"), lr: numberParam(params, "lr") };
  return {
    tensor: (name, shape, taus) => {
      switch (wudiTreatment(name, shape, params)) {
        case "matrix":
          return wudiMergeMatrix(taus, shape[0], shape[1], settings);
        case "mean":
          return meanOf(taus);
        default:
          return new Float32Array(taus[0].length);
      }
    },
  };
}

/**
 * The WUDI-Merging method (official ViT settings by default; `tensors=all2d` gives
 * FusionBench's variant, which also uses `iterations=400` in its config).
 *
 * @example
 * ```ts
 * import { deepEqual, ok } from "node:assert/strict";
 * import { wudi } from "./wudi.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const w = "vision_model.encoder.layers.0.mlp.fc1.weight";
 * const tau = (v: number[]) => new MemorySource("τ", {
 *   [w]: { shape: [2, 2], data: new Float32Array(v) },
 *   "vision_model.encoder.layers.0.mlp.fc1.bias": { shape: [2], data: new Float32Array([1, 1]) },
 * });
 * const m = await merge(wudi, [tau([1, 0.5, 0, 0]), tau([0, 0.5, 0, 1])], { params: { iterations: 20 } });
 * // the weight moves off the TA sum (1, 1, 0, 1) by 20 Adam steps of lr 1e-5; the bias stays
 * // at θ0 (WUDI merges only the blocks' linear weights)
 * const weight = m.get(w).data;
 * ok([1, 1, 0, 1].every((v, i) => Math.abs(weight[i] - v) < 1e-3 && weight[i] !== v));
 * deepEqual(m.get("vision_model.encoder.layers.0.mlp.fc1.bias").data, new Float32Array([0, 0]));
 * ```
 */
export const wudi: MergeMethod = {
  name: "wudi",
  title: "WUDI-Merging",
  paper: "Cheng et al., Whoever Started the Interference Should End It: Guiding Data-Free " +
    "Model Merging via Task Vectors, ICML 2025",
  code: "nathanielyvo/WUDI-Merging vit/wudi_main.py (get_redundant_task_vector); " +
    "tanganke/fusion_bench fusion_bench/method/wudi/wudi.py",
  summary: "Per linear layer, Adam (β = 0.9, 0.999, ε = 1e-8, no weight decay) from the TA sum " +
    "on Σ_t ‖(M − Δ_t)Δ_tᵀ‖²/‖Δ_t‖²; α = 1.",
  tensorRule: "tensors=linear (official ViT code): the linear weights of transformer blocks " +
    "(HF q/k/v/out_proj, fc1, fc2; open_clip in_proj_weight, out_proj, c_fc, c_proj) " +
    "optimised, every other tensor left at its pretrained value; tensors=all2d (FusionBench): " +
    "every 2-D tensor optimised, every other tensor averaged",
  usesLinalg: true,
  fusionBench: {
    params: { tensors: "all2d", iterations: 400 },
    note: "FusionBench's WUDIMerging optimises every 2-D tensor (and averages the rest) for 400 " +
      "steps (config/method/wudi/wudi.yaml iter_num: 400); the official ViT code merges only " +
      "the blocks' linear weights for 300",
  },
  params: [
    {
      name: "iterations",
      type: "integer",
      default: 300,
      min: 0,
      source: "nathanielyvo/WUDI-Merging vit/wudi_main.py (iter_num = 300, --iter); " +
        "FusionBench config/method/wudi/wudi.yaml uses iter_num: 400",
      meaning: "Adam steps per matrix",
    },
    {
      name: "lr",
      type: "number",
      default: 1e-5,
      min: 0,
      minExclusive: true,
      source: "nathanielyvo/WUDI-Merging vit/wudi_main.py (torch.optim.Adam lr=1e-5)",
      meaning: "Adam learning rate",
    },
    {
      name: "tensors",
      type: "choice",
      default: "linear",
      choices: ["linear", "all2d"],
      source: "nathanielyvo/WUDI-Merging vit/wudi_main.py (in_proj/out_proj/c_fc/c_proj only); " +
        "all2d is tanganke/fusion_bench wudi.py",
      meaning: "which tensors are optimised (and what the others get: pretrained or mean)",
    },
    scalingParam(1, "nathanielyvo/WUDI-Merging vit/wudi_main.py (apply_to(scaling_coef=1))"),
  ],
  treatment: wudiTreatment,
  prepare: ({ params }) => Promise.resolve(wudiMerger(params)),
};
