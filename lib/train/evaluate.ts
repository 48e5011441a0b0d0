/**
 * Running a model over an image set: image features, and accuracy under a head.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ViTConfig } from "../models/config.ts";
import { type Head, headLogits } from "../models/head.ts";
import { imageFeatures, type ParamMap } from "../models/vit.ts";
import { batches, type PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { countCorrect } from "./losses.ts";
import { readTensors } from "../engine/read.ts";

/** How a set is fed to the model. */
export interface FeedOptions {
  /** Pixel normalisation (the model's). */
  norm: PixelNorm;
  /** Images per forward pass (default 256). */
  batchSize?: number;
}

/**
 * Image features (`image_embeds`, not normalised) of every image, in set order:
 * [count × projectionDim] row-major.
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { noiseSource } from "../data/auxiliary.ts";
 * import { VIT_TINY } from "../models/config.ts";
 * import { initParams } from "../models/weights.ts";
 * import { extractFeatures } from "./evaluate.ts";
 * const set = await noiseSource({ channels: 1, size: 28 }, 0).images(0, 4);
 * const f = await extractFeatures(initParams(VIT_TINY, 0), VIT_TINY, set, { norm: { mean: 0.5, std: 0.5 } });
 * equal(f.length, 4 * VIT_TINY.projectionDim); // 4 images × 64
 * ok(f.every(Number.isFinite));
 * ```
 */
export async function extractFeatures(
  params: ParamMap,
  config: ViTConfig,
  set: ImageSet,
  options: FeedOptions,
): Promise<Float32Array> {
  const out = new Float32Array(set.count * config.projectionDim);
  let at = 0;
  for (const { x } of batches(set, { batchSize: options.batchSize ?? 256, norm: options.norm })) {
    const f = imageFeatures(params, config, x);
    out.set((await readTensors([f]))[0], at);
    at += f.size;
    f.dispose();
  }
  return out;
}

/**
 * Fraction of `set`'s images whose top class under `head` is their label.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { taskSplits } from "../data/dataset.ts";
 * import { taskByName } from "../data/tasks.ts";
 * import { VIT_TINY } from "../models/config.ts";
 * import { makeHead } from "../models/head.ts";
 * import { initParams } from "../models/weights.ts";
 * import { accuracy } from "./evaluate.ts";
 * const { test } = await taskSplits(taskByName("mnist"), { train: 0, val: 0, test: 50 }, 0);
 * // a head of zero rows scores every class alike: the top class is always class 0
 * const head = makeHead("mnist", test.classes, tf.zeros([10, 64]), 20);
 * const acc = await accuracy(initParams(VIT_TINY, 0), VIT_TINY, head, test, { norm: { mean: 0.5, std: 0.5 } });
 * equal(acc, test.labels.filter((label) => label === 0).length / 50);
 * ```
 */
export async function accuracy(
  params: ParamMap,
  config: ViTConfig,
  head: Head,
  set: ImageSet,
  options: FeedOptions,
): Promise<number> {
  if (set.labels.length !== set.count) throw new Error("accuracy: the set has no labels");
  if (set.count === 0) return NaN;
  let correct = 0;
  for (
    const { x, y } of batches(set, { batchSize: options.batchSize ?? 256, norm: options.norm })
  ) {
    const n = tf.tidy(() => countCorrect(headLogits(head, imageFeatures(params, config, x)), y));
    correct += (await readTensors([n]))[0][0];
    n.dispose();
  }
  return correct / set.count;
}
