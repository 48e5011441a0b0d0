/**
 * Learning-rate schedules: linear warm-up, then cosine decay to a floor.
 *
 * @module
 */

/** Settings of {@linkcode warmupCosine}. */
export interface WarmupCosineOptions {
  /** Learning rate at the end of the warm-up. */
  peak: number;
  /** Total number of steps. */
  totalSteps: number;
  /** Steps of linear warm-up from 0 (default 0). */
  warmupSteps?: number;
  /** Learning rate reached at the last step (default 0). */
  final?: number;
}

/**
 * Linear warm-up over `warmupSteps` (step 0 gets peak / warmupSteps), then a half cosine from
 * `peak` down to `final` at step `totalSteps − 1`.
 *
 * @example
 * ```ts
 * import { deepEqual, ok } from "node:assert/strict";
 * import { warmupCosine } from "./schedule.ts";
 * const lr = warmupCosine({ peak: 1e-3, warmupSteps: 10, totalSteps: 100 });
 * deepEqual([lr(0), lr(9), lr(99)], [1e-4, 1e-3, 0]);
 * ok(Math.abs(lr(54) - 0.5e-3) < 1e-12); // half-way down the cosine
 * ```
 */
export function warmupCosine(options: WarmupCosineOptions): (step: number) => number {
  const { peak, totalSteps } = options;
  const warmup = options.warmupSteps ?? 0;
  const final = options.final ?? 0;
  if (!(peak > 0) || !(totalSteps > 0) || warmup < 0 || warmup > totalSteps) {
    throw new Error(
      `warmupCosine: need peak > 0, totalSteps > 0 and 0 ≤ warmupSteps ≤ totalSteps ` +
        `(got ${peak}, ${totalSteps}, ${warmup})`,
    );
  }
  return (step: number) => {
    if (step < warmup) return (peak * (step + 1)) / warmup;
    const start = Math.max(0, warmup - 1); // the step at which the peak is reached
    const progress = Math.min(1, (step - start) / Math.max(1, totalSteps - 1 - start));
    return final + 0.5 * (peak - final) * (1 + Math.cos(Math.PI * progress));
  };
}
