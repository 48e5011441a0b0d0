/**
 * Model and zoo sizes the tests share: small enough for seconds, with the real build and
 * training logic.
 *
 * @module
 */
import { parameterShapes, VIT_TINY, type ViTConfig } from "../../lib/models/config.ts";
import type { HostParams } from "../../lib/models/weights.ts";
import type { Rng } from "../../lib/tensor/random.ts";
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
 * Three channels, two blocks 16 wide, every tensor small: seconds in both frameworks, for the
 * cross-checks against PyTorch (the ViT itself, the data-using merges).
 */
export const SMALL_VIT: ViTConfig = {
  imageSize: 12,
  patchSize: 4,
  channels: 3,
  width: 16,
  layers: 2,
  heads: 2,
  mlpDim: 40,
  projectionDim: 8,
  activation: "quick_gelu",
  layerNormEps: 1e-5,
};

/**
 * Parameters of `config` with every tensor random, N(0, 0.3²) (LayerNorm scales 1 + N(0, 0.3²)),
 * so every parameter matters to the output; tensor `name`'s values are drawn from `rngOf(name)`,
 * in the order of {@linkcode parameterShapes}.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { randomViTParams, SMALL_VIT } from "./small_models.ts";
 * import { Rng } from "../../lib/tensor/random.ts";
 * const rng = new Rng(0);
 * const host = randomViTParams(SMALL_VIT, () => rng);
 * equal(host.get("vision_model.post_layernorm.bias")?.data.length, 16);
 * ```
 */
export function randomViTParams(config: ViTConfig, rngOf: (name: string) => Rng): HostParams {
  const host: HostParams = new Map();
  for (const [name, shape] of parameterShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = rngOf(name).normals(n, 0.3);
    if (/norm\d?\.weight$|layrnorm\.weight$/.test(name)) data.forEach((v, i) => data[i] = 1 + v);
    host.set(name, { shape, data });
  }
  return host;
}

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
