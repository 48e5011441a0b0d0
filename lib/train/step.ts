/**
 * One optimisation step on a map of variables: gradients of a loss, global-norm clipping,
 * AdamW. Shared by pretraining, head fitting, expert fine-tuning and RI adaptation.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor, Variable } from "../engine/tf_types.ts";
import type { AdamW } from "./adamw.ts";
import { packedGradients } from "../engine/gradients.ts";
import { fusedSumSquares } from "../engine/fused.ts";

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (PyTorch's
 * `clip_grad_norm_`: factor min(1, maxNorm / (norm + 1e-6))). Returns new tensors and the
 * norm before clipping; the caller disposes both.
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { clipByGlobalNorm } from "./step.ts";
 * const { grads, norm } = clipByGlobalNorm({ a: tf.tensor1d([3]), b: tf.tensor1d([4]) }, 1);
 * equal(norm.dataSync()[0], 5);
 * ok(Math.abs(grads.a.dataSync()[0] - 0.6) < 1e-6); // scaled by 1/5
 * ok(Math.abs(grads.b.dataSync()[0] - 0.8) < 1e-6);
 * ```
 */
export function clipByGlobalNorm(
  grads: Readonly<Record<string, Tensor>>,
  maxNorm: number,
): { grads: Record<string, Tensor>; norm: Scalar } {
  return tf.tidy(() => {
    const squares = Object.values(grads).map((g) => g.square().sum());
    const norm = tf.addN(squares).sqrt() as Scalar;
    const factor = tf.minimum(1, tf.div(maxNorm, norm.add(1e-6)));
    const out: Record<string, Tensor> = {};
    for (const [name, g] of Object.entries(grads)) out[name] = g.mul(factor);
    return { grads: out, norm };
  });
}

/** Settings of one {@linkcode trainStep}. */
export interface StepOptions {
  /** Learning rate of this step. */
  lr: number;
  /** Clip the gradients' global norm to this (default: no clipping). */
  clipNorm?: number;
}

/**
 * Computes `loss()`'s gradients with respect to every variable of the optimiser, clips them,
 * and applies one AdamW update. Returns the loss (a scalar the caller disposes: read it only
 * when needed, since reading waits for the device). Leaves no other tensor behind.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { AdamW } from "./adamw.ts";
 * import { trainStep } from "./step.ts";
 * const w = tf.variable(tf.scalar(3));
 * const opt = new AdamW({ w }, { weightDecay: 0 });
 * for (let i = 0; i < 100; i++) trainStep(() => w.square() as tf.Scalar, opt, { lr: 0.1 }).dispose();
 * ok(Math.abs(w.dataSync()[0]) < 0.1); // minimises w², from 3
 * opt.dispose();
 * ```
 */
export function trainStep(loss: () => Scalar, optimizer: AdamW, options: StepOptions): Scalar {
  const entries = Object.entries(optimizer.vars);
  // Where the fused kernels run: gradients packed in one tensor, clipping and AdamW in place.
  const packed = packedGradients(loss, entries.map(([, v]) => v));
  if (packed) {
    try {
      let scale = 1;
      if (options.clipNorm !== undefined) {
        const norm = Math.fround(Math.sqrt(fusedSumSquares(packed.flat)!));
        scale = Math.min(1, options.clipNorm / Math.fround(norm + 1e-6));
      }
      optimizer.stepPacked(packed, entries.map(([name]) => name), options.lr, scale);
    } finally {
      packed.flat.dispose();
    }
    return packed.value;
  }
  const { value, grads } = tf.variableGrads(loss, entries.map(([, v]) => v as Variable));
  const byName: Record<string, Tensor> = {};
  for (const [name, v] of entries) if (grads[v.name]) byName[name] = grads[v.name];
  if (options.clipNorm !== undefined) {
    const clipped = clipByGlobalNorm(byName, options.clipNorm);
    optimizer.step(clipped.grads, options.lr);
    tf.dispose([clipped.norm, ...Object.values(clipped.grads)]);
  } else {
    optimizer.step(byName, options.lr);
  }
  tf.dispose(Object.values(grads));
  return value;
}
