/**
 * The Gram matrices of linear layers' inputs that RegMean (and RegMean++) merge with: for each
 * linear layer (named by its weight), G = XᵀX / N over the N input rows X [N, in] the layer
 * sees while a model runs on a set of images (every token of every image is a row, as
 * FusionBench's forward hooks reshape inputs to [batch · tokens, in]). Loads TensorFlow.js
 * (imported by the method files only inside `prepare`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ViTConfig } from "../models/config.ts";
import { imageFeatures, type ParamMap } from "../models/vit.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { pixelBatch } from "./model_pass.ts";

/** One linear layer's input Gram matrix, averaged over its input rows. */
export interface InputGram {
  /** G = XᵀX / rows, [in × in] row-major, float64. */
  gram: Float64Array;
  /** The layer's input width. */
  size: number;
  /** Input rows averaged over (images × tokens). */
  rows: number;
}

/**
 * The input Gram matrix of every linear layer `keep` accepts (default all), with the model
 * `params` run on the images of `set` at `indices`, `batch` images at a time.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { VIT_TINY } from "../models/config.ts";
 * import { initParams } from "../models/weights.ts";
 * import { inputGrams } from "./regmean_gram.ts";
 * const set = { count: 2, channels: 1, size: 28, pixels: new Float32Array(2 * 784).fill(0.5),
 *   labels: new Int32Array(0), classes: [] };
 * const grams = await inputGrams(VIT_TINY, initParams(VIT_TINY, 0), set, [0, 1], 2);
 * equal(grams.get("visual_projection.weight")?.rows, 2); // one pooled row per image
 * equal(grams.get("vision_model.encoder.layers.0.mlp.fc1.weight")?.rows, 34); // 17 tokens each
 * ```
 */
export async function inputGrams(
  config: ViTConfig,
  params: ParamMap,
  set: ImageSet,
  indices: ArrayLike<number>,
  batch: number,
  norm?: PixelNorm,
  keep: (weight: string) => boolean = () => true,
): Promise<Map<string, InputGram>> {
  const sums = new Map<string, tf.Tensor>();
  const rows = new Map<string, number>();
  try {
    for (let start = 0; start < indices.length; start += batch) {
      const idx = Array.from(indices).slice(start, start + batch);
      const x = pixelBatch(set, idx, norm);
      try {
        tf.tidy(() => {
          imageFeatures(params, config, x, (weight, input) => {
            if (!keep(weight)) return;
            const g = tf.matMul(input, input, true, false);
            const prev = sums.get(weight);
            sums.set(weight, tf.keep(prev ? prev.add(g) : g));
            prev?.dispose();
            rows.set(weight, (rows.get(weight) ?? 0) + input.shape[0]);
          });
        });
      } finally {
        x.dispose();
      }
    }
    const out = new Map<string, InputGram>();
    for (const [weight, sum] of sums) {
      const n = rows.get(weight)!;
      const data = (await sum.data()) as Float32Array;
      const gram = new Float64Array(data.length);
      for (let i = 0; i < data.length; i++) gram[i] = data[i] / n;
      out.set(weight, { gram, size: sum.shape[0], rows: n });
    }
    return out;
  } finally {
    tf.dispose([...sums.values()]);
  }
}
