import { deepStrictEqual, rejects } from "node:assert/strict";
import { openClipVision, type ViTConfig } from "../../mod.ts";
import { type TensorToWrite, writeSafetensors } from "../../lib/io/safetensors.ts";
import { parseHfConfig } from "../../lib/models/clip_checkpoint.ts";
import { parameterShapes } from "../../lib/models/config.ts";
import { initHostParams } from "../../lib/models/weights.ts";
import { tempDir } from "../helpers/temp.ts";
import { SMALL_CLIP } from "./fixtures.ts";

const V = "vision_model.";

/** A named tensor in memory. */
type Named = { name: string; shape: readonly number[]; data: Float32Array };

/** The small CLIP tower's tensors under Hugging Face names. */
function hfTensors(config: ViTConfig = SMALL_CLIP): Named[] {
  const host = initHostParams(config, 3);
  return [...parameterShapes(config).keys()].map((name) => ({ name, ...host.get(name)! }));
}

/** The same tower under open_clip names (q/k/v stacked, projection transposed). */
function openClipTensors(config: ViTConfig = SMALL_CLIP, prefix = "visual."): Named[] {
  const hf = new Map(hfTensors(config).map((t) => [t.name, t]));
  const rename: [string, string][] = [
    ["conv1.weight", `${V}embeddings.patch_embedding.weight`],
    ["class_embedding", `${V}embeddings.class_embedding`],
    ["positional_embedding", `${V}embeddings.position_embedding.weight`],
    ["ln_pre.weight", `${V}pre_layrnorm.weight`],
    ["ln_pre.bias", `${V}pre_layrnorm.bias`],
    ["ln_post.weight", `${V}post_layernorm.weight`],
    ["ln_post.bias", `${V}post_layernorm.bias`],
  ];
  for (let i = 0; i < config.layers; i++) {
    const [o, h] = [`transformer.resblocks.${i}.`, `${V}encoder.layers.${i}.`];
    for (const [a, b] of [["ln_1", "layer_norm1"], ["ln_2", "layer_norm2"]]) {
      for (const k of ["weight", "bias"]) rename.push([`${o}${a}.${k}`, `${h}${b}.${k}`]);
    }
    for (const [a, b] of [["attn.out_proj", "self_attn.out_proj"], ["mlp.c_fc", "mlp.fc1"]]) {
      for (const k of ["weight", "bias"]) rename.push([`${o}${a}.${k}`, `${h}${b}.${k}`]);
    }
    for (const k of ["weight", "bias"]) rename.push([`${o}mlp.c_proj.${k}`, `${h}mlp.fc2.${k}`]);
  }
  const out: Named[] = rename.map(([to, from]) => ({ ...hf.get(from)!, name: prefix + to }));
  for (let i = 0; i < config.layers; i++) {
    const h = `${V}encoder.layers.${i}.self_attn.`;
    for (const k of ["weight", "bias"]) {
      const parts = ["q", "k", "v"].map((p) => hf.get(`${h}${p}_proj.${k}`)!);
      const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
      parts.forEach((p, j) => data.set(p.data, j * p.data.length));
      const shape = k === "weight" ? [3 * config.width, config.width] : [3 * config.width];
      out.push({
        name: `${prefix}transformer.resblocks.${i}.attn.in_proj_${k}`,
        shape,
        data,
      });
    }
  }
  const proj = hf.get("visual_projection.weight")!;
  const [e, d] = proj.shape;
  const t = new Float32Array(proj.data.length);
  for (let r = 0; r < e; r++) for (let c = 0; c < d; c++) t[c * e + r] = proj.data[r * d + c];
  out.push({ name: `${prefix}proj`, shape: [d, e], data: t });
  return out;
}

const extra = (name: string, shape: number[]): TensorToWrite => ({
  name,
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
});

