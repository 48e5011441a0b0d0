/**
 * Running the model for data-using merge methods (AdaMerging, RegMean, Fisher merging): the
 * task vectors read whole into host memory, the data parameters those methods share, θ0 + τ as
 * tfjs tensors (one expert at a time, each on its task's images), batches of a method's images,
 * and the small tensor operations they share (a stop-gradient, the entropy loss).
 *
 * This module loads TensorFlow.js; the method files import it only inside `prepare`, so that a
 * data-free checkpoint merge never loads it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor, Tensor2D, Tensor4D } from "../engine/tf_types.ts";
import type { HostParams } from "../models/weights.ts";
import type { ParamMap } from "../models/vit.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { TensorSource } from "../tensor/source.ts";
import type { DataSourceName, MergeData, PrepareContext, ProgressCallback } from "./method.ts";
import { numberParam, stringParam } from "./params.ts";
import { forEachTensor } from "./stream.ts";

/**
 * Every task vector whole in host memory (tensor by tensor, as a merge pass reads them:
 * per-task weights applied, the base shared), in the first task's tensor order.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { loadTaskVectors } from "./model_pass.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const t = new MemorySource("τ", { w: { shape: [1], data: new Float32Array([2]) } });
 * deepStrictEqual((await loadTaskVectors([t, t]))[1].get("w")?.data, new Float32Array([2]));
 * ```
 */
export async function loadTaskVectors(
  tasks: readonly TensorSource[],
  progress?: ProgressCallback,
): Promise<HostParams[]> {
  const out: HostParams[] = tasks.map(() => new Map());
  await forEachTensor(tasks, "read task vectors", (name, shape, taus) => {
    taus.forEach((data, t) => out[t].set(name, { shape, data }));
  }, progress);
  return out;
}

/**
 * What a method that reads images through the experts (RegMean, RegMean++, Fisher merging)
 * starts from: its data parameters, every task vector in host memory and the data context.
 */
export interface DataPass {
  /** The source of the images (the `data` parameter). */
  readonly source: DataSourceName;
  /** Images the method asks for per task (the `examples` parameter; 0: all). */
  readonly examples: number;
  /** Images per forward pass (the `batch` parameter). */
  readonly batch: number;
  /** τ_t whole in host memory, in task order ({@linkcode loadTaskVectors}). */
  readonly taus: HostParams[];
  /** θ0, the heads and the tasks' images. */
  readonly data: MergeData;
  /** Reports the progress of whole-model passes. */
  readonly progress?: ProgressCallback;
}

/**
 * Reads a data-using method's `data`, `examples` and `batch` parameters and every task vector
 * of `context` into host memory. The context carries the data (checked before `prepare`).
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { dataPass } from "./model_pass.ts";
 * import type { MergeData } from "./method.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const t = new MemorySource("τ", { w: { shape: [1], data: new Float32Array([2]) } });
 * const data = { sources: ["train"] } as unknown as MergeData; // carried, not read
 * const params = { data: "train", examples: 8, batch: 4 };
 * const pass = await dataPass({ tasks: [t, t], params, data });
 * deepStrictEqual([pass.source, pass.examples, pass.batch], ["train", 8, 4]);
 * equal(pass.taus[1].get("w")?.data[0], 2);
 * ```
 */
export async function dataPass(context: PrepareContext): Promise<DataPass> {
  const { params, data } = context;
  const source = stringParam(params, "data") as DataSourceName;
  const examples = numberParam(params, "examples");
  const batch = numberParam(params, "batch");
  const taus = await loadTaskVectors(context.tasks, context.progress);
  return { source, examples, batch, taus, data: data!, progress: context.progress };
}

/**
 * `measure(expert, images, t)` for every task t in order, with expert t = θ0 + τ_t as tfjs
 * tensors and task t's images of the pass's source; each expert is disposed after its measure,
 * and the progress is reported under `phase` after each task.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { type DataPass, eachExpert } from "./model_pass.ts";
 * import type { MergeData } from "./method.ts";
 * const w = (v: number) => new Map([["w", { shape: [1], data: new Float32Array([v]) }]]);
 * const set = { count: 3, channels: 1, size: 1, pixels: new Float32Array(3),
 *   labels: new Int32Array(0), classes: [] };
 * const data = { model: { base: w(1) }, images: () => Promise.resolve(set) } as unknown as
 *   MergeData;
 * const pass: DataPass = { source: "train", examples: 0, batch: 1, taus: [w(0.5), w(2)], data };
 * const out = await eachExpert(pass, "sum", async (expert, images, t) =>
 *   (await expert.w.data())[0] + images.count + 10 * t);
 * deepStrictEqual(out, [4.5, 16]);
 * ```
 */
