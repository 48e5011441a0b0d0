/**
 * RegMean (Jin et al., ICLR 2023, "Dataless Knowledge Fusion by Merging Weights of Language
 * Models"): each linear layer is merged in closed form as the least-squares fit of all the
 * experts' outputs on their own inputs,
 *
 *     W_M = argmin_W Σ_t ‖X_t W − X_t W_t‖² = (Σ_t G_t)^{-1} Σ_t G_t W_t,   G_t = X_tᵀX_t / N_t,
 *
 * with W = weightᵀ [in, out] and X_t [N_t, in] the layer's input rows while expert t runs on
 * `examples` of its task's training inputs (every token a row). Before merging, every G_t's
 * off-diagonal entries are multiplied by α (`alpha`, FusionBench's `reduce_non_diagonal_ratio`),
 * which regularises toward the diagonal (α = 0 is a per-input-feature weighted mean).
 *
 * In task-vector form (θ_t = θ0 + τ_t) the θ0 terms cancel exactly, so M = (Σ G̃_t)^{-1} Σ G̃_t τ_t
 * for linear weights; every other tensor (biases, LayerNorms, embeddings) is the mean of the
 * task vectors, as FusionBench averages the parameters RegMean does not handle. The solve runs
 * on the host in float64 ({@linkcode solveLinear}); the products G̃_t τ_tᵀ in float32 (OpenBLAS).
 *
 * Linear layers are Hugging Face's `nn.Linear` modules of the vision tower: the attention
 * q/k/v/out projections, the MLP's fc1 and fc2 — and `visual_projection`, which FusionBench's
 * `CLIPVisionModel` leaves out (its experts never change it) but which this toolkit's experts
 * fine-tune.
 *
 * Data: by default each task's training inputs (labels unused), the first ⌈examples / batch⌉ ·
 * batch of a permutation seeded by (`seed`, task), as FusionBench's shuffled loader reads
 * batches until it has `num_regmean_examples`.
 *
 * @module
 */
import { matmul } from "../linalg/matmul.ts";
import { solveLinear } from "../linalg/solve.ts";
import { PROJECTION_NAME } from "../models/config.ts";
import { Rng } from "../tensor/random.ts";
import { DATA_METHOD_NOT_DEFAULT, dataUseOf } from "./data.ts";
import { meanOf } from "./elementwise.ts";
import type {
  DataSourceName,
  MergeMethod,
  ParamSpec,
  PrepareContext,
  TensorMerger,
  Treatment,
} from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { isBlockLinearWeight } from "./rules.ts";

const FB = "FusionBench config/method/regmean/clip_regmean.yaml (54c9e8c)";

/**
 * Whether RegMean merges `name` with Gram matrices: a linear layer's weight inside a
 * transformer block (attention projections, MLP) or the visual projection.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isRegMeanWeight } from "./regmean.ts";
 * equal(isRegMeanWeight("vision_model.encoder.layers.0.mlp.fc1.weight", [256, 64]), true);
 * equal(isRegMeanWeight("visual_projection.weight", [64, 64]), true);
 * equal(isRegMeanWeight("vision_model.embeddings.position_embedding.weight", [17, 64]), false);
 * ```
 */
export function isRegMeanWeight(name: string, shape: readonly number[]): boolean {
  return isBlockLinearWeight(name, shape) || (name === PROJECTION_NAME && shape.length === 2);
}

/**
 * G with its off-diagonal entries multiplied by `alpha` (a new array; n × n row-major).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { reduceOffDiagonal } from "./regmean.ts";
 * deepStrictEqual(
 *   reduceOffDiagonal(new Float64Array([4, 2, 2, 9]), 2, 0.5),
 *   new Float64Array([4, 1, 1, 9]),
 * );
 * ```
 */
export function reduceOffDiagonal(gram: Float64Array, n: number, alpha: number): Float64Array {
  const out = gram.map((v) => v * alpha);
  for (let i = 0; i < n; i++) out[i * n + i] = gram[i * n + i];
  return out;
}

/**
 * RegMean's merge of one linear weight [rows = out, cols = in] from the task matrices τ_t and
 * their layers' input Gram matrices G_t (cols × cols, already α-reduced):
 * M = ((Σ_t G_t)^{-1} Σ_t G_t τ_tᵀ)ᵀ.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { regMeanMatrix } from "./regmean.ts";
 * // Two 1×2 weights whose inputs live on different axes: each keeps its own column.
 * const g1 = new Float64Array([1, 0, 0, 0]), g2 = new Float64Array([0, 0, 0, 1]);
 * const m = regMeanMatrix([new Float32Array([3, 7]), new Float32Array([5, 2])], [g1, g2], 1, 2);
 * deepStrictEqual(m, new Float32Array([3, 2]));
 * ```
 */
export function regMeanMatrix(
  taus: readonly Float32Array[],
  grams: readonly Float64Array[],
  rows: number,
  cols: number,
  label = "weight",
): Float32Array {
  const sum = new Float64Array(cols * cols);
  const rhs = new Float64Array(cols * rows); // Σ_t G_t τ_tᵀ, [in, out]
  taus.forEach((tau, t) => {
    const g = grams[t];
    for (let i = 0; i < sum.length; i++) sum[i] += g[i];
    // G_t (cols × cols) · τ_tᵀ (cols × rows), in float32 as FusionBench computes it.
    const product = matmul(Float32Array.from(g), tau, cols, cols, rows, { transB: true });
    for (let i = 0; i < rhs.length; i++) rhs[i] += product[i];
  });
  const x = solveLinear(sum, cols, rhs, rows, `Σ_t G_t of ${label}`);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < cols; i++) for (let o = 0; o < rows; o++) out[o * cols + i] = x[i * rows + o];
  return out;
}

