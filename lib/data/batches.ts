/**
 * Batches of an image set as tfjs tensors, in a seeded order. The iterator owns the tensors
 * it yields: each batch is disposed when the consumer asks for the next one (or stops), so a
 * training loop's tensor count stays flat without any bookkeeping.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor1D, Tensor4D } from "../engine/tf_types.ts";
import type { ImageSet } from "./dataset.ts";
import { Rng } from "../tensor/random.ts";

/** One batch: pixels [n, channels, size, size] (normalised), labels [n] (int32). */
export interface Batch {
  /** Model-ready pixel values. */
  readonly x: Tensor4D;
  /** Labels (empty tensor for unlabelled sets). */
  readonly y: Tensor1D;
  /** Positions of these images in the set. */
  readonly indices: Int32Array;
}

/** Pixel normalisation applied when a batch is made: (x − mean) / std. */
export interface PixelNorm {
  /** Subtracted from every pixel value. */
  mean: number;
  /** Divides every centred pixel value. */
  std: number;
}

/** Options of {@linkcode batches}. */
export interface BatchOptions {
  /** Images per batch. */
  batchSize: number;
  /** Shuffle with this seed (and `epoch`); in order when absent. */
  seed?: number;
  /** Epoch number, so each epoch of one seed gets its own order (default 0). */
  epoch?: number;
  /** Drop a last, smaller batch (default false). */
  dropLast?: boolean;
  /** Pixel normalisation (default none: values as stored, in [0, 1]). */
  norm?: PixelNorm;
  /**
   * Replaces each image (values as stored, one image of `channels × size × size` values)
   * before normalisation; `index` is its position in the set (default: images as stored).
   */
  augment?: (image: Float32Array, index: number) => Float32Array;
}

/**
 * The order in which {@linkcode batches} visits a set's images.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { batchOrder } from "./batches.ts";
 * // no seed: as stored
 * deepEqual(batchOrder(5, { batchSize: 2 }), new Int32Array([0, 1, 2, 3, 4]));
 * const shuffled = batchOrder(5, { batchSize: 2, seed: 1 });
 * deepEqual(shuffled.toSorted(), new Int32Array([0, 1, 2, 3, 4])); // a seed: a permutation
 * deepEqual(batchOrder(5, { batchSize: 2, seed: 1 }), shuffled); // the same for the same seed
 * ```
 */
export function batchOrder(count: number, options: BatchOptions): Int32Array {
  if (options.seed === undefined) return Int32Array.from({ length: count }, (_, i) => i);
  return new Rng(options.seed, `batches/epoch-${options.epoch ?? 0}`).permutation(count);
}

/**
 * Iterates over `set` in batches. Each yielded batch is disposed when the loop moves on.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { batches } from "./batches.ts";
 * const set = { count: 5, channels: 1, size: 2, pixels: new Float32Array(20).fill(1),
 *   labels: new Int32Array([0, 1, 0, 1, 0]), classes: ["a", "b"] };
 * const shapes: number[][] = [];
 * const labels: number[] = [];
 * for (const { x, y } of batches(set, { batchSize: 2, seed: 1 })) {
 *   shapes.push(x.shape);
 *   labels.push(...y.dataSync());
 * }
 * deepEqual(shapes, [[2, 1, 2, 2], [2, 1, 2, 2], [1, 1, 2, 2]]); // the last batch is short
 * deepEqual(labels.toSorted(), [0, 0, 0, 1, 1]); // every image once
 * ```
 */
export function* batches(set: ImageSet, options: BatchOptions): Generator<Batch> {
  const { batchSize } = options;
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0) {
    throw new Error(`batches: batchSize must be a positive integer, got ${batchSize}`);
  }
  const order = batchOrder(set.count, options);
  const per = set.channels * set.size * set.size;
  const norm = options.norm ?? { mean: 0, std: 1 };
  const end = options.dropLast ? set.count - (set.count % batchSize) : set.count;
  for (let start = 0; start < end; start += batchSize) {
    const indices = order.slice(start, Math.min(start + batchSize, end));
    const n = indices.length;
    const pixels = new Float32Array(n * per);
    for (let i = 0; i < n; i++) {
      let src = set.pixels.subarray(indices[i] * per, (indices[i] + 1) * per);
      if (options.augment) src = options.augment(src, indices[i]);
      if (src.length !== per) {
        throw new Error(`batches: augment returned ${src.length} values, expected ${per}`);
      }
      const dst = pixels.subarray(i * per, (i + 1) * per);
      for (let j = 0; j < per; j++) dst[j] = (src[j] - norm.mean) / norm.std;
    }
    const labels = set.labels.length ? Int32Array.from(indices, (k) => set.labels[k]) : [];
    const batch = {
      x: tf.tensor4d(pixels, [n, set.channels, set.size, set.size]),
      y: tf.tensor1d(labels, "int32"),
      indices,
    };
    try {
      yield batch;
    } finally {
      batch.x.dispose();
      batch.y.dispose();
    }
  }
}
