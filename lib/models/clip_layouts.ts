/**
 * The two ways CLIP vision towers are stored, and how each maps onto this toolkit's one ViT
 * (Hugging Face `CLIPVisionModelWithProjection` names, see `config.ts`):
 *
 * - **Hugging Face** (`CLIPModel`, `CLIPVisionModel[WithProjection]`): `vision_model.*` and
 *   `visual_projection.weight`, used as they are. Text-tower tensors (`text_model.*`,
 *   `text_projection.weight`, `logit_scale`) are ignored, and so is the int64 buffer
 *   `vision_model.embeddings.position_ids`.
 * - **open_clip** (and OpenAI's `clip` package): `visual.conv1.weight`, `visual.class_embedding`,
 *   `visual.positional_embedding`, `visual.ln_pre.*`, blocks
 *   `visual.transformer.resblocks.N.{ln_1, attn.in_proj_weight/bias, attn.out_proj, ln_2,
 *   mlp.c_fc, mlp.c_proj}`, `visual.ln_post.*` and `visual.proj`. The stacked attention input
 *   projection [3·width, width] is split into q, k and v (rows in that order, as
 *   `torch.nn.MultiheadAttention` uses them), and `visual.proj` [width, embed] is transposed
 *   into `visual_projection.weight` [embed, width]. Text-tower tensors are ignored.
 *
 * Either layout may sit under a prefix (`module.`, `model.`, `state_dict.`), found from the
 * names. A mapping is a list of recipes: which stored tensor, which rows, transposed or not.
 *
 * @module
 */
import { PROJECTION_NAME, VISION_PREFIX } from "./config.ts";

/** How a checkpoint stores the vision tower. */
export type ClipLayout = "hf" | "open_clip";

/** A layout found in a checkpoint's tensor names, with the prefix it sits under. */
export interface LayoutMatch {
  /** Which layout. */
  readonly layout: ClipLayout;
  /**
   * What precedes the layout's names: for Hugging Face, the text before `vision_model.`
   * (usually ""); for open_clip, the text before `conv1.weight` (usually "visual.").
   */
  readonly prefix: string;
}

/** How one tensor of the ViT is made from a stored tensor. */
export interface Recipe {
  /** The stored tensor's name. */
  readonly from: string;
  /** Rows [start, end) of the stored tensor's first dimension (a slice of q/k/v), if any. */
  readonly rows?: readonly [number, number];
  /** Transposes a 2-D stored tensor (open_clip's `proj`). */
  readonly transpose?: boolean;
}

const HF_ANCHOR = `${VISION_PREFIX}embeddings.patch_embedding.weight`;
const OC_ANCHOR = "conv1.weight";

/** Stored tensors of the Hugging Face vision prefix that are not parameters. */
const HF_SKIPPED = new Set([`${VISION_PREFIX}embeddings.position_ids`]);

/**
 * Finds the layout of a checkpoint from its tensor names; `label` (a path) names the file in
 * errors. Fails when neither layout is present, or when several candidates are.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { detectClipLayout } from "./clip_layouts.ts";
 * const names = ["visual.conv1.weight", "visual.class_embedding",
 *   "visual.transformer.resblocks.0.attn.in_proj_weight", "logit_scale"];
 * deepStrictEqual(detectClipLayout(names, "m.pt"), { layout: "open_clip", prefix: "visual." });
 * ```
 */
export function detectClipLayout(names: readonly string[], label: string): LayoutMatch {
  const set = new Set(names);
  const found: LayoutMatch[] = [];
  for (const name of names) {
    if (name.endsWith(HF_ANCHOR)) {
      found.push({ layout: "hf", prefix: name.slice(0, -HF_ANCHOR.length) });
    } else if (name.endsWith(OC_ANCHOR)) {
      const prefix = name.slice(0, -OC_ANCHOR.length);
      const block = `${prefix}transformer.resblocks.0.attn.in_proj_weight`;
      if (set.has(`${prefix}class_embedding`) && set.has(block)) {
        found.push({ layout: "open_clip", prefix });
      }
    }
  }
  if (found.length === 1) return found[0];
  if (found.length === 0) {
    throw new Error(
      `${label}: no CLIP vision tower found: expected Hugging Face names (…${HF_ANCHOR}) or ` +
        `open_clip names (…visual.${OC_ANCHOR}, …visual.class_embedding, ` +
        `…visual.transformer.resblocks.0.attn.in_proj_weight)`,
    );
  }
  const list = found.map((m) => `${m.layout} under "${m.prefix}"`).join(", ");
  throw new Error(`${label}: several CLIP vision towers found (${list}); keep one per file`);
}

/**
 * The recipes of a layout: ViT parameter name → how to make it, for every stored tensor that
 * belongs to the vision tower. `width` (the first dimension of the patch embedding) is needed
 * to split open_clip's stacked q/k/v. Stored tensors inside the vision tower's namespace that
 * map to nothing (a layer-scale `ls_1.gamma`, an attention-pooling head) are errors: silently
 * dropping them would give a different network.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { layoutRecipes } from "./clip_layouts.ts";
 * const r = layoutRecipes({ layout: "open_clip", prefix: "visual." },
 *   ["visual.transformer.resblocks.0.attn.in_proj_weight"], 4, "m.pt");
 * // k is the second of the stacked q/k/v blocks of 4 rows each
 * deepStrictEqual(r.get("vision_model.encoder.layers.0.self_attn.k_proj.weight"), {
 *   from: "visual.transformer.resblocks.0.attn.in_proj_weight",
 *   rows: [4, 8],
 * });
 * ```
 */
