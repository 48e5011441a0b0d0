/**
 * Saving and loading ViT parameters and heads as safetensors files. Model files use Hugging
 * Face's tensor names and carry the configuration as `__metadata__.vit_config` (JSON); a file
 * without it (a real CLIP checkpoint) gets its geometry inferred from the tensor shapes.
 * Files holding more than the vision tower (a whole `CLIPModel`) load too: only the vision
 * tensors are read.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { SafetensorsReader, writeSafetensors } from "../io/safetensors.ts";
import { CheckpointError } from "../io/errors.ts";
import { parameterShapes, PROJECTION_NAME, validateConfig, VISION_PREFIX } from "./config.ts";
import type { Activation, ViTConfig } from "./config.ts";
import type { HostParams } from "./weights.ts";
import { hostToParams, paramsToHost } from "./weights.ts";
import type { ParamMap } from "./vit.ts";
import type { Head } from "./head.ts";
import { sameShape, shapeText } from "../tensor/host.ts";

/**
 * Writes a model's parameters (tfjs tensors or host tensors) atomically, in the model's
 * parameter order, with the configuration in the metadata.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { loadModel } from "../../mod.ts";
 * import { VIT_TINY } from "./config.ts";
 * import { initHostParams } from "./weights.ts";
 * import { saveModel } from "./store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveModel(path, VIT_TINY, initHostParams(VIT_TINY, 0));
 * const { config, params } = await loadModel(path);
 * deepStrictEqual(config, VIT_TINY);
 * equal(Object.keys(params).length, 72);
 * ```
 */
export async function saveModel(
  path: string,
  config: ViTConfig,
  params: ParamMap | HostParams,
  metadata: Record<string, string> = {},
): Promise<void> {
  const host = params instanceof Map ? params : await paramsToHost(params);
  const tensors = [...parameterShapes(config)].map(([name, shape]) => {
    const t = host.get(name);
    if (!t) throw new CheckpointError(path, name, "missing from the parameters being saved");
    if (!sameShape(t.shape, shape)) {
      throw new CheckpointError(
        path,
        name,
        `has shape ${shapeText(t.shape)}, expected ${shapeText(shape)}`,
      );
    }
    return { name, shape, data: t.data };
  });
  await writeSafetensors(path, tensors, {
    metadata: { format: "pt", ...metadata, vit_config: JSON.stringify(config) },
  });
}

/** What {@linkcode loadModel} returns. */
export interface LoadedModel {
  /** The configuration (from the file's metadata, the caller, or inferred). */
  config: ViTConfig;
  /** The parameters as host tensors (no tfjs memory used). */
  host: HostParams;
  /** The file's metadata. */
  metadata: Readonly<Record<string, string>>;
  /** The parameters as tfjs tensors (made on first access; the caller disposes them). */
  readonly params: ParamMap;
}

/**
 * Reads a model file's vision-tower parameters, checking every name and shape. `config`
 * overrides what the file says; without either, the geometry is inferred from the shapes
 * (heads = width / 64 and quick-GELU, as in CLIP).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { loadModel } from "../../mod.ts";
 * import { VIT_TINY } from "./config.ts";
 * import { initHostParams } from "./weights.ts";
 * import { saveModel } from "./store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveModel(path, VIT_TINY, initHostParams(VIT_TINY, 0));
 * const model = await loadModel(path);
 * deepStrictEqual([model.config.width, model.host.size], [64, 72]);
 * ```
 */
export async function loadModel(path: string, config?: ViTConfig): Promise<LoadedModel> {
  using file = await SafetensorsReader.open(path);
  const cfg = config ?? configFromFile(file);
  const host: HostParams = new Map();
  for (const [name, shape] of parameterShapes(cfg)) {
    if (!file.has(name)) {
      throw new CheckpointError(path, name, `missing (expected shape ${shapeText(shape)})`);
    }
    const info = file.info(name);
    if (!sameShape(info.shape, shape)) {
      throw new CheckpointError(
        path,
        name,
        `has shape ${shapeText(info.shape)}, expected ${shapeText(shape)} for this configuration`,
      );
    }
    host.set(name, { shape, data: await file.read(name) });
  }
  let params: ParamMap | undefined;
  return {
    config: cfg,
    host,
    metadata: file.metadata,
    get params() {
      params ??= hostToParams(host);
      return params;
    },
  };
}

function configFromFile(file: SafetensorsReader): ViTConfig {
  const stored = file.metadata.vit_config;
  if (stored !== undefined) {
    try {
      return validateConfig(JSON.parse(stored) as ViTConfig);
    } catch (err) {
      throw new CheckpointError(file.path, undefined, `bad vit_config metadata: ${err}`);
    }
  }
  return inferConfig(file);
}

/** What {@linkcode inferConfig} needs of a checkpoint: a path for messages and tensor shapes. */
export interface ShapeLookup {
  /** The file, for messages. */
  readonly path: string;
  /** True when the checkpoint holds `name`. */
  has(name: string): boolean;
  /** The shape of `name`. */
  info(name: string): { readonly shape: readonly number[] };
}

