/**
 * Iso-C, isotropic merging in the common subspace (Marczak et al., ICML 2025; docs/METHODS.md,
 * `iso_c`), per matrix: S = Σ_t Δ_t = U Σ Vᵀ (thin SVD), σ̄ = mean of all r = min(m, n)
 * singular values, M = σ̄ · U Vᵀ (the spectrum flattened, the direction S's polar factor). Other
 * tensors are averaged; α scales everything.
 *
 * @module
 */
import { matmul } from "../linalg/matmul.ts";
import { svd } from "../linalg/svd.ts";
import { scaleInPlace, sumOf } from "./elementwise.ts";
import { meanValue } from "./matrix.ts";
import type { MergeMethod } from "./method.ts";
import { scalingParam } from "./params.ts";
import {
  SPECTRAL_FUSION_BENCH,
  SPECTRAL_RULE,
  spectralMerger,
  spectralTreatment,
  TEXT_PROJECTION_PARAM,
} from "./spectral.ts";

/**
 * The Iso-C merge of one matrix from its T task matrices.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { isoCMergeMatrix } from "./iso_c.ts";
 * const near = (x: ArrayLike<number>, y: number[]) => y.every((v, i) => Math.abs(x[i] - v) < 1e-5);
 * // singular values 3 and 1 both become their mean, 2, on the same singular vectors
 * ok(near(isoCMergeMatrix([new Float32Array([3, 0, 0, 1])], 2, 2), [2, 0, 0, 2]));
 * ```
 */
export function isoCMergeMatrix(
  taus: readonly Float32Array[],
  rows: number,
  cols: number,
): Float32Array {
  const { u, s, vt, k } = svd(sumOf(taus), rows, cols);
  return scaleInPlace(matmul(u, vt, rows, k, cols), meanValue(s));
}

/** Iso's α grid: {0.1, …, 3.0} with early stopping. */
export const ISO_ALPHA_GRID: readonly number[] = Array.from({ length: 30 }, (_, i) => (i + 1) / 10);

/**
 * The Iso-C method (α = 1 by default, FusionBench).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { isoC } from "./iso_c.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2, 2], data: new Float32Array(v) } });
 * const m = await merge(isoC, [tau([3, 0, 0, 0]), tau([0, 0, 0, 1])]); // α = 1 by default
 * const near = (x: ArrayLike<number>, y: number[]) => y.every((v, i) => Math.abs(x[i] - v) < 1e-5);
 * ok(near(m.get("w").data, [2, 0, 0, 2])); // the sum diag(3, 1), its spectrum flattened
 * ```
 */
export const isoC: MergeMethod = {
  name: "iso_c",
  title: "Iso-C (isotropic merging in the common subspace)",
  paper: "Marczak et al., No Task Left Behind: Isotropic Model Merging with Common and " +
    "Task-Specific Subspaces, ICML 2025",
  code: "danielm1405/iso-merging src/utils/iso.py (iso_c)",
  summary: "Per matrix: SVD of the TA sum, every singular value replaced by their mean.",
  tensorRule: SPECTRAL_RULE,
  usesLinalg: true,
  fusionBench: SPECTRAL_FUSION_BENCH,
  params: [
    TEXT_PROJECTION_PARAM,
    scalingParam(
      1,
      "tanganke/fusion_bench@54c9e8c config/method/isotropic_merging/iso_c.yaml " +
        "(scaling_factor: 1.0); the Iso repo searches α in {0.1, …, 3.0}",
    ),
  ],
  scalingSearch: {
    grid: ISO_ALPHA_GRID,
    source: "danielm1405/iso-merging (early stopping after 3 non-improving steps)",
  },
  treatment: (name, shape, params) => spectralTreatment(name, shape, params),
  prepare: ({ params }) => Promise.resolve(spectralMerger(isoCMergeMatrix, params)),
};
