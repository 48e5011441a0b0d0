/**
 * Real CLIP vision towers from files: a Hugging Face or open_clip checkpoint (single or
 * sharded safetensors, or a PyTorch `.pt`/`.bin` ZIP) opened as a lazy {@linkcode TensorSource}
 * under the ViT's Hugging Face parameter names, converted tensor by tensor as it is read. Task
 * vectors, merges and checkpoint writers stream over it like over any checkpoint.
 *
 * The configuration comes, field by field, from (highest first) the caller's overrides, the
 * file's own `vit_config` metadata (files this toolkit wrote), a Hugging Face `config.json`
 * beside the checkpoint, and the tensor shapes. Shapes give every size but the number of
 * attention heads, the activation and the LayerNorm epsilon: without a config, heads are
 * width / 64 (CLIP's 64-dimensional heads: 12 for ViT-B, 16 for ViT-L), the activation is
 * quick-GELU (OpenAI's CLIP weights) and epsilon is 1e-5.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { Checkpoint } from "../io/checkpoint.ts";
import { openCheckpoint } from "../io/open.ts";
import type { ExpertPaths } from "../io/find.ts";
import { TaskVectorSet } from "../taskvec/set.ts";
import type { DType } from "../io/dtype.ts";
import { CheckpointError } from "../io/errors.ts";
import type { TensorSource } from "../tensor/source.ts";
import { sameShape, shapeText } from "../tensor/host.ts";
import {
  type Activation,
  parameterShapes,
  PROJECTION_NAME,
  validateConfig,
  VISION_PREFIX,
  type ViTConfig,
} from "./config.ts";
import { inferConfig } from "./store.ts";
import type { HostParams } from "./weights.ts";
import {
  applyRecipe,
  type ClipLayout,
  detectClipLayout,
  layoutRecipes,
  type Recipe,
  recipeShape,
} from "./clip_layouts.ts";

/** Options of {@linkcode openClipVision}. */
export interface OpenClipVisionOptions {
  /**
   * Configuration fields that override everything else (`heads` above all, which shapes do
   * not tell; `activation: "gelu"` for open_clip models trained with exact GELU).
   */
  config?: Partial<ViTConfig>;
  /**
   * Where to take `visual_projection.weight` from when the checkpoint lacks it (a Hugging
   * Face `CLIPVisionModel` expert, whose projection stays the pretrained model's): usually the
   * base model's view.
   */
  projectionFrom?: TensorSource;
  /** Ignore a `config.json` beside the checkpoint (default false). */
  ignoreHfConfig?: boolean;
}

/**
 * A CLIP vision tower on disk seen under the ViT's parameter names (see
 * {@linkcode openClipVision}); reads convert one tensor at a time.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { openClipVision } from "../../mod.ts";
 * import { writeSafetensors } from "../io/safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * // A 1-layer open_clip-layout tower: width 64 (one 64-dim head), 2×2 patches of 4×4 pixels.
 * const t = (name: string, shape: number[]) => ({ name, shape,
 *   data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) });
 * const b = "visual.transformer.resblocks.0.";
 * await writeSafetensors(path, [t("visual.conv1.weight", [64, 3, 4, 4]),
 *   t("visual.class_embedding", [64]), t("visual.positional_embedding", [5, 64]),
 *   t("visual.ln_pre.weight", [64]), t("visual.ln_pre.bias", [64]),
 *   t(`${b}ln_1.weight`, [64]), t(`${b}ln_1.bias`, [64]), t(`${b}attn.in_proj_weight`, [192, 64]),
 *   t(`${b}attn.in_proj_bias`, [192]), t(`${b}attn.out_proj.weight`, [64, 64]),
 *   t(`${b}attn.out_proj.bias`, [64]), t(`${b}ln_2.weight`, [64]), t(`${b}ln_2.bias`, [64]),
 *   t(`${b}mlp.c_fc.weight`, [256, 64]), t(`${b}mlp.c_fc.bias`, [256]),
 *   t(`${b}mlp.c_proj.weight`, [64, 256]), t(`${b}mlp.c_proj.bias`, [64]),
 *   t("visual.ln_post.weight", [64]), t("visual.ln_post.bias", [64]), t("visual.proj", [64, 32])]);
 * using tower = await openClipVision(path);
 * deepStrictEqual(
 *   [tower.layout, tower.config.imageSize, tower.shape("visual_projection.weight")],
 *   ["open_clip", 8, [32, 64]],
 * );
 * ```
 */
export class ClipVisionCheckpoint implements TensorSource, Disposable {
  readonly #recipes: Map<string, Recipe>;
  readonly #projectionFrom?: TensorSource;
  #last?: { from: string; data: Promise<Float32Array> };

