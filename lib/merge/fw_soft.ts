/**
 * Frank-Wolfe merging, soft variant (Chen et al., "FW-Merging: Scaling Model Merging with
 * Frank-Wolfe Optimization", ICCV 2025; FusionBench `FrankWolfeSoftAlgorithm`): K rounds, each
 * of which picks models with the Frank-Wolfe oracle and merges them into the current model by
 * layer-wise AdaMerging.
 *
 * Start: θ^0 = θ0 (FusionBench's empty `init_weight`). Round k = 0..K−1: for each task t, the
 * oracle of `fw_hard` (the gradient of the cross-entropy on 100 of task t's training images,
 * cosines with each expert's whole parameters) picks the expert minimising the summed cosine
 * among those not yet picked this round (per tensor with `granularity: layer`), until T are
 * picked. Then layer-wise AdaMerging anchored at θ^k: θ(λ) = θ^k + Σ_i λ_{i,ℓ} (θ_{c_i} − θ^k),
 * λ starting at 0.3 in round 0 and at `ada_coeff` = 1e-8 after, `ada_steps` Adam steps (lr
 * 1e-3) on the summed entropy of one batch of 16 test inputs per task; θ^{k+1} = θ(λ).
 *
 * With every task in the pool (FusionBench's defaults: `tasks` empty, `max_num_models` 100 ≥ T)
 * a round picks T distinct experts out of T, so the oracle only orders them — per tensor too —
 * and layer-wise AdaMerging, whose coefficients all start equal and move elementwise, is the same
 * for any order (up to float32 summation order). So the oracle cannot change the merge, and
 * this implementation does not compute it (FusionBench reads 100 labelled training images per
 * task and round for it): every round merges all experts. The test inputs' batches continue one
 * stream per task across the rounds (FusionBench's cached loader), as `adamerging.ts` draws them.
 *
 * M = θ^K − θ0, α = `scaling` = 1.
 *
 * @module
 */
import { type ImageSet, subset } from "../data/dataset.ts";
import { DATA_METHOD_NOT_DEFAULT, dataUseOf, pickImages } from "./data.ts";
import type {
  DataSourceName,
  MergeMethod,
  ParamSpec,
  PrepareContext,
  TensorMerger,
} from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";

const FB = "FusionBench config/method/fw_merging/fw_soft.yaml (54c9e8c)";
const CODE = "FusionBench fusion_bench/method/fw_merging/fw_soft.py (54c9e8c)";

const SOURCES: readonly DataSourceName[] = ["test_inputs", "aux", "train"];

const PARAMS: readonly ParamSpec[] = [
  {
    name: "steps",
    type: "integer",
    default: 10,
    min: 0,
    source: `${FB} max_iters: 10`,
    meaning: "Frank-Wolfe rounds K (each a layer-wise AdaMerging run)",
  },
  {
    name: "ada_steps",
    type: "integer",
    default: 500,
    min: 0,
    source: `${FB} ada_iters: 500`,
    meaning: "Adam steps of each round's AdaMerging",
  },
  {
    name: "init",
    type: "number",
    default: 0.3,
    source: `${CODE}: init_values 0.3 in round 0`,
    meaning: "the first round's starting coefficients",
  },
  {
    name: "ada_coeff",
    type: "number",
    default: 1e-8,
    source: `${FB} ada_coeff: 1e-8`,
    meaning: "the starting coefficients of every later round",
  },
  {
    name: "lr",
    type: "number",
    default: 1e-3,
    min: 0,
    minExclusive: true,
    source: `${CODE} run_adamerging: Adam lr=1e-3`,
    meaning: "Adam learning rate of the coefficients",
  },
  {
    name: "batch",
    type: "integer",
    default: 16,
    min: 1,
    source: `${CODE} run_adamerging: batch_size=16`,
    meaning: "inputs per task and step",
  },
  {
    name: "data",
    type: "choice",
    choices: SOURCES,
    default: "test_inputs",
    source: `${FB} ada_loss: entropy_loss (on the test set, labels unused)`,
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
    source: "ours (batch order; FusionBench shuffles with its global seed)",
    meaning: "seed of the drawn inputs and of the batch order",
  },
  scalingParam(1, "ours: the last round's model is the merge (no α in the method)"),
];

/** Frank-Wolfe merging, soft variant (FusionBench `fw_soft`, AdaMerging as its merge). */
export const fwSoft: MergeMethod = {
  name: "fw_soft",
  title: "Frank-Wolfe merging (soft)",
  summary: "K rounds of layer-wise AdaMerging re-anchored at the current model: round k learns " +
    "θ^k + Σ_t λ_{t,ℓ}(θ_t − θ^k) by the entropy of each task's unlabeled test inputs (λ from " +
    "0.3, then 1e-8; 500 Adam steps); M = θ^K − θ0. FusionBench's oracle only orders the experts.",
  paper: "Chen et al., FW-Merging: Scaling Model Merging with Frank-Wolfe Optimization, ICCV " +
    "2025 (arXiv 2503.12649)",
  code: `${CODE}, config/method/fw_merging/fw_soft.yaml (from hmarkc/FW-Merging)`,
  params: PARAMS,
  tensorRule: "every tensor with task vectors: the last round's model minus θ0, one learned " +
    "coefficient per task and tensor in every round",
  needs: "data",
  notInDefaultStudy: DATA_METHOD_NOT_DEFAULT,
  dataSource: (params) => stringParam(params, "data") as DataSourceName,
  treatment: () => "elementwise",
  async prepare(context: PrepareContext): Promise<TensorMerger> {
    const { params } = context;
    const source = stringParam(params, "data") as DataSourceName;
    const examples = numberParam(params, "examples");
    const seed = numberParam(params, "seed");
    const sets: ImageSet[] = [];
    for (let t = 0; t < context.tasks.length; t++) {
      const set = await context.data!.images(source, t);
      const pick = pickImages(set.count, examples, seed, `adamerging/pick/task${t}`);
      sets.push({ ...subset(set, pick), labels: new Int32Array(0), classes: [] });
    }
    // TensorFlow.js only now: a data-free checkpoint merge never loads it.
    const { fitFrankWolfeSoft } = await import("./fw_merging_fit.ts");
    const { loadTaskVectors } = await import("./model_pass.ts");
    const taus = await loadTaskVectors(context.tasks, context.progress);
    const names = [...context.tasks[0].names()];
    const fit = await fitFrankWolfeSoft({
      model: context.data!.model,
      taus,
      names,
      sets,
      rounds: numberParam(params, "steps"),
      settings: {
        layerWise: true,
        init: numberParam(params, "init"),
        lr: numberParam(params, "lr"),
        steps: numberParam(params, "ada_steps"),
        batch: numberParam(params, "batch"),
        clamp: false,
        seed,
      },
      laterInit: numberParam(params, "ada_coeff"),
      progress: context.progress,
    });
    return {
      tensor(name) {
        const m = fit.merged.get(name);
        if (!m) throw new Error(`Frank-Wolfe merging (soft): no merged values for "${name}"`);
        return m.slice();
      },
      notes: { entropy_first: fit.losses[0], entropy_last: fit.losses[fit.losses.length - 1] },
      dataUse: dataUseOf(context.data, source, Math.max(...sets.map((s) => s.count)), false),
    };
  },
};
