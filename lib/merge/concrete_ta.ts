/**
 * Concrete Task Arithmetic (Tang et al., "Concrete Subspace Learning based Interference
 * Elimination for Multi-task Model Fusion", 2023): one mask shared by every task, learned on
 * the tasks' unlabeled test inputs by minimising the entropy of the merged model's predictions
 * (test-time adaptation, as AdaMerging), through a continuous relaxation of a Bernoulli mask.
 *
 * Every parameter entry i has a logit z_i (all start at `init`). Each step draws uniform noise
 * u per entry and takes the concrete (relaxed Bernoulli, Gumbel-sigmoid) sample at temperature
 * T, rescaled per tensor to mean 1:
 *
 *   s_i = σ((log u_i − log(1 − u_i) + log p_i − log(1 − p_i)) / T),   p_i = σ(z_i),
 *   m = s / mean(s),
 *
 * (probabilities clamped as PyTorch's `RelaxedBernoulli` does, see `concrete_fit.ts`). The
 * model is θ = θ0 + λ Σ_t τ_t ⊙ m with λ = `scaling` fixed; the step draws one batch of `batch`
 * inputs per task, evaluates H_t = −mean_i Σ_c p_ic log(p_ic + 1e-8) under task t's head, and
 * takes one Adam step (β = (0.9, 0.999), ε = 1e-8) on ∇_z Σ_t H_t. The final mask is a fresh
 * sample from the learned logits — concrete at T (`eval_mask=continuous`, FusionBench's
 * default) or Bernoulli(σ(z)) (`discrete`) — rescaled the same way, and the merged task vector
 * is M = Σ_t τ_t ⊙ m (θ0 + λ·M is FusionBench's `merge_and_unload(mask)`).
 *
 * Noise and batches: step k's uniforms for tensor `name` come from the seeded stream
 * (`seed`, k, name) ({@linkcode concreteNoise}; the final mask uses k = steps + 1), and the
 * batches from AdaMerging's endless shuffled loader (`adamerging_schedule.ts`).
 *
 * Defaults follow FusionBench (tanganke/fusion_bench at 54c9e8c,
 * `config/method/concrete_subspace/clip_concrete_task_arithmetic.yaml`). FusionBench's `sgd`
 * optimiser (with cosine annealing) is not offered; its `clamp_weights` acts only on λ, which
 * is fixed here at `scaling` (FusionBench freezes it too).
 *
 * @module
 */
import { type ImageSet, subset } from "../data/dataset.ts";
import { DATA_METHOD_NOT_DEFAULT, dataUseOf, pickImages } from "./data.ts";
import type {
  DataSourceName,
  MergeMethod,
  Params,
  ParamSpec,
  PrepareContext,
  TensorMerger,
} from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import type { ConcreteSettings } from "./concrete_fit.ts";

const FB = "FusionBench config/method/concrete_subspace/clip_concrete_task_arithmetic.yaml " +
  "(54c9e8c)";

/** The data sources Concrete TA may read: the paper's test inputs, or unlabeled others. */
const SOURCES: readonly DataSourceName[] = ["test_inputs", "aux", "train"];

const PARAMS: readonly ParamSpec[] = [
  {
    name: "temperature",
    type: "number",
    default: 0.5,
    min: 0,
    minExclusive: true,
    source: `${FB} temperature: 0.5`,
    meaning: "temperature T of the concrete (relaxed Bernoulli) mask",
  },
  {
    name: "init",
    type: "number",
    default: 0,
    source: `${FB} initial_logits: 0`,
    meaning: "starting value of every mask logit (0: keep probability 1/2)",
  },
  {
    name: "lr",
    type: "number",
    default: 1e-3,
    min: 0,
    minExclusive: true,
    source: `${FB} optimizer: adam, lr: 1e-3`,
    meaning: "Adam learning rate of the mask logits",
  },
  {
    name: "steps",
    type: "integer",
    default: 2000,
    min: 0,
    source: `${FB} max_steps: 2000`,
    meaning: "optimisation steps (each reads one batch per task)",
  },
  {
    name: "batch",
    type: "integer",
    default: 16,
    min: 1,
    source: `${FB} batch_size: 16`,
    meaning: "inputs per task and step",
  },
  {
    name: "eval_mask",
    type: "choice",
    choices: ["continuous", "discrete"],
    default: "continuous",
    source: `${FB} eval_mask_type: continuous`,
    meaning: "the final mask: a concrete sample at T, or a Bernoulli(σ(z)) sample",
  },
  {
    name: "data",
    type: "choice",
    choices: SOURCES,
    default: "test_inputs",
    source: "the paper and FusionBench: unlabeled test inputs of every task (test-time " +
      "adaptation)",
    meaning: "inputs the entropy is measured on (aux: RI's task-agnostic set; train: " +
      "training inputs, labels unused)",
  },
  {
    name: "examples",
    type: "integer",
    default: 0,
    min: 0,
    source: "FusionBench reads the whole test set (0 = all)",
    meaning: "inputs per task drawn once by the seed (0 = all), to equalise data budgets",
  },
  {
    name: "seed",
    type: "integer",
    default: 0,
    min: 0,
    source: "ours (noise and batch order; FusionBench draws both from its global seed)",
    meaning: "seed of the drawn inputs, the batch order and the mask noise",
  },
  scalingParam(
    0.3,
    `${FB} scaling_factor: 0.3 (λ of every task, fixed while the mask is learned)`,
  ),
];

