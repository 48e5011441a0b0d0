/**
 * Fisher merging (Matena & Raffel, NeurIPS 2022, "Merging Models with Fisher-Weighted
 * Averaging"): every parameter is the average of the experts' values weighted by each expert's
 * diagonal Fisher information F_t (how sharply its predictions depend on that parameter),
 *
 *     θ_M = Σ_t c_t F̃_t θ_t / Σ_t c_t F̃_t      (elementwise),   F̃_t = F_t + ε,
 *
 * with c_t = 1/T, and, when `normalize` (FusionBench's default), c_t multiplied by
 * (1/(‖F_t‖ + ε)) / Σ_s (1/(‖F_s‖ + ε)), ‖F_t‖ the L2 norm of task t's whole Fisher estimate.
 * The weights sum to one per element, so in task-vector form M = Σ_t c_t F̃_t τ_t / Σ_t c_t F̃_t.
 *
 * F_t is estimated on `examples` of task t's training inputs in their stored order, `batch` at a
 * time, from expert t's own predictions under its head — no labels (`fisher_diag.ts`, as
 * FusionBench's `FisherMergingForCLIPVisionModel` computes it). Every tensor is merged this way.
 *
 * @module
 */
import type { HostParams } from "../models/weights.ts";
import type {
  DataSourceName,
  MergeMethod,
  ParamSpec,
  PrepareContext,
  TensorMerger,
} from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { DATA_METHOD_NOT_DEFAULT, dataUseOf } from "./data.ts";

const FB = "FusionBench config/method/fisher_merging/clip_fisher_merging.yaml (54c9e8c)";

/**
 * Each task's weight c_t: 1/T, times the normalised inverse norms of the Fisher estimates when
 * `normalize` (FusionBench `merging_with_fisher_weights`).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { fisherTaskWeights } from "./fisher.ts";
 * deepStrictEqual(fisherTaskWeights([1, 3], true, 0), [0.375, 0.125]); // 1/2 × (1, 1/3) / (4/3)
 * ```
 */
export function fisherTaskWeights(
  norms: readonly number[],
  normalize: boolean,
  epsilon: number,
): number[] {
  const T = norms.length;
  if (!normalize) return norms.map(() => 1 / T);
  const inverse = norms.map((n) => 1 / (n + epsilon));
  const total = inverse.reduce((a, b) => a + b, 0);
  return inverse.map((v) => (1 / T) * (v / total));
}

/**
 * Fisher merging of one tensor: Σ_t w_t (F_t + ε) τ_t / Σ_t w_t (F_t + ε), elementwise.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { fisherMergeTensor } from "./fisher.ts";
 * const taus = [new Float32Array([1, 1]), new Float32Array([3, 3])];
 * const fishers = [new Float32Array([1, 0]), new Float32Array([1, 1])];
 * deepStrictEqual(fisherMergeTensor(taus, fishers, [0.5, 0.5], 0), new Float32Array([2, 3]));
 * ```
 */
export function fisherMergeTensor(
  taus: readonly Float32Array[],
  fishers: readonly Float32Array[],
  weights: readonly number[],
  epsilon: number,
): Float32Array {
  const n = taus[0].length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let num = 0, den = 0;
    for (let t = 0; t < taus.length; t++) {
      const f = weights[t] * (fishers[t][i] + epsilon);
      num += f * taus[t][i];
      den += f;
    }
    out[i] = num / den;
  }
  return out;
}

/**
 * The L2 norm of a whole Fisher estimate (over every tensor).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { fisherNorm } from "./fisher.ts";
 * equal(fisherNorm(new Map([["a", { shape: [2], data: new Float32Array([3, 4]) }]])), 5);
 * ```
 */
export function fisherNorm(fisher: HostParams): number {
  let sum = 0;
  for (const t of fisher.values()) for (const v of t.data) sum += v * v;
  return Math.sqrt(sum);
}

