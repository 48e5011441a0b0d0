/**
 * Weighted averaging (FusionBench `WeightedAverageAlgorithm`, mergekit `linear`): with weights
 * w_t, M = Σ_t w_t τ_t / Σ_t w_t (`normalize`, the default) or Σ_t w_t τ_t; θ = θ0 + α·M.
 * Without weights every task weighs 1, which is plain averaging.
 *
 * FusionBench averages the models themselves, θ = Σ_t w_t θ_t: the same as θ0 + Σ_t w_t τ_t
 * when the weights sum to 1 (always so with `normalize`). Unnormalised weights that do not sum
 * to 1 also scale θ0 there; here θ0 keeps weight 1 (task vectors are what is merged).
 *
 * @module
 */
import type { MergeMethod, Params, TensorMerger } from "./method.ts";
import { numbersParam, scalingParam } from "./params.ts";

/**
 * The per-task coefficients c_t with M = Σ_t c_t τ_t: the weights (all 1 when none are given),
 * divided by their sum when normalising. Errors name what is wrong.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { averageCoefficients } from "./weighted_average.ts";
 * deepStrictEqual(averageCoefficients([1, 3], true, 2), [0.25, 0.75]);
 * deepStrictEqual(averageCoefficients([], true, 4), [0.25, 0.25, 0.25, 0.25]);
 * ```
 */
export function averageCoefficients(
  weights: readonly number[],
  normalize: boolean,
  tasks: number,
): number[] {
  const w = weights.length === 0 ? Array.from({ length: tasks }, () => 1) : [...weights];
  if (w.length !== tasks) {
    throw new Error(
      `weighted_average: ${w.length} weights for ${tasks} task vectors (give one per task, ` +
        `in task order, or none for equal weights)`,
    );
  }
  if (!normalize) return w;
  const total = w.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new Error(`weighted_average: the weights sum to ${total}, not > 0`);
  return w.map((x) => x / total);
}

function weightedMerger(params: Params, tasks: number): TensorMerger {
  const c = averageCoefficients(numbersParam(params, "weights"), params.normalize === true, tasks);
  return {
    notes: { weights: c },
    tensor: (_name, _shape, taus) => {
      const out = new Float32Array(taus[0].length);
      taus.forEach((tau, t) => {
        for (let i = 0; i < out.length; i++) out[i] += c[t] * tau[i];
      });
      return out;
    },
  };
}

/**
 * The weighted-average method (equal weights, normalised, α = 1 by default).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { weightedAverage } from "./weighted_average.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number) => new MemorySource("τ", { w: { shape: [1], data: new Float32Array([v]) } });
 * const m = await merge(weightedAverage, [tau(1), tau(5)], { params: { weights: "3,1" } });
 * equal(m.get("w").data[0], 2); // (3·1 + 1·5) / 4
 * ```
 */
export const weightedAverage: MergeMethod = {
  name: "weighted_average",
  title: "Weighted averaging",
  paper: "Wortsman et al., ICML 2022 (model soups); Matena & Raffel, NeurIPS 2022 (the " +
    "isotropic baseline of Fisher merging)",
  code: "tanganke/fusion_bench fusion_bench/method/weighted_average/weighted_average.py; " +
    "arcee-ai/mergekit linear",
  summary: "M = Σ_t w_t τ_t / Σ_t w_t (normalised) or Σ_t w_t τ_t.",
  tensorRule: "every tensor: elementwise weighted sum",
  notInDefaultStudy: "at its default (equal weights) it is `average`",
  fusionBench: {
    params: { normalize: true },
    note: "FusionBench merges θ = Σ_t w_t θ_t; equal to ours whenever the weights sum to 1 " +
      "(always with normalize); its config's weights (0.5, 0.5) are for two models",
  },
  params: [
    {
      name: "weights",
      type: "numbers",
      default: [],
      min: 0,
      source: "ours: none given means equal weights; tanganke/fusion_bench@54c9e8c " +
        "config/method/linear/weighted_average.yaml lists 0.5, 0.5 for two models",
      meaning: "one weight per task, in task order (empty: all 1)",
    },
    {
      name: "normalize",
      type: "boolean",
      default: true,
      source: "tanganke/fusion_bench@54c9e8c config/method/linear/weighted_average.yaml " +
        "(normalize: true)",
      meaning: "divide the weights by their sum",
    },
    scalingParam(
      1,
      "fixed: the weighted mean itself (FusionBench has no scaling for it)",
    ),
  ],
  treatment: () => "mean",
  prepare: ({ params, tasks }) => Promise.resolve(weightedMerger(params, tasks.length)),
};
