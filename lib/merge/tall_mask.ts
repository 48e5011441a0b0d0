/**
 * TALL-mask compression (Wang et al., ICML 2024): one model per task, rebuilt from a shared
 * multi-task vector and one binary mask per task. With τ_MTL the TA sum Σ_t τ_t (or TIES with
 * k = 20 and dis-sum, `mtl=ties`), task t's mask is
 *
 *   m_t = 1[|τ_t| > λ·|τ_MTL − τ_t|]   (elementwise, every tensor),
 *
 * and task t is evaluated with θ0 + α·(m_t ⊙ τ_MTL), α = 1.
 *
 * The original picks λ per task from {0.2, 0.3, 0.4, 0.5, 0.6} by that task's validation
 * accuracy (data); this data-free method uses one λ for every task, FusionBench's 0.6.
 *
 * @module
 */
import { sumOf } from "./elementwise.ts";
import type { MergeMethod, Params, TensorMerger } from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { prepareTies } from "./ties.ts";

/**
 * Task t's TALL mask applied to the multi-task vector: mtl_p where |τ_t,p| > λ·|mtl_p − τ_t,p|,
 * else 0 (float32 arithmetic, as PyTorch computes it).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { tallMasked } from "./tall_mask.ts";
 * // |1| > 0.6·|2 − 1| keeps the first entry; |0.1| ≤ 0.6·|1 − 0.1| drops the second
 * deepStrictEqual(tallMasked(new Float32Array([1, 0.1]), new Float32Array([2, 1]), 0.6), new Float32Array([2, 0]));
 * ```
 */
export function tallMasked(tau: Float32Array, mtl: Float32Array, lambda: number): Float32Array {
  const lam = Math.fround(lambda);
  const diff = new Float32Array(1);
  const rhs = new Float32Array(1);
  const out = new Float32Array(mtl.length);
  for (let i = 0; i < out.length; i++) {
    diff[0] = mtl[i] - tau[i];
    rhs[0] = Math.abs(diff[0]) * lam;
    if (Math.abs(tau[i]) > rhs[0]) out[i] = mtl[i];
  }
  return out;
}

function tallMerger(params: Params, mtl: TensorMerger): TensorMerger {
  const lambda = numberParam(params, "lambda");
  return {
    notes: mtl.notes,
    tensor: () => {
      throw new Error("tall_mask builds one model per task: read each task's model");
    },
    taskTensor: async (task, name, shape, taus) =>
      tallMasked(taus[task], await mtl.tensor(name, shape, taus), lambda),
  };
}

/**
 * The TALL-mask compression method (λ = 0.6 for every task, τ_MTL = TA sum, α = 1).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { tallMask } from "./tall_mask.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2], data: new Float32Array(v) } });
 * const m = await merge(tallMask, [tau([1, 0]), tau([0, 1])]);
 * deepStrictEqual(m.perTask![0].get("w").data, new Float32Array([1, 0]));
 * deepStrictEqual(m.perTask![1].get("w").data, new Float32Array([0, 1]));
 * ```
 */
export const tallMask: MergeMethod = {
  name: "tall_mask",
  title: "TALL-mask compression",
  paper: "Wang et al., Localizing Task Information for Improved Model Merging and " +
    "Compression, ICML 2024",
  code: "nik-dim/tall_masks src/utils/tallmask_utils.py (generate_task_masks), " +
    "src/eval/eval.py (each task with its own mask at α = 1); tanganke/fusion_bench " +
    "fusion_bench/method/tall_mask/",
  summary: "τ_MTL = Σ_t τ_t (or TIES); task t's model is θ0 + m_t ⊙ τ_MTL with the TALL mask " +
    "m_t = |τ_t| > λ|τ_MTL − τ_t|.",
  tensorRule: "every tensor, elementwise (TIES's MTL: with whole-model thresholds)",
  output: "per-task",
  fusionBench: {
    params: { lambda: 0.6, mtl: "ta" },
    note: "FusionBench's TallMaskTaskArithmeticAlgorithm.run passes τ_t where its mask " +
      "function expects θ_t, comparing |θ0 − τ_t| rather than |θ0 − θ_t| = |τ_t|; we follow " +
      "the paper, tall_masks and FusionBench's flat-vector tall_mask/utils.py " +
      "(generate_task_masks), which compare |τ_t|",
  },
  params: [
    {
      name: "lambda",
      type: "number",
      default: 0.6,
      min: 0,
      source: "tanganke/fusion_bench@54c9e8c config/method/tall_mask/task_arithmetic.yaml " +
        "(tall_mask_lambda: 0.6); tall_masks picks it per task from {0.2, …, 0.6} on " +
        "validation data",
      meaning: "TALL-mask λ (the same for every task): m_t = |τ_t| > λ·|τ_MTL − τ_t|",
    },
    {
      name: "mtl",
      type: "choice",
      default: "ta",
      choices: ["ta", "ties"],
      source: "nik-dim/tall_masks config/method/tall_mask.yaml (use_ties: false); FusionBench " +
        "uses the TA sum",
      meaning: "the multi-task vector: the TA sum, or TIES (k = 20, dis-sum) at scale 1",
    },
    scalingParam(
      1,
      "nik-dim/tall_masks src/eval/eval.py (TALL masks evaluated at scaling_coef 1.0)",
    ),
  ],
  treatment: () => "elementwise",
  prepare: async ({ tasks, params, progress }) => {
    const mtl: TensorMerger = stringParam(params, "mtl") === "ties"
      ? await prepareTies(tasks, { k: 20, merge: "sum" }, progress)
      : { tensor: (_n, _s, taus) => sumOf(taus) };
    return tallMerger(params, mtl);
  },
};
