/**
 * KnOTS, "Model merging with SVD to tie the Knots" (Stoica et al., ICLR 2025), as its official
 * `SVDMerger` runs it, here on fully fine-tuned task vectors:
 * 1. Layers: every weight together with its bias as one matrix [W | b] (a convolution's weight
 *    flattened to 2-D; a LayerNorm's [diag(γ) | β]); tensors named neither weight nor bias stay
 *    at θ0 (the official `merge_other_params: False`).
 * 2. Alignment, per layer: one SVD of the tasks' matrices side by side,
 *    [X_1 … X_T] = U diag(s) [V_1ᵀ … V_Tᵀ], components with s ≤ ε dropped; task t's
 *    coordinates in the shared basis are Z_t = diag(s) V_tᵀ.
 * 3. TIES on the Z_t, flattened over all layers: top-k% magnitudes per task (one whole-model
 *    threshold), elected sign from the sum of values (zero sums: the majority sign), disjoint
 *    mean; the merged layer is U·Z_merged, split back into weight and bias (a LayerNorm keeps
 *    the diagonal). θ = θ0 + α·M; KnOTS's scaling coefficient α multiplies the disjoint mean.
 *
 * Streaming: three whole-model passes (two for the thresholds, one for the majority sign) and
 * the merge recompute each layer's SVD, so only one layer's tensors are held at a time.
 *
 * @module
 */
import { svd } from "../linalg/svd.ts";
import { matmul } from "../linalg/matmul.ts";
import { numel } from "../tensor/host.ts";
import type { TensorSource } from "../tensor/source.ts";
import type { MergeMethod, Params, ProgressCallback, TensorMerger } from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { AbsKthSelector } from "./select.ts";
import { readTaskVectors } from "../taskvec/task_vector.ts";
import {
  electedSignSum,
  tiesKeepCount,
  tiesKParam,
  type TiesMergeFunction,
  tiesMergeParam,
  TiesMerger,
} from "./ties.ts";

/** One KnOTS layer: a weight with its bias, merged as one matrix. */
export interface KnotsLayer {
  /** The layer's name (the weight's name without `.weight` / `_weight`). */
  readonly name: string;
  /** The weight tensor. */
  readonly weight: string;
  /** The bias tensor, when the layer has one. */
  readonly bias?: string;
  /** LayerNorm-like (name contains `norm` or `ln`): the weight enters as diag(γ). */
  readonly norm: boolean;
}

/**
 * Groups tensor names into KnOTS layers as the official `get_layer_names` does: `.weight` /
 * `_weight` names are weights, `.bias` / `_bias` names biases of the layer with the same stem;
 * the rest are `other` (left at θ0), as are biases without a weight.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { knotsLayers } from "./knots.ts";
 * const { layers, other } = knotsLayers(["a.weight", "a.bias", "ln.weight", "ln.bias", "cls"]);
 * deepStrictEqual(layers.map((l) => [l.name, l.norm]), [["a", false], ["ln", true]]);
 * deepStrictEqual(other, ["cls"]);
 * ```
 */
export function knotsLayers(names: readonly string[]): { layers: KnotsLayer[]; other: string[] } {
  const stems = new Map<string, { weight?: string; bias?: string }>();
  const other: string[] = [];
  for (const name of names) {
    if (name.includes(".weight") || name.includes("_weight")) {
      const stem = name.replaceAll(".weight", "").replaceAll("_weight", "");
      stems.set(stem, { ...stems.get(stem), weight: name });
    } else if (name.includes(".bias") || name.includes("_bias")) {
      const stem = name.replaceAll(".bias", "").replaceAll("_bias", "");
      stems.set(stem, { ...stems.get(stem), bias: name });
    } else {
      other.push(name);
    }
  }
  const layers: KnotsLayer[] = [];
  for (const [stem, { weight, bias }] of stems) {
    if (weight === undefined) {
      if (bias !== undefined) other.push(bias);
      continue;
    }
    layers.push({ name: stem, weight, bias, norm: stem.includes("norm") || stem.includes("ln") });
  }
  return { layers, other };
}

/** A layer's matrix shape: rows, and columns (weight columns, plus one for the bias). */
function layerShape(layer: KnotsLayer, source: TensorSource): { rows: number; cols: number } {
  const shape = source.shape(layer.weight);
  const rows = shape[0];
  if (layer.norm && shape.length === 1) return { rows, cols: rows + (layer.bias ? 1 : 0) };
  if (shape.length === 1) {
    throw new Error(
      `KnOTS: "${layer.weight}" is 1-D but its name marks no normalisation layer (norm, ln)`,
    );
  }
  return { rows, cols: numel(shape) / rows + (layer.bias ? 1 : 0) };
}

/** A layer's task matrices [W_t | b_t] (or [diag(γ_t) | β_t]), rows×cols row-major each. */
function layerMatrices(
  layer: KnotsLayer,
  rows: number,
  cols: number,
  weights: readonly Float32Array[],
  biases: readonly Float32Array[] | undefined,
): Float32Array[] {
  const wcols = cols - (biases ? 1 : 0);
  return weights.map((w, t) => {
    const x = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      if (layer.norm && w.length === rows) x[i * cols + i] = w[i];
      else x.set(w.subarray(i * wcols, (i + 1) * wcols), i * cols);
      if (biases) x[i * cols + wcols] = biases[t][i];
    }
    return x;
  });
}

