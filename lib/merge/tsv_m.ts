/**
 * TSV-M, Task Singular Vectors Merge (Gargiulo et al., CVPR 2025; docs/METHODS.md, `tsv_m`), per
 * matrix Δ_t ∈ R^{m×n}, r = min(m, n), k = ⌊r/T⌋:
 * 1. thin SVD of each Δ_t, keeping its top k components;
 * 2. concatenate them: U = [U_1,k … U_T,k] (m×r, zero columns when T·k < r), σ, Vᵀ (r×n);
 * 3. replace U and Vᵀ by their polar factors (nearest orthogonal matrices);
 * 4. M = U⊥ · diag(σ) · Vᵀ⊥ (singular values kept as they are).
 * Other tensors are averaged; α scales everything. With `svd=fast` (the default) step 1 computes
 * only the k triplets kept (from Gram eigenproblems) and step 3 a long polar factor from its
 * Gram matrix (lib/linalg/gram_svd.ts, polar.ts; a square one by the SVD); `svd=exact` takes
 * full SVDs throughout, as the reference code.
 *
 * @module
 */
import { matmul } from "../linalg/matmul.ts";
import { polarFactor, svd } from "../linalg/svd.ts";
import { polarFactorGram, topSvd } from "../linalg/gram_svd.ts";
import { copyColumns, copyRows, scaleColumns } from "./matrix.ts";
import type { MergeMethod } from "./method.ts";
import { scalingParam } from "./params.ts";
import {
  SPECTRAL_FUSION_BENCH,
  SPECTRAL_RULE,
  spectralMerger,
  spectralTreatment,
  SVD_PARAM,
  type SvdSolver,
  svdSolver,
  TEXT_PROJECTION_PARAM,
} from "./spectral.ts";

/**
 * The TSV-M merge of one matrix from its T task matrices (rows×cols each).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { tsvMergeMatrix } from "./tsv_m.ts";
 * const a = new Float32Array([3, 0, 0, 0]), b = new Float32Array([0, 0, 0, 2]);
 * const near = (x: ArrayLike<number>, y: number[]) => y.every((v, i) => Math.abs(x[i] - v) < 1e-5);
 * ok(near(tsvMergeMatrix([a, b], 2, 2), [3, 0, 0, 2])); // orthogonal tasks: their sum
 * ```
 */
export function tsvMergeMatrix(
  taus: readonly Float32Array[],
  rows: number,
  cols: number,
  solver: SvdSolver = "fast",
): Float32Array {
  const r = Math.min(rows, cols);
  const k = Math.floor(r / taus.length);
  if (k === 0) return new Float32Array(rows * cols);
  const fast = solver === "fast";
  const u = { data: new Float32Array(rows * r), rows, cols: r };
  const vt = { data: new Float32Array(r * cols), rows: r, cols };
  const sigma = new Float32Array(r);
  taus.forEach((tau, t) => {
    // fast: only the k triplets kept (lib/linalg/gram_svd.ts); exact: the full SVD
    const f = fast ? topSvd(tau, rows, cols, k) : svd(tau, rows, cols);
    copyColumns({ data: f.u, rows, cols: f.k }, 0, u, t * k, k);
    copyRows({ data: f.vt, rows: f.k, cols }, 0, vt, t * k, k);
    sigma.set(f.s.subarray(0, k), t * k);
  });
  const polar = fast ? polarFactorGram : polarFactor;
  const uOrth = scaleColumns(polar(u.data, rows, r), rows, r, sigma);
  return matmul(uOrth, polar(vt.data, r, cols), rows, r, cols);
}

/**
 * The TSV-M method (α = 1 by default, FusionBench).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { tsvM } from "./tsv_m.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2, 2], data: new Float32Array(v) } });
 * const m = await merge(tsvM, [tau([3, 0, 0, 0]), tau([0, 0, 0, 2])]); // α = 1 by default
 * const near = (x: ArrayLike<number>, y: number[]) => y.every((v, i) => Math.abs(x[i] - v) < 1e-5);
 * ok(near(m.get("w").data, [3, 0, 0, 2]));
 * ```
 */
export const tsvM: MergeMethod = {
  name: "tsv_m",
  title: "TSV-M (Task Singular Vectors Merge)",
  paper: "Gargiulo et al., Task Singular Vectors: Reducing Task Interference in Model Merging, " +
    "CVPR 2025",
  code: "AntoAndGar/task_singular_vectors src/utils/TSVM_utils.py " +
    "(compute_and_sum_svd_mem_reduction)",
  summary: "Per matrix: keep each task's top ⌊r/T⌋ singular components, concatenate them, " +
    "orthogonalise the stacked singular vectors (polar factors), keep the singular values.",
  tensorRule: SPECTRAL_RULE,
  usesLinalg: true,
  fusionBench: SPECTRAL_FUSION_BENCH,
  params: [
    TEXT_PROJECTION_PARAM,
    scalingParam(
      1,
      "tanganke/fusion_bench@54c9e8c config/method/task_singular_vector/" +
        "TaskSingularVectorMerging.yaml (alpha: 1); the TSV repo searches α in {0.1, …, 3.0}",
    ),
    SVD_PARAM,
  ],
  scalingSearch: {
    grid: Array.from({ length: 30 }, (_, i) => (i + 1) / 10),
    source: "AntoAndGar/task_singular_vectors (evaluate_task_vector, branch TSVM)",
  },
  treatment: (name, shape, params) => spectralTreatment(name, shape, params),
  prepare: ({ params }) => {
    const solver = svdSolver(params);
    return Promise.resolve(
      spectralMerger((taus, rows, cols) => tsvMergeMatrix(taus, rows, cols, solver), params),
    );
  },
};
