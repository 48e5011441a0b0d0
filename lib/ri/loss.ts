/**
 * The RI objective for one expert i, on a batch of auxiliary inputs x (RI.md):
 *
 *     L(τi') = d( pi(x; θ0 + τi) , pi(x; θ0 + τi') )                     keep own task
 *            + α/(N−1) Σ_{j≠i} d( pj(x; θ0) , pj(x; θ0 + τi') )          leave others as θ0
 *
 * The targets (the expert's own distribution and the pretrained model's distribution under
 * every other head) are fixed: they are passed in as probabilities.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor2D } from "../engine/tf_types.ts";
import { distance, type DistanceName } from "../interference/distance.ts";
import { FUSED, fusedAvailable, fusedHeadsKl } from "../engine/fused.ts";

/** A loss and its named parts, as scalars (the caller disposes them). */
export interface LossParts {
  /** The value minimised. */
  total: Scalar;
  /** Named terms, for the loss curve. */
  parts: Record<string, Scalar>;
}

/**
 * The RI loss from the adapted model's logits under every head.
 *
 * `logits[j]` is the adapted model's logits under head j, `targets[j]` the fixed target
 * probabilities under head j: the expert's own for j = `own`, the pretrained model's for the
 * others. With one head only (N = 1) the second term is empty.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { riLoss } from "./loss.ts";
 * const targets = [tf.tensor2d([[0.5, 0.5]]), tf.tensor2d([[1, 0]])];
 * const logits = [tf.tensor2d([[0, 0]]), tf.tensor2d([[0, 0]])];
 * const { total } = riLoss(logits, targets, 0, { alpha: 1, distance: "kl" });
 * // own: KL((½, ½) ‖ (½, ½)) = 0; the other task: KL((1, 0) ‖ (½, ½)) = ln 2, weighted α/(N−1) = 1
 * ok(Math.abs(total.dataSync()[0] - Math.LN2) < 1e-6);
 * ```
 */
export function riLoss(
  logits: readonly Tensor2D[],
  targets: readonly Tensor2D[],
  own: number,
  options: { alpha: number; distance: DistanceName },
): LossParts {
  const n = logits.length;
  if (targets.length !== n) {
    throw new Error(`riLoss: ${n} heads' logits but ${targets.length} targets`);
  }
  if (!(own >= 0 && own < n)) throw new Error(`riLoss: own head ${own} not in 0..${n - 1}`);
  const weight = n > 1 ? options.alpha / (n - 1) : 0;
  if (options.distance === "kl") {
    const fused = fusedRiKl(logits, targets, own, weight);
    if (fused) return fused;
  }
  const ownPart = distance(options.distance, targets[own], logits[own]);
  const others = tf.tidy(() => {
    let sum: tf.Tensor = tf.scalar(0);
    for (let j = 0; j < n; j++) {
      if (j !== own) sum = tf.add(sum, distance(options.distance, targets[j], logits[j]));
    }
    return sum as Scalar;
  });
  const total = tf.tidy(() => tf.add(ownPart, tf.mul(others, weight)) as Scalar);
  return { total, parts: { own: ownPart, others } };
}

/**
 * riLoss with KL through one fused kernel over every head (lib/engine/fused.ts), where the
 * backend has it; undefined otherwise. The logits and targets are laid side by side first.
 */
function fusedRiKl(
  logits: readonly Tensor2D[],
  targets: readonly Tensor2D[],
  own: number,
  weight: number,
): LossParts | undefined {
  if (!fusedAvailable(FUSED.headsKl)) return undefined;
  const widths = logits.map((l) => l.shape[1]);
  const weights = widths.map((_, j) => (j === own ? 1 : weight));
  const z = logits.length === 1 ? logits[0] : tf.concat(logits as Tensor2D[], 1);
  const p = targets.length === 1 ? targets[0] : tf.concat(targets as Tensor2D[], 1);
  const kl = fusedHeadsKl(z, p, widths, weights);
  if (z !== logits[0]) tf.dispose([z, p]);
  if (!kl) return undefined;
  const parts = tf.tidy(() => {
    const ownPart = kl.perHead.slice([own], [1]).reshape([]) as Scalar;
    return { own: ownPart, others: kl.perHead.sum().sub(ownPart) as Scalar };
  });
  kl.perHead.dispose();
  return { total: kl.total, parts };
}

/**
 * The Merge + Distill_Aux objective: the mean over tasks i of d(pi(x; θi), pi(x; θ')), every
 * expert's own distribution being the target under its own head.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { distillLoss } from "./loss.ts";
 * const { total } = distillLoss([tf.tensor2d([[0, 0]])], [tf.tensor2d([[1, 0]])], "kl");
 * ok(Math.abs(total.dataSync()[0] - Math.LN2) < 1e-6); // KL((1, 0) ‖ (½, ½))
 * ```
 */
export function distillLoss(
  logits: readonly Tensor2D[],
  targets: readonly Tensor2D[],
  name: DistanceName,
): LossParts {
  if (targets.length !== logits.length || logits.length === 0) {
    throw new Error(`distillLoss: ${logits.length} heads' logits but ${targets.length} targets`);
  }
  const total = tf.tidy(() =>
    tf.div(tf.addN(logits.map((l, i) => distance(name, targets[i], l))), logits.length) as Scalar
  );
  return { total, parts: {} };
}