const SOURCES: readonly DataSourceName[] = ["train", "aux", "test_inputs"];

/** RegMean's parameters (RegMean++ shares them). */
export const REGMEAN_PARAMS: readonly ParamSpec[] = [
  {
    name: "alpha",
    type: "number",
    default: 0.95,
    min: 0,
    max: 1,
    source: `${FB} reduce_non_diagonal_ratio: 0.95 (the language-model config regmean.yaml: 0.1)`,
    meaning: "multiplier of the Gram matrices' off-diagonal entries (1 = plain RegMean)",
  },
  {
    name: "examples",
    type: "integer",
    default: 256,
    min: 0,
    source: `${FB} num_regmean_examples: 256`,
    meaning: "inputs per task the Gram matrices are computed on (0 = all)",
  },
  {
    name: "batch",
    type: "integer",
    default: 32,
    min: 1,
    source: `${FB} dataloader_kwargs.batch_size: 32`,
    meaning: "inputs per forward pass (whole batches are read until `examples` are reached)",
  },
  {
    name: "data",
    type: "choice",
    choices: SOURCES,
    default: "train",
    source: "the paper and FusionBench: each task's training inputs (labels unused)",
    meaning: "inputs of the Gram matrices (aux: RI's task-agnostic set; test_inputs)",
  },
  {
    name: "seed",
    type: "integer",
    default: 0,
    min: 0,
    source: "ours (FusionBench shuffles the training set with its global seed)",
    meaning: "seed of which inputs are read",
  },
  scalingParam(1, "ours: RegMean's closed form is the merged model (no α in the method)"),
];

/**
 * The positions of the inputs a Gram-matrix method reads from a set of `count`: the first
 * ⌈examples / batch⌉ · batch of the permutation seeded by (`seed`, `label`), or all of them.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { gramInputs } from "./regmean.ts";
 * equal(gramInputs(100, 10, 4, 0, "x").length, 12); // three whole batches of 4
 * ```
 */
export function gramInputs(
  count: number,
  examples: number,
  batch: number,
  seed: number,
  label: string,
): Int32Array {
  const want = examples === 0 ? count : Math.min(count, Math.ceil(examples / batch) * batch);
  return new Rng(seed, label).permutation(count).slice(0, want);
}

/** The RegMean method (α = 1: the closed form is the merge). */
export const regMean: MergeMethod = {
  name: "regmean",
  title: "RegMean",
  summary: "Merges every linear layer in closed form, (Σ_t G_t)^{-1} Σ_t G_t W_t, from the " +
    "Gram matrices G_t of its inputs while each expert runs on its task's training inputs " +
    "(off-diagonals scaled by α); other tensors are averaged.",
  paper: "Jin et al., Dataless Knowledge Fusion by Merging Weights of Language Models, ICLR 2023",
  code: "tanganke/fusion_bench (54c9e8c) fusion_bench/method/regmean/regmean.py, clip_regmean.py " +
    "(from yule-BUAA/MergeLM merging_methods.py; bloomberg/dataless-model-merging)",
  params: REGMEAN_PARAMS,
  tensorRule: "linear-layer weights (attention q/k/v/out, MLP fc1/fc2, visual projection): " +
    "RegMean's closed form from their input Gram matrices; every other tensor: mean over tasks",
  needs: "data",
  notInDefaultStudy: DATA_METHOD_NOT_DEFAULT,
  dataSource: (params) => stringParam(params, "data") as DataSourceName,
  usesLinalg: true,
  treatment(name: string, shape: readonly number[]): Treatment {
    return isRegMeanWeight(name, shape) ? "matrix" : "mean";
  },
  async prepare(context: PrepareContext): Promise<TensorMerger> {
    const grams = await taskGrams(context);
    const alpha = numberParam(context.params, "alpha");
    return {
      tensor(name, shape, taus) {
        if (!isRegMeanWeight(name, shape)) return meanOf(taus);
        const g = grams.perTask.map((m, t) => {
          const gram = m.get(name);
          if (!gram) throw new Error(`RegMean: no input Gram matrix of "${name}" for task ${t}`);
          return reduceOffDiagonal(gram.gram, gram.size, alpha);
        });
        return regMeanMatrix(taus, g, shape[0], shape[1], name);
      },
      notes: { gram_rows: grams.rows },
      dataUse: grams.use,
    };
  },
};

/** Every task's Gram matrices, computed with expert t = θ0 + τ_t on its inputs. */
async function taskGrams(context: PrepareContext) {
  const { dataPass, eachExpert } = await import("./model_pass.ts");
  const { inputGrams } = await import("./regmean_gram.ts");
  const pass = await dataPass(context);
  const seed = numberParam(context.params, "seed");
  const { config, base, norm } = pass.data.model;
  let perTaskImages = 0, rows = 0;
  const perTask = await eachExpert(pass, "RegMean Gram matrices", async (expert, set, t) => {
    const idx = gramInputs(set.count, pass.examples, pass.batch, seed, `regmean/task${t}`);
    perTaskImages = Math.max(perTaskImages, idx.length);
    const keep = (w: string) => isRegMeanWeight(w, base.get(w)?.shape ?? []);
    const grams = await inputGrams(config, expert, set, idx, pass.batch, norm, keep);
    rows = grams.get(PROJECTION_NAME)?.rows ?? rows;
    return grams;
  });
  const use = dataUseOf(pass.data, pass.source, perTaskImages, false);
  return { perTask, rows, use };
}
