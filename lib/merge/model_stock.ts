/**
 * Model Stock (Jang et al., ECCV 2024), per tensor: with T ≥ 2 task vectors, the mean angle θ̄
 * between them over all pairs, cos φ_ij = ⟨τ_i, τ_j⟩ / (‖τ_i‖‖τ_j‖ + 1e-8) (clamped to [−1, 1]),
 * θ̄ = mean_{i<j} arccos(cos φ_ij), gives the interpolation ratio
 *
 *   t = T·cos θ̄ / ((T − 1)·cos θ̄ + 1 + 1e-8),
 *
 * and the merged tensor is t·(mean of the experts) + (1 − t)·θ0, i.e. M = t · (1/T) Σ_t τ_t;
 * θ = θ0 + α·M with α = 1. Every tensor gets its own ratio.
 *
 * @module
 */
import { meanOf, scaleInPlace } from "./elementwise.ts";
import type { MergeMethod } from "./method.ts";
import { scalingParam } from "./params.ts";

/** The small constant FusionBench adds to the cosine's and the ratio's denominators. */
const EPS = 1e-8;

/**
 * Model Stock's ratio t for one tensor from its task vectors (pairwise mean angle).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { modelStockRatio } from "./model_stock.ts";
 * // orthogonal task vectors: θ̄ = 90°, t = 0
 * ok(Math.abs(modelStockRatio([new Float32Array([1, 0]), new Float32Array([0, 1])])) < 1e-12);
 * ```
 */
export function modelStockRatio(taus: readonly Float32Array[]): number {
  const k = taus.length;
  const norms = taus.map((tau) => {
    let s = 0;
    for (const v of tau) s += v * v;
    return s;
  });
  let angles = 0;
  let pairs = 0;
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      let dot = 0;
      const a = taus[i], b = taus[j];
      for (let p = 0; p < a.length; p++) dot += a[p] * b[p];
      const cos = Math.min(1, Math.max(-1, dot / (Math.sqrt(norms[i] * norms[j]) + EPS)));
      angles += Math.acos(cos);
      pairs++;
    }
  }
  const cos = Math.cos(angles / pairs);
  return k * cos / ((k - 1) * cos + 1 + EPS);
}

/**
 * The Model Stock method (α = 1; at least two task vectors).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { modelStock } from "./model_stock.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2], data: new Float32Array(v) } });
 * const m = await merge(modelStock, [tau([1, 0]), tau([1, 0])]);
 * const [a, b] = m.get("w").data; // parallel task vectors: t = 1 (to 1e-8), M = their mean
 * ok(Math.abs(a - 1) < 1e-6 && b === 0);
 * ```
 */
export const modelStock: MergeMethod = {
  name: "model_stock",
  title: "Model Stock",
  paper: "Jang et al., Model Stock: All we need is just a few fine-tuned models, ECCV 2024",
  code: "naver-ai/model-stock; tanganke/fusion_bench fusion_bench/method/model_stock/" +
    "model_stock.py (T > 2: the mean of the pairwise angles)",
  summary: "Per tensor, t = T·cos θ̄ / ((T − 1)·cos θ̄ + 1) from the mean pairwise angle θ̄ " +
    "between task vectors; θ = θ0 + t·mean_t τ_t.",
  tensorRule: "every tensor: its own ratio t, times the mean over tasks",
  taskCount: { min: 2 },
  params: [
    scalingParam(
      1,
      "fixed: Model Stock has no scaling (tanganke/fusion_bench@54c9e8c " +
        "config/method/model_stock/model_stock.yaml)",
    ),
  ],
  treatment: () => "mean",
  prepare: () =>
    Promise.resolve({
      tensor: (_n, _s, taus) => scaleInPlace(meanOf(taus), modelStockRatio(taus)),
    }),
};