export async function eachExpert<R>(
  pass: DataPass,
  phase: string,
  measure: (expert: ParamMap, images: ImageSet, t: number) => Promise<R>,
): Promise<R[]> {
  const { taus, data, source } = pass;
  const out: R[] = [];
  for (let t = 0; t < taus.length; t++) {
    const set = await data.images(source, t);
    const expert = modelTensors(data.model.base, taus[t]);
    try {
      out.push(await measure(expert, set, t));
    } finally {
      tf.dispose(Object.values(expert));
    }
    pass.progress?.({ phase, done: t + 1, total: taus.length });
  }
  return out;
}

/**
 * θ0 + τ as tfjs tensors (τ = undefined gives θ0; a tensor τ lacks stays at θ0). The caller
 * disposes them.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { modelTensors } from "./model_pass.ts";
 * const base = new Map([["w", { shape: [2], data: new Float32Array([1, 2]) }]]);
 * const tau = new Map([["w", { shape: [2], data: new Float32Array([0.5, 0]) }]]);
 * const p = modelTensors(base, tau);
 * deepStrictEqual(p.w.dataSync(), new Float32Array([1.5, 2]));
 * p.w.dispose();
 * ```
 */
export function modelTensors(base: HostParams, tau?: HostParams): ParamMap {
  const out: ParamMap = {};
  for (const [name, b] of base) {
    const t = tau?.get(name);
    if (t && t.data.length !== b.data.length) {
      throw new Error(
        `task vector tensor "${name}" has ${t.data.length} values, θ0 has ${b.data.length}`,
      );
    }
    const data = t ? b.data.map((v, i) => v + t.data[i]) : b.data;
    out[name] = tf.tensor(data, [...b.shape], "float32");
  }
  return out;
}

/**
 * The images of `set` at `indices` as one normalised batch [n, channels, size, size].
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { pixelBatch } from "./model_pass.ts";
 * const set = { count: 2, channels: 1, size: 1, pixels: new Float32Array([0, 1]),
 *   labels: new Int32Array(0), classes: [] };
 * const x = pixelBatch(set, [1, 0], { mean: 0.5, std: 0.5 });
 * deepStrictEqual(x.dataSync(), new Float32Array([1, -1]));
 * x.dispose();
 * ```
 */
export function pixelBatch(set: ImageSet, indices: ArrayLike<number>, norm?: PixelNorm): Tensor4D {
  const per = set.channels * set.size * set.size;
  const out = new Float32Array(indices.length * per);
  const mean = norm?.mean ?? 0, std = norm?.std ?? 1;
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!(k >= 0 && k < set.count)) throw new Error(`image ${k} outside 0–${set.count - 1}`);
    const src = set.pixels.subarray(k * per, (k + 1) * per);
    for (let j = 0; j < per; j++) out[i * per + j] = (src[j] - mean) / std;
  }
  return tf.tensor4d(out, [indices.length, set.channels, set.size, set.size]);
}

/**
 * `x` in the forward pass, no gradient in the backward pass (PyTorch's `detach()`).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { stopGradient } from "./model_pass.ts";
 * // d/dx of sg(x)·x is sg(x) = 3, not 2x = 6
 * const g = tf.grad((x: tf.Tensor) => stopGradient(x).mul(x).sum())(tf.tensor1d([3]));
 * deepStrictEqual(g.dataSync(), new Float32Array([3]));
 * ```
 */
export function stopGradient<T extends Tensor>(x: T): T {
  const f = tf.customGrad((...inputs: (Tensor | tf.GradSaveFunc)[]) => {
    const input = inputs[0] as Tensor;
    return { value: input.clone(), gradFunc: (dy: Tensor) => tf.zerosLike(dy) };
  });
  return f(x) as T;
}

/**
 * The mean Shannon entropy of the rows' softmax, H = −mean_i Σ_c p_ic log(p_ic + ε) with
 * ε = 1e-8 (FusionBench `entropy_loss`, the loss AdaMerging minimises).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { entropyLoss } from "./model_pass.ts";
 * ok(Math.abs(entropyLoss(tf.tensor2d([[0, 0]])).dataSync()[0] - Math.log(2)) < 1e-6);
 * ```
 */
export function entropyLoss(logits: Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.softmax(logits);
    return p.mul(p.add(1e-8).log()).sum(1).mean().neg() as tf.Scalar;
  });
}
