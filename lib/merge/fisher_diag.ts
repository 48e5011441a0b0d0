/**
 * The diagonal Fisher information estimate Fisher merging weights each parameter with, as
 * FusionBench (and MergeLM before it) computes it for classifiers: for each batch B of inputs,
 * the gradient of
 *
 *     L_B(θ) = Σ_{i∈B} Σ_c sg(√p_ic) · log p_ic      (p = softmax of the head's logits, sg = no gradient)
 *
 * squared elementwise, summed over batches and divided by the number of inputs. Per input and
 * per class this is Σ_c p_c (∂ log p_c)² in expectation over the model's own predictions (no
 * labels); summing inside a batch before squaring adds cross terms, which is what the
 * reference code computes. Loads TensorFlow.js (imported by `fisher.ts` only inside `prepare`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ViTConfig } from "../models/config.ts";
import { type Head, headLogits } from "../models/head.ts";
import type { HostParams } from "../models/weights.ts";
import { imageFeatures, type ParamMap } from "../models/vit.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { pixelBatch, stopGradient } from "./model_pass.ts";

/**
 * The diagonal Fisher estimate of the model `params` with `head` on the images of `set` at
 * `indices`, `batch` at a time (see the module documentation), in host memory by name.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { VIT_TINY } from "../models/config.ts";
 * import { makeHead } from "../models/head.ts";
 * import { initParams } from "../models/weights.ts";
 * import { diagonalFisher } from "./fisher_diag.ts";
 * const head = makeHead("t", ["a", "b"], tf.randomNormal([2, 64]) as tf.Tensor2D, 20);
 * const set = { count: 2, channels: 1, size: 28, pixels: new Float32Array(2 * 784).fill(0.5),
 *   labels: new Int32Array(0), classes: [] };
 * const f = await diagonalFisher(VIT_TINY, initParams(VIT_TINY, 0), head, set, [0, 1], 2);
 * ok(f.get("visual_projection.weight")!.data.every((v) => v >= 0));
 * ok(f.get("visual_projection.weight")!.data.some((v) => v > 0));
 * ```
 */
export async function diagonalFisher(
  config: ViTConfig,
  params: ParamMap,
  head: Head,
  set: ImageSet,
  indices: ArrayLike<number>,
  batch: number,
  norm?: PixelNorm,
): Promise<HostParams> {
  const names = Object.keys(params);
  const sums: tf.Tensor[] = names.map((n) => tf.zerosLike(params[n]));
  let count = 0;
  try {
    for (let start = 0; start < indices.length; start += batch) {
      const idx = Array.from(indices).slice(start, start + batch);
      const x = pixelBatch(set, idx, norm);
      const gradient = tf.grads((...xs: tf.Tensor[]) => {
        const p: ParamMap = {};
        names.forEach((n, i) => p[n] = xs[i]);
        const logits = headLogits(head, imageFeatures(p, config, x));
        const root = stopGradient(tf.softmax(logits).sqrt());
        return root.mul(tf.logSoftmax(logits)).sum() as tf.Scalar;
      });
      try {
        const grads = gradient(names.map((n) => params[n]));
        for (let i = 0; i < names.length; i++) {
          const next = tf.tidy(() => sums[i].add(grads[i].square()));
          sums[i].dispose();
          sums[i] = next;
        }
        tf.dispose(grads);
      } finally {
        x.dispose();
      }
      count += idx.length;
    }
    const out: HostParams = new Map();
    for (let i = 0; i < names.length; i++) {
      const data = Float32Array.from((await sums[i].data()) as Float32Array);
      for (let j = 0; j < data.length; j++) data[j] /= count;
      out.set(names[i], { shape: params[names[i]].shape, data });
    }
    return out;
  } finally {
    tf.dispose(sums);
  }
}
