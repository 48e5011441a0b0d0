/**
 * The split shared by TSV-M, Iso-C and Iso-CTS (docs/METHODS.md, `tsv_m`, `iso_c`, `iso_cts`):
 * 2-D tensors whose name lacks `text_projection` are merged matrix by matrix; every other tensor
 * is the mean over tasks. FusionBench (`exclude_keys: null`) merges every 2-D tensor spectrally,
 * `text_projection` included: the methods' `text_projection` parameter chooses (`mean`, the
 * official repositories; `spectral`, FusionBench).
 *
 * @module
 */
import { meanOf } from "./elementwise.ts";
import type { Params, ParamSpec, TensorMerger, Treatment } from "./method.ts";
import { isSpectralMatrix } from "./rules.ts";

/** Merges the T task matrices (each rows×cols, row-major) of one tensor. */
export type MatrixMerge = (
  taus: readonly Float32Array[],
  rows: number,
  cols: number,
) => Float32Array;

/**
 * True when tensor `name` gets the per-matrix merge under `params` (its `text_projection`
 * choice; without one, the official rule: 2-D and not `text_projection`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isMergedSpectrally } from "./spectral.ts";
 * equal(isMergedSpectrally("text_projection", [512, 512], { text_projection: "spectral" }), true);
 * equal(isMergedSpectrally("text_projection", [512, 512], { text_projection: "mean" }), false);
 * ```
 */
export function isMergedSpectrally(
  name: string,
  shape: readonly number[],
  params: Params = {},
): boolean {
  if (params.text_projection === "spectral") return shape.length === 2;
  return isSpectralMatrix(name, shape);
}

/**
 * A merger applying `mergeMatrix` to spectral matrices and the mean elsewhere (`params` holds
 * the method's `text_projection` choice, when it has one).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { spectralMerger } from "./spectral.ts";
 * import { sumOf } from "./elementwise.ts";
 * const m = spectralMerger((taus) => sumOf(taus));
 * const taus = [new Float32Array([1, 2]), new Float32Array([3, 4])];
 * deepEqual(await m.tensor("w", [1, 2], taus), new Float32Array([4, 6])); // a matrix: mergeMatrix
 * deepEqual(await m.tensor("b", [2], taus), new Float32Array([2, 3])); // a vector: the mean
 * ```
 */
export function spectralMerger(mergeMatrix: MatrixMerge, params: Params = {}): TensorMerger {
  return {
    tensor: (name, shape, taus) =>
      isMergedSpectrally(name, shape, params)
        ? mergeMatrix(taus, shape[0], shape[1])
        : meanOf(taus),
  };
}

/**
 * The treatment of one tensor under the spectral split.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { spectralTreatment } from "./spectral.ts";
 * equal(spectralTreatment("visual_projection.weight", [512, 768]), "matrix");
 * equal(spectralTreatment("visual_projection.bias", [512]), "mean");
 * ```
 */
export function spectralTreatment(
  name: string,
  shape: readonly number[],
  params: Params = {},
): Treatment {
  return isMergedSpectrally(name, shape, params) ? "matrix" : "mean";
}

/**
 * The `text_projection` switch of the spectral methods: `mean` (the official TSV and Iso code
 * leave it out of the SVDs) or `spectral` (FusionBench's `exclude_keys: null`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { TEXT_PROJECTION_PARAM } from "./spectral.ts";
 * equal(TEXT_PROJECTION_PARAM.default, "mean");
 * ```
 */
export const TEXT_PROJECTION_PARAM: ParamSpec = {
  name: "text_projection",
  type: "choice",
  default: "mean",
  choices: ["mean", "spectral"],
  source: "AntoAndGar/task_singular_vectors TSVM_utils.py and danielm1405/iso-merging iso.py " +
    "skip keys containing 'text_projection'; tanganke/fusion_bench@54c9e8c (exclude_keys: " +
    "null) merges every 2-D tensor spectrally",
  meaning: "a 2-D tensor named text_projection: averaged (mean) or merged per matrix (spectral)",
};

/**
 * FusionBench's setting of the spectral methods' switch, for their `fusionBench` entries.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { SPECTRAL_FUSION_BENCH } from "./spectral.ts";
 * equal(SPECTRAL_FUSION_BENCH.params.text_projection, "spectral");
 * ```
 */
export const SPECTRAL_FUSION_BENCH = {
  params: { text_projection: "spectral" },
  note: "FusionBench merges every 2-D tensor per matrix, text_projection included; the official " +
    "repositories average it (open_clip checkpoints hold it; HF vision towers do not)",
} as const;

/** The tensor rule of the spectral methods, in words. */
export const SPECTRAL_RULE: string =
  "2-D tensors whose name lacks 'text_projection' (HF: q/k/v/out_proj, " +
  "fc1, fc2, position_embedding, visual_projection; open_clip: in_proj, out_proj, c_fc, c_proj, " +
  "positional_embedding, proj): per matrix; every other tensor: mean over tasks " +
  "(text_projection=spectral: every 2-D tensor per matrix, as FusionBench)";

/** How the spectral methods decompose matrices: see {@linkcode SVD_PARAM}. */
export type SvdSolver = "fast" | "exact";

/**
 * The `svd` parameter of TSV-M and Iso-CTS: `fast` computes only what the method keeps (the top
 * singular triplets from Gram eigenproblems, the polar factors from smaller problems than the
 * whole matrix's SVD; lib/linalg/gram_svd.ts and polar.ts, with the error bounds stated there),
 * `exact` takes every SVD in full as the reference code does.
 * Both give the same merge within float32 rounding of the singular vectors (tests/merge).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { SVD_PARAM } from "./spectral.ts";
 * equal(SVD_PARAM.default, "fast");
 * ```
 */
export const SVD_PARAM: ParamSpec = {
  name: "svd",
  type: "choice",
  default: "fast",
  choices: ["fast", "exact"],
  source: "this project: lib/linalg/gram_svd.ts and polar.ts (fast), the reference code's full " +
    "SVDs (exact)",
  meaning: "fast: top singular triplets from Gram eigenproblems, polar factors from smaller " +
    "problems than full SVDs (equal to " +
    "exact within float32 rounding); exact: every SVD in full, as the reference code",
};

/**
 * The solver a method's resolved parameters ask for.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { svdSolver } from "./spectral.ts";
 * equal(svdSolver({ svd: "exact" }), "exact");
 * ```
 */
export function svdSolver(params: Params): SvdSolver {
  return params.svd === "exact" ? "exact" : "fast";
}
