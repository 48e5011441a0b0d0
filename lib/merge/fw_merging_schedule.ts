/**
 * Frank-Wolfe merging's settings, step sizes and image streams (see `fw_merging.ts` for the
 * method), shared by the registry entry and the iterations (`fw_merging_fit.ts`) without either
 * importing the other.
 *
 * @module
 */
import { Rng } from "../tensor/random.ts";

/** Frank-Wolfe merging's settings, read from its parameters. */
export interface FrankWolfeSettings {
  /** Iterations K. */
  readonly steps: number;
  /** `step_size`: γ_k = 2/(k+2) · stepSize · initScaling. */
  readonly stepSize: number;
  /** s: the initial Task Arithmetic's scaling factor, and every step's multiplier. */
  readonly initScaling: number;
  /** Images per task and iteration (N). */
  readonly examples: number;
  /** One candidate for the whole model (`task`) or one per tensor (`layer`). */
  readonly granularity: "task" | "layer";
  /** The loss whose gradient drives the oracle. */
  readonly loss: "cross_entropy" | "entropy";
  /** θ^0: Task Arithmetic (`task_arithmetic`) or θ0 (`base`). */
  readonly init: "task_arithmetic" | "base";
  /** Images per forward pass (the summed loss's gradient does not depend on it). */
  readonly batch: number;
  /** Seed of the image streams. */
  readonly seed: number;
}

/**
 * The step size of iteration `k` (from 0): γ_k = 2/(k+2) · stepSize · initScaling.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { frankWolfeStep } from "./fw_merging_schedule.ts";
 * ok(Math.abs(frankWolfeStep(0, 0.1, 0.3) - 0.03) < 1e-15); // FusionBench's defaults
 * ```
 */
export function frankWolfeStep(k: number, stepSize: number, initScaling: number): number {
  return 2 / (k + 2) * stepSize * initScaling;
}

/**
 * The positions of the `n` images task `task` reads at iteration `k` (from 0) from a set of
 * `count`: positions kn..(k+1)n−1 of the endless stream whose epoch e is the permutation seeded
 * by (`seed`, task, e) — FusionBench's shuffled infinite loader of batch size 1, read on from
 * iteration to iteration.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { frankWolfeImages } from "./fw_merging_schedule.ts";
 * const all = [0, 1, 2].flatMap((k) => [...frankWolfeImages(4, 2, 0, 0, k)]);
 * deepStrictEqual([...all.slice(0, 4)].sort(), [0, 1, 2, 3]); // iterations 0, 1: one epoch
 * equal(frankWolfeImages(4, 3, 0, 0, 1).length, 3); // crosses into the second epoch
 * ```
 */
export function frankWolfeImages(
  count: number,
  n: number,
  seed: number,
  task: number,
  k: number,
): Int32Array {
  if (count <= 0) throw new Error(`Frank-Wolfe merging: task ${task} has no images`);
  const out = new Int32Array(n);
  let epoch = -1;
  let order: Int32Array = new Int32Array(0);
  for (let i = 0; i < n; i++) {
    const position = k * n + i;
    const e = Math.floor(position / count);
    if (e !== epoch) {
      epoch = e;
      order = new Rng(seed, `fw_merging/task${task}/epoch-${e}`).permutation(count);
    }
    out[i] = order[position % count];
  }
  return out;
}