  /** Use {@linkcode openClipVision}; this wraps recipes already checked against `config`. */
  constructor(
    /** The stored tensors. */
    readonly stored: Checkpoint,
    /** How the file stores the tower. */
    readonly layout: ClipLayout,
    /** The ViT configuration. */
    readonly config: ViTConfig,
    recipes: Map<string, Recipe>,
    projectionFrom?: TensorSource,
  ) {
    this.#recipes = recipes;
    this.#projectionFrom = projectionFrom;
  }

  /** The checkpoint's path. */
  get label(): string {
    return this.stored.label;
  }

  /** The files the tower is read from. */
  get files(): readonly string[] {
    return this.stored.files;
  }

  /** The ViT's parameter names, in the model's order. */
  names(): string[] {
    return [...parameterShapes(this.config).keys()];
  }

  /** The ViT shape of `name`. */
  shape(name: string): readonly number[] {
    const shape = parameterShapes(this.config).get(name);
    if (!shape) throw new CheckpointError(this.label, name, "not a parameter of this ViT");
    return shape;
  }

  /** The stored dtype behind `name` (F32 for a projection taken from elsewhere). */
  dtype(name: string): DType {
    const recipe = this.#recipes.get(name);
    return recipe ? this.stored.dtype(recipe.from) : "F32";
  }

  /** The stored tensor `name` is made from (for messages), or undefined when borrowed. */
  storedName(name: string): string | undefined {
    return this.#recipes.get(name)?.from;
  }

  /** Reads `name` converted to the ViT's layout (a fresh array). */
  async read(name: string): Promise<Float32Array> {
    const recipe = this.#recipes.get(name);
    if (!recipe) {
      if (name === PROJECTION_NAME && this.#projectionFrom) {
        return await this.#projectionFrom.read(name);
      }
      throw new CheckpointError(this.label, name, "not a parameter of this ViT");
    }
    // q, k and v are rows of one stored tensor: read it once for the three of them.
    const data = recipe.rows
      ? await this.#readShared(recipe.from)
      : await this.stored.read(recipe.from);
    return applyRecipe(recipe, data, this.stored.shape(recipe.from));
  }

