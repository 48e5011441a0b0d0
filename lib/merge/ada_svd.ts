/**
 * Ada-SVD (FusionBench's `AdaSVDMergingForCLIPVisionModel`, built on SMILE: Tang et al., 2024,
 * "SMILE: Zero-Shot Sparse Mixture of Low-Rank Experts Construction From Pre-Trained Foundation
 * Models", arXiv 2408.10174): every linear layer becomes a mixture of the experts' task matrices
 * routed by their top singular directions, the routing weights are averaged over a budget of
 * unlabeled inputs, and each mixture is reduced back to one linear layer with those averages.
 *
 * Upscaling (SMILE's `SmileMoELinear` with dense experts, `k = -1`, `top_k = T`): a linear layer
 * with θ0 weight W0, bias b0 and task matrices ΔW_t = τ_t's weight, Δb_t = τ_t's bias computes
 *
 *     y(x) = W0 x + b0 + Σ_t r_t(x) (ΔW_t x + Δb_t),   r(x) = softmax_t ‖V_tᵀ x‖₂,
 *
 * with V_t [in, k] the top k = min(`gate_k`, out, in) right singular vectors of ΔW_t (the gate
 * `SmileGate` with `routing_use_diff: true`; when ΔW_t's rank is below k, its last directions are
 * whatever orthonormal null-space vectors the SVD returns, in FusionBench as here). A layer whose task matrices are all zero
 * (|ΔW_t| ≤ 1e-8 everywhere, FusionBench's `ExpertNotTrainedError`) is not upscaled: it stays θ0,
 * bias included. Non-linear modules are θ0 (`average_experts: false`) or the mean of the
 * experts (`true`: every leaf module's parameters — LayerNorms, the patch and position
 * embeddings; not the class token, a parameter of a non-leaf module).
 *
 * Routing: each task's `examples` inputs (unlabeled; by default its training inputs, the split
 * FusionBench's `prepare_data` reads) run through the upscaled model; at every upscaled layer
 * the routing weights r(x) are averaged over all input rows (every token of every image of
 * every task): r̄ = Σ_rows r(x) / rows. FusionBench walks the model block by block, but every
 * block's inputs come from the upscaled (not the reduced) earlier blocks, so this is one pass of
 * the upscaled model.
 *
 * Reduction (`WeightedAverageAlgorithm(normalize=False, weights=[1] + r̄)` over θ0 and the
 * experts' task matrices): W = W0 + Σ_t r̄_t ΔW_t, b = b0 + Σ_t r̄_t Δb_t. So the merged task
 * vector is M = Σ_t r̄_t τ_t on every upscaled linear layer (weight and bias), the mean of the
 * τ_t on non-linear tensors when `average_experts`, and 0 elsewhere; θ0 + α·M with α = 1 is
 * FusionBench's model (its `scaling_factor: null`).
 *
 * Linear layers: the blocks' attention q/k/v/out projections and MLP fc1/fc2 — and
 * `visual_projection`, which FusionBench's `CLIPVisionModel` does not contain (its merged model
 * keeps θ0's projection) but which this toolkit's experts fine-tune: by default
 * (`projection: ada_svd`) it is upscaled and reduced by the same rule on the pooled features;
 * `projection: pretrained` reproduces FusionBench.
 *
 * @module
 */
import type * as TF from "@tensorflow/tfjs";
import type { Tensor, Tensor2D } from "../engine/tf_types.ts";
import { svd } from "../linalg/svd.ts";
import { PROJECTION_NAME, VISION_PREFIX } from "../models/config.ts";
import { DATA_METHOD_NOT_DEFAULT, dataUseOf, pickImages } from "./data.ts";
import { meanOf } from "./elementwise.ts";
import type {
  DataSourceName,
  MergeMethod,
  Params,
  ParamSpec,
  PrepareContext,
  TensorMerger,
  Treatment,
} from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { isBlockLinearWeight } from "./rules.ts";

const FB = "FusionBench config/method/ada_svd/clip_vision.yaml (54c9e8c)";

/** The class token: a parameter of the embeddings module, which is not a leaf module. */
const CLASS_TOKEN = `${VISION_PREFIX}embeddings.class_embedding`;

/** FusionBench's `_is_all_zeros`: torch.allclose(ΔW, 0), i.e. every |ΔW| ≤ atol = 1e-8. */
const ZERO_TOLERANCE = 1e-8;

const SOURCES: readonly DataSourceName[] = ["train", "test_inputs", "aux"];

