/**
 * The Vision Transformer as a pure function of a parameter map: `imageFeatures(params, config,
 * pixels)` computes CLIP's image embedding (before normalisation) from pixel values laid out
 * [batch, channels, height, width] like Hugging Face's `pixel_values`. Training, evaluation
 * and RI all call this one function with whatever tensors (variables, merged weights) they hold.
 *
 * The computation follows Hugging Face's CLIP vision tower: patch embedding (a convolution
 * with stride = kernel = patch and no bias, done here as a reshape and one matrix product),
 * class token, position embedding, pre-LayerNorm, pre-LN blocks (attention with separate
 * q/k/v/out projections, then an MLP), post-LayerNorm of the class token, projection.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor, Tensor2D } from "../engine/tf_types.ts";
import { numPatches, parameterShapes, PROJECTION_NAME, validateConfig } from "./config.ts";
import type { ViTConfig } from "./config.ts";
import { shapeText } from "../tensor/host.ts";
import { linear } from "./ops.ts";
import { fusedLayerNorm, fusedQuickGelu } from "../engine/fused.ts";

/** Tensors by parameter name (variables while training, plain tensors otherwise). */
export type ParamMap = Record<string, Tensor>;

/**
 * Sees the input rows [rows, in] of every linear layer (`nn.Linear` in Hugging Face's model:
 * the attention projections, the MLP's two layers and the visual projection; not the patch
 * embedding, a convolution) just before the layer applies, named by its weight. It runs inside
 * the forward pass's `tf.tidy`: keep (`tf.keep`) or read anything it wants to outlive the pass.
 */
export type LinearObserver = (weight: string, input: Tensor2D) => void;

/**
 * Replaces a linear layer's computation: given the layer's weight and bias names (the bias
 * undefined for the projection) and its input rows [rows, in], returns the output rows
 * [rows, out], or undefined to apply the layer's own weight and bias. Used to run a model whose
 * linear layers are mixtures (Ada-SVD's upscaled model). It runs inside the forward pass's
 * `tf.tidy`, after the {@linkcode LinearObserver}.
 */
export type LinearOverride = (
  weight: string,
  input: Tensor2D,
  bias: string | undefined,
) => Tensor2D | undefined;

const V = "vision_model.";

/**
 * Checks that `params` holds every parameter of `config` with the right shape.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { VIT_TINY } from "./config.ts";
 * import { initParams } from "./weights.ts";
 * import { checkParams } from "./vit.ts";
 * const params = initParams(VIT_TINY, 0);
 * checkParams(params, VIT_TINY, "tiny");
 * throws(() => checkParams({}, VIT_TINY, "empty"), /empty: missing tensor/);
 * ```
 */
export function checkParams(params: ParamMap, config: ViTConfig, label = "parameters"): void {
  for (const [name, shape] of parameterShapes(config)) {
    const t = params[name];
    if (!t) throw new Error(`${label}: missing tensor "${name}" (expected ${shapeText(shape)})`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(
        `${label}: tensor "${name}" has shape ${shapeText(t.shape)}, expected ${shapeText(shape)}`,
      );
    }
  }
}

/**
 * The image feature (`image_embeds`, not normalised) for a batch of pixel values
 * [batch, channels, imageSize, imageSize]; returns [batch, projectionDim].
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { VIT_TINY } from "./config.ts";
 * import { initParams } from "./weights.ts";
 * import { imageFeatures } from "./vit.ts";
 * const params = initParams(VIT_TINY, 0);
 * const f = imageFeatures(params, VIT_TINY, tf.zeros([2, 1, 28, 28]));
 * deepStrictEqual(f.shape, [2, 64]);
 * ```
 *
 * `observe`, when given, sees every linear layer's input rows (see {@linkcode LinearObserver});
 * `override`, when given, may compute a linear layer's output itself (see
 * {@linkcode LinearOverride}).
 */
export function imageFeatures(
  params: ParamMap,
  config: ViTConfig,
  pixels: Tensor,
  observe?: LinearObserver,
  override?: LinearOverride,
): Tensor2D {
  return tf.tidy(() => {
    checkPixels(pixels, config);
    const lin: Linear = (x, weight, bias) => {
      observe?.(weight, x);
      const own = override?.(weight, x, bias);
      if (own) return own;
      return linear(x, params[weight], bias === undefined ? undefined : params[bias]);
    };
    let x = embed(params, config, pixels);
    x = layerNorm(x, params[`${V}pre_layrnorm.weight`], params[`${V}pre_layrnorm.bias`], config);
    for (let i = 0; i < config.layers; i++) x = block(params, config, i, x, lin);
    const [batch, , width] = x.shape;
    const pooled = x.slice([0, 0, 0], [batch, 1, width]).reshape([batch, width]) as tf.Tensor2D;
    const normed = layerNorm(
      pooled,
      params[`${V}post_layernorm.weight`],
      params[`${V}post_layernorm.bias`],
      config,
    );
    return lin(normed, PROJECTION_NAME);
  });
}

/** A linear layer by its weight's (and bias's) parameter name. */
type Linear = (x: Tensor2D, weight: string, bias?: string) => Tensor2D;

