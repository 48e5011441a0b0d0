/**
 * Losses and scores on class logits.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor, Tensor1D, Tensor2D } from "../engine/tf_types.ts";

/**
 * Mean cross-entropy of logits [batch, classes] against integer labels [batch].
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { crossEntropy } from "./losses.ts";
 * const loss = crossEntropy(tf.tensor2d([[0, 0]]), tf.tensor1d([1], "int32"));
 * ok(Math.abs(loss.dataSync()[0] - Math.LN2) < 1e-6); // two equal logits: ln 2
 * ```
 */
export function crossEntropy(logits: Tensor2D, labels: Tensor1D): Scalar {
  return tf.tidy(() => {
    const picked = tf.oneHot(labels.toInt(), logits.shape[1]).mul(tf.logSoftmax(logits));
    return picked.sum(1).mean().neg() as Scalar;
  });
}

/**
 * Number of rows whose largest logit is at the label (a tensor read when needed).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { countCorrect } from "./losses.ts";
 * const correct = countCorrect(tf.tensor2d([[2, 1], [0, 3]]), tf.tensor1d([0, 0], "int32"));
 * equal(correct.dataSync()[0], 1); // row 0 predicts 0 (right), row 1 predicts 1 (wrong)
 * ```
 */
export function countCorrect(logits: Tensor2D, labels: Tensor): Scalar {
  return tf.tidy(() => logits.argMax(1).equal(labels.toInt()).sum() as Scalar);
}
