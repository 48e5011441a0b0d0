/**
 * Distances between predicted class distributions, as RI and the interference measure ξ use
 * them: `d(p, q)` with `p` the fixed target distribution (an expert's, or the pretrained
 * model's) and `q` the distribution of the model under study, given by its logits so that the
 * distance is differentiable with respect to them.
 *
 * - `kl`: KL(p ‖ q) = Σ p (log p − log q), the paper's default.
 * - `ce`: cross-entropy against the target's most likely class (a pseudo-label). The soft
 *   cross-entropy −Σ p log q differs from KL(p ‖ q) only by the constant entropy of p, so it
 *   would give RI exactly KL's gradients; the paper reports CE and KL performing differently,
 *   which only the hard pseudo-label form does. The soft form is `soft_ce`.
 * - `mse`: mean squared difference of the probability vectors.
 *
 * Every function returns the mean over the batch of the per-example distance.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor1D, Tensor2D } from "../engine/tf_types.ts";

/** A distance between predicted distributions. */
export type DistanceName = "kl" | "ce" | "soft_ce" | "mse";

/** Names of the distances on offer. */
export const DISTANCES: readonly DistanceName[] = ["kl", "ce", "soft_ce", "mse"];

/**
 * Parses a distance name, with an error listing the valid ones.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import { parseDistance } from "./distance.ts";
 * equal(parseDistance("KL"), "kl");
 * throws(() => parseDistance("l1"), /unknown distance "l1": expected one of kl, ce, soft_ce, mse/);
 * ```
 */
export function parseDistance(name: string): DistanceName {
  const lower = name.trim().toLowerCase();
  if ((DISTANCES as readonly string[]).includes(lower)) return lower as DistanceName;
  throw new Error(`unknown distance "${name}": expected one of ${DISTANCES.join(", ")}`);
}

/**
 * Mean over the batch of `d(p, softmax(logits))`, for targets `p` given as probabilities
 * `[batch, classes]` (rows summing to 1) and logits of the same shape.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { distance } from "./distance.ts";
 * const p = tf.tensor2d([[0.5, 0.5]]);
 * // KL((1/2, 1/2) ‖ softmax([ln 3, 0]) = (3/4, 1/4)) = ½ ln(4/3)
 * const d = distance("kl", p, tf.tensor2d([[Math.log(3), 0]]));
 * ok(Math.abs(d.dataSync()[0] - Math.log(4 / 3) / 2) < 1e-6);
 * ```
 */
export function distance(name: DistanceName, p: Tensor2D, logits: Tensor2D): Scalar {
  return tf.tidy(() => tf.mean(distancePerExample(name, p, logits)));
}

/**
 * Per-example distances `[batch]` (no reduction), for measuring rather than training.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { distancePerExample } from "./distance.ts";
 * // softmax([0, 0]) = (1/2, 1/2) against (1, 0): ((1/2)² + (1/2)²) / 2
 * const d = distancePerExample("mse", tf.tensor2d([[1, 0]]), tf.tensor2d([[0, 0]]));
 * deepStrictEqual(d.dataSync(), new Float32Array([0.25]));
 * ```
 */
export function distancePerExample(
  name: DistanceName,
  p: Tensor2D,
  logits: Tensor2D,
): Tensor1D {
  const kind = parseDistance(name); // an unknown name fails here, listing the valid ones
  return tf.tidy(() => {
    const logQ = tf.logSoftmax(logits);
    switch (kind) {
      case "kl": {
        const pLogP = tf.where(tf.greater(p, 0), tf.mul(p, tf.log(tf.maximum(p, 1e-30))), 0);
        return tf.sum(tf.sub(pLogP, tf.mul(p, logQ)), 1);
      }
      case "soft_ce":
        return tf.neg(tf.sum(tf.mul(p, logQ), 1));
      case "ce": {
        const labels = tf.oneHot(tf.argMax(p, 1), p.shape[1]);
        return tf.neg(tf.sum(tf.mul(labels, logQ), 1));
      }
      case "mse":
        return tf.mean(tf.square(tf.sub(tf.softmax(logits), p)), 1);
    }
  });
}