  #readShared(from: string): Promise<Float32Array> {
    if (this.#last?.from === from) return this.#last.data;
    const data = this.stored.read(from);
    this.#last = { from, data };
    data.catch(() => this.#last = undefined);
    return data;
  }

  /** Closes the file handles. */
  close(): void {
    this.stored.close();
  }

  /** Closes the file handles (`using` support). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** One line: path, layout and geometry. */
  toString(): string {
    const c = this.config;
    return `ClipVisionCheckpoint(${this.label}: ${this.layout} layout, ${c.layers} layers, ` +
      `width ${c.width}, ${c.heads} heads, ${c.imageSize}px/${c.patchSize}, proj ${c.projectionDim})`;
  }
}

/**
 * Opens a CLIP vision tower: a `.safetensors` file, a sharded `*.safetensors.index.json`, a
 * directory holding either (as Hugging Face saves models), or a PyTorch ZIP checkpoint
 * (`.pt`, `.pth`, `.bin`, `.ckpt`; read without unpickling arbitrary objects), in Hugging Face
 * or open_clip layout. Every ViT tensor is checked now against the configuration (name and
 * shape); errors name the file and the stored tensor.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { openClipVision } from "../../mod.ts";
 * import { VIT_TINY } from "./config.ts";
 * import { initHostParams } from "./weights.ts";
 * import { saveModel } from "./store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveModel(path, VIT_TINY, initHostParams(VIT_TINY, 0));
 * using tower = await openClipVision(path);
 * deepStrictEqual([tower.layout, tower.config.heads], ["hf", 4]);
 * ```
 */
export async function openClipVision(
  path: string,
  options: OpenClipVisionOptions = {},
): Promise<ClipVisionCheckpoint> {
  const stored = await openCheckpoint(path);
  try {
    const match = detectClipLayout(stored.names(), stored.label);
    const width = patchWidth(stored, match.layout, match.prefix);
    const recipes = layoutRecipes(match, stored.names(), width, stored.label);
    const shapes = new Map<string, number[]>();
    for (const [name, r] of recipes) shapes.set(name, recipeShape(r, stored.shape(r.from)));
    const projection = options.projectionFrom?.shape(PROJECTION_NAME);
    if (!shapes.has(PROJECTION_NAME)) {
      if (!projection) {
        throw new CheckpointError(
          stored.label,
          PROJECTION_NAME,
          "missing (a CLIPVisionModel checkpoint has no projection: take it from the base " +
            "model with projectionFrom)",
        );
      }
      shapes.set(PROJECTION_NAME, [...projection]);
    }
    const config = await resolveConfig(path, stored, shapes, options);
    checkRecipes(stored, recipes, shapes, config, options.projectionFrom);
    return new ClipVisionCheckpoint(stored, match.layout, config, recipes, options.projectionFrom);
  } catch (err) {
    stored.close();
    throw err;
  }
}

/**
 * Reads a whole CLIP vision tower into host memory (for building the tfjs model).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { loadClipVision } from "../../mod.ts";
 * import { VIT_TINY } from "./config.ts";
 * import { initHostParams } from "./weights.ts";
 * import { saveModel } from "./store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveModel(path, VIT_TINY, initHostParams(VIT_TINY, 0));
 * const { config, host } = await loadClipVision(path);
 * deepStrictEqual([config.width, host.size], [64, 72]);
 * ```
 */
export async function loadClipVision(
  path: string,
  options: OpenClipVisionOptions = {},
): Promise<{ config: ViTConfig; host: HostParams }> {
  using tower = await openClipVision(path, options);
  return { config: tower.config, host: await readTower(tower) };
}

/**
 * Every tensor of an opened tower, read into host memory.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { openClipVision } from "../../mod.ts";
 * import { readTower } from "./clip_checkpoint.ts";
 * import { VIT_TINY } from "./config.ts";
 * import { initHostParams } from "./weights.ts";
 * import { saveModel } from "./store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveModel(path, VIT_TINY, initHostParams(VIT_TINY, 0));
 * using tower = await openClipVision(path);
 * equal((await readTower(tower)).size, 72);
 * ```
 */
export async function readTower(tower: ClipVisionCheckpoint): Promise<HostParams> {
  const host: HostParams = new Map();
  for (const name of tower.names()) {
    host.set(name, { shape: tower.shape(name), data: await tower.read(name) });
  }
  return host;
}

/**
 * Task vectors τᵢ = θᵢ − θ0 over CLIP vision towers in any supported layout and format
 * (the base and the experts need not share one). Experts take the base's configuration, and
 * the base's projection when they have none (Hugging Face `CLIPVisionModel` experts). Tasks
 * are named after the files (extension removed) or given as task → path.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { openClipTaskVectors } from "../../mod.ts";
 * import { VIT_TINY } from "./config.ts";
 * import { initHostParams } from "./weights.ts";
 * import { saveModel } from "./store.ts";
 * const dir = await Deno.makeTempDir();
 * await saveModel(`${dir}/base.safetensors`, VIT_TINY, initHostParams(VIT_TINY, 0));
 * await saveModel(`${dir}/mnist.safetensors`, VIT_TINY, initHostParams(VIT_TINY, 1));
 * using set = await openClipTaskVectors(`${dir}/base.safetensors`, [`${dir}/mnist.safetensors`]);
 * deepStrictEqual([set.tasks, set.names().length], [["mnist"], 72]);
 * ```
 */
export async function openClipTaskVectors(
  base: string,
  experts: readonly string[] | Readonly<Record<string, string>>,
  options: OpenClipVisionOptions = {},
): Promise<TaskVectorSet> {
  return await TaskVectorSet.open(base, experts as ExpertPaths, {
    open: (path, theta0) =>
      openClipVision(
        path,
        theta0 instanceof ClipVisionCheckpoint
          ? { ...options, config: theta0.config, projectionFrom: theta0 }
          : options,
      ),
  });
}

/** The token width, from the patch embedding (needed to split open_clip's q/k/v). */
function patchWidth(stored: Checkpoint, layout: ClipLayout, prefix: string): number {
  const name = layout === "hf"
    ? `${prefix}${VISION_PREFIX}embeddings.patch_embedding.weight`
    : `${prefix}conv1.weight`;
  const shape = stored.shape(name);
  if (shape.length !== 4) {
    throw new CheckpointError(stored.label, name, `has shape ${shapeText(shape)}, expected 4-D`);
  }
  return shape[0];
}

/** Overrides > `vit_config` metadata > Hugging Face config.json > shapes (see the module doc). */
async function resolveConfig(
  path: string,
  stored: Checkpoint,
  shapes: Map<string, number[]>,
  options: OpenClipVisionOptions,
): Promise<ViTConfig> {
  const overrides = options.config ?? {};
  const metadata = (stored as { metadata?: Record<string, string> }).metadata?.vit_config;
  if (metadata !== undefined) {
    try {
      return validateConfig({ ...JSON.parse(metadata), ...overrides });
    } catch (err) {
      throw new CheckpointError(stored.label, undefined, `bad vit_config metadata: ${err}`);
    }
  }
  const hf = options.ignoreHfConfig ? {} : await hfConfigBeside(path);
  const lookup = {
    path: stored.label,
    has: (name: string) => shapes.has(name),
    info: (name: string) => ({ shape: shapes.get(name) ?? [] }),
  };
  const width = shapes.get(`${VISION_PREFIX}embeddings.patch_embedding.weight`)?.[0] ?? 0;
  const heads = overrides.heads ?? hf.heads ?? defaultHeads(width, stored.label);
  return inferConfig(lookup, { ...hf, heads, ...overrides });
}

/** CLIP's 64-dimensional heads. */
function defaultHeads(width: number, label: string): number {
  if (width > 0 && width % 64 === 0) return width / 64;
  throw new CheckpointError(
    label,
    undefined,
    `cannot infer the number of attention heads: width ${width} is not a multiple of CLIP's ` +
      `64-dimensional heads; give the configuration's heads`,
  );
}

/** Checkpoint file names Hugging Face writes next to its `config.json`. */
const HF_FILE_NAMES = new Set([
  "model.safetensors",
  "model.safetensors.index.json",
  "pytorch_model.bin",
  "pytorch_model.bin.index.json",
]);

/**
 * Heads, activation and epsilon from a Hugging Face `config.json` in the checkpoint's directory
 * (a directory path, or a file with one of Hugging Face's standard names); {} when none.
 */
async function hfConfigBeside(path: string): Promise<Partial<ViTConfig>> {
  const isDir = (await Deno.stat(path)).isDirectory;
  if (!isDir && !HF_FILE_NAMES.has(basename(path))) return {};
  const file = join(isDir ? path : dirname(path), "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch {
    return {};
  }
  return parseHfConfig(text, file);
}

/**
 * The fields of a Hugging Face CLIP `config.json` that shapes do not tell: heads, activation,
 * LayerNorm epsilon (Hugging Face's defaults for fields left out: 12, quick-GELU, 1e-5).
 * Accepts a `CLIPModel` config (its `vision_config`) or a `CLIPVisionModel` one.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { parseHfConfig } from "./clip_checkpoint.ts";
 * deepStrictEqual(
 *   parseHfConfig('{"vision_config": {"num_attention_heads": 16, "hidden_act": "gelu"}}', "config.json"),
 *   { heads: 16, activation: "gelu", layerNormEps: 0.00001 },
 * );
 * ```
 */
export function parseHfConfig(text: string, file: string): Partial<ViTConfig> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(file, undefined, `not valid JSON (${(err as Error).message})`);
  }
  const vision = (json.vision_config ?? json) as Record<string, unknown>;
  const heads = vision.num_attention_heads ?? 12;
  const act = vision.hidden_act ?? "quick_gelu";
  const eps = vision.layer_norm_eps ?? 1e-5;
  if (!Number.isSafeInteger(heads) || (heads as number) <= 0) {
    throw new CheckpointError(file, undefined, `num_attention_heads ${heads} is not a count`);
  }
  if (act !== "quick_gelu" && act !== "gelu") {
    throw new CheckpointError(
      file,
      undefined,
      `hidden_act "${act}" is not supported (the ViT implements quick_gelu and gelu)`,
    );
  }
  if (typeof eps !== "number" || !(eps > 0)) {
    throw new CheckpointError(file, undefined, `layer_norm_eps ${eps} is not a positive number`);
  }
  return { heads: heads as number, activation: act as Activation, layerNormEps: eps };
}

