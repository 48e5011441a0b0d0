/**
 * TALL masks and Consensus merging (Wang et al., ICML 2024; docs/METHODS.md, `consensus_ta`
 * and `consensus_ties`).
 *
 * With a multi-task vector τ_MTL (the TA sum, or TIES with k = 20 and dis-sum, both at scale 1),
 * task t's TALL mask is m_t = 1[|τ_t| > λ·|τ_MTL − τ_t|] elementwise over all parameters;
 * Consensus keeps the entries of τ_MTL used by at least `prune_k` tasks:
 * M = τ_MTL ⊙ 1[Σ_t m_t ≥ prune_k].
 *
 * tall_masks picks λ per task from {0.2, …, 0.6} on validation data; a data-free merge has no
 * validation search, so one λ (FusionBench's fixed 0.6) is used for every task.
 *
 * @module
 */
import { sumOf } from "./elementwise.ts";
import type { MergeMethod, Params, ParamSpec, TensorMerger } from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { TALL_MASKS_ALPHA_GRID } from "./task_arithmetic.ts";
import { prepareTies, tiesKParam, type TiesMergeFunction, tiesMergeParam } from "./ties.ts";

/**
 * The TALL-mask count of one tensor: c_p = Σ_t 1[|τ_t,p| > λ·|mtl_p − τ_t,p|] (float32
 * arithmetic, as PyTorch computes it).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { tallMaskCounts } from "./consensus.ts";
 * const taus = [new Float32Array([1, 0]), new Float32Array([1, 1])];
 * // entry 0: |1| > 0.6·|2 − 1| for both tasks; entry 1: only task 2 (|1| > 0.6·0)
 * deepEqual(tallMaskCounts(taus, new Float32Array([2, 1]), 0.6), new Uint8Array([2, 1]));
 * ```
 */
export function tallMaskCounts(
  taus: readonly Float32Array[],
  mtl: Float32Array,
  lambda: number,
): Uint8Array {
  const counts = new Uint8Array(mtl.length);
  const lam = Math.fround(lambda);
  const diff = new Float32Array(1);
  const rhs = new Float32Array(1);
  for (const tau of taus) {
    for (let i = 0; i < mtl.length; i++) {
      diff[0] = mtl[i] - tau[i];
      rhs[0] = Math.abs(diff[0]) * lam;
      if (Math.abs(tau[i]) > rhs[0]) counts[i]++;
    }
  }
  return counts;
}

/** Masks `mtl` in place to the entries used by at least `pruneK` tasks; returns how many stay. */
function consensusMaskInPlace(mtl: Float32Array, counts: Uint8Array, pruneK: number): number {
  let kept = 0;
  for (let i = 0; i < mtl.length; i++) {
    if (counts[i] >= pruneK) kept++;
    else mtl[i] = 0;
  }
  return kept;
}

/** Wraps the multi-task merger with the TALL-mask consensus filter. */
function consensusMerger(params: Params, inner: TensorMerger): TensorMerger {
  const lambda = numberParam(params, "lambda");
  const pruneK = numberParam(params, "prune_k");
  let kept = 0, total = 0;
  return {
    get notes() {
      return { ...inner.notes, consensusKept: kept, consensusTotal: total };
    },
    tensor: async (name, shape, taus) => {
      const mtl = await inner.tensor(name, shape, taus);
      kept += consensusMaskInPlace(mtl, tallMaskCounts(taus, mtl, lambda), pruneK);
      total += mtl.length;
      return mtl;
    },
  };
}

const CONSENSUS_PARAMS: readonly ParamSpec[] = [
  {
    name: "lambda",
    type: "number",
    default: 0.6,
    min: 0,
    source: "tanganke/fusion_bench@54c9e8c config/method/tall_mask/task_arithmetic.yaml " +
      "(tall_mask_lambda: 0.6); tall_masks searches {0.2, …, 0.6} per task on validation",
    meaning: "TALL-mask λ (the same for every task): m_t = |τ_t| > λ·|τ_MTL − τ_t|",
  },
  {
    name: "prune_k",
    type: "integer",
    default: 2,
    min: 0,
    source: "nik-dim/tall_masks config/method/consensus.yaml (prun_thre_k: 2)",
    meaning: "keep entries whose TALL masks are on for at least this many tasks",
  },
];

