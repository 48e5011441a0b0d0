/**
 * Concrete AdaMerging (Tang et al., "Concrete Subspace Learning based Interference Elimination
 * for Multi-task Model Fusion", 2023): Concrete Task Arithmetic's shared mask (see
 * `concrete_ta.ts`), meta-learned against AdaMerging's coefficients, then AdaMerging under the
 * learned mask; task-wise (one λ per task) or layer-wise (one per task and parameter tensor).
 *
 * Mask step k, with m = s / mean(s) the concrete sample of the logits z at temperature T with the
 * step's noise: (1) the entropy Σ_t H_t of θ_A = θ0 + Σ_t λ'_t τ_t ⊙ sg(m) on one batch per task
 * gives one Adam step of λ from λ0 (lr `base_lr`; λ' is the λ the previous step's inner update
 * left, λ0 at k = 1, as FusionBench merges before it restores λ; the inner Adam keeps its
 * moments across steps); (2) the entropy of θ_B = θ0 + Σ_t λ_t τ_t ⊙ m with that λ, on the next
 * batch per task, gives one Adam step of z (lr `lr`; first order: no gradient through the inner
 * step). After `steps` mask steps the final mask is sampled (concrete, or Bernoulli(σ(z))), λ is
 * restored to λ0 and `ada_steps` AdaMerging steps (Adam, lr `ada_lr`) learn λ on τ_t ⊙ m, the
 * task loaders going on. M = Σ_t λ_t τ_t ⊙ m; α = 1.
 *
 * Defaults follow FusionBench (tanganke/fusion_bench at 54c9e8c, `config/method/
 * concrete_subspace/clip_concrete_{task,layer}_wise_adamerging.yaml`).
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
import type { ConcreteAdaMergingSettings } from "./concrete_fit.ts";

const fb = (layerWise: boolean) =>
  `FusionBench config/method/concrete_subspace/clip_concrete_${
    layerWise ? "layer" : "task"
  }_wise_adamerging.yaml (54c9e8c)`;

/** The data sources Concrete AdaMerging may read: the paper's test inputs, or unlabeled others. */
const SOURCES: readonly DataSourceName[] = ["test_inputs", "aux", "train"];

function params(layerWise: boolean): readonly ParamSpec[] {
  const FB = fb(layerWise);
  return [
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
      default: 1000,
      min: 0,
      source: `${FB} max_steps: 1000`,
      meaning: "mask steps (each reads two batches per task)",
    },
    {
      name: "lambda_init",
      type: "number",
      default: 0.3,
      source: `${FB} scaling_factor: 0.3`,
      meaning: "starting value of every coefficient λ (restored before each inner step)",
    },
    {
      name: "base_lr",
      type: "number",
      default: 1,
      min: 0,
      minExclusive: true,
      source: `${FB} base_lr: 1`,
      meaning: "Adam learning rate of the inner λ step while the mask is learned",
    },
    {
      name: "ada_lr",
      type: "number",
      default: 1e-3,
      min: 0,
      minExclusive: true,
      source: `${FB} adamerging_lr: 1e-3`,
      meaning: "Adam learning rate of λ in the AdaMerging phase under the final mask",
    },
    {
      name: "ada_steps",
      type: "integer",
      default: 1000,
      min: 0,
      source: `${FB} max_adamerging_steps: 1000`,
      meaning: "AdaMerging steps under the final mask (each reads one batch per task)",
    },
    {
      name: "batch",
      type: "integer",
      default: 16,
      min: 1,
      source: `${FB} batch_size: 16`,
      meaning: "inputs per task and batch",
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
    scalingParam(1, "ours: the learned coefficients are the merge (as AdaMerging)"),
  ];
}

/**
 * Concrete AdaMerging's settings from its effective parameters.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { concreteAdaMergingSettings } from "./concrete_adamerging.ts";
 * import { resolveParams } from "./params.ts";
 * import { getMethod } from "./registry.ts";
 * const s = concreteAdaMergingSettings(resolveParams(getMethod("concrete_adamerging")), true);
 * equal(s.baseLr, 1);
 * equal(s.adaSteps, 1000);
 * ```
 */
export function concreteAdaMergingSettings(
  params: Params,
  layerWise: boolean,
): ConcreteAdaMergingSettings {
  return {
    layerWise,
    scaling: numberParam(params, "scaling"),
    temperature: numberParam(params, "temperature"),
    init: numberParam(params, "init"),
    lr: numberParam(params, "lr"),
    steps: numberParam(params, "steps"),
    batch: numberParam(params, "batch"),
    evalMask: stringParam(params, "eval_mask") as ConcreteAdaMergingSettings["evalMask"],
    seed: numberParam(params, "seed"),
    lambdaInit: numberParam(params, "lambda_init"),
    baseLr: numberParam(params, "base_lr"),
    adaLr: numberParam(params, "ada_lr"),
    adaSteps: numberParam(params, "ada_steps"),
  };
}