Deno.test("layouts: what is read, ignored and refused", async (t) => {
  await using dir = await tempDir();
  const file = async (name: string, tensors: TensorToWrite[]) => {
    const path = `${dir.path}/${name}.safetensors`;
    await writeSafetensors(path, tensors);
    return path;
  };

  await t.step("text towers, logit_scale and position_ids are left out", async () => {
    const ids = {
      name: `${V}embeddings.position_ids`,
      shape: [1, 17],
      data: new Float32Array(17),
    };
    const hf = await file("hf", [
      ...hfTensors(),
      ids,
      extra("text_model.embeddings.token_embedding.weight", [10, 64]),
      extra("text_projection.weight", [64, 64]),
      extra("logit_scale", []),
    ]);
    using tower = await openClipVision(hf);
    deepStrictEqual(tower.names(), [...parameterShapes(SMALL_CLIP).keys()]);
    deepStrictEqual(tower.config, SMALL_CLIP);
    const oc = await file("oc", [
      ...openClipTensors(SMALL_CLIP, "module.visual."),
      extra("module.transformer.resblocks.0.attn.in_proj_weight", [192, 64]),
      extra("module.text_projection", [64, 64]),
    ]);
    using converted = await openClipVision(oc);
    deepStrictEqual(converted.layout, "open_clip");
    for (const name of tower.names()) {
      deepStrictEqual(await converted.read(name), await tower.read(name), name);
    }
  });

  await t.step("tensors of another architecture are refused by name", async () => {
    const scale = await file("ls", [
      ...openClipTensors(),
      extra("visual.transformer.resblocks.0.ls_1.gamma", [128]),
    ]);
    await rejects(
      openClipVision(scale),
      /"visual\.transformer\.resblocks\.0\.ls_1\.gamma" is not part/,
    );
    const layer = await file("layer", [
      ...hfTensors(),
      extra(`${V}encoder.layers.7.mlp.fc1.weight`, [256, 128]),
    ]);
    await rejects(
      openClipVision(layer),
      /layers\.7\.mlp\.fc1\.weight": is not a parameter of the ViT configured with 2 layers/,
    );
  });

  await t.step("missing tensors and wrong shapes name the stored tensor", async () => {
    const noBias = await file(
      "nobias",
      hfTensors().filter((x) => !x.name.endsWith("post_layernorm.bias")),
    );
    await rejects(openClipVision(noBias), /tensor "vision_model\.post_layernorm\.bias": missing/);
    const noProj = await file(
      "noproj",
      hfTensors().filter((x) => x.name !== "visual_projection.weight"),
    );
    await rejects(
      openClipVision(noProj),
      /visual_projection\.weight": missing \(a CLIPVisionModel/,
    );
    const oc = await file("oc2", openClipTensors());
    await rejects(
      openClipVision(oc, { config: { mlpDim: 100 } }),
      /"visual\.transformer\.resblocks\.0\.mlp\.c_fc\.weight": gives shape \[256, 128\] \(as vision_model\.encoder\.layers\.0\.mlp\.fc1\.weight\), expected \[100, 128\]/,
    );
  });

  await t.step("no tower, two towers", async () => {
    await rejects(
      openClipVision(await file("none", [extra("w", [2])])),
      /no CLIP vision tower found/,
    );
    const both = await file("both", [...hfTensors(), ...openClipTensors()]);
    await rejects(
      openClipVision(both),
      /several CLIP vision towers found \(hf under "", open_clip under "visual\."\)/,
    );
  });

  await t.step(
    "heads: 64-dimensional by default, else from config.json or the caller",
    async () => {
      const odd: ViTConfig = { ...SMALL_CLIP, width: 96, heads: 3 };
      const path = await file("odd", hfTensors(odd));
      await rejects(openClipVision(path), /cannot infer the number of attention heads: width 96/);
      using given = await openClipVision(path, { config: { heads: 3 } });
      deepStrictEqual(given.config, odd);
      const hfDir = `${dir.path}/hfdir`;
      await Deno.mkdir(hfDir);
      await writeSafetensors(`${hfDir}/model.safetensors`, hfTensors(odd));
      await Deno.writeTextFile(
        `${hfDir}/config.json`,
        JSON.stringify({ vision_config: { num_attention_heads: 3, hidden_act: "gelu" } }),
      );
      using fromJson = await openClipVision(hfDir);
      deepStrictEqual(fromJson.config, { ...odd, activation: "gelu" });
      await Deno.writeTextFile(`${hfDir}/config.json`, '{"hidden_act": "gelu_new"}');
      await rejects(openClipVision(hfDir), /config\.json: hidden_act "gelu_new" is not supported/);
    },
  );
});

Deno.test("Hugging Face config.json fields take Hugging Face's defaults", () => {
  deepStrictEqual(parseHfConfig("{}", "c.json"), {
    heads: 12,
    activation: "quick_gelu",
    layerNormEps: 1e-5,
  });
  deepStrictEqual(
    parseHfConfig('{"model_type": "clip_vision_model", "num_attention_heads": 16}', "c.json")
      .heads,
    16,
  );
});
