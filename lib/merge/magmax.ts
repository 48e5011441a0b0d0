/**
 * MagMax (Marczak et al., ECCV 2024): per entry, the task vector value of largest magnitude,
 *
 *   M_p = τ_{t*(p), p},  t*(p) = the last t with |τ_t,p| = max_s |τ_s,p|,
 *
 * over every tensor; θ = θ0 + α·M. Ties go to the later task, as the official `merge_max_abs`
 * folds the tasks in order with `>=`.
 *
 * @module
 */
import type { MergeMethod } from "./method.ts";
import { scalingParam } from "./params.ts";

/**
 * The MagMax selection of one tensor: each entry from the task of largest |τ| (later tasks win
 * ties).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { magmaxSelect } from "./magmax.ts";
 * const out = magmaxSelect([new Float32Array([1, -3, 2]), new Float32Array([-2, 1, 2])]);
 * deepStrictEqual(out, new Float32Array([-2, -3, 2])); // the tie at 2 goes to the later task
 * ```
 */
export function magmaxSelect(taus: readonly Float32Array[]): Float32Array {
  const out = taus[0].slice();
  for (let t = 1; t < taus.length; t++) {
    const tau = taus[t];
    for (let i = 0; i < out.length; i++) {
      if (Math.abs(tau[i]) >= Math.abs(out[i])) out[i] = tau[i];
    }
  }
  return out;
}

/**
 * The MagMax method (α = 0.5, the official 8-task script).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { magmax } from "./magmax.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2], data: new Float32Array(v) } });
 * const m = await merge(magmax, [tau([1, -3]), tau([-2, 1])], { scaling: 1 });
 * deepStrictEqual(m.get("w").data, new Float32Array([-2, -3]));
 * ```
 */
export const magmax: MergeMethod = {
  name: "magmax",
  title: "MagMax (maximum-magnitude selection)",
  paper: "Marczak et al., MagMax: Leveraging Model Merging for Seamless Continual Learning, " +
    "ECCV 2024",
  code: "danielm1405/magmax src/merging/task_vectors.py (merge_max_abs); " +
    "tanganke/fusion_bench fusion_bench/method/magmax/magmax.py",
  summary: "Per entry, the task vector value of largest magnitude (later tasks win ties).",
  tensorRule: "every tensor: elementwise",
  params: [
    scalingParam(
      0.5,
      "tanganke/fusion_bench@54c9e8c config/method/magmax/magmax.yaml (scaling_factor: 0.5, " +
        "after the official merge_8datasets.py scaling_coef = 0.5)",
    ),
  ],
  treatment: () => "elementwise",
  prepare: () => Promise.resolve({ tensor: (_n, _s, taus) => magmaxSelect(taus) }),
};
