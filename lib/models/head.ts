/**
 * Classification heads in CLIP's zero-shot style: the image feature is L2-normalised and
 * compared with one unit-norm row per class, scaled by a logit scale:
 * `logits = scale · normalize(f) · Wᵀ`. Heads are fitted once and then frozen; every task is
 * scored with its own head.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor2D } from "../engine/tf_types.ts";
import { shapeText } from "../tensor/host.ts";

/** A frozen classification head for one task. */
export interface Head {
  /** The task it belongs to. */
  readonly task: string;
  /** Class names, one per row of `weight`. */
  readonly classes: readonly string[];
  /** Class directions [classes, featureDim], rows of unit L2 norm. */
  readonly weight: Tensor2D;
  /** Multiplier of the cosine similarities (CLIP's exp(logit_scale), 100 for CLIP). */
  readonly logitScale: number;
}

/**
 * Rows scaled to unit L2 norm (a zero row stays zero).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { l2NormalizeRows } from "./head.ts";
 * const [[x, y]] = l2NormalizeRows(tf.tensor2d([[3, 4]])).arraySync();
 * ok(Math.abs(x - 0.6) < 1e-7 && Math.abs(y - 0.8) < 1e-7);
 * ```
 */
export function l2NormalizeRows(x: Tensor2D): Tensor2D {
  return tf.tidy(() => {
    const norm = x.square().sum(1, true).sqrt();
    return x.div(tf.maximum(norm, 1e-12));
  });
}

/**
 * Builds a head, normalising the rows of `weight` (the head keeps its own copy).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { makeHead } from "./head.ts";
 * const head = makeHead("parity", ["even", "odd"], tf.tensor2d([[1, 0], [0, 2]]), 20);
 * deepStrictEqual(head.weight.arraySync(), [[1, 0], [0, 1]]); // rows at unit norm
 * ```
 */
export function makeHead(
  task: string,
  classes: readonly string[],
  weight: Tensor2D,
  logitScale: number,
): Head {
  if (weight.rank !== 2 || weight.shape[0] !== classes.length) {
    throw new Error(
      `head "${task}": weight has shape ${shapeText(weight.shape)}, expected ` +
        `[${classes.length} classes, feature dim]`,
    );
  }
  if (!(logitScale > 0)) {
    throw new Error(`head "${task}": logit scale must be > 0, got ${logitScale}`);
  }
  return { task, classes: [...classes], weight: l2NormalizeRows(weight), logitScale };
}

/**
 * Class logits [batch, classes] of image features [batch, featureDim] under `head`.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { headLogits, makeHead } from "./head.ts";
 * const head = makeHead("t", ["a", "b"], tf.tensor2d([[1, 0], [0, 1]]), 10);
 * // the feature is normalised to (1, 0), then scaled cosine similarities
 * deepStrictEqual(headLogits(head, tf.tensor2d([[2, 0]])).arraySync(), [[10, 0]]);
 * ```
 */
export function headLogits(head: Head, features: Tensor2D): Tensor2D {
  checkFeatures(head, features);
  return tf.tidy(() =>
    tf.matMul(l2NormalizeRows(features), head.weight, false, true).mul(head.logitScale)
  );
}

/**
 * Class logits under several heads at once: the features are normalised once and multiplied by
 * every head's weights in one product; returns one [batch, classes] tensor per head, equal to
 * {@linkcode headLogits} of each head.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { deepEqual, ok } from "node:assert/strict";
 * import { headsLogits, makeHead } from "./head.ts";
 * const a = makeHead("a", ["x", "y"], tf.tensor2d([[1, 0], [0, 1]]), 10);
 * const b = makeHead("b", ["z"], tf.tensor2d([[1, 1]]), 2);
 * const [la, lb] = headsLogits([a, b], tf.tensor2d([[2, 0]]));
 * deepEqual([...la.dataSync()], [10, 0]);
 * ok(Math.abs(lb.dataSync()[0] - Math.SQRT2) < 1e-6); // 2 · cos 45°
 * ```
 */
export function headsLogits(heads: readonly Head[], features: Tensor2D): Tensor2D[] {
  if (heads.length === 1) return [headLogits(heads[0], features)];
  for (const head of heads) checkFeatures(head, features);
  return tf.tidy(() => {
    const weight = tf.concat(heads.map((h) => h.weight), 0);
    const scale = heads.every((h) => h.logitScale === heads[0].logitScale)
      ? tf.scalar(heads[0].logitScale)
      : tf.tensor1d(heads.flatMap((h) => h.classes.map(() => h.logitScale)));
    const logits = tf.matMul(l2NormalizeRows(features), weight, false, true).mul(scale);
    return tf.split(logits, heads.map((h) => h.classes.length), 1) as Tensor2D[];
  });
}

function checkFeatures(head: Head, features: Tensor2D): void {
  if (features.rank !== 2 || features.shape[1] !== head.weight.shape[1]) {
    throw new Error(
      `head "${head.task}": features have shape ${shapeText(features.shape)}, expected ` +
        `[batch, ${head.weight.shape[1]}]`,
    );
  }
}

/**
 * Frees a head's tensor.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { disposeHead, makeHead } from "./head.ts";
 * const rows = tf.ones([1, 4]) as tf.Tensor2D;
 * const before = tf.memory().numTensors;
 * disposeHead(makeHead("t", ["a"], rows, 1));
 * equal(tf.memory().numTensors, before);
 * ```
 */
export function disposeHead(head: Head): void {
  head.weight.dispose();
}