export function layoutRecipes(
  match: LayoutMatch,
  names: readonly string[],
  width: number,
  label: string,
): Map<string, Recipe> {
  return match.layout === "hf"
    ? hfRecipes(match.prefix, names)
    : openClipRecipes(match.prefix, names, width, label);
}

function hfRecipes(prefix: string, names: readonly string[]): Map<string, Recipe> {
  const out = new Map<string, Recipe>();
  for (const from of names) {
    if (!from.startsWith(prefix)) continue;
    const name = from.slice(prefix.length);
    if (HF_SKIPPED.has(name)) continue;
    if (name.startsWith(VISION_PREFIX) || name === PROJECTION_NAME) out.set(name, { from });
  }
  return out;
}

const V = VISION_PREFIX;

/** open_clip name (after the prefix) → ViT name, for names that map one to one. */
const OC_GLOBAL: Readonly<Record<string, string>> = {
  "conv1.weight": `${V}embeddings.patch_embedding.weight`,
  "class_embedding": `${V}embeddings.class_embedding`,
  "positional_embedding": `${V}embeddings.position_embedding.weight`,
  "ln_pre.weight": `${V}pre_layrnorm.weight`,
  "ln_pre.bias": `${V}pre_layrnorm.bias`,
  "ln_post.weight": `${V}post_layernorm.weight`,
  "ln_post.bias": `${V}post_layernorm.bias`,
};

/** open_clip block tensor (after `transformer.resblocks.N.`) → ViT block tensor. */
const OC_BLOCK: Readonly<Record<string, string>> = {
  "ln_1.weight": "layer_norm1.weight",
  "ln_1.bias": "layer_norm1.bias",
  "attn.out_proj.weight": "self_attn.out_proj.weight",
  "attn.out_proj.bias": "self_attn.out_proj.bias",
  "ln_2.weight": "layer_norm2.weight",
  "ln_2.bias": "layer_norm2.bias",
  "mlp.c_fc.weight": "mlp.fc1.weight",
  "mlp.c_fc.bias": "mlp.fc1.bias",
  "mlp.c_proj.weight": "mlp.fc2.weight",
  "mlp.c_proj.bias": "mlp.fc2.bias",
};

const QKV = ["q_proj", "k_proj", "v_proj"] as const;

function openClipRecipes(
  prefix: string,
  names: readonly string[],
  width: number,
  label: string,
): Map<string, Recipe> {
  const out = new Map<string, Recipe>();
  for (const from of names) {
    if (!from.startsWith(prefix)) continue;
    const name = from.slice(prefix.length);
    if (Object.hasOwn(OC_GLOBAL, name)) {
      out.set(OC_GLOBAL[name], { from });
    } else if (name === "proj") {
      out.set(PROJECTION_NAME, { from, transpose: true });
    } else if (!addBlockRecipes(name, from, width, out)) {
      throw new Error(
        `${label}: tensor "${from}" is not part of the CLIP ViT this toolkit implements ` +
          `(open_clip vision towers with layer scale, attention pooling or extra tokens are ` +
          `not supported)`,
      );
    }
  }
  return out;
}

/** Adds the recipes of one open_clip block tensor; false when `name` is not one. */
function addBlockRecipes(
  name: string,
  from: string,
  width: number,
  out: Map<string, Recipe>,
): boolean {
  const m = /^transformer\.resblocks\.(\d+)\.(.+)$/.exec(name);
  if (!m) return false;
  const [, layer, rest] = m;
  const to = `${V}encoder.layers.${layer}.`;
  if (Object.hasOwn(OC_BLOCK, rest)) {
    out.set(to + OC_BLOCK[rest], { from });
    return true;
  }
  const kind = rest === "attn.in_proj_weight"
    ? "weight"
    : rest === "attn.in_proj_bias"
    ? "bias"
    : "";
  if (!kind) return false;
  QKV.forEach((proj, i) => {
    out.set(`${to}self_attn.${proj}.${kind}`, { from, rows: [i * width, (i + 1) * width] });
  });
  return true;
}

/**
 * The shape a recipe produces from the stored tensor's shape.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { recipeShape } from "./clip_layouts.ts";
 * deepStrictEqual(recipeShape({ from: "visual.proj", transpose: true }, [768, 512]), [512, 768]);
 * ```
 */
export function recipeShape(recipe: Recipe, stored: readonly number[]): number[] {
  if (recipe.rows) return [recipe.rows[1] - recipe.rows[0], ...stored.slice(1)];
  if (recipe.transpose) return [...stored].reverse();
  return [...stored];
}

/**
 * Applies a recipe to the stored tensor's values (row-major) and shape.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { applyRecipe } from "./clip_layouts.ts";
 * deepStrictEqual(
 *   applyRecipe({ from: "p", transpose: true }, new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
 *   new Float32Array([1, 4, 2, 5, 3, 6]), // the 2×3 matrix transposed to 3×2
 * );
 * ```
 */
export function applyRecipe(
  recipe: Recipe,
  data: Float32Array,
  stored: readonly number[],
): Float32Array {
  if (recipe.rows) {
    const rowSize = stored.slice(1).reduce((a, b) => a * b, 1);
    return data.slice(recipe.rows[0] * rowSize, recipe.rows[1] * rowSize);
  }
  if (recipe.transpose) {
    const [rows, cols] = stored;
    const out = new Float32Array(data.length);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
    }
    return out;
  }
  return data;
}
