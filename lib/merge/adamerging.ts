/**
 * AdaMerging (Yang et al., ICLR 2024, "AdaMerging: Adaptive Model Merging for Multi-Task
 * Learning"): the merge coefficients are learned on the tasks' unlabeled test inputs by
 * minimising the entropy of the merged model's predictions, through the model.
 *
 * The merged model is θ(λ) = θ0 + Σ_t λ_t τ_t (task-wise: one coefficient per task) or
 * θ0 + Σ_t λ_{t,ℓ} τ_{t,ℓ} (layer-wise: one coefficient per task and parameter tensor ℓ, as
 * FusionBench's `LayerWiseMergedModel` counts "layers"). Every λ starts at `init`; each step
 * draws one batch of `batch` inputs per task, evaluates H_t = −mean_i Σ_c p_ic log(p_ic + 1e-8)
 * under task t's own head, and takes one Adam step (β = (0.9, 0.999), ε = 1e-8, no weight decay)
 * on ∇_λ Σ_t H_t. With `clamp` the model uses clamp(λ, 0, 1) (the original repository's rule).
 * The merged task vector is M = Σ_t λ_t τ_t with the final coefficients.
 *
 * Batches: task t's inputs (all of the source's, or `examples` of them drawn by `seed`) are
 * visited as an endless shuffled loader: epoch e is a permutation seeded by (`seed`, t, e), cut
 * into consecutive batches (the last one of an epoch may be smaller, as PyTorch's DataLoader
 * without `drop_last` gives); step s takes each task's next batch ({@linkcode adaMergingBatch}).
 *
 * Defaults follow FusionBench (tanganke/fusion_bench at 54c9e8c, `config/method/adamerging/
 * clip.yaml`); where the authors' code (EnnengYang/AdaMerging, `src/main_*_adamerging.py`)
 * differs — 500 steps, two batches of 16 per task and step, coefficients clamped to [0, 1] —
 * each parameter's source says so.
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
import type { AdaMergingSettings } from "./adamerging_schedule.ts";

const FB = "FusionBench config/method/adamerging/clip.yaml (54c9e8c)";
const REPO = "EnnengYang/AdaMerging src/main_layer_wise_adamerging.py";

/** The data sources AdaMerging may read: the paper's test inputs, or unlabeled others. */
const SOURCES: readonly DataSourceName[] = ["test_inputs", "aux", "train"];

const PARAMS: readonly ParamSpec[] = [
  {
    name: "init",
    type: "number",
    default: 0.3,
    source: `${FB} init_values: 0.3; ${REPO}: prior = 0.3`,
    meaning: "starting value of every coefficient λ",
  },
  {
    name: "lr",
    type: "number",
    default: 1e-3,
    min: 0,
    minExclusive: true,
    source: `${FB} lr: 1e-3 (Adam); ${REPO}: Adam lr=1e-3`,
    meaning: "Adam learning rate of the coefficients",
  },
  {
    name: "steps",
    type: "integer",
    default: 1000,
    min: 0,
    source: `${FB} max_steps: 1000; ${REPO}: epochs = 500 (one step each)`,
    meaning: "optimisation steps (each reads one batch per task)",
  },
  {
    name: "batch",
    type: "integer",
    default: 16,
    min: 1,
    source: `${FB} batch_size: 16; ${REPO}: batch_size=16, two batches per task and step`,
    meaning: "inputs per task and step",
  },
  {
    name: "clamp",
    type: "boolean",
    default: false,
    source: `${FB} clamp_weights: false; ${REPO}: torch.clamp(lambdas, 0, 1)`,
    meaning: "use clamp(λ, 0, 1) in the model",
  },
  {
    name: "data",
    type: "choice",
    choices: SOURCES,
    default: "test_inputs",
    source: "the paper: unlabeled test inputs of every task (test-time adaptation)",
    meaning: "inputs the entropy is measured on (aux: RI's task-agnostic set; train: " +
      "training inputs, labels unused)",
  },
  {
    name: "examples",
    type: "integer",
    default: 0,
    min: 0,
    source: "FusionBench and the paper read the whole test set (0 = all)",
    meaning: "inputs per task drawn once by the seed (0 = all), to equalise data budgets",
  },
  {
    name: "seed",
    type: "integer",
    default: 0,
    min: 0,
    source: "ours (batch order; FusionBench shuffles with its global seed)",
    meaning: "seed of the drawn inputs and of the batch order",
  },
  scalingParam(1, "ours: the learned coefficients are the merge (AdaMerging has no α)"),
];

/**
 * AdaMerging's settings from its effective parameters.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { adaMergingSettings } from "./adamerging.ts";
 * import { resolveParams } from "./params.ts";
 * import { getMethod } from "./registry.ts";
 * equal(adaMergingSettings(resolveParams(getMethod("adamerging")), true).steps, 1000);
 * ```
 */
