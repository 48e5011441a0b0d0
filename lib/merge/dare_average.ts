/**
 * DARE followed by simple averaging (Yu et al., ICML 2024; FusionBench `DareSimpleAverage`):
 * each entry of each τ_t is dropped with probability p and the survivors divided by 1 − p
 * (`dare.ts`), then M = (1/T) Σ_t τ̃_t; θ = θ0 + α·M with α = 1.
 *
 * @module
 */
import { DARE_PARAMS, DARE_RULE, dareSettings, droppingMerger } from "./dare.ts";
import { meanOf } from "./elementwise.ts";
import type { MergeMethod } from "./method.ts";
import { scalingParam } from "./params.ts";

/**
 * DARE + simple average (FusionBench defaults: p = 0.5, rescale, every tensor).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { dareAverage } from "./dare_average.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = new MemorySource("τ", { w: { shape: [4], data: new Float32Array([1, 1, 1, 1]) } });
 * const m = await merge(dareAverage, [tau, tau], { params: { seed: 3 } });
 * // each τ's entry is dropped (0) or rescaled to 1/(1 − 0.5) = 2; the mean of two is 0, 1 or 2
 * ok(m.get("w").data.every((v) => v === 0 || v === 1 || v === 2));
 * ```
 */
export const dareAverage: MergeMethod = {
  name: "dare_average",
  title: "DARE + simple average",
  paper: "Yu et al., Language Models are Super Mario (DARE), ICML 2024",
  code: "tanganke/fusion_bench fusion_bench/method/dare/simple_average.py (DARE task " +
    "arithmetic at scaling 1/T); yule-BUAA/MergeLM",
  summary: "Drop each entry of each τ_t with probability p, divide survivors by 1 − p, average.",
  tensorRule: DARE_RULE,
  params: [
    ...DARE_PARAMS.map((p) => ({
      ...p,
      source: p.source.replace(
        "config/method/dare/*.yaml",
        "config/method/dare/simple_average.yaml",
      ),
    })),
    scalingParam(
      1,
      "tanganke/fusion_bench@54c9e8c fusion_bench/method/dare/simple_average.py (the mean: " +
        "DARE task arithmetic at scaling_factor 1/T)",
    ),
  ],
  treatment: () => "mean",
  prepare: ({ params }) =>
    Promise.resolve(droppingMerger(dareSettings(params), { tensor: (_n, _s, t) => meanOf(t) })),
};
