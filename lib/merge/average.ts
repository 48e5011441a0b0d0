/**
 * Weight averaging (docs/METHODS.md, `average`): θ = (1/T) Σ_t θ_t = θ0 + (1/T) Σ_t τ_t, every
 * tensor elementwise.
 *
 * @module
 */
import { meanOf } from "./elementwise.ts";
import type { MergeMethod } from "./method.ts";
import { scalingParam } from "./params.ts";

/**
 * The weight-averaging method: M = mean_t τ_t, with α = 1 by default.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { average } from "./average.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number) => new MemorySource("τ", { w: { shape: [1], data: new Float32Array([v]) } });
 * const m = await merge(average, [tau(1), tau(3)]);
 * deepEqual(m.get("w").data, new Float32Array([2]));
 * ```
 */
export const average: MergeMethod = {
  name: "average",
  title: "Weight averaging",
  paper: "Wortsman et al., ICML 2022 (model soups); the merging baseline of Ilharco et al. 2023",
  code: "nik-dim/tall_masks src/eval (evaluate_task_vector, branch 'average': sum at α = 1/T); " +
    "tanganke/fusion_bench SimpleAverageAlgorithm",
  summary: "θ = (1/T) Σ_t θ_t: the elementwise mean of the task vectors added to θ0.",
  tensorRule: "every tensor: elementwise mean over tasks",
  params: [
    scalingParam(
      1,
      "fixed: averaging is the TA sum at α = 1/T in tall_masks/TSV/Iso; FusionBench " +
        "config/method/simple_average.yaml has no hyperparameters",
    ),
  ],
  treatment: () => "mean",
  prepare: () => Promise.resolve({ tensor: (_n, _s, taus) => meanOf(taus) }),
};
