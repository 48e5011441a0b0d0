/**
 * Task Arithmetic (Ilharco et al., ICLR 2023; docs/METHODS.md, `task_arithmetic`): M = Σ_t τ_t,
 * θ = θ0 + α·M, every tensor elementwise with one global α.
 *
 * @module
 */
import { sumOf } from "./elementwise.ts";
import type { MergeMethod } from "./method.ts";
import { scalingParam } from "./params.ts";

/** The α grid of tall_masks for TA/TIES/Consensus ({0.1, …, 1.0}). */
export const TALL_MASKS_ALPHA_GRID: readonly number[] = Array.from(
  { length: 10 },
  (_, i) => (i + 1) / 10,
);

/**
 * The Task Arithmetic method: M = Σ_t τ_t, α = 0.3 by default (FusionBench).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { taskArithmetic } from "./task_arithmetic.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number) => new MemorySource("τ", { w: { shape: [1], data: new Float32Array([v]) } });
 * const m = await merge(taskArithmetic, [tau(1), tau(3)], { params: { scaling: 0.5 } });
 * deepEqual(m.get("w").data, new Float32Array([2])); // 0.5 · (1 + 3)
 * ```
 */
export const taskArithmetic: MergeMethod = {
  name: "task_arithmetic",
  title: "Task Arithmetic",
  paper: "Ilharco et al., Editing Models with Task Arithmetic, ICLR 2023",
  code: "mlfoundations/task_vectors; tanganke/fusion_bench TaskArithmeticAlgorithm",
  summary: "M = Σ_t τ_t; θ = θ0 + α·M with one global α.",
  tensorRule: "every tensor: elementwise sum over tasks",
  params: [
    scalingParam(
      0.3,
      "tanganke/fusion_bench@54c9e8c config/method/task_arithmetic.yaml (scaling_factor: 0.3); " +
        "the paper and tall_masks pick α on validation",
    ),
  ],
  scalingSearch: {
    grid: TALL_MASKS_ALPHA_GRID,
    source: "nik-dim/tall_masks (n_eval_points=21 → {0.1, …, 1.0})",
  },
  treatment: () => "elementwise",
  prepare: () => Promise.resolve({ tensor: (_n, _s, taus) => sumOf(taus), concurrentReads: true }),
};