/**
 * Infers a ViT configuration from a checkpoint's tensor shapes (for files without our
 * metadata, such as a converted CLIP checkpoint). Heads, activation and LayerNorm epsilon
 * cannot be seen in shapes: CLIP's values (width / 64, quick-GELU, 1e-5) are assumed, and
 * `overrides` can change any field.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { SafetensorsReader } from "../io/safetensors.ts";
 * import { VIT_TINY } from "./config.ts";
 * import { initHostParams } from "./weights.ts";
 * import { inferConfig, saveModel } from "./store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveModel(path, VIT_TINY, initHostParams(VIT_TINY, 0));
 * using file = await SafetensorsReader.open(path);
 * deepStrictEqual(inferConfig(file, { heads: 4, activation: VIT_TINY.activation }), VIT_TINY);
 * ```
 */
export function inferConfig(
  file: ShapeLookup,
  overrides: Partial<ViTConfig> = {},
): ViTConfig {
  const shapeOf = (name: string) => {
    if (!file.has(name)) {
      throw new CheckpointError(file.path, name, "missing: cannot infer the ViT geometry");
    }
    return file.info(name).shape;
  };
  const [width, channels, patchSize] = shapeOf(`${VISION_PREFIX}embeddings.patch_embedding.weight`);
  const [positions] = shapeOf(`${VISION_PREFIX}embeddings.position_embedding.weight`);
  const side = Math.round(Math.sqrt(positions - 1));
  if (side * side !== positions - 1) {
    throw new CheckpointError(
      file.path,
      `${VISION_PREFIX}embeddings.position_embedding.weight`,
      `${positions} positions is not a square number of patches plus the class token`,
    );
  }
  let layers = 0;
  while (file.has(`${VISION_PREFIX}encoder.layers.${layers}.mlp.fc1.weight`)) layers++;
  const [mlpDim] = shapeOf(`${VISION_PREFIX}encoder.layers.0.mlp.fc1.weight`);
  const [projectionDim] = shapeOf(PROJECTION_NAME);
  const activation: Activation = "quick_gelu";
  return validateConfig({
    imageSize: side * patchSize,
    patchSize,
    channels,
    width,
    layers,
    heads: Math.max(1, Math.round(width / 64)),
    mlpDim,
    projectionDim,
    activation,
    layerNormEps: 1e-5,
    ...overrides,
  });
}

/**
 * Writes heads to one safetensors file atomically: tensor `<task>.weight` per head, and the
 * class names and logit scales in `__metadata__.heads` (JSON).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { makeHead } from "./head.ts";
 * import { loadHeads, saveHeads } from "./store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveHeads(path, [makeHead("parity", ["even", "odd"], tf.eye(2, 4) as tf.Tensor2D, 20)]);
 * const [head] = await loadHeads(path);
 * deepStrictEqual([head.task, head.classes, head.logitScale], ["parity", ["even", "odd"], 20]);
 * ```
 */
export async function saveHeads(path: string, heads: readonly Head[]): Promise<void> {
  const info: Record<string, { classes: readonly string[]; logitScale: number }> = {};
  const tensors = [];
  for (const h of heads) {
    if (info[h.task]) throw new CheckpointError(path, `${h.task}.weight`, "two heads of one task");
    info[h.task] = { classes: h.classes, logitScale: h.logitScale };
    tensors.push({
      name: `${h.task}.weight`,
      shape: h.weight.shape,
      data: (await h.weight.data()) as Float32Array,
    });
  }
  await writeSafetensors(path, tensors, { metadata: { heads: JSON.stringify(info) } });
}

/**
 * Reads the heads written by {@linkcode saveHeads}, in file order (the caller disposes them).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { makeHead } from "./head.ts";
 * import { loadHeads, saveHeads } from "./store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveHeads(path, [makeHead("t", ["a", "b"], tf.ones([2, 3]) as tf.Tensor2D, 10)]);
 * const [head] = await loadHeads(path);
 * const third = 1 / Math.sqrt(3); // each row of ones, at unit norm
 * ok(head.weight.arraySync().flat().every((v) => Math.abs(v - third) < 1e-7));
 * ```
 */
export async function loadHeads(path: string): Promise<Head[]> {
  using file = await SafetensorsReader.open(path);
  let info: Record<string, { classes: string[]; logitScale: number }>;
  try {
    info = JSON.parse(file.metadata.heads ?? "");
  } catch {
    throw new CheckpointError(path, undefined, "no valid `heads` metadata (not a heads file?)");
  }
  const heads: Head[] = [];
  for (const [task, { classes, logitScale }] of Object.entries(info)) {
    const name = `${task}.weight`;
    const { shape } = file.info(name);
    if (shape.length !== 2 || shape[0] !== classes.length) {
      throw new CheckpointError(
        path,
        name,
        `has shape ${shapeText(shape)}, expected [${classes.length}, feature dim]`,
      );
    }
    const data = await file.read(name);
    checkUnitRows(path, name, data, shape[1]);
    // Taken as stored (not renormalised), so a head reads back bit for bit as it was saved.
    const weight = tf.tensor2d(data, [shape[0], shape[1]]);
    heads.push({ task, classes, weight, logitScale });
  }
  return heads;
}

function checkUnitRows(path: string, name: string, data: Float32Array, cols: number): void {
  for (let r = 0; r * cols < data.length; r++) {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += data[r * cols + c] ** 2;
    if (Math.abs(Math.sqrt(sum) - 1) > 1e-3) {
      throw new CheckpointError(path, name, `row ${r} has norm ${Math.sqrt(sum)}, expected 1`);
    }
  }
}
