/**
 * Model and zoo sizes the tests share: small enough for seconds, with the real build and
 * training logic.
 *
 * @module
 */
import { VIT_TINY, type ViTConfig } from "../../lib/models/config.ts";
import { defaultZooConfig, type ZooConfig } from "../../lib/zoo/config.ts";

/** A one-block ViT 16 wide: for RI and training tests on random weights. */
export const MICRO_VIT: ViTConfig = {
  ...VIT_TINY,
  width: 16,
  layers: 1,
  heads: 2,
  mlpDim: 32,
  projectionDim: 16,
};

/**
 * The mf4 zoo cut down to seconds: the build logic is the same, only the sizes shrink.
 *
 * @example
 * ```ts
 * import { smallZooConfig } from "./small_models.ts";
 * smallZooConfig(3).model.width; // 32
 * ```
 */
export function smallZooConfig(seed: number): ZooConfig {
  const c = defaultZooConfig("mf4", seed);
  return {
    ...c,
    model: { ...c.model, width: 32, layers: 2, heads: 2, mlpDim: 64, projectionDim: 32 },
    splits: { train: 128, val: 16, test: 64 },
    pretrain: { ...c.pretrain, perSource: 256, epochs: 1, batchSize: 64 },
    experts: { ...c.experts, epochs: 1, batchSize: 32 },
  };
}

/**
 * The mf4 zoo at its smallest: a one-block ViT 16 wide, a few dozen images per split and a
 * handful of steps per training, for running every stage on a slow backend (the WebGPU study
 * test on Mesa's software Vulkan adapter). Same build logic.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { tinyZooConfig } from "./small_models.ts";
 * equal(tinyZooConfig(0).model.width, 16);
 * ```
 */
export function tinyZooConfig(seed: number): ZooConfig {
  const c = defaultZooConfig("mf4", seed);
  return {
    ...c,
    model: { ...MICRO_VIT },
    splits: { train: 64, val: 0, test: 50 },
    pretrain: { ...c.pretrain, perSource: 64, epochs: 1, batchSize: 32 },
    experts: { ...c.experts, epochs: 1, batchSize: 32 },
  };
}
