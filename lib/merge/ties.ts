/**
 * TIES-Merging (Yadav et al., NeurIPS 2023; docs/METHODS.md, `ties`) with the original's
 * whole-model semantics, streamed:
 * 1. Trim: per task, thr_t = the (D − ⌊D·k/100⌋)-th smallest |τ_t| over the whole flattened model
 *    (`torch.kthvalue`), found exactly by radix selection in two streaming passes; entries with
 *    |τ| ≥ thr_t are kept (ties at the threshold kept). k = 100 trims nothing.
 * 2. Elect: γ = sign(Σ_t τ̂_t); where γ = 0 it becomes the sign of Σ_p γ_p over the whole model
 *    (a third streaming pass).
 * 3. Disjoint merge over the tasks whose trimmed entry is non-zero and agrees with γ
 *    (γ > 0: τ̂ > 0; otherwise τ̂ < 0): their sum (`sum`), mean (`mean`, count clamped to ≥ 1)
 *    or largest magnitude with the elected sign (`max`: γ·max |τ̂|, 0 where none agrees).
 *
 * @module
 */
import type { TensorSource } from "../tensor/source.ts";
import { numel } from "../tensor/host.ts";
import type { MergeMethod, ParamSpec, ProgressCallback, TensorMerger } from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { AbsKthSelector } from "./select.ts";
import { forEachTensor, type TaskTransform } from "./stream.ts";
import { TALL_MASKS_ALPHA_GRID } from "./task_arithmetic.ts";

/** How the agreeing entries are combined. */
export type TiesMergeFunction = "sum" | "mean" | "max";

/** TIES settings: keep fraction (percent) and merge function. */
export interface TiesSettings {
  /** Percent of each task's entries kept by magnitude, in (0, 100]; 100 keeps all. */
  k: number;
  /** `sum` (dis-sum), `mean` (dis-mean) or `max` (dis-max). */
  merge: TiesMergeFunction;
}

/**
 * How many of D entries a task keeps: ⌊D·(k/100)⌋, computed in double precision as the
 * original's `int(d * K)` with K = k/100.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { tiesKeepCount } from "./ties.ts";
 * equal(tiesKeepCount(1000, 20), 200);
 * equal(tiesKeepCount(5, 40), 2);
 * ```
 */
export function tiesKeepCount(total: number, k: number): number {
  return Math.floor(total * (k / 100));
}

/**
 * The merger TIES prepares: per-task thresholds and the whole-model majority sign. It does not
 * modify the task values it is given.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { TiesMerger } from "./ties.ts";
 * const m = new TiesMerger([0, 0], 1, "mean");
 * // entry 0: both positive, mean 2; entry 1: Σ = −1 elects −, only −2 agrees
 * deepEqual(
 *   m.tensor("w", [2], [new Float32Array([1, -2]), new Float32Array([3, 1])]),
 *   new Float32Array([2, -2]),
 * );
 * ```
 */
export class TiesMerger implements TensorMerger {
  /** Thresholds per task (|τ| ≥ thr is kept), majority sign (±1 or 0), merge function. */
  constructor(
    readonly thresholds: readonly number[],
    readonly majoritySign: number,
    readonly mergeFunction: TiesMergeFunction,
  ) {}

  /** Always true: a tensor's merge depends only on its values and the prepared thresholds. */
  readonly concurrentReads = true;

  /** The thresholds and majority sign, for the merge summary. */
  get notes(): Record<string, unknown> {
    return { tiesThresholds: [...this.thresholds], tiesMajoritySign: this.majoritySign };
  }

  /** Trims, elects signs and merges the agreeing entries of one tensor. */
  tensor(_name: string, _shape: readonly number[], taus: readonly Float32Array[]): Float32Array {
    const out = new Float32Array(taus[0].length);
    const acc = new Float32Array(2); // float32 accumulators: [elected sum, agreeing sum]
    const thr = this.thresholds;
    const mean = this.mergeFunction === "mean";
    const max = this.mergeFunction === "max";
    for (let i = 0; i < out.length; i++) {
      acc[0] = 0;
      for (let t = 0; t < taus.length; t++) {
        const v = taus[t][i];
        if (Math.abs(v) >= thr[t]) acc[0] += v;
      }
      const gamma = acc[0] > 0 ? 1 : acc[0] < 0 ? -1 : this.majoritySign;
      acc[1] = 0;
      let count = 0;
      let largest = 0;
      for (let t = 0; t < taus.length; t++) {
        const v = taus[t][i];
        if (Math.abs(v) < thr[t]) continue;
        if (gamma > 0 ? v > 0 : v < 0) {
          acc[1] += v;
          count++;
          largest = Math.max(largest, Math.abs(v));
        }
      }
      out[i] = max ? gamma * largest : mean && count > 1 ? acc[1] / count : acc[1];
    }
    return out;
  }
}

