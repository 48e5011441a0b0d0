/**
 * TIES with the `max` disjoint merge (TIES-max; Yadav et al., NeurIPS 2023): trim each task
 * vector to its top-k% magnitudes over the whole model, elect a sign per entry from the trimmed
 * sum, then take, among the entries that agree with it, the one of largest magnitude:
 * M_p = γ_p · max_{t agrees} |τ̂_t,p| (0 where none agrees). Everything else is TIES
 * (`ties.ts`): whole-model thresholds, zero sums resolved to the majority sign.
 *
 * @module
 */
import type { MergeMethod } from "./method.ts";
import { numberParam, scalingParam } from "./params.ts";
import { prepareTies, tiesKParam } from "./ties.ts";

/**
 * The TIES-max method (FusionBench's TIES defaults, k = 20 and α = 0.3, with `merge_func: max`).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { tiesMax } from "./ties_max.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2], data: new Float32Array(v) } });
 * const m = await merge(tiesMax, [tau([1, -2]), tau([3, 1])], { params: { k: 100 }, scaling: 1 });
 * deepStrictEqual(m.get("w").data, new Float32Array([3, -2])); // elected signs +, −
 * ```
 */
export const tiesMax: MergeMethod = {
  name: "ties_max",
  title: "TIES-Merging with the max merge (TIES-max)",
  paper: "Yadav et al., TIES-Merging: Resolving Interference When Merging Models, NeurIPS 2023 " +
    "(disjoint max)",
  code: "tanganke/fusion_bench fusion_bench/method/ties_merging/ties_merging_utils.py " +
    "(disjoint_merge, merge_func 'max'); prateeky2806/ties-merging src/utils/merge_utils.py",
  summary: "TIES trim (top-k% per task over the whole model) and sign election, then per " +
    "entry the agreeing value of largest magnitude.",
  tensorRule: "every tensor, flattened into one vector per task: elementwise, with " +
    "whole-model thresholds",
  params: [
    tiesKParam(
      20,
      "tanganke/fusion_bench@54c9e8c config/method/ties_merging.yaml (threshold: 20; " +
        "merge_func options sum, mean, max)",
    ),
    scalingParam(
      0.3,
      "tanganke/fusion_bench@54c9e8c config/method/ties_merging.yaml (scaling_factor: 0.3)",
    ),
  ],
  treatment: () => "elementwise",
  prepare: ({ tasks, params, progress }) =>
    prepareTies(tasks, { k: numberParam(params, "k"), merge: "max" }, progress),
};