const PARAMS: readonly ParamSpec[] = [
  {
    name: "gate_k",
    type: "integer",
    default: 16,
    min: 1,
    source: `${FB} gate_k: 16`,
    meaning: "top right singular vectors of each task matrix in the router (at most min(out, in))",
  },
  {
    name: "examples",
    type: "integer",
    default: 256,
    min: 0,
    source: `${FB} num_samples: 256`,
    meaning: "inputs per task the routing weights are averaged over (0 = all)",
  },
  {
    name: "data",
    type: "choice",
    choices: SOURCES,
    default: "train",
    source: "FusionBench ada_svd/clip_vision.py prepare_data: each task's training split, " +
      "labels unused",
    meaning:
      "inputs the routing weights are averaged over (test_inputs; aux: RI's task-agnostic set)",
  },
  {
    name: "average_experts",
    type: "boolean",
    default: false,
    source: `${FB} average_experts: false`,
    meaning: "non-linear modules (LayerNorms, patch and position embeddings) averaged over the " +
      "experts (true) or kept at θ0 (false)",
  },
  {
    name: "projection",
    type: "choice",
    choices: ["ada_svd", "pretrained"],
    default: "ada_svd",
    source: "ours: FusionBench's CLIPVisionModel has no visual projection, so it stays θ0 " +
      "(projection=pretrained reproduces it); this toolkit's experts fine-tune it",
    meaning: "the visual projection upscaled and reduced like the blocks' linear layers " +
      "(ada_svd), or left at θ0 (pretrained)",
  },
  {
    name: "batch",
    type: "integer",
    default: 32,
    min: 1,
    source: "ours: FusionBench passes one image at a time; the result does not depend on it",
    meaning: "images per forward pass",
  },
  {
    name: "seed",
    type: "integer",
    default: 0,
    min: 0,
    source: `ours (${FB} seed: 0 seeds torch's random_split of each training set)`,
    meaning: "seed of which inputs are read",
  },
  scalingParam(
    1,
    `${FB} scaling_factor: null (the averaged routing weights unscaled); α also scales the ` +
      "averaged non-linear tensors when average_experts",
  ),
];

/**
 * The weight of the linear layer tensor `name` belongs to under Ada-SVD's rule (the blocks'
 * attention and MLP layers, weight or bias, and the visual projection), or undefined.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { adaSvdLinear } from "./ada_svd.ts";
 * const fc1 = "vision_model.encoder.layers.0.mlp.fc1.weight";
 * equal(adaSvdLinear("vision_model.encoder.layers.0.mlp.fc1.bias"), fc1);
 * equal(adaSvdLinear("visual_projection.weight"), "visual_projection.weight");
 * equal(adaSvdLinear("vision_model.encoder.layers.0.layer_norm1.bias"), undefined);
 * ```
 */
export function adaSvdLinear(name: string): string | undefined {
  if (name === PROJECTION_NAME) return name;
  const weight = name.endsWith(".bias") ? `${name.slice(0, -".bias".length)}.weight` : name;
  return isBlockLinearWeight(weight, [0, 0]) ? weight : undefined;
}

/** Whether a non-linear tensor is averaged when `average_experts` (every one but the class token). */
function isLeafTensor(name: string): boolean {
  return adaSvdLinear(name) === undefined && name !== CLASS_TOKEN;
}

/** Whether `weight` (a linear layer's) is upscaled under `params` (before the zero test). */
function mayUpscale(weight: string, params: Params): boolean {
  return weight !== PROJECTION_NAME || params.projection === "ada_svd";
}

/**
 * The router of one linear layer from its T task matrices [out, in] (row-major): the top
 * k = min(`gateK`, out, in) right singular vectors of each, stacked as rows [T·k, in] (task t's
 * rows t·k … t·k + k − 1), and k.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { routerRows } from "./ada_svd.ts";
 * // diag(3, 1) and diag(1, 2): their top right singular vectors are e1 and e2.
 * const { rows, k } = routerRows([Float32Array.of(3, 0, 0, 1), Float32Array.of(1, 0, 0, 2)], 2, 2, 1);
 * equal(k, 1);
 * deepStrictEqual(rows.map(Math.abs), Float32Array.of(1, 0, 0, 1));
 * ```
 */
export function routerRows(
  deltas: readonly Float32Array[],
  out: number,
  inputs: number,
  gateK: number,
): { rows: Float32Array; k: number } {
  const k = Math.min(gateK, out, inputs);
  const rows = new Float32Array(deltas.length * k * inputs);
  deltas.forEach((d, t) => {
    const { vt } = svd(d, out, inputs);
    rows.set(vt.subarray(0, k * inputs), t * k * inputs);
  });
  return { rows, k };
}

