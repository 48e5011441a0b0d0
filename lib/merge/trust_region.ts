/**
 * Task arithmetic in a trust region (Sun et al., ICLR 2025, "Task Arithmetic in Trust Region:
 * A Training-Free Model Merging Approach to Navigate Knowledge Conflicts"), in its data-free
 * form (FusionBench `zero_shot: true`, which stands each task's vector in for its gradient):
 *
 *   Ω = Σ_{i ≠ j} |τ_i| ⊙ |τ_j|         (elementwise, every tensor),
 *
 * the entries whose Ω is below its q-quantile over the whole model form the trust region, and
 * M = Σ_t τ_t restricted to them; θ = θ0 + α·M. The threshold is the sorted Ω's entry at index
 * min(⌊D·q⌋, D − 1) (D entries), found exactly by radix selection in two streaming passes; Ω is
 * accumulated in float32 in FusionBench's order so the threshold is bit for bit its own.
 *
 * The published method's default estimates |∇L_t| from 128 training images per task instead of
 * |τ_t| (data): that variant is a data-using merge, not this one.
 *
 * @module
 */
import { sumOf } from "./elementwise.ts";
import type { MergeMethod, TensorMerger } from "./method.ts";
import { numberParam, scalingParam } from "./params.ts";
import { AbsKthSelector } from "./select.ts";
import { forEachTensor } from "./stream.ts";
import { numel } from "../tensor/host.ts";

/**
 * Ω = Σ_{i≠j} |τ_i| ⊙ |τ_j| of one tensor, in float32 in the order i, then j.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { trustRegionOmega } from "./trust_region.ts";
 * const omega = trustRegionOmega([new Float32Array([1, -2]), new Float32Array([3, 0])]);
 * deepStrictEqual(omega, new Float32Array([6, 0])); // |1|·|3| + |3|·|1|, |−2|·0 + 0·|−2|
 * ```
 */
export function trustRegionOmega(taus: readonly Float32Array[]): Float32Array {
  const omega = new Float32Array(taus[0].length);
  for (let i = 0; i < taus.length; i++) {
    for (let j = 0; j < taus.length; j++) {
      if (i === j) continue;
      const a = taus[i], b = taus[j];
      for (let p = 0; p < omega.length; p++) omega[p] += Math.fround(Math.abs(a[p] * b[p]));
    }
  }
  return omega;
}

function trustRegionMerger(threshold: number): TensorMerger {
  return {
    notes: { trustRegionThreshold: threshold },
    tensor: (_name, _shape, taus) => {
      const omega = trustRegionOmega(taus);
      const out = sumOf(taus);
      for (let p = 0; p < out.length; p++) if (!(omega[p] < threshold)) out[p] = 0;
      return out;
    },
  };
}

/**
 * Task arithmetic in a trust region, data-free (q = 0.99, α = 0.3).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { trustRegion } from "./trust_region.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [4], data: new Float32Array(v) } });
 * const m = await merge(trustRegion, [tau([1, 0, 2, 0]), tau([1, 1, 2, 0])], {
 *   params: { quantile: 0.5 }, scaling: 1,
 * });
 * deepStrictEqual(m.get("w").data, new Float32Array([0, 1, 0, 0])); // where both tasks move: dropped
 * ```
 */
export const trustRegion: MergeMethod = {
  name: "trust_region",
  title: "Task arithmetic in a trust region (TATR, data-free)",
  paper: "Sun et al., Task Arithmetic in Trust Region: A Training-Free Model Merging Approach " +
    "to Navigate Knowledge Conflicts, ICLR 2025",
  code: "tanganke/fusion_bench fusion_bench/method/trust_region/clip_task_arithmetic.py " +
    "(TaskArithmeticWithTrustRegionForCLIP, zero_shot: true)",
  summary: "Ω = Σ_{i≠j} |τ_i| ⊙ |τ_j|; keep the entries with Ω below its q-quantile over the " +
    "whole model; M = Σ_t τ_t there.",
  tensorRule: "every tensor, flattened into one vector: elementwise, with one whole-model " +
    "threshold on Ω",
  fusionBench: {
    params: {},
    note: "FusionBench's default (zero_shot: false) measures |∇| on 128 training images per " +
      "task (data); this is its zero_shot: true form",
  },
  params: [
    {
      name: "quantile",
      type: "number",
      default: 0.99,
      min: 0,
      max: 1,
      source: "tanganke/fusion_bench@54c9e8c config/method/trust_region/" +
        "clip_task_arithmetic.yaml (threshold_quantile: 0.99)",
      meaning: "entries with Ω below this quantile of Ω over the model are kept",
    },
    scalingParam(
      0.3,
      "tanganke/fusion_bench@54c9e8c config/method/trust_region/clip_task_arithmetic.yaml " +
        "(scaling_factor: 0.3)",
    ),
  ],
  treatment: () => "elementwise",
  prepare: async ({ tasks, params, progress }) => {
    const q = numberParam(params, "quantile");
    const first = tasks[0];
    const total = first.names().reduce((n, name) => n + numel(first.shape(name)), 0);
    if (total === 0) return trustRegionMerger(0);
    const rank = Math.max(0, Math.min(Math.trunc(total * q), total - 1)) + 1;
    const selector = new AbsKthSelector([rank]);
    await forEachTensor(tasks, "trust region (1/2)", (_n, _s, taus) => {
      selector.countHigh(0, trustRegionOmega(taus));
    }, progress);
    selector.settleHigh();
    await forEachTensor(tasks, "trust region (2/2)", (_n, _s, taus) => {
      selector.countLow(0, trustRegionOmega(taus));
    }, progress);
    return trustRegionMerger(selector.values()[0]);
  },
};
