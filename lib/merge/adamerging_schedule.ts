/**
 * AdaMerging's settings and batch schedule (see `adamerging.ts` for the method), shared by the
 * registry entry and the optimisation (`adamerging_fit.ts`) without either importing the other.
 *
 * @module
 */
import { Rng } from "../tensor/random.ts";

/**
 * The positions of task `task`'s batch at step `step` (from 1) of AdaMerging's endless loader
 * over `count` inputs: epoch e = ⌊(step − 1) / ⌈count / batch⌉⌋ is the permutation seeded by
 * (`seed`, task, e), cut into consecutive batches, the last possibly smaller.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { adaMergingBatch } from "./adamerging_schedule.ts";
 * equal(adaMergingBatch(5, 2, 0, 0, 3).length, 1); // the third batch of 5 inputs holds one
 * ```
 */
export function adaMergingBatch(
  count: number,
  batch: number,
  seed: number,
  task: number,
  step: number,
): Int32Array {
  if (count <= 0) throw new Error(`AdaMerging: task ${task} has no inputs`);
  const perEpoch = Math.ceil(count / batch);
  const epoch = Math.floor((step - 1) / perEpoch);
  const k = (step - 1) % perEpoch;
  const order = new Rng(seed, `adamerging/task${task}/epoch-${epoch}`).permutation(count);
  return order.slice(k * batch, Math.min((k + 1) * batch, count));
}

/** AdaMerging's settings, read from its parameters. */
export interface AdaMergingSettings {
  /** One coefficient per task and tensor (true) or per task (false). */
  layerWise: boolean;
  /** Starting coefficient. */
  init: number;
  /** Adam learning rate. */
  lr: number;
  /** Steps. */
  steps: number;
  /** Inputs per task and step. */
  batch: number;
  /** Use clamp(λ, 0, 1) in the model. */
  clamp: boolean;
  /** Seed of the batch order. */
  seed: number;
}
