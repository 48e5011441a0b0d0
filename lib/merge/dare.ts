/**
 * DARE, drop and rescale (Yu et al., ICML 2024; docs/METHODS.md, `dare_ta` and `dare_ties`):
 * each entry of each task vector is dropped independently with probability p and the survivors
 * are divided by (1 − p), so E[τ̃_t] = τ_t; the τ̃_t are then merged by Task Arithmetic or by
 * TIES.
 *
 * The draws come from a seeded generator keyed by (seed, task index, tensor name) (`Rng` from
 * lib/tensor/random.ts, labelled `dare/TASK/NAME`): the same seed gives the same masks whatever
 * order or how many times tensors are read, which TIES's extra streaming passes rely on.
 *
 * @module
 */
import { sumOf } from "./elementwise.ts";
import type { MergeMethod, Params, ParamSpec, TensorMerger } from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { Rng } from "../tensor/random.ts";
import { isBlockLinearWeight } from "./rules.ts";
import { prepareTies, tiesKParam, type TiesMergeFunction, tiesMergeParam } from "./ties.ts";

/** DARE's drop settings. */
export interface DareSettings {
  /** Drop probability p in [0, 1). */
  p: number;
  /** Seed of the masks. */
  seed: number;
  /** Divide survivors by 1 − p (true in DARE). */
  rescale: boolean;
  /** Drop only in transformer blocks' linear weights (FusionBench `only_on_linear_weights`). */
  linearOnly: boolean;
}

/**
 * The keep mask (1 = kept) DARE draws for task `task`'s tensor `name` of `length` entries:
 * entry i is dropped when its uniform draw u_i < p.
 *
 * @example
 * ```ts
 * import { deepEqual, notDeepEqual, ok } from "node:assert/strict";
 * import { dareKeepMask } from "./dare.ts";
 * const mask = dareKeepMask(0, 0, "w", 10000, 0.9);
 * const kept = mask.reduce((a, b) => a + b, 0);
 * ok(Math.abs(kept - 1000) < 150); // about 1000 (binomial, sd 30)
 * deepEqual(dareKeepMask(0, 0, "w", 10000, 0.9), mask); // the same draw for (seed, task, name)
 * notDeepEqual(dareKeepMask(0, 1, "w", 10000, 0.9), mask); // another task, another draw
 * ```
 */
export function dareKeepMask(
  seed: number,
  task: number,
  name: string,
  length: number,
  p: number,
): Uint8Array {
  const rng = new Rng(seed, `dare/${task}/${name}`);
  const mask = new Uint8Array(length);
  for (let i = 0; i < length; i++) mask[i] = rng.uniform() >= p ? 1 : 0;
  return mask;
}

/** True when DARE drops entries of tensor `name` under `settings`. */
function dropsIn(name: string, shape: readonly number[], settings: DareSettings): boolean {
  return settings.p > 0 && (!settings.linearOnly || isBlockLinearWeight(name, shape));
}

/**
 * Applies DARE to task `task`'s values of tensor `name` in place: dropped entries become 0,
 * kept ones are divided by (1 − p) when rescaling (in float32, as PyTorch does).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { dareInPlace, dareKeepMask } from "./dare.ts";
 * const data = dareInPlace(new Float32Array([1, 1, 1, 1]), 0, "w", [4], {
 *   p: 0.5, seed: 0, rescale: true, linearOnly: false,
 * });
 * // dropped entries are 0, kept ones divided by 1 − p
 * deepEqual(data, Float32Array.from(dareKeepMask(0, 0, "w", 4, 0.5), (keep) => 2 * keep));
 * ```
 */
export function dareInPlace(
  data: Float32Array,
  task: number,
  name: string,
  shape: readonly number[],
  settings: DareSettings,
): Float32Array {
  if (!dropsIn(name, shape, settings)) return data;
  const mask = dareKeepMask(settings.seed, task, name, data.length, settings.p);
  const divisor = settings.rescale ? Math.fround(1 - settings.p) : 1;
  for (let i = 0; i < data.length; i++) data[i] = mask[i] ? data[i] / divisor : 0;
  return data;
}

/**
 * DARE's settings from a method's effective parameters (`p`, `seed`, `rescale`, `linear_only`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { dareSettings } from "./dare.ts";
 * equal(dareSettings({ p: 0.5, seed: 0, rescale: true, linear_only: false }).p, 0.5);
 * ```
 */
export function dareSettings(params: Params): DareSettings {
  return {
    p: numberParam(params, "p"),
    seed: numberParam(params, "seed"),
    rescale: params.rescale === true,
    linearOnly: params.linear_only === true,
  };
}

/**
 * A merger that drops every task's values in place (DARE), then merges them with `inner`.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { droppingMerger } from "./dare.ts";
 * import { sumOf } from "./elementwise.ts";
 * const settings = { p: 0, seed: 0, rescale: true, linearOnly: false };
 * const m = droppingMerger(settings, { tensor: (_n, _s, taus) => sumOf(taus) });
 * const out = await m.tensor("w", [1], [new Float32Array([1]), new Float32Array([2])]);
 * deepStrictEqual(out, new Float32Array([3])); // p = 0 drops nothing
 * ```
 */
export function droppingMerger(settings: DareSettings, inner: TensorMerger): TensorMerger {
  return {
    notes: inner.notes,
    tensor: (name, shape, taus) => {
      taus.forEach((tau, t) => dareInPlace(tau, t, name, shape, settings));
      return inner.tensor(name, shape, taus);
    },
  };
}