/**
 * Concrete Task Arithmetic's settings from its effective parameters.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { concreteSettings } from "./concrete_ta.ts";
 * import { resolveParams } from "./params.ts";
 * import { getMethod } from "./registry.ts";
 * const s = concreteSettings(resolveParams(getMethod("concrete_ta")));
 * equal(s.steps, 2000);
 * equal(s.temperature, 0.5);
 * ```
 */
export function concreteSettings(params: Params): ConcreteSettings {
  return {
    scaling: numberParam(params, "scaling"),
    temperature: numberParam(params, "temperature"),
    init: numberParam(params, "init"),
    lr: numberParam(params, "lr"),
    steps: numberParam(params, "steps"),
    batch: numberParam(params, "batch"),
    evalMask: stringParam(params, "eval_mask") as ConcreteSettings["evalMask"],
    seed: numberParam(params, "seed"),
  };
}

/**
 * The inputs Concrete TA reads for each task: the source's images without labels, all of them
 * or `examples` drawn by the seed.
 */
async function taskInputs(context: PrepareContext, source: DataSourceName): Promise<ImageSet[]> {
  const { data, params } = context;
  const examples = numberParam(params, "examples");
  const seed = numberParam(params, "seed");
  const sets: ImageSet[] = [];
  for (let t = 0; t < context.tasks.length; t++) {
    const set = await data!.images(source, t);
    const pick = pickImages(set.count, examples, seed, `concrete_ta/pick/task${t}`);
    sets.push({ ...subset(set, pick), labels: new Int32Array(0), classes: [] });
  }
  return sets;
}

/** Concrete Task Arithmetic: Task Arithmetic under one learned concrete mask shared by tasks. */
export const concreteTaskArithmetic: MergeMethod = {
  name: "concrete_ta",
  title: "Concrete Task Arithmetic",
  summary: "Learns one mask shared by every task (a logit per parameter entry, relaxed " +
    "Bernoulli samples at temperature T, rescaled to mean 1 per tensor) by minimising the " +
    "entropy of θ0 + λ Σ_t τ_t ⊙ m on each task's unlabeled test inputs (Adam, through the " +
    "model); M = Σ_t τ_t ⊙ m with a final sample of the mask.",
  paper: "Tang et al., Concrete Subspace Learning based Interference Elimination for " +
    "Multi-task Model Fusion, arXiv:2312.06173, 2023",
  code: "tanganke/fusion_bench (54c9e8c) fusion_bench/method/concrete_subspace/" +
    "clip_concrete_task_arithmetic.py, models/masks/mask_model.py, " +
    "models/wrappers/task_wise_fusion.py",
  params: PARAMS,
  tensorRule: "every tensor: m ⊙ Σ_t τ_t with the learned mask m (one entry per parameter " +
    "entry, shared by the tasks)",
  needs: "data",
  notInDefaultStudy: DATA_METHOD_NOT_DEFAULT,
  dataSource: (params) => stringParam(params, "data") as DataSourceName,
  treatment: () => "elementwise",
  async prepare(context: PrepareContext): Promise<TensorMerger> {
    const source = stringParam(context.params, "data") as DataSourceName;
    const settings = concreteSettings(context.params);
    const sets = await taskInputs(context, source);
    // TensorFlow.js only now: a data-free checkpoint merge never loads it.
    const { fitConcrete } = await import("./concrete_fit.ts");
    const { loadTaskVectors } = await import("./model_pass.ts");
    const taus = await loadTaskVectors(context.tasks, context.progress);
    const names = [...context.tasks[0].names()];
    const fit = await fitConcrete({
      model: context.data!.model,
      taus,
      names,
      sets,
      settings,
      progress: context.progress,
    });
    let positive = 0, entries = 0;
    for (const z of fit.logits.values()) {
      for (const v of z) if (v > 0) positive++;
      entries += z.length;
    }
    return {
      tensor(name, _shape, values) {
        const m = fit.mask.get(name);
        if (!m) throw new Error(`Concrete TA: no mask for tensor "${name}"`);
        const out = new Float32Array(m.length);
        for (const v of values) {
          if (v.length !== m.length) {
            throw new Error(
              `Concrete TA: tensor "${name}" has ${v.length} values, its mask ${m.length}`,
            );
          }
          for (let i = 0; i < out.length; i++) out[i] += v[i];
        }
        for (let i = 0; i < out.length; i++) out[i] *= m[i];
        return out;
      },
      notes: {
        entropy_first: fit.losses[0],
        entropy_last: fit.losses[fit.losses.length - 1],
        mask_mean_first: fit.maskMeans[0],
        mask_mean_last: fit.maskMeans[fit.maskMeans.length - 1],
        final_mask_mean: fit.finalMaskMean,
        logits_positive: entries ? positive / entries : 0,
      },
      dataUse: dataUseOf(context.data, source, Math.max(...sets.map((s) => s.count)), false),
    };
  },
};