const SOURCES: readonly DataSourceName[] = ["train", "aux", "test_inputs"];

const PARAMS: readonly ParamSpec[] = [
  {
    name: "examples",
    type: "integer",
    default: 256,
    min: 0,
    source: `${FB} num_fisher_examples: 256`,
    meaning: "inputs per task the Fisher estimate is computed on (0 = all)",
  },
  {
    name: "batch",
    type: "integer",
    default: 32,
    min: 1,
    source: `${FB} dataloader_kwargs.batch_size: 32`,
    meaning: "inputs per gradient (the estimate squares each batch's summed gradient)",
  },
  {
    name: "normalize",
    type: "boolean",
    default: true,
    source: `${FB} normalize_fisher_weight: true`,
    meaning: "weight task t by the inverse L2 norm of its Fisher estimate (normalised)",
  },
  {
    name: "epsilon",
    type: "number",
    default: 1e-6,
    min: 0,
    source: `${FB} minimal_fisher_weight: 1e-6`,
    meaning: "added to every Fisher value (and to the norms) against division by zero",
  },
  {
    name: "data",
    type: "choice",
    choices: SOURCES,
    default: "train",
    source: "the paper and FusionBench: each task's training inputs (the expert's own " +
      "predictions stand in for labels)",
    meaning: "inputs of the Fisher estimate (aux: RI's task-agnostic set; test_inputs)",
  },
  scalingParam(1, "ours: the Fisher-weighted average is the merged model (no α in the method)"),
];

/** The Fisher merging method. */
export const fisherMerging: MergeMethod = {
  name: "fisher",
  title: "Fisher merging",
  summary: "Averages every parameter weighted by each expert's diagonal Fisher information, " +
    "estimated from its own predictions on its task's training inputs (no labels).",
  paper: "Matena & Raffel, Merging Models with Fisher-Weighted Averaging, NeurIPS 2022",
  code: "tanganke/fusion_bench (54c9e8c) fusion_bench/method/fisher_merging/" +
    "fisher_merging.py, clip_fisher_merging.py (from yule-BUAA/MergeLM)",
  params: PARAMS,
  tensorRule: "every tensor: the Fisher-weighted mean of the task vectors, elementwise",
  needs: "data",
  notInDefaultStudy: DATA_METHOD_NOT_DEFAULT,
  dataSource: (params) => stringParam(params, "data") as DataSourceName,
  treatment: () => "elementwise",
  async prepare(context: PrepareContext): Promise<TensorMerger> {
    const { params } = context;
    const epsilon = numberParam(params, "epsilon");
    const { dataPass, eachExpert } = await import("./model_pass.ts");
    const { diagonalFisher } = await import("./fisher_diag.ts");
    const pass = await dataPass(context);
    const { examples, batch } = pass;
    const { config, heads, norm } = pass.data.model;
    let perTask = 0;
    const fishers = await eachExpert(pass, "Fisher estimates", (expert, set, t) => {
      const count = examples === 0 ? set.count : Math.min(
        set.count,
        Math.ceil(examples / batch) * batch,
      );
      perTask = Math.max(perTask, count);
      const idx = Int32Array.from({ length: count }, (_, i) => i);
      return diagonalFisher(config, expert, heads[t], set, idx, batch, norm);
    });
    const norms = fishers.map(fisherNorm);
    const weights = fisherTaskWeights(norms, params.normalize === true, epsilon);
    return {
      tensor(name, _shape, values) {
        const f = fishers.map((fisher, t) => {
          const v = fisher.get(name);
          if (!v) throw new Error(`Fisher merging: no Fisher estimate of "${name}" for task ${t}`);
          return v.data;
        });
        return fisherMergeTensor(values, f, weights, epsilon);
      },
      notes: { fisher_norms: norms, task_weights: weights },
      dataUse: dataUseOf(pass.data, pass.source, perTask, false),
    };
  },
};