const CONSENSUS_RULE = "every tensor, flattened (as TA / TIES): elementwise masks";

/**
 * Consensus merging over the Task Arithmetic multi-task vector.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { consensusTaskArithmetic } from "./consensus.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2], data: new Float32Array(v) } });
 * const taus = [tau([1, 0]), tau([1, 1]), tau([1, 0])];
 * const m = await merge(consensusTaskArithmetic, taus, { params: { lambda: 0.4 }, scaling: 1 });
 * deepEqual(m.get("w").data, new Float32Array([3, 0])); // entry 1 is used by one task only
 * ```
 */
export const consensusTaskArithmetic: MergeMethod = {
  name: "consensus_ta",
  title: "Consensus Task Arithmetic (TALL masks)",
  paper: "Wang et al., Localizing Task Information for Improved Model Merging and " +
    "Compression, ICML 2024",
  code: "nik-dim/tall_masks src/utils/tallmask_utils.py, src/eval/aggregation.py",
  summary: "τ_MTL = Σ_t τ_t; TALL masks m_t = |τ_t| > λ|τ_MTL − τ_t|; keep τ_MTL where at " +
    "least prune_k masks agree.",
  tensorRule: CONSENSUS_RULE,
  params: [
    ...CONSENSUS_PARAMS,
    scalingParam(
      0.3,
      "no fixed value is published (tall_masks searches α); we use Task Arithmetic's " +
        "FusionBench value 0.3 (config/method/task_arithmetic.yaml)",
    ),
  ],
  scalingSearch: { grid: TALL_MASKS_ALPHA_GRID, source: "nik-dim/tall_masks" },
  treatment: () => "elementwise",
  prepare: ({ params }) =>
    Promise.resolve(consensusMerger(params, { tensor: (_n, _s, taus) => sumOf(taus) })),
};

/**
 * Consensus merging over the TIES multi-task vector (k = 20, dis-sum, as tall_masks builds it).
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { consensusTies } from "./consensus.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2], data: new Float32Array(v) } });
 * const taus = [tau([1, 0]), tau([1, 1]), tau([1, 0])];
 * const m = await merge(consensusTies, taus, { params: { k: 100, lambda: 0.4 }, scaling: 1 });
 * equal(m.summary.notes.consensusKept, 1);
 * equal(m.summary.notes.consensusTotal, 2);
 * deepEqual(m.get("w").data, new Float32Array([3, 0]));
 * ```
 */
export const consensusTies: MergeMethod = {
  name: "consensus_ties",
  title: "Consensus TIES (TALL masks)",
  paper: consensusTaskArithmetic.paper,
  code: consensusTaskArithmetic.code,
  summary: "τ_MTL = TIES(τ_1..τ_T) at scale 1 (k = 20, dis-sum); TALL masks against it; " +
    "keep τ_MTL where at least prune_k masks agree.",
  tensorRule: CONSENSUS_RULE + ", with TIES's whole-model thresholds",
  params: [
    ...CONSENSUS_PARAMS,
    tiesKParam(20, "nik-dim/tall_masks src/eval/aggregation.py (ties_merging reset_thresh=20)"),
    tiesMergeParam("sum", "nik-dim/tall_masks src/eval/aggregation.py (merge_func='dis-sum')"),
    scalingParam(
      0.3,
      "no fixed value is published (tall_masks searches α); we use TIES's FusionBench value " +
        "0.3 (config/method/ties_merging.yaml, dis-sum)",
    ),
  ],
  scalingSearch: { grid: TALL_MASKS_ALPHA_GRID, source: "nik-dim/tall_masks" },
  treatment: () => "elementwise",
  prepare: async ({ tasks, params, progress }) => {
    const inner = await prepareTies(tasks, {
      k: numberParam(params, "k"),
      merge: stringParam(params, "merge") as TiesMergeFunction,
    }, progress);
    return consensusMerger(params, inner);
  },
};