async function taskInputs(context: PrepareContext, source: DataSourceName): Promise<ImageSet[]> {
  const { data, params } = context;
  const examples = numberParam(params, "examples");
  const seed = numberParam(params, "seed");
  const sets: ImageSet[] = [];
  for (let t = 0; t < context.tasks.length; t++) {
    const set = await data!.images(source, t);
    const pick = pickImages(set.count, examples, seed, `concrete_adamerging/pick/task${t}`);
    sets.push({ ...subset(set, pick), labels: new Int32Array(0), classes: [] });
  }
  return sets;
}

function concreteAdaMerging(layerWise: boolean): MergeMethod {
  const kind = layerWise ? "layer-wise" : "task-wise";
  const file = layerWise ? "layer" : "task";
  return {
    name: layerWise ? "concrete_adamerging" : "concrete_adamerging_task",
    title: `Concrete AdaMerging (${kind})`,
    summary: "Meta-learns Concrete TA's shared mask (relaxed Bernoulli samples rescaled to mean " +
      "1 per tensor) against one inner Adam step of AdaMerging's coefficients, by entropy on " +
      "each task's unlabeled test inputs, then learns the coefficients by AdaMerging under the " +
      `final mask (${kind}); M = Σ_t λ_t τ_t ⊙ m.`,
    paper: "Tang et al., Concrete Subspace Learning based Interference Elimination for " +
      "Multi-task Model Fusion, arXiv:2312.06173, 2023",
    code: "tanganke/fusion_bench (54c9e8c) fusion_bench/method/concrete_subspace/" +
      `clip_concrete_adamerging.py (Concrete${
        layerWise ? "Layer" : "Task"
      }WiseAdaMergingForCLIP), ` +
      `models/masks/mask_model.py, models/wrappers/${file}_wise_fusion.py`,
    params: params(layerWise),
    tensorRule: `every tensor: λ·τ_t ⊙ m summed over tasks, the learned mask m shared by the ` +
      `tasks and ${layerWise ? "one λ per task and tensor" : "one λ per task"}`,
    needs: "data",
    notInDefaultStudy: DATA_METHOD_NOT_DEFAULT,
    dataSource: (p) => stringParam(p, "data") as DataSourceName,
    treatment: () => "elementwise",
    async prepare(context: PrepareContext): Promise<TensorMerger> {
      const source = stringParam(context.params, "data") as DataSourceName;
      const settings = concreteAdaMergingSettings(context.params, layerWise);
      const sets = await taskInputs(context, source);
      // TensorFlow.js only now: a data-free checkpoint merge never loads it.
      const { fitConcreteAdaMerging } = await import("./concrete_fit.ts");
      const { loadTaskVectors } = await import("./model_pass.ts");
      const taus = await loadTaskVectors(context.tasks, context.progress);
      const names = [...context.tasks[0].names()];
      const fit = await fitConcreteAdaMerging({
        model: context.data!.model,
        taus,
        names,
        sets,
        settings,
        progress: context.progress,
      });
      const T = taus.length, L = layerWise ? names.length : 1;
      const column = new Map(names.map((n, l) => [n, layerWise ? l : 0]));
      const meanOf = (t: number) => {
        let s = 0;
        for (let l = 0; l < L; l++) s += fit.lambda[t * L + l];
        return s / L;
      };
      return {
        tensor(name, _shape, values) {
          const m = fit.mask.get(name), l = column.get(name);
          if (!m || l === undefined) {
            throw new Error(`Concrete AdaMerging: no mask or coefficient for tensor "${name}"`);
          }
          const out = new Float32Array(m.length);
          for (let t = 0; t < T; t++) {
            const w = fit.lambda[t * L + l], v = values[t];
            if (v.length !== m.length) {
              throw new Error(
                `Concrete AdaMerging: tensor "${name}" has ${v.length} values, its mask ${m.length}`,
              );
            }
            for (let i = 0; i < out.length; i++) out[i] += w * v[i];
          }
          for (let i = 0; i < out.length; i++) out[i] *= m[i];
          return out;
        },
        notes: {
          coefficients: Array.from({ length: T }, (_, t) => meanOf(t)),
          ...(layerWise ? { coefficients_per_tensor: Array.from(fit.lambda) } : {}),
          entropy_first: fit.losses[0],
          entropy_last: fit.losses[fit.losses.length - 1],
          adamerging_entropy_first: fit.adaLosses[0],
          adamerging_entropy_last: fit.adaLosses[fit.adaLosses.length - 1],
          mask_mean_first: fit.maskMeans[0],
          mask_mean_last: fit.maskMeans[fit.maskMeans.length - 1],
          final_mask_mean: fit.finalMaskMean,
        },
        dataUse: dataUseOf(context.data, source, Math.max(...sets.map((s) => s.count)), false),
      };
    },
  };
}

/** Layer-wise Concrete AdaMerging: the shared mask, one coefficient per task and tensor. */
export const concreteAdaMergingLayer: MergeMethod = concreteAdaMerging(true);

/** Task-wise Concrete AdaMerging: the shared mask, one coefficient per task. */
export const concreteAdaMergingTask: MergeMethod = concreteAdaMerging(false);
