/**
 * Frank-Wolfe merging, hard variant (Chen et al., "FW-Merging: Scaling Model Merging with
 * Frank-Wolfe Optimization", ICCV 2025; FusionBench `FrankWolfeHardAlgorithm`): the merged model θ is moved, K times, a step towards the one
 * candidate model that the gradient of the tasks' loss at θ points away from most.
 *
 * Start: θ^0 = θ0 + s·Σ_t τ_t (Task Arithmetic with s = `init_scaling`; `init=base`: θ0).
 * Candidates: the experts θ_t = θ0 + τ_t, t = 1..T, and the initial model θ^0 itself.
 * Iteration k = 0..K−1:
 *
 * 1. g = ∇_θ (1/(N·T)) Σ_t Σ_{n<N} ℓ(f_θ(x_{t,n}), y_{t,n}): ℓ the cross-entropy of task t's
 *    head (`loss=entropy`: the entropy of its prediction, no labels), N = `examples` images of
 *    task t, the next N of an endless shuffled stream over the task's images (FusionBench's
 *    cached infinite loader of batch size 1, so iteration k reads positions kN..(k+1)N−1).
 * 2. Linear-minimisation oracle, on the models' whole parameters (not their task vectors), as
 *    FusionBench scores them: a(c, p) = ⟨g_p, θ_{c,p}⟩ / (‖g_p‖‖θ_{c,p}‖) per parameter tensor
 *    p. `granularity=task`: the candidate c* minimising Σ_p a(c, p) (first on ties);
 *    `granularity=layer`: per tensor p, the candidate minimising a(c, p).
 * 3. θ ← θ + γ_k (θ_{c*} − θ), γ_k = 2/(k+2) · `step_size` · s (FusionBench merges the chosen
 *    model into θ by Task Arithmetic with scaling factor step · scaling_factor).
 *
 * The merged task vector is M = θ^K − θ0 (α = `scaling` = 1). A cosine whose gradient or
 * parameter norm is zero counts as 0 (FusionBench's 0/0 is NaN, and its task-wise selection
 * then finds no model). Tensors without task vectors stay at θ0 and are not scored.
 *
 * Not here: FusionBench's `merge_fn: ties` (TIES of the single chosen model as the step) and its
 * `init_weight` file of layer-wise coefficients; `tasks` and `max_num_models` are every task.
 *
 * @module
 */
import type { ImageSet } from "../data/dataset.ts";
import { DATA_METHOD_NOT_DEFAULT, dataUseOf } from "./data.ts";
import type {
  DataSourceName,
  MergeMethod,
  Params,
  ParamSpec,
  PrepareContext,
  TensorMerger,
} from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import type { FrankWolfeSettings } from "./fw_merging_schedule.ts";

const FB = "FusionBench config/method/fw_merging/fw_hard.yaml (54c9e8c)";
const CODE = "FusionBench fusion_bench/method/fw_merging/fw_hard.py (54c9e8c)";

/**
 * Frank-Wolfe merging's settings from its effective parameters.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { frankWolfeSettings } from "./fw_merging.ts";
 * import { resolveParams } from "./params.ts";
 * import { getMethod } from "./registry.ts";
 * const s = frankWolfeSettings(resolveParams(getMethod("fw_hard")));
 * equal(s.steps * s.examples, 1000); // 10 iterations of 100 images per task
 * ```
 */
export function frankWolfeSettings(params: Params): FrankWolfeSettings {
  return {
    steps: numberParam(params, "steps"),
    stepSize: numberParam(params, "step_size"),
    initScaling: numberParam(params, "init_scaling"),
    examples: numberParam(params, "examples"),
    granularity: stringParam(params, "granularity") as "task" | "layer",
    loss: stringParam(params, "loss") as "cross_entropy" | "entropy",
    init: stringParam(params, "init") as "task_arithmetic" | "base",
    batch: numberParam(params, "batch"),
    seed: numberParam(params, "seed"),
  };
}

const SOURCES: readonly DataSourceName[] = ["train", "test_inputs", "aux"];