/**
 * Σ_t weights[t] · taus[t] (a new array), the reduction of one upscaled tensor.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { weightedSum } from "./ada_svd.ts";
 * deepStrictEqual(
 *   weightedSum([Float32Array.of(1, 2), Float32Array.of(3, 4)], [0.25, 0.75]),
 *   Float32Array.of(2.5, 3.5),
 * );
 * ```
 */
export function weightedSum(
  taus: readonly Float32Array[],
  weights: readonly number[],
): Float32Array {
  const out = new Float32Array(taus[0].length);
  taus.forEach((tau, t) => {
    const w = weights[t];
    for (let i = 0; i < out.length; i++) out[i] += w * tau[i];
  });
  return out;
}

/** The Ada-SVD method. */
export const adaSvd: MergeMethod = {
  name: "ada_svd",
  title: "Ada-SVD",
  summary: "Upscales every linear layer into SMILE's mixture of the experts' task matrices, " +
    "routed by each task matrix's top gate_k right singular vectors; averages the routing " +
    "weights over unlabeled inputs of every task and reduces each mixture to W0 + Σ_t r̄_t ΔW_t.",
  paper: "Tang et al., SMILE: Zero-Shot Sparse Mixture of Low-Rank Experts Construction From " +
    "Pre-Trained Foundation Models, arXiv 2408.10174, 2024 (the Ada-SVD reduction: FusionBench)",
  code: "tanganke/fusion_bench (54c9e8c) fusion_bench/method/ada_svd/clip_vision.py, " +
    "fusion_bench/models/smile_moe/linear_from_module.py",
  params: PARAMS,
  tensorRule: "linear layers (attention q/k/v/out, MLP fc1/fc2; the visual projection unless " +
    "projection=pretrained): Σ_t r̄_t τ_t with the layer's averaged routing weights, weight and " +
    "bias (θ0 when every task matrix is zero); other tensors: mean over tasks with " +
    "average_experts (the class token excepted), else θ0",
  needs: "data",
  notInDefaultStudy: DATA_METHOD_NOT_DEFAULT,
  fusionBench: {
    params: { projection: "pretrained" },
    note: "FusionBench's CLIPVisionModel has no visual projection (its merged model keeps θ0's); " +
      "this toolkit's experts fine-tune it, so by default it is reduced by the same rule",
  },
  dataSource: (params) => stringParam(params, "data") as DataSourceName,
  usesLinalg: true,
  treatment(name: string, shape: readonly number[], params: Params): Treatment {
    const weight = adaSvdLinear(name);
    if (weight !== undefined) {
      if (!mayUpscale(weight, params)) return "pretrained";
      return shape.length === 2 ? "matrix" : "elementwise";
    }
    return params.average_experts === true && isLeafTensor(name) ? "mean" : "pretrained";
  },
  async prepare(context: PrepareContext): Promise<TensorMerger> {
    const { routing, use, skipped, rows } = await averageRouting(context);
    const average = context.params.average_experts === true;
    return {
      tensor(name, _shape, taus) {
        const weight = adaSvdLinear(name);
        if (weight === undefined) {
          return average && isLeafTensor(name) ? meanOf(taus) : new Float32Array(taus[0].length);
        }
        const r = routing.get(weight);
        return r ? weightedSum(taus, r) : new Float32Array(taus[0].length);
      },
      notes: { routing: Object.fromEntries(routing), rows, not_upscaled: skipped },
      dataUse: use,
    };
  },
};

/** One upscaled linear layer as tfjs tensors, and its routing-weight sums. */
interface Upscaled {
  /** θ0's weight [out, in] and bias [out] (zeros when the layer has none). */
  w0: Tensor2D;
  b0: Tensor;
  /** The task matrices stacked [T·out, in] and the bias deltas [T, out]. */
  dw: Tensor2D;
  db: Tensor2D;
  /** Router rows [T·k, in]. */
  gate: Tensor2D;
  k: number;
  out: number;
  /** Σ_rows r(x) [T] (kept across passes), and the rows counted. */
  sum?: Tensor;
  rows: number;
}

