/**
 * TSV-C, Task Singular Vectors compression (Gargiulo et al., CVPR 2025): one model per task,
 * each task vector compressed to the same total size as one full task vector. For every 2-D
 * tensor Δ_t ∈ R^{m×n} (r = min(m, n)), task t keeps its top k = ⌊r · (1/T)⌋ singular
 * components, Δ̂_t = U_t,k diag(σ_t,k) V_t,kᵀ; every other tensor is kept whole. Task t is
 * evaluated with θ0 + α·Δ̂_t, α = 1.
 *
 * @module
 */
import { matmul } from "../linalg/matmul.ts";
import { svd } from "../linalg/svd.ts";
import { copyColumns, copyRows, scaleColumns } from "./matrix.ts";
import type { MergeMethod } from "./method.ts";
import { scalingParam } from "./params.ts";

/**
 * How many singular components each of T tasks keeps of a rank-r matrix: ⌊r · (1/T)⌋, computed
 * as the reference code does (`int(s.shape[0] * sv_reduction)` with sv_reduction = 1/T).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { tsvRank } from "./tsv_c.ts";
 * equal(tsvRank(768, 8), 96);
 * ```
 */
export function tsvRank(rank: number, tasks: number): number {
  return Math.trunc(rank * (1 / tasks));
}

/**
 * The rank-k truncation U_k diag(σ_k) V_kᵀ of a rows×cols matrix (zero when k = 0).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { truncatedSvd } from "./tsv_c.ts";
 * const x = truncatedSvd(new Float32Array([3, 0, 0, 1]), 2, 2, 1); // keeps σ = 3 only
 * ok([3, 0, 0, 0].every((v, i) => Math.abs(x[i] - v) < 1e-6));
 * ```
 */
export function truncatedSvd(
  data: Float32Array,
  rows: number,
  cols: number,
  k: number,
): Float32Array {
  if (k <= 0) return new Float32Array(rows * cols);
  const f = svd(data, rows, cols);
  const keep = Math.min(k, f.k);
  const u = { data: new Float32Array(rows * keep), rows, cols: keep };
  const vt = { data: new Float32Array(keep * cols), rows: keep, cols };
  copyColumns({ data: f.u, rows, cols: f.k }, 0, u, 0, keep);
  copyRows({ data: f.vt, rows: f.k, cols }, 0, vt, 0, keep);
  scaleColumns(u.data, rows, keep, f.s.subarray(0, keep));
  return matmul(u.data, vt.data, rows, keep, cols);
}

/**
 * The TSV-C method: one model per task, its 2-D tensors compressed to rank ⌊r/T⌋.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { tsvC } from "./tsv_c.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2, 2], data: new Float32Array(v) } });
 * const m = await merge(tsvC, [tau([3, 0, 0, 1]), tau([0, 0, 0, 2])]);
 * // T = 2, r = 2: each task keeps its top ⌊2/2⌋ = 1 component
 * const near = (x: Float32Array, y: number[]) => y.every((v, i) => Math.abs(x[i] - v) < 1e-6);
 * ok(near(m.perTask![0].get("w").data, [3, 0, 0, 0]) && near(m.perTask![1].get("w").data, [0, 0, 0, 2]));
 * ```
 */
export const tsvC: MergeMethod = {
  name: "tsv_c",
  title: "TSV-C (Task Singular Vectors compression)",
  paper: "Gargiulo et al., Task Singular Vectors: Reducing Task Interference in Model Merging, " +
    "CVPR 2025",
  code: "AntoAndGar/task_singular_vectors src/utils/TSVC_utils.py (compress_tv), " +
    "src/eval/eval.py (each task evaluated with its own reconstruction at α = 1); " +
    "tanganke/fusion_bench task_singular_vector/utils/TSVC_utils.py",
  summary: "Per task, each 2-D tensor truncated to its top ⌊r/T⌋ singular components; every " +
    "task evaluated with its own compressed task vector.",
  tensorRule: "every 2-D tensor (text_projection included, as the reference): per task, " +
    "rank-⌊r/T⌋ truncation; every other tensor: the task's own values",
  usesLinalg: true,
  output: "per-task",
  params: [
    scalingParam(
      1,
      "AntoAndGar/task_singular_vectors src/eval/eval.py (TSVC: scaling_coef_range = [1.0])",
    ),
  ],
  treatment: (_name, shape) => shape.length === 2 ? "matrix" : "elementwise",
  prepare: ({ tasks }) =>
    Promise.resolve({
      tensor: () => {
        throw new Error("tsv_c builds one model per task: read each task's model");
      },
      taskTensor: (task, _name, shape, taus) =>
        shape.length === 2
          ? truncatedSvd(
            taus[task],
            shape[0],
            shape[1],
            tsvRank(Math.min(shape[0], shape[1]), tasks.length),
          )
          : taus[task].slice(),
    }),
};