/**
 * Runs TIES's whole-model passes over the task vectors: exact per-task thresholds (two radix
 * passes, skipped when k = 100) and the majority sign (one pass). `transform` changes each
 * task's values as they are read (DARE's drops) so the passes see what the merge will see.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { prepareTies } from "./ties.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = new MemorySource("τ", { w: { shape: [5], data: new Float32Array([5, -1, 2, 0, 3]) } });
 * const merger = await prepareTies([tau], { k: 40, merge: "sum" });
 * // the (5 − ⌊5·0.4⌋) = 3rd smallest |τ| of {0, 1, 2, 3, 5}: keeps 5, 3 and 2 (|τ| ≥ 2)
 * deepEqual(merger.thresholds, [2]);
 * ```
 */
export async function prepareTies(
  tasks: readonly TensorSource[],
  settings: TiesSettings,
  progress?: ProgressCallback,
  transform?: TaskTransform,
): Promise<TiesMerger> {
  const thresholds = await tiesThresholds(tasks, settings.k, progress, transform);
  let signSum = 0;
  await forEachTensor(
    tasks,
    "TIES majority sign",
    (_name, _shape, taus) => {
      signSum += electedSignSum(taus, thresholds);
    },
    progress,
    transform,
  );
  return new TiesMerger(thresholds, Math.sign(signSum), settings.merge);
}

/**
 * Σ_p sign(Σ_t τ̂_t,p) over one tensor, τ̂ the values at or above each task's threshold
 * (float32 accumulation as in the election): the tensor's share of TIES's majority sign.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { electedSignSum } from "./ties.ts";
 * // entry sums 2, −1, 2: signs +1, −1, +1
 * equal(electedSignSum([new Float32Array([1, -2, 3]), new Float32Array([1, 1, -1])], [0, 0]), 1);
 * ```
 */
export function electedSignSum(taus: readonly Float32Array[], thr: readonly number[]): number {
  const acc = new Float32Array(1);
  let total = 0;
  for (let i = 0; i < taus[0].length; i++) {
    acc[0] = 0;
    for (let t = 0; t < taus.length; t++) {
      const v = taus[t][i];
      if (Math.abs(v) >= thr[t]) acc[0] += v;
    }
    total += Math.sign(acc[0]);
  }
  return total;
}

/**
 * Per-task magnitude thresholds over the whole flattened model: the (D − ⌊D·k/100⌋)-th
 * smallest |τ_t| (0 when k = 100, which keeps everything).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { tiesThresholds } from "./ties.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = new MemorySource("τ", {
 *   a: { shape: [2], data: new Float32Array([4, -1]) },
 *   b: { shape: [2], data: new Float32Array([0.5, -2]) },
 * });
 * // the (4 − ⌊4·0.5⌋) = 2nd smallest |τ| over the whole model, {0.5, 1, 2, 4}: 1
 * deepEqual(await tiesThresholds([tau], 50), [1]);
 * ```
 */
export async function tiesThresholds(
  tasks: readonly TensorSource[],
  k: number,
  progress?: ProgressCallback,
  transform?: TaskTransform,
): Promise<number[]> {
  if (k === 100) return tasks.map(() => 0);
  if (!(k > 0 && k < 100)) throw new Error(`TIES keep percentage k = ${k}: expected (0, 100]`);
  const first = tasks[0];
  const total = first.names().reduce((n, name) => n + numel(first.shape(name)), 0);
  if (total === 0) return tasks.map(() => 0);
  const rank = total - tiesKeepCount(total, k);
  const selector = new AbsKthSelector(tasks.map(() => rank));
  await forEachTensor(
    tasks,
    "TIES thresholds (1/2)",
    (_name, _shape, taus) => {
      taus.forEach((tau, t) => selector.countHigh(t, tau));
    },
    progress,
    transform,
  );
  selector.settleHigh();
  await forEachTensor(
    tasks,
    "TIES thresholds (2/2)",
    (_name, _shape, taus) => {
      taus.forEach((tau, t) => selector.countLow(t, tau));
    },
    progress,
    transform,
  );
  return selector.values();
}