const PARAMS: readonly ParamSpec[] = [
  {
    name: "steps",
    type: "integer",
    default: 10,
    min: 0,
    source: `${FB} max_iters: 10`,
    meaning: "Frank-Wolfe iterations K (each reads `examples` images per task)",
  },
  {
    name: "step_size",
    type: "number",
    default: 0.1,
    min: 0,
    source: `${FB} step_size: 0.1`,
    meaning: "γ_k = 2/(k+2) · step_size · init_scaling",
  },
  {
    name: "init_scaling",
    type: "number",
    default: 0.3,
    min: 0,
    source: `${FB} scaling_factor: 0.3 (merge_fn: task_arithmetic)`,
    meaning: "s: θ^0 = θ0 + s·Σ_t τ_t, and the multiplier of every step",
  },
  {
    name: "examples",
    type: "integer",
    default: 100,
    min: 1,
    source: `${FB} dataset_size: 100`,
    meaning: "images per task and iteration the gradient is measured on",
  },
  {
    name: "granularity",
    type: "choice",
    choices: ["task", "layer"],
    default: "task",
    source: `${FB} granularity: task`,
    meaning: "one chosen model per iteration (task) or one per parameter tensor (layer)",
  },
  {
    name: "loss",
    type: "choice",
    choices: ["cross_entropy", "entropy"],
    default: "cross_entropy",
    source: `${FB} loss_fn: cross_entropy (on the training set, with labels)`,
    meaning: "cross_entropy (needs labels: data=train) or entropy (no labels)",
  },
  {
    name: "data",
    type: "choice",
    choices: SOURCES,
    default: "train",
    source: `${CODE}: cross_entropy reads the training set, entropy the test set`,
    meaning: "images of the gradient (test_inputs, aux: only with loss=entropy)",
  },
  {
    name: "init",
    type: "choice",
    choices: ["task_arithmetic", "base"],
    default: "task_arithmetic",
    source: `${FB} init_weight: (empty: the merge function, Task Arithmetic)`,
    meaning: "θ^0: Task Arithmetic with init_scaling, or θ0 (FusionBench init_weight: base)",
  },
  {
    name: "batch",
    type: "integer",
    default: 16,
    min: 1,
    source: "ours: FusionBench passes one image at a time; the summed loss's gradient is the same",
    meaning: "images per forward pass",
  },
  {
    name: "seed",
    type: "integer",
    default: 0,
    min: 0,
    source: "ours (FusionBench shuffles with its global seed)",
    meaning: "seed of the image streams",
  },
  scalingParam(1, "ours: Frank-Wolfe's iterate is the merged model (no α in the method)"),
];

/** Task t's images of `source` (labels kept only for the cross-entropy). */
async function taskSets(context: PrepareContext, source: DataSourceName, labels: boolean) {
  const sets: ImageSet[] = [];
  for (let t = 0; t < context.tasks.length; t++) {
    const set = await context.data!.images(source, t);
    if (labels && set.labels.length !== set.count) {
      throw new Error(
        `Frank-Wolfe merging: loss=cross_entropy needs labels, and task ${t}'s ${source} ` +
          `images have ${set.labels.length} labels for ${set.count} images`,
      );
    }
    sets.push(labels ? set : { ...set, labels: new Int32Array(0), classes: [] });
  }
  return sets;
}

/** Frank-Wolfe merging, hard variant (FusionBench `fw_hard`). */
export const fwHard: MergeMethod = {
  name: "fw_hard",
  title: "Frank-Wolfe merging (hard)",
  summary: "From Task Arithmetic, K Frank-Wolfe steps θ ← θ + γ_k(θ_c − θ) toward the expert " +
    "(or the initial merge) whose parameters align least with the gradient of the tasks' " +
    "training cross-entropy at θ; M = θ^K − θ0.",
  paper: "Chen et al., FW-Merging: Scaling Model Merging with Frank-Wolfe Optimization, ICCV " +
    "2025 (arXiv 2503.12649)",
  code: `${CODE}, config/method/fw_merging/fw_hard.yaml (from hmarkc/FW-Merging)`,
  params: PARAMS,
  tensorRule: "every tensor with task vectors: the Frank-Wolfe iterate minus θ0 (one chosen " +
    "model per iteration, or per tensor with granularity=layer)",
  needs: "data",
  notInDefaultStudy: DATA_METHOD_NOT_DEFAULT,
  dataSource: (params) => stringParam(params, "data") as DataSourceName,
  treatment: () => "elementwise",
  async prepare(context: PrepareContext): Promise<TensorMerger> {
    const settings = frankWolfeSettings(context.params);
    const source = stringParam(context.params, "data") as DataSourceName;
    const labels = settings.loss === "cross_entropy";
    if (labels && source !== "train") {
      throw new Error(
        `Frank-Wolfe merging: loss=cross_entropy reads labels, which only data=train has ` +
          `(data=${source}: use loss=entropy)`,
      );
    }
    const sets = await taskSets(context, source, labels);
    // TensorFlow.js only now: a data-free checkpoint merge never loads it.
    const { fitFrankWolfe } = await import("./fw_merging_fit.ts");
    const { loadTaskVectors } = await import("./model_pass.ts");
    const taus = await loadTaskVectors(context.tasks, context.progress);
    const names = [...context.tasks[0].names()];
    const fit = await fitFrankWolfe({
      model: context.data!.model,
      taus,
      names,
      sets,
      settings,
      progress: context.progress,
    });
    const T = taus.length;
    const label = (c: number) => c === T ? "initial" : `task${c}`;
    const read = Math.max(
      ...sets.map((s) => Math.min(s.count, settings.examples * settings.steps)),
    );
    return {
      tensor(name) {
        const m = fit.merged.get(name);
        if (!m) throw new Error(`Frank-Wolfe merging: no merged values for tensor "${name}"`);
        return m.slice();
      },
      notes: {
        chosen: fit.choices.map((c) =>
          settings.granularity === "task" ? label(c[0]) : Object.fromEntries(
            Array.from({ length: T + 1 }, (_, k) => [label(k), c.filter((v) => v === k).length]),
          )
        ),
        loss_first: fit.losses[0],
        loss_last: fit.losses[fit.losses.length - 1],
      },
      dataUse: dataUseOf(context.data, source, read, labels),
    };
  },
};
