/**
 * A model's class logits under several heads on every image of a set, computed in batches
 * and returned in host memory: the raw material of accuracy, ξ and the pairwise
 * interference matrix.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ViTConfig } from "../models/config.ts";
import { type Head, headLogits } from "../models/head.ts";
import { imageFeatures, type ParamMap } from "../models/vit.ts";
import { batches, type PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { readTensors } from "../engine/read.ts";

/** A backbone to run: its geometry and its parameters as tfjs tensors. */
export interface Backbone {
  /** Geometry. */
  readonly config: ViTConfig;
  /** Parameters (Hugging Face CLIP vision names). */
  readonly params: ParamMap;
}

/** Logits of every image under one head, row-major [count × classes]. */
export interface HeadLogits {
  /** The head's task. */
  readonly task: string;
  /** Number of classes (row length). */
  readonly classes: number;
  /** Logits, image after image. */
  readonly logits: Float32Array;
}

/** Options of {@linkcode predictLogits}. */
export interface PredictOptions {
  /** Images per forward pass (default 256). */
  batchSize?: number;
  /** Pixel normalisation the model expects (default none). */
  norm?: PixelNorm;
}

/**
 * Runs `backbone` over every image of `set` once and returns its logits under each head.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { VIT_TINY } from "../models/config.ts";
 * import { makeHead } from "../models/head.ts";
 * import { initParams } from "../models/weights.ts";
 * import { predictLogits } from "./predict.ts";
 * const params = initParams(VIT_TINY, 0);
 * const head = makeHead("t", ["a", "b"], tf.randomNormal([2, 64]) as tf.Tensor2D, 20);
 * const set = { count: 3, channels: 1, size: 28, pixels: new Float32Array(3 * 784),
 *   labels: new Int32Array(0), classes: [] };
 * const [out] = await predictLogits({ config: VIT_TINY, params }, [head], set);
 * equal(out.task, "t");
 * equal(out.logits.length, 6); // 3 images × 2 classes
 * ```
 */
export async function predictLogits(
  backbone: Backbone,
  heads: readonly Head[],
  set: ImageSet,
  options: PredictOptions = {},
): Promise<HeadLogits[]> {
  const out = heads.map((h) => ({
    task: h.task,
    classes: h.classes.length,
    logits: new Float32Array(set.count * h.classes.length),
  }));
  const batchSize = options.batchSize ?? 256;
  for (const batch of batches(set, { batchSize, norm: options.norm })) {
    const logits = tf.tidy(() => {
      const features = imageFeatures(backbone.params, backbone.config, batch.x);
      return heads.map((h) => headLogits(h, features));
    });
    try {
      // One read per batch for every head's logits.
      const values = await readTensors(logits);
      for (let j = 0; j < heads.length; j++) {
        // batches() without a seed visits images in order, so rows land at batch.indices[0]
        out[j].logits.set(values[j], batch.indices[0] * out[j].classes);
      }
    } finally {
      tf.dispose(logits);
    }
  }
  return out;
}

/**
 * Top-1 accuracy (a fraction in [0, 1]) of logits [count × classes] against labels.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { logitsAccuracy } from "./predict.ts";
 * // image 0 predicts class 0 (right), image 1 class 1 (wrong)
 * equal(logitsAccuracy(new Float32Array([2, 1, 0, 3]), 2, new Int32Array([0, 0])), 0.5);
 * ```
 */
export function logitsAccuracy(logits: Float32Array, classes: number, labels: Int32Array): number {
  const count = logits.length / classes;
  if (labels.length !== count) {
    throw new Error(`logitsAccuracy: ${count} rows of logits but ${labels.length} labels`);
  }
  if (count === 0) throw new Error("accuracy: no examples");
  let correct = 0;
  for (let i = 0; i < count; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (logits[i * classes + c] > logits[i * classes + best]) best = c;
    }
    if (best === labels[i]) correct++;
  }
  return correct / count;
}

/**
 * Row-wise softmax of logits [count × classes] (numerically stable).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { softmaxRows } from "./predict.ts";
 * deepStrictEqual(softmaxRows(new Float32Array([0, 0]), 2), new Float32Array([0.5, 0.5]));
 * ```
 */
export function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i += classes) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[i + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[i + c] = Math.exp(logits[i + c] - max);
    for (let c = 0; c < classes; c++) out[i + c] /= sum;
  }
  return out;
}