/** Runs the upscaled model on every task's inputs and returns each layer's r̄. */
async function averageRouting(context: PrepareContext) {
  const { params } = context;
  const gateK = numberParam(params, "gate_k");
  const seed = numberParam(params, "seed");
  const average = params.average_experts === true;
  const { dataPass, modelTensors, pixelBatch } = await import("./model_pass.ts");
  const { imageFeatures } = await import("../models/vit.ts");
  const tf = await import("@tensorflow/tfjs");
  const { source, examples, batch, taus, data } = await dataPass(context);
  const { config, base, norm } = data.model;
  const T = taus.length;
  const layers = new Map<string, Upscaled>();
  const skipped: string[] = [];
  const averaged = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  try {
    for (const [name, b] of base) {
      const weight = adaSvdLinear(name);
      if (weight === undefined) {
        if (average && isLeafTensor(name)) {
          averaged.set(name, { shape: b.shape, data: meanOf(taus.map((t) => t.get(name)!.data)) });
        }
        continue;
      }
      if (weight !== name || !mayUpscale(weight, params)) continue;
      const deltas = taus.map((t) => t.get(name)!.data);
      if (deltas.every((d) => d.every((v) => Math.abs(v) <= ZERO_TOLERANCE))) {
        skipped.push(name);
        continue;
      }
      const [out, inputs] = b.shape;
      const biasName = name === PROJECTION_NAME ? undefined : `${name.slice(0, -7)}.bias`;
      const b0 = biasName ? base.get(biasName)!.data : new Float32Array(out);
      const db = new Float32Array(T * out);
      if (biasName) taus.forEach((t, i) => db.set(t.get(biasName)!.data, i * out));
      const dw = new Float32Array(T * out * inputs);
      deltas.forEach((d, i) => dw.set(d, i * out * inputs));
      const { rows, k } = routerRows(deltas, out, inputs, gateK);
      layers.set(name, {
        w0: tf.tensor2d(b.data, [out, inputs]),
        b0: tf.tensor1d(b0),
        dw: tf.tensor2d(dw, [T * out, inputs]),
        db: tf.tensor2d(db, [T, out]),
        gate: tf.tensor2d(rows, [T * k, inputs]),
        k,
        out,
        rows: 0,
      });
    }
    // The upscaled model's non-linear modules: θ0, or the experts' mean (average_experts).
    const model = modelTensors(base, averaged);
    const perTask: number[] = [];
    try {
      for (let t = 0; t < T; t++) {
        const set = await data.images(source, t);
        const picks = pickImages(set.count, examples, seed, `ada_svd/task${t}`);
        perTask.push(picks.length);
        for (let start = 0; start < picks.length; start += batch) {
          const x = pixelBatch(set, picks.subarray(start, start + batch), norm);
          try {
            tf.tidy(() => {
              imageFeatures(model, config, x, undefined, (weight, input) => {
                const layer = layers.get(weight);
                return layer ? mixture(tf, layer, input, T) : undefined;
              });
            });
          } finally {
            x.dispose();
          }
        }
        context.progress?.({ phase: "Ada-SVD routing weights", done: t + 1, total: T });
      }
    } finally {
      tf.dispose(Object.values(model));
    }
    if (perTask.every((n) => n === 0)) {
      throw new Error(`Ada-SVD: no inputs in ${source} to average the routing weights over`);
    }
    const routing = new Map<string, number[]>();
    let rows = 0;
    for (const [name, layer] of layers) {
      const sum = (await layer.sum!.data()) as Float32Array;
      routing.set(name, Array.from(sum, (v) => v / layer.rows));
      rows = Math.max(rows, layer.rows);
    }
    const use = dataUseOf(data, source, Math.max(0, ...perTask), false);
    return { routing, use, skipped, rows };
  } finally {
    for (const l of layers.values()) tf.dispose([l.w0, l.b0, l.dw, l.db, l.gate, l.sum ?? []]);
  }
}

/**
 * The upscaled layer's output y = W0 x + b0 + Σ_t r_t(x)(ΔW_t x + Δb_t) for input rows x
 * [rows, in]; adds Σ_rows r(x) to the layer's kept sum.
 */
function mixture(
  tf: typeof TF,
  layer: Upscaled,
  x: Tensor2D,
  T: number,
): Tensor2D {
  const n = x.shape[0];
  const logits = tf.matMul(x, layer.gate, false, true).reshape([n, T, layer.k]).square().sum(2)
    .sqrt();
  const r = tf.softmax(logits as Tensor2D); // [rows, T]
  const prev = layer.sum;
  layer.sum = tf.keep(prev ? prev.add(r.sum(0)) : r.sum(0));
  prev?.dispose();
  layer.rows += n;
  const experts = tf.matMul(x, layer.dw, false, true).reshape([n, T, layer.out]).add(layer.db)
    .mul(r.reshape([n, T, 1])).sum(1);
  return tf.matMul(x, layer.w0, false, true).add(layer.b0).add(experts) as Tensor2D;
}