/** DARE's drop parameters (p, seed, rescale, linear_only) with FusionBench's defaults. */
export const DARE_PARAMS: readonly ParamSpec[] = [
  {
    name: "p",
    type: "number",
    default: 0.5,
    min: 0,
    max: 1,
    maxExclusive: true,
    source: "tanganke/fusion_bench@54c9e8c config/method/dare/*.yaml (sparsity_ratio: 0.5)",
    meaning: "drop probability of each entry",
  },
  {
    name: "seed",
    type: "integer",
    default: 0,
    min: 0,
    max: 2 ** 32 - 1,
    source: "ours: any fixed seed; masks depend only on (seed, task index, tensor name)",
    meaning: "seed of the drop masks",
  },
  {
    name: "rescale",
    type: "boolean",
    default: true,
    source: "tanganke/fusion_bench@54c9e8c config/method/dare/*.yaml (rescale: true); " +
      "MergeLM mask_weights_utils.py divides by 1 − p",
    meaning: "divide kept entries by (1 − p)",
  },
  {
    name: "linear_only",
    type: "boolean",
    default: false,
    source:
      "tanganke/fusion_bench@54c9e8c config/method/dare/*.yaml (only_on_linear_weights: false)",
    meaning: "drop only in transformer blocks' linear weights (others kept whole)",
  },
];

/** DARE's tensor rule, in words. */
export const DARE_RULE: string =
  "every tensor (or, with linear_only, the blocks' linear weights): independent " +
  "per-entry drops; then the base merger's rule";

/**
 * DARE followed by Task Arithmetic: M = Σ_t τ̃_t (FusionBench defaults p = 0.5, λ = 0.3).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { dareKeepMask, dareTaskArithmetic } from "./dare.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = new MemorySource("τ", { w: { shape: [4], data: new Float32Array([1, 1, 1, 1]) } });
 * const m = await merge(dareTaskArithmetic, [tau, tau], { params: { seed: 3 }, scaling: 1 });
 * // p = 0.5: each task keeps its own draw of entries, doubled; the merge sums them
 * const [a, b] = [0, 1].map((t) => dareKeepMask(3, t, "w", 4, 0.5));
 * deepEqual(m.get("w").data, Float32Array.from(a, (keep, i) => 2 * (keep + b[i])));
 * ```
 */
export const dareTaskArithmetic: MergeMethod = {
  name: "dare_ta",
  title: "DARE + Task Arithmetic",
  paper: "Yu et al., Language Models are Super Mario (DARE), ICML 2024",
  code: "yule-BUAA/MergeLM model_merging_methods/mask_weights_utils.py; " +
    "tanganke/fusion_bench fusion_bench/method/dare/task_arithmetic.py",
  summary: "Drop each entry of each τ_t with probability p, divide survivors by 1 − p, sum.",
  tensorRule: DARE_RULE,
  params: [
    ...DARE_PARAMS,
    scalingParam(
      0.3,
      "tanganke/fusion_bench@54c9e8c config/method/dare/task_arithmetic.yaml (scaling_factor: 0.3)",
    ),
  ],
  treatment: () => "elementwise",
  prepare: ({ params }) =>
    Promise.resolve(droppingMerger(dareSettings(params), { tensor: (_n, _s, t) => sumOf(t) })),
};

/**
 * DARE followed by TIES (trim at k%, elect, disjoint merge) on the dropped task vectors
 * (FusionBench defaults p = 0.5, k = 20, dis-sum, λ = 0.5; k = 100 gives the "elect and merge
 * only" form of docs/METHODS.md and mergekit's dare_ties).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { dareTies } from "./dare.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [4], data: new Float32Array(v) } });
 * const m = await merge(dareTies, [tau([1, -1, 2, 3]), tau([2, 1, -1, 1])], { params: { k: 100 } });
 * deepEqual(m.summary.notes, { tiesThresholds: [0, 0], tiesMajoritySign: 1 });
 * // seed 0 keeps entry 3 of τ1 and entries 0, 1 of τ2, doubled: (0, 0, 0, 6) and (4, 2, 0, 0);
 * // TIES sums the agreeing entries, then α = 0.5 (the default)
 * deepEqual(m.get("w").data, new Float32Array([2, 1, 0, 3]));
 * ```
 */
export const dareTies: MergeMethod = {
  name: "dare_ties",
  title: "DARE + TIES",
  paper: "Yu et al., Language Models are Super Mario (DARE), ICML 2024",
  code: "tanganke/fusion_bench fusion_bench/method/dare/ties_merging.py (drop, then TIES with " +
    "its whole-model trim); yule-BUAA/MergeLM",
  summary: "Drop and rescale each τ_t as in DARE, then TIES: trim to the top-k% magnitudes " +
    "over the whole model, elect signs, merge the agreeing entries.",
  tensorRule: DARE_RULE,
  params: [
    ...DARE_PARAMS,
    tiesKParam(
      20,
      "tanganke/fusion_bench@54c9e8c config/method/dare/ties_merging.yaml (threshold: 20)",
    ),
    tiesMergeParam(
      "sum",
      "tanganke/fusion_bench@54c9e8c config/method/dare/ties_merging.yaml (merge_func: sum)",
    ),
    scalingParam(
      0.5,
      "tanganke/fusion_bench@54c9e8c config/method/dare/ties_merging.yaml (scaling_factor: 0.5)",
    ),
  ],
  treatment: () => "elementwise",
  prepare: async ({ tasks, params, progress }) => {
    const settings = dareSettings(params);
    const inner = await prepareTies(
      tasks,
      { k: numberParam(params, "k"), merge: stringParam(params, "merge") as TiesMergeFunction },
      progress,
      (t, name, shape, data) => dareInPlace(data, t, name, shape, settings),
    );
    return droppingMerger(settings, inner);
  },
};