/** One layer aligned: the shared basis U (rows×r) and each task's coordinates Z_t (r×cols). */
interface Aligned {
  u: Float32Array;
  r: number;
  rows: number;
  cols: number;
  z: Float32Array[];
}

/**
 * KnOTS's alignment of T task matrices (rows×cols each): one SVD of [X_1 … X_T], components
 * with s ≤ `eps` dropped, Z_t = diag(s)·V_tᵀ.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { knotsAlign } from "./knots.ts";
 * const a = knotsAlign([new Float32Array([2, 0, 0, 0]), new Float32Array([0, 0, 0, 1])], 2, 2, 1e-5);
 * equal(a.r, 2); // [X_1 X_2] has singular values 2 and 1, both above ε
 * ```
 */
export function knotsAlign(
  matrices: readonly Float32Array[],
  rows: number,
  cols: number,
  eps: number,
): Aligned {
  const T = matrices.length;
  const wide = new Float32Array(rows * T * cols);
  for (let i = 0; i < rows; i++) {
    matrices.forEach((x, t) => {
      wide.set(x.subarray(i * cols, (i + 1) * cols), i * T * cols + t * cols);
    });
  }
  const f = svd(wide, rows, T * cols);
  let r = 0;
  while (r < f.k && f.s[r] > eps) r++;
  const u = new Float32Array(rows * r);
  for (let i = 0; i < rows; i++) u.set(f.u.subarray(i * f.k, i * f.k + r), i * r);
  const z = matrices.map((_, t) => {
    const out = new Float32Array(r * cols);
    for (let c = 0; c < r; c++) {
      const row = c * T * cols + t * cols;
      for (let j = 0; j < cols; j++) out[c * cols + j] = f.s[c] * f.vt[row + j];
    }
    return out;
  });
  return { u, r, rows, cols, z };
}

/** Reads and aligns one layer of every task. */
async function alignLayer(
  layer: KnotsLayer,
  tasks: readonly TensorSource[],
  eps: number,
): Promise<Aligned> {
  const { rows, cols } = layerShape(layer, tasks[0]);
  const weights = await readTaskVectors(tasks, layer.weight);
  const biases = layer.bias ? await readTaskVectors(tasks, layer.bias) : undefined;
  return knotsAlign(layerMatrices(layer, rows, cols, weights, biases), rows, cols, eps);
}

/** Splits a merged layer matrix (rows×cols) back into its weight and bias. */
function splitLayer(
  layer: KnotsLayer,
  merged: Float32Array,
  rows: number,
  cols: number,
  weightSize: number,
): Map<string, Float32Array> {
  const wcols = cols - (layer.bias ? 1 : 0);
  const weight = new Float32Array(weightSize);
  const bias = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    if (layer.norm && weightSize === rows) weight[i] = merged[i * cols + i];
    else weight.set(merged.subarray(i * cols, i * cols + wcols), i * wcols);
    if (layer.bias) bias[i] = merged[i * cols + wcols];
  }
  const out = new Map([[layer.weight, weight]]);
  if (layer.bias) out.set(layer.bias, bias);
  return out;
}

/** The merger: TIES on each layer's aligned coordinates, then back to weight and bias. */
class KnotsMerger implements TensorMerger {
  readonly #byTensor = new Map<string, KnotsLayer>();
  #cache?: { layer: string; tensors: Map<string, Float32Array> };

  constructor(
    readonly tasks: readonly TensorSource[],
    readonly layers: readonly KnotsLayer[],
    readonly ties: TiesMerger,
    readonly eps: number,
  ) {
    for (const layer of layers) {
      this.#byTensor.set(layer.weight, layer);
      if (layer.bias) this.#byTensor.set(layer.bias, layer);
    }
  }

  get notes(): Record<string, unknown> {
    return { ...this.ties.notes, knotsLayers: this.layers.length };
  }

  async tensor(name: string, shape: readonly number[]): Promise<Float32Array> {
    const layer = this.#byTensor.get(name);
    if (!layer) return new Float32Array(numel(shape)); // left at θ0
    if (this.#cache?.layer !== layer.name) {
      const a = await alignLayer(layer, this.tasks, this.eps);
      const zMerged = this.ties.tensor(layer.name, [a.r, a.cols], a.z);
      const merged = matmul(a.u, zMerged, a.rows, a.r, a.cols);
      const weightSize = numel(this.tasks[0].shape(layer.weight));
      this.#cache = {
        layer: layer.name,
        tensors: splitLayer(layer, merged, a.rows, a.cols, weightSize),
      };
    }
    return this.#cache.tensors.get(name)!.slice();
  }
}