export function adaMergingSettings(params: Params, layerWise: boolean): AdaMergingSettings {
  return {
    layerWise,
    init: numberParam(params, "init"),
    lr: numberParam(params, "lr"),
    steps: numberParam(params, "steps"),
    batch: numberParam(params, "batch"),
    clamp: params.clamp === true,
    seed: numberParam(params, "seed"),
  };
}

/**
 * The inputs AdaMerging reads for each task: the source's images without labels, all of them
 * or `examples` drawn by the seed.
 */
async function taskInputs(context: PrepareContext, source: DataSourceName): Promise<ImageSet[]> {
  const { data, params } = context;
  const examples = numberParam(params, "examples");
  const seed = numberParam(params, "seed");
  const sets: ImageSet[] = [];
  for (let t = 0; t < context.tasks.length; t++) {
    const set = await data!.images(source, t);
    const pick = pickImages(set.count, examples, seed, `adamerging/pick/task${t}`);
    sets.push({ ...subset(set, pick), labels: new Int32Array(0), classes: [] });
  }
  return sets;
}

function adaMerging(layerWise: boolean): MergeMethod {
  const kind = layerWise ? "layer-wise" : "task-wise";
  return {
    name: layerWise ? "adamerging" : "adamerging_task",
    title: `AdaMerging (${kind})`,
    summary:
      `Learns ${
        layerWise ? "one coefficient per task and parameter tensor" : "one coefficient per task"
      } by minimising the entropy of the merged model's predictions on each task's unlabeled ` +
      "test inputs (Adam, through the model); M = Σ_t λ_t τ_t.",
    paper: "Yang et al., AdaMerging: Adaptive Model Merging for Multi-Task Learning, ICLR 2024",
    code:
      `tanganke/fusion_bench (54c9e8c) fusion_bench/method/adamerging/${
        layerWise ? "layer_wise_adamerging.py" : "task_wise_adamerging.py"
      }, models/wrappers/${layerWise ? "layer_wise_fusion.py" : "task_wise_fusion.py"}; ` +
      `EnnengYang/AdaMerging src/main_${layerWise ? "layer" : "task"}_wise_adamerging.py`,
    params: PARAMS,
    tensorRule: layerWise
      ? "every tensor: λ_{t,ℓ}·τ_{t,ℓ} summed over tasks, one learned λ per task and tensor"
      : "every tensor: λ_t·τ_t summed over tasks, one learned λ per task",
    needs: "data",
    notInDefaultStudy: DATA_METHOD_NOT_DEFAULT,
    dataSource: (params) => stringParam(params, "data") as DataSourceName,
    treatment: () => "elementwise",
    async prepare(context: PrepareContext): Promise<TensorMerger> {
      const source = stringParam(context.params, "data") as DataSourceName;
      const settings = adaMergingSettings(context.params, layerWise);
      const sets = await taskInputs(context, source);
      // TensorFlow.js only now: a data-free checkpoint merge never loads it.
      const { fitAdaMerging } = await import("./adamerging_fit.ts");
      const { loadTaskVectors } = await import("./model_pass.ts");
      const taus = await loadTaskVectors(context.tasks, context.progress);
      const names = [...context.tasks[0].names()];
      const fit = await fitAdaMerging({
        model: context.data!.model,
        taus,
        names,
        sets,
        settings,
        progress: context.progress,
      });
      const T = taus.length, L = layerWise ? names.length : 1;
      const used = fit.used; // clamp(λ) when clamping, else λ
      const column = new Map(names.map((n, l) => [n, layerWise ? l : 0]));
      const meanOf = (t: number) => {
        let s = 0;
        for (let l = 0; l < L; l++) s += used[t * L + l];
        return s / L;
      };
      return {
        tensor(name, _shape, values) {
          const l = column.get(name);
          if (l === undefined) throw new Error(`AdaMerging: no coefficient for tensor "${name}"`);
          const out = new Float32Array(values[0].length);
          for (let t = 0; t < T; t++) {
            const w = used[t * L + l];
            const v = values[t];
            for (let i = 0; i < out.length; i++) out[i] += w * v[i];
          }
          return out;
        },
        notes: {
          coefficients: Array.from({ length: T }, (_, t) => meanOf(t)),
          ...(layerWise ? { coefficients_per_tensor: Array.from(used) } : {}),
          entropy_first: fit.losses[0],
          entropy_last: fit.losses[fit.losses.length - 1],
        },
        dataUse: dataUseOf(context.data, source, Math.max(...sets.map((s) => s.count)), false),
      };
    },
  };
}

/** Layer-wise AdaMerging: one coefficient per task and parameter tensor. */
export const adaMergingLayer: MergeMethod = adaMerging(true);

/** Task-wise AdaMerging: one coefficient per task. */
export const adaMergingTask: MergeMethod = adaMerging(false);