/** Every parameter present with its shape, and no stored vision tensor left unused. */
function checkRecipes(
  stored: Checkpoint,
  recipes: Map<string, Recipe>,
  shapes: Map<string, number[]>,
  config: ViTConfig,
  projectionFrom: TensorSource | undefined,
): void {
  const expected = parameterShapes(config);
  for (const [name, shape] of expected) {
    const recipe = recipes.get(name);
    if (!recipe && name === PROJECTION_NAME && projectionFrom) {
      checkShape(projectionFrom.label, name, shapes.get(name)!, shape);
      continue;
    }
    if (!recipe) throw new CheckpointError(stored.label, name, "missing");
    checkShape(stored.label, recipe.from, shapes.get(name)!, shape, name);
  }
  for (const [name, recipe] of recipes) {
    if (!expected.has(name)) {
      throw new CheckpointError(
        stored.label,
        recipe.from,
        `is not a parameter of the ViT configured with ${config.layers} layers`,
      );
    }
  }
}

function checkShape(
  label: string,
  stored: string,
  got: readonly number[],
  want: readonly number[],
  as?: string,
): void {
  if (sameShape(got, want)) return;
  const seen = as && as !== stored ? ` (as ${as})` : "";
  throw new CheckpointError(
    label,
    stored,
    `gives shape ${shapeText(got)}${seen}, expected ${shapeText(want)} for this configuration`,
  );
}