function checkPixels(pixels: tf.Tensor, config: ViTConfig): void {
  const s = config.imageSize;
  const want = [config.channels, s, s];
  if (pixels.rank !== 4 || want.some((d, i) => pixels.shape[i + 1] !== d)) {
    throw new Error(
      `ViT input: pixels have shape ${shapeText(pixels.shape)}, expected [batch, ` +
        `${want.join(", ")}] (channels, height, width)`,
    );
  }
}

/** Patch embedding + class token + position embedding: [B, N+1, D]. */
function embed(params: ParamMap, config: ViTConfig, pixels: tf.Tensor): tf.Tensor3D {
  validateConfig(config);
  const { patchSize: p, channels: c, width: d } = config;
  const batch = pixels.shape[0];
  const side = config.imageSize / p;
  const n = numPatches(config);
  // A stride-p, kernel-p convolution is a matrix product over non-overlapping patches, each
  // flattened in the kernel's (channel, row, column) order.
  const patches = pixels.reshape([batch, c, side, p, side, p])
    .transpose([0, 2, 4, 1, 3, 5])
    .reshape([batch * n, c * p * p]);
  const kernel = params[`${V}embeddings.patch_embedding.weight`].reshape([d, c * p * p]);
  const tokens = linear(patches as tf.Tensor2D, kernel).reshape([batch, n, d]);
  // Broadcasting (not tile) keeps the class token's gradient a single sum.
  const cls = tf.zeros([batch, 1, d]).add(params[`${V}embeddings.class_embedding`]);
  const x = tf.concat([cls, tokens], 1);
  return x.add(params[`${V}embeddings.position_embedding.weight`]) as tf.Tensor3D;
}

/** LayerNorm over the last axis. */
function layerNorm<T extends tf.Tensor>(
  x: T,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  config: ViTConfig,
): T {
  const fused = fusedLayerNorm(x, gamma, beta, config.layerNormEps);
  if (fused) return fused;
  const axis = x.rank - 1;
  const mean = x.mean(axis, true);
  const centered = x.sub(mean);
  const variance = centered.square().mean(axis, true);
  return centered.mul(variance.add(config.layerNormEps).rsqrt()).mul(gamma).add(beta) as T;
}

/** One pre-LN block: x + attention(LN1(x)), then x + MLP(LN2(x)). */
function block(
  params: ParamMap,
  config: ViTConfig,
  i: number,
  x: tf.Tensor3D,
  lin: Linear,
): tf.Tensor3D {
  const l = `${V}encoder.layers.${i}.`;
  const [batch, tokens, width] = x.shape;
  const flat = x.reshape([batch * tokens, width]) as tf.Tensor2D;
  const h1 = layerNorm(
    flat,
    params[`${l}layer_norm1.weight`],
    params[`${l}layer_norm1.bias`],
    config,
  );
  const attended = attention(config, l, h1, batch, tokens, lin);
  const mid = flat.add(attended) as tf.Tensor2D;
  const h2 = layerNorm(
    mid,
    params[`${l}layer_norm2.weight`],
    params[`${l}layer_norm2.bias`],
    config,
  );
  const hidden = activate(lin(h2, `${l}mlp.fc1.weight`, `${l}mlp.fc1.bias`), config);
  const out = mid.add(lin(hidden, `${l}mlp.fc2.weight`, `${l}mlp.fc2.bias`));
  return out.reshape([batch, tokens, width]);
}

/** Multi-head self-attention on rows [B·T, D]; returns [B·T, D] after out_proj. */
function attention(
  config: ViTConfig,
  l: string,
  x: tf.Tensor2D,
  batch: number,
  tokens: number,
  lin: Linear,
): tf.Tensor2D {
  const h = config.heads;
  const hd = config.width / h;
  const a = `${l}self_attn.`;
  const split = (t: tf.Tensor2D) =>
    t.reshape([batch, tokens, h, hd]).transpose([0, 2, 1, 3]).reshape([batch * h, tokens, hd]);
  // Hugging Face scales the queries (after their bias) by head_dim^-0.5.
  const q = split(lin(x, `${a}q_proj.weight`, `${a}q_proj.bias`).mul(hd ** -0.5));
  const k = split(lin(x, `${a}k_proj.weight`, `${a}k_proj.bias`));
  const v = split(lin(x, `${a}v_proj.weight`, `${a}v_proj.bias`));
  const weights = tf.softmax(tf.matMul(q, k, false, true));
  const mixed = tf.matMul(weights, v)
    .reshape([batch, h, tokens, hd])
    .transpose([0, 2, 1, 3])
    .reshape([batch * tokens, config.width]) as tf.Tensor2D;
  return lin(mixed, `${a}out_proj.weight`, `${a}out_proj.bias`);
}

function activate(x: tf.Tensor2D, config: ViTConfig): tf.Tensor2D {
  if (config.activation === "quick_gelu") {
    return fusedQuickGelu(x) ?? x.mul(tf.sigmoid(x.mul(1.702)));
  }
  return x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5);
}
