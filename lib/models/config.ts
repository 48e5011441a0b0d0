/**
 * The Vision Transformer's configuration and its parameter list. One architecture covers the
 * built-in benchmark's tiny model and the CLIP ViT-B/32 vision tower; parameter names and
 * shapes are Hugging Face's (`CLIPVisionModelWithProjection`, and the vision part of
 * `CLIPModel`), so real checkpoints load with no renaming.
 *
 * @module
 */

/** The MLP's activation: CLIP's quick-GELU (x·σ(1.702x)) or the exact (erf) GELU. */
export type Activation = "quick_gelu" | "gelu";

/** Geometry and details of a ViT. */
export interface ViTConfig {
  /** Input height and width in pixels (square images). */
  imageSize: number;
  /** Patch side in pixels; must divide `imageSize`. */
  patchSize: number;
  /** Input channels (1 for the built-in benchmark, 3 for CLIP). */
  channels: number;
  /** Token width (Hugging Face `hidden_size`). */
  width: number;
  /** Number of transformer blocks. */
  layers: number;
  /** Attention heads; must divide `width`. */
  heads: number;
  /** Hidden size of each block's MLP (`intermediate_size`). */
  mlpDim: number;
  /** Size of the image feature after `visual_projection`. */
  projectionDim: number;
  /** MLP activation. */
  activation: Activation;
  /** LayerNorm epsilon. */
  layerNormEps: number;
}

/** The CLIP ViT-B/32 vision tower (openai/clip-vit-base-patch32). */
export const CLIP_VIT_B32: Readonly<ViTConfig> = Object.freeze({
  imageSize: 224,
  patchSize: 32,
  channels: 3,
  width: 768,
  layers: 12,
  heads: 12,
  mlpDim: 3072,
  projectionDim: 512,
  activation: "quick_gelu",
  layerNormEps: 1e-5,
});

/** The built-in benchmark's model: 28×28 grey images, 16 patches of 7×7, width 64. */
export const VIT_TINY: Readonly<ViTConfig> = Object.freeze({
  imageSize: 28,
  patchSize: 7,
  channels: 1,
  width: 64,
  layers: 4,
  heads: 4,
  mlpDim: 256,
  projectionDim: 64,
  activation: "quick_gelu",
  layerNormEps: 1e-5,
});

/** Prefix of every vision-tower tensor name. */
export const VISION_PREFIX = "vision_model.";

/** Name of the projection from the pooled token to the image feature. */
export const PROJECTION_NAME = "visual_projection.weight";

/**
 * Checks a configuration, with an error naming the field and what was expected.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, throws } from "node:assert/strict";
 * import { validateConfig, VIT_TINY } from "./config.ts";
 * deepStrictEqual(validateConfig({ ...VIT_TINY }), VIT_TINY);
 * throws(() => validateConfig({ ...VIT_TINY, heads: 5 }));
 * ```
 */
export function validateConfig(config: ViTConfig): ViTConfig {
  const positive = [
    "imageSize",
    "patchSize",
    "channels",
    "width",
    "layers",
    "heads",
    "mlpDim",
    "projectionDim",
  ] as const;
  for (const key of positive) {
    const v = config[key];
    if (!Number.isSafeInteger(v) || v <= 0) {
      throw new Error(`ViT config: ${key} must be a positive integer, got ${v}`);
    }
  }
  if (config.imageSize % config.patchSize !== 0) {
    throw new Error(
      `ViT config: patchSize ${config.patchSize} must divide imageSize ${config.imageSize}`,
    );
  }
  if (config.width % config.heads !== 0) {
    throw new Error(`ViT config: heads ${config.heads} must divide width ${config.width}`);
  }
  if (config.activation !== "quick_gelu" && config.activation !== "gelu") {
    throw new Error(
      `ViT config: activation must be "quick_gelu" or "gelu", got "${config.activation}"`,
    );
  }
  if (!(config.layerNormEps > 0)) {
    throw new Error(`ViT config: layerNormEps must be > 0, got ${config.layerNormEps}`);
  }
  return config;
}

/**
 * Number of patches per image (the class token comes on top).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { numPatches, CLIP_VIT_B32 } from "./config.ts";
 * equal(numPatches(CLIP_VIT_B32), 49); // (224 / 32)²
 * ```
 */
export function numPatches(config: ViTConfig): number {
  const side = config.imageSize / config.patchSize;
  return side * side;
}

/**
 * Every parameter's name and shape, in a fixed order (embeddings, pre-LayerNorm, blocks,
 * post-LayerNorm, projection). Linear weights are [out, in] as PyTorch stores them; the patch
 * embedding is [width, channels, patch, patch] (a convolution's kernel).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { parameterShapes, VIT_TINY } from "./config.ts";
 * const shapes = parameterShapes(VIT_TINY);
 * deepStrictEqual(shapes.get("visual_projection.weight"), [64, 64]);
 * ```
 */
export function parameterShapes(config: ViTConfig): Map<string, number[]> {
  validateConfig(config);
  const { width: d, channels: c, patchSize: p, mlpDim: m } = config;
  const out = new Map<string, number[]>();
  const v = VISION_PREFIX;
  out.set(`${v}embeddings.class_embedding`, [d]);
  out.set(`${v}embeddings.patch_embedding.weight`, [d, c, p, p]);
  out.set(`${v}embeddings.position_embedding.weight`, [numPatches(config) + 1, d]);
  out.set(`${v}pre_layrnorm.weight`, [d]); // Hugging Face's spelling
  out.set(`${v}pre_layrnorm.bias`, [d]);
  for (let i = 0; i < config.layers; i++) {
    const l = `${v}encoder.layers.${i}.`;
    out.set(`${l}layer_norm1.weight`, [d]);
    out.set(`${l}layer_norm1.bias`, [d]);
    for (const proj of ["q_proj", "k_proj", "v_proj", "out_proj"]) {
      out.set(`${l}self_attn.${proj}.weight`, [d, d]);
      out.set(`${l}self_attn.${proj}.bias`, [d]);
    }
    out.set(`${l}layer_norm2.weight`, [d]);
    out.set(`${l}layer_norm2.bias`, [d]);
    out.set(`${l}mlp.fc1.weight`, [m, d]);
    out.set(`${l}mlp.fc1.bias`, [m]);
    out.set(`${l}mlp.fc2.weight`, [d, m]);
    out.set(`${l}mlp.fc2.bias`, [d]);
  }
  out.set(`${v}post_layernorm.weight`, [d]);
  out.set(`${v}post_layernorm.bias`, [d]);
  out.set(PROJECTION_NAME, [config.projectionDim, d]);
  return out;
}

/**
 * Total number of parameters.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { parameterCount, VIT_TINY } from "./config.ts";
 * equal(parameterCount(VIT_TINY), 208_576);
 * ```
 */
export function parameterCount(config: ViTConfig): number {
  let n = 0;
  for (const shape of parameterShapes(config).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}
