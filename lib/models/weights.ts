/**
 * Parameter maps of the ViT: seeded initialisation, moving them between host memory
 * (Float32Arrays, for files and merging) and tfjs (tensors and variables, for computing).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Variable } from "../engine/tf_types.ts";
import { parameterShapes, PROJECTION_NAME } from "./config.ts";
import type { ViTConfig } from "./config.ts";
import type { ParamMap } from "./vit.ts";
import { Rng } from "../tensor/random.ts";
import { type HostTensor, numel } from "../tensor/host.ts";

/** Parameters held in host memory, by name, in the model's parameter order. */
export type HostParams = Map<string, HostTensor>;

/**
 * Standard deviation of each weight at initialisation, following Hugging Face's CLIP
 * initialisation (factor 1): attention and MLP input projections shrink with depth so the
 * residual stream keeps its scale; LayerNorms start at (1, 0) and biases at 0.
 */
function initStd(name: string, config: ViTConfig): number {
  const d = config.width;
  const inProj = d ** -0.5 * (2 * config.layers) ** -0.5;
  if (name.endsWith("class_embedding")) return d ** -0.5;
  if (name.endsWith("patch_embedding.weight") || name.endsWith("position_embedding.weight")) {
    return 0.02;
  }
  if (/self_attn\.[qkv]_proj\.weight$/.test(name)) return inProj;
  if (name.endsWith("out_proj.weight")) return d ** -0.5;
  if (name.endsWith("fc1.weight")) return (2 * d) ** -0.5;
  if (name.endsWith("fc2.weight")) return inProj;
  if (name === PROJECTION_NAME) return d ** -0.5;
  return 0;
}

/**
 * Freshly initialised parameters in host memory, fixed by `seed` (each tensor draws from its
 * own stream, so the values of one tensor do not depend on the others).
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { VIT_TINY } from "./config.ts";
 * import { initHostParams } from "./weights.ts";
 * const host = initHostParams(VIT_TINY, 1);
 * equal(host.get("vision_model.pre_layrnorm.weight")?.data[0], 1); // LayerNorms start at (1, 0)
 * deepStrictEqual(initHostParams(VIT_TINY, 1), host); // the seed fixes every value
 * ```
 */
export function initHostParams(config: ViTConfig, seed: number): HostParams {
  const rng = new Rng(seed, "vit-init");
  const out: HostParams = new Map();
  for (const [name, shape] of parameterShapes(config)) {
    const n = numel(shape);
    let data: Float32Array;
    if (/(layer_norm\d|layrnorm|layernorm)\.weight$/.test(name)) data = new Float32Array(n).fill(1);
    else {
      const std = initStd(name, config);
      data = std > 0 ? rng.fork(name).normals(n, std) : new Float32Array(n);
    }
    out.set(name, { shape, data });
  }
  return out;
}

/**
 * Freshly initialised parameters as tfjs tensors (see {@linkcode initHostParams}).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { VIT_TINY } from "./config.ts";
 * import { initParams } from "./weights.ts";
 * const params = initParams(VIT_TINY, 1);
 * equal(Object.keys(params).length, 72);
 * ```
 */
export function initParams(config: ViTConfig, seed: number): ParamMap {
  return hostToParams(initHostParams(config, seed));
}

/**
 * Host tensors to tfjs tensors (new tensors; the caller disposes them).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { hostToParams } from "./weights.ts";
 * const p = hostToParams(new Map([["w", { shape: [2], data: new Float32Array([1, 2]) }]]));
 * deepStrictEqual(p.w.arraySync(), [1, 2]);
 * ```
 */
export function hostToParams(host: HostParams | Record<string, HostTensor>): ParamMap {
  const entries = host instanceof Map ? [...host] : Object.entries(host);
  const out: ParamMap = {};
  for (const [name, t] of entries) out[name] = tf.tensor(t.data, [...t.shape], "float32");
  return out;
}

/**
 * Copies tfjs tensors into host memory (awaits each tensor's data).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { paramsToHost } from "./weights.ts";
 * const host = await paramsToHost({ w: tf.ones([2]) });
 * deepStrictEqual(host.get("w"), { shape: [2], data: new Float32Array([1, 1]) });
 * ```
 */
export async function paramsToHost(params: ParamMap): Promise<HostParams> {
  const out: HostParams = new Map();
  for (const [name, t] of Object.entries(params)) {
    out.set(name, { shape: [...t.shape], data: (await t.data()) as Float32Array });
  }
  return out;
}

/**
 * Trainable tf.Variables holding copies of `params` (names kept; the caller disposes them).
 * Variable names get a unique suffix, since tfjs refuses two variables of one name.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { VIT_TINY } from "./config.ts";
 * import { disposeParams, initParams, toVariables } from "./weights.ts";
 * const params = initParams(VIT_TINY, 0);
 * const vars = toVariables(params);
 * equal(vars["visual_projection.weight"].trainable, true);
 * disposeParams(params);
 * disposeParams(vars);
 * ```
 */
export function toVariables(params: ParamMap, trainable = true): Record<string, Variable> {
  const tag = crypto.randomUUID().slice(0, 8);
  const out: Record<string, tf.Variable> = {};
  for (const [name, t] of Object.entries(params)) {
    out[name] = tf.variable(t, trainable, `${name}#${tag}`, "float32");
  }
  return out;
}

/**
 * Disposes every tensor of a parameter map.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { VIT_TINY } from "./config.ts";
 * import { disposeParams, initParams } from "./weights.ts";
 * const before = tf.memory().numTensors;
 * disposeParams(initParams(VIT_TINY, 0));
 * equal(tf.memory().numTensors, before);
 * ```
 */
export function disposeParams(params: ParamMap): void {
  for (const t of Object.values(params)) t.dispose();
}