/**
 * The `k` parameter schema shared by TIES, DARE-TIES and Consensus-TIES.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { tiesKParam } from "./ties.ts";
 * const k = tiesKParam(20, "FusionBench ties_merging.yaml");
 * deepEqual([k.default, k.min, k.max, k.minExclusive], [20, 0, 100, true]); // (0, 100]
 * ```
 */
export function tiesKParam(defaultValue: number, source: string): ParamSpec {
  return {
    name: "k",
    type: "number",
    default: defaultValue,
    min: 0,
    max: 100,
    minExclusive: true,
    source,
    meaning:
      "percent of each task's entries kept by magnitude over the whole model (100 = no trim)",
  } as const;
}

/**
 * The `merge` parameter schema (dis-sum or dis-mean).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { tiesMergeParam } from "./ties.ts";
 * deepStrictEqual(tiesMergeParam("sum", "FusionBench ties_merging.yaml").choices, ["sum", "mean", "max"]);
 * ```
 */
export function tiesMergeParam(defaultValue: TiesMergeFunction, source: string): ParamSpec {
  return {
    name: "merge",
    type: "choice",
    default: defaultValue,
    choices: ["sum", "mean", "max"],
    source,
    meaning: "disjoint merge of the sign-agreeing entries: sum (dis-sum), mean (dis-mean) or " +
      "the largest magnitude with the elected sign (dis-max)",
  };
}

/**
 * The TIES-Merging method (defaults from FusionBench: k = 20, dis-sum, λ = 0.3).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { ties } from "./ties.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2], data: new Float32Array(v) } });
 * const m = await merge(ties, [tau([1, -2]), tau([3, 1])], { params: { k: 100, scaling: 1 } });
 * deepEqual(m.get("w").data, new Float32Array([4, -2])); // dis-sum: 1 + 3, then −2 alone
 * ```
 */
export const ties: MergeMethod = {
  name: "ties",
  title: "TIES-Merging",
  paper: "Yadav et al., TIES-Merging: Resolving Interference When Merging Models, NeurIPS 2023",
  code: "prateeky2806/ties-merging src/utils/merge_utils.py; nik-dim/tall_masks " +
    "src/utils/ties_utils.py; tanganke/fusion_bench ties_merging_utils.py",
  summary: "Trim each task vector to its top-k% magnitudes over the whole flattened model " +
    "(one global threshold per task), elect a sign per entry from the trimmed sum (zero → " +
    "whole-model majority), merge the agreeing entries by sum or mean.",
  tensorRule: "every tensor, flattened into one vector per task (biases, LayerNorm, " +
    "embeddings included): elementwise, with whole-model thresholds",
  params: [
    tiesKParam(
      20,
      "tanganke/fusion_bench@54c9e8c config/method/ties_merging.yaml (threshold: 20); " +
        "official README topk20",
    ),
    tiesMergeParam(
      "sum",
      "tanganke/fusion_bench@54c9e8c config/method/ties_merging.yaml (merge_func: sum); " +
        "the official README and tall_masks use dis-mean with λ searched",
    ),
    scalingParam(
      0.3,
      "tanganke/fusion_bench@54c9e8c config/method/ties_merging.yaml (scaling_factor: 0.3)",
    ),
  ],
  scalingSearch: {
    grid: TALL_MASKS_ALPHA_GRID,
    source: "nik-dim/tall_masks (dis-mean, k = 20); the TIES README searches {0.8, …, 2.5}",
  },
  treatment: () => "elementwise",
  prepare: ({ tasks, params, progress }) =>
    prepareTies(tasks, {
      k: numberParam(params, "k"),
      merge: stringParam(params, "merge") as TiesMergeFunction,
    }, progress),
};
