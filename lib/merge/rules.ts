/**
 * Which tensors get which treatment, as rules on names and shapes that hold for both naming
 * schemes the merging literature uses: Hugging Face `CLIPVisionModel`
 * (`vision_model.encoder.layers.N.self_attn.q_proj.weight`, `...mlp.fc1.weight`) and open_clip
 * (`visual.transformer.resblocks.N.attn.in_proj_weight`, `...mlp.c_fc.weight`).
 *
 * @module
 */

/**
 * TSV-M / Iso-C / Iso-CTS rule (docs/METHODS.md; `TSVM_utils.py`, `iso.py`): every 2-D tensor
 * whose name does not contain `text_projection` gets the per-matrix treatment, everything else
 * the mean. In HF names this covers q/k/v/out_proj, fc1, fc2, the position embedding and
 * `visual_projection`; in open_clip names in_proj, out_proj, c_fc, c_proj, `positional_embedding`
 * and `visual.proj`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isSpectralMatrix } from "./rules.ts";
 * equal(isSpectralMatrix("vision_model.encoder.layers.0.mlp.fc1.weight", [3072, 768]), true);
 * equal(isSpectralMatrix("vision_model.encoder.layers.0.mlp.fc1.bias", [3072]), false);
 * equal(isSpectralMatrix("text_projection", [512, 512]), false);
 * ```
 */
export function isSpectralMatrix(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && !name.includes("text_projection");
}

/** A transformer block in either naming scheme: `layers.N.` (HF) or `resblocks.N.` (open_clip). */
const BLOCK = /(^|\.)(layers|resblocks)\.\d+\./;

/** The weight names of a block's linear layers in either naming scheme. */
const LINEAR_WEIGHT =
  /(\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.weight|\.attn\.in_proj_weight|\.attn\.out_proj\.weight|\.mlp\.(fc1|fc2|c_fc|c_proj)\.weight)$/;

/**
 * WUDI's official ViT rule (docs/METHODS.md; `vit/wudi_main.py`): only the linear-layer weights
 * inside transformer blocks are merged (attention q/k/v/out or in_proj/out_proj, MLP fc1/fc2 or
 * c_fc/c_proj); every other tensor (biases, LayerNorm, patch and position embeddings, the
 * projection) stays at its pretrained value.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isBlockLinearWeight } from "./rules.ts";
 * const query = "vision_model.encoder.layers.3.self_attn.q_proj.weight";
 * equal(isBlockLinearWeight(query, [8, 8]), true);
 * equal(isBlockLinearWeight("visual.transformer.resblocks.3.attn.in_proj_weight", [24, 8]), true);
 * equal(isBlockLinearWeight("vision_model.embeddings.position_embedding.weight", [5, 8]), false);
 * equal(isBlockLinearWeight("visual_projection.weight", [512, 768]), false);
 * ```
 */
export function isBlockLinearWeight(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && BLOCK.test(name) && LINEAR_WEIGHT.test(name);
}