/** Runs one pass over every layer's aligned coordinates. */
async function forEachLayer(
  tasks: readonly TensorSource[],
  layers: readonly KnotsLayer[],
  eps: number,
  phase: string,
  visit: (a: Aligned) => void,
  progress?: ProgressCallback,
): Promise<void> {
  for (const [i, layer] of layers.entries()) {
    visit(await alignLayer(layer, tasks, eps));
    progress?.({ phase, done: i + 1, total: layers.length, tensor: layer.name });
  }
}

async function prepareKnots(
  tasks: readonly TensorSource[],
  params: Params,
  progress?: ProgressCallback,
): Promise<KnotsMerger> {
  const k = numberParam(params, "k");
  const eps = numberParam(params, "eps");
  const merge = stringParam(params, "merge") as TiesMergeFunction;
  const { layers } = knotsLayers(tasks[0].names());
  let thresholds = tasks.map(() => 0);
  if (k !== 100) {
    const selector = new AbsKthSelector(tasks.map(() => 1));
    let total = 0;
    await forEachLayer(tasks, layers, eps, "KnOTS thresholds (1/2)", (a) => {
      a.z.forEach((z, t) => selector.countHigh(t, z));
      total += a.r * a.cols;
    }, progress);
    if (total > 0) {
      selector.settleHigh(tasks.map(() => total - tiesKeepCount(total, k)));
      await forEachLayer(tasks, layers, eps, "KnOTS thresholds (2/2)", (a) => {
        a.z.forEach((z, t) => selector.countLow(t, z));
      }, progress);
      thresholds = selector.values();
    }
  }
  let signSum = 0;
  await forEachLayer(tasks, layers, eps, "KnOTS majority sign", (a) => {
    signSum += electedSignSum(a.z, thresholds);
  }, progress);
  return new KnotsMerger(tasks, layers, new TiesMerger(thresholds, Math.sign(signSum), merge), eps);
}

/**
 * The KnOTS-TIES method (the official ViT-B/32 configuration: top 20 %, disjoint mean, scaling
 * 0.6, ε = 1e-5).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { knots } from "./knots.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", {
 *   "fc.weight": { shape: [2, 2], data: new Float32Array(v) },
 *   "fc.bias": { shape: [2], data: new Float32Array([0.5, 0]) },
 * });
 * const m = await merge(knots, [tau([1, 0, 0, 0]), tau([0, 0, 0, 2])], { params: { k: 100 }, scaling: 1 });
 * // k = 100 keeps every coordinate; disjoint signs: the weights add, the equal biases average
 * const near = (x: Float32Array, y: number[]) => y.every((v, i) => Math.abs(x[i] - v) < 1e-6);
 * ok(near(m.get("fc.weight").data, [1, 0, 0, 2]) && near(m.get("fc.bias").data, [0.5, 0]));
 * ```
 */
export const knots: MergeMethod = {
  name: "knots",
  title: "KnOTS (SVD alignment, then TIES)",
  paper: "Stoica et al., Model merging with SVD to tie the Knots, ICLR 2025",
  code: "gstoica27/KnOTS task_merger.py (SVDMerger), masking_ops.py (ties_masking, " +
    "masked_merge), configs/vitB_r16_knots_ties.py; tanganke/fusion_bench " +
    "fusion_bench/method/knots/knots_utils.py (subspace_alignment only)",
  summary: "Per layer, one SVD of the tasks' [W | b] side by side gives a shared basis U and " +
    "each task's coordinates Z_t = diag(s)V_tᵀ; TIES (top-k%, disjoint mean) merges the Z_t " +
    "over the whole model; M = U·Z_merged.",
  tensorRule: "every weight with its bias as one matrix [W | b] (convolutions flattened; " +
    "LayerNorm [diag(γ) | β], its diagonal kept): aligned and merged; tensors named neither " +
    "weight nor bias (class embedding; open_clip's positional_embedding, proj) stay at θ0",
  usesLinalg: true,
  fusionBench: {
    params: { eps: 1e-4 },
    note: "FusionBench ships only KnOTS's alignment (subspace_alignment, eps 1e-4); the " +
      "official SVDMerger drops s ≤ 1e-5",
  },
  params: [
    tiesKParam(20, "gstoica27/KnOTS configs/vitB_r16_knots_ties.py (topK: 20)"),
    tiesMergeParam("mean", "gstoica27/KnOTS configs/vitB_r16_knots_ties.py (merging_type: mean)"),
    {
      name: "eps",
      type: "number",
      default: 1e-5,
      min: 0,
      source: "gstoica27/KnOTS task_merger.py (SVDMerger.apply_svd keeps s > 1e-5)",
      meaning: "singular values at or below it are dropped from the shared basis",
    },
    scalingParam(0.6, "gstoica27/KnOTS configs/vitB_r16_knots_ties.py (scaling_coeffs: .6)"),
  ],
  // A bias counts as merged: it is, whenever its layer has a weight (any CLIP layer does).
  treatment: (name) => /(\.|_)(weight|bias)/.test(name) ? "matrix" : "pretrained",
  prepare: ({ tasks, params, progress }) => prepareKnots(tasks, params, progress),
};
