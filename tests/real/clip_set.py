"""Writes a small random CLIP checkpoint set in the real formats, without this project's code:
a base and three experts in Hugging Face layout (CLIPModel with a text tower, a vision-only
BF16 file, a CLIPVisionModel without projection; a sharded base with config.json) and the
same weights in open_clip layout (torch.save state dicts with and without prefixes, a training
checkpoint dict, a BF16 safetensors), plus a heads file. The open_clip tensors are made from
the Hugging Face ones by stacking q/k/v into in_proj and transposing the projection, as
open_clip stores them.

usage: python3 clip_set.py OUT_DIR GEOMETRY_JSON
  GEOMETRY_JSON may set "minimal": true to write only hf/base, hf/experts/{a,b,c} and
  oc/experts/{a.pt,b.safetensors,c.pt} and the heads (for full-size geometries).
"""
import json
import math
import os
import sys

import torch

import st

V = "vision_model."


def hf_vision(g, gen):
    """Random HF-named vision tower: every tensor matters to the output."""
    d, m, p, c = g["width"], g["mlpDim"], g["patchSize"], 3
    n = (g["imageSize"] // p) ** 2 + 1

    def mat(o, i):
        return torch.randn(o, i, generator=gen) / math.sqrt(i)

    def vec(k, s=0.1):
        return torch.randn(k, generator=gen) * s

    def ln(name):
        return {name + ".weight": 1 + vec(d), name + ".bias": vec(d)}

    t = {V + "embeddings.class_embedding": vec(d, 0.5),
         V + "embeddings.patch_embedding.weight": torch.randn(d, c, p, p, generator=gen) / p,
         V + "embeddings.position_embedding.weight": torch.randn(n, d, generator=gen) * 0.5}
    t.update(ln(V + "pre_layrnorm"))
    for i in range(g["layers"]):
        pre = f"{V}encoder.layers.{i}."
        t.update(ln(pre + "layer_norm1"))
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"]:
            t[pre + f"self_attn.{proj}.weight"] = mat(d, d)
            t[pre + f"self_attn.{proj}.bias"] = vec(d)
        t.update(ln(pre + "layer_norm2"))
        t[pre + "mlp.fc1.weight"], t[pre + "mlp.fc1.bias"] = mat(m, d), vec(m)
        t[pre + "mlp.fc2.weight"], t[pre + "mlp.fc2.bias"] = mat(d, m), vec(d)
    t.update(ln(V + "post_layernorm"))
    t["visual_projection.weight"] = mat(g["projectionDim"], d)
    return t


def perturb(t, gen, scale=0.02):
    return {k: v + scale * torch.randn(v.shape, generator=gen) for k, v in t.items()}


def to_open_clip(hf, g, prefix="visual."):
    """HF names → open_clip names (q/k/v stacked into in_proj, projection transposed)."""
    o = {prefix + "conv1.weight": hf[V + "embeddings.patch_embedding.weight"],
         prefix + "class_embedding": hf[V + "embeddings.class_embedding"],
         prefix + "positional_embedding": hf[V + "embeddings.position_embedding.weight"],
         prefix + "ln_pre.weight": hf[V + "pre_layrnorm.weight"],
         prefix + "ln_pre.bias": hf[V + "pre_layrnorm.bias"]}
    for i in range(g["layers"]):
        h, b = f"{V}encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        a = h + "self_attn."
        o[b + "ln_1.weight"], o[b + "ln_1.bias"] = hf[h + "layer_norm1.weight"], hf[h + "layer_norm1.bias"]
        o[b + "attn.in_proj_weight"] = torch.cat([hf[a + n + ".weight"] for n in ["q_proj", "k_proj", "v_proj"]])
        o[b + "attn.in_proj_bias"] = torch.cat([hf[a + n + ".bias"] for n in ["q_proj", "k_proj", "v_proj"]])
        o[b + "attn.out_proj.weight"], o[b + "attn.out_proj.bias"] = hf[a + "out_proj.weight"], hf[a + "out_proj.bias"]
        o[b + "ln_2.weight"], o[b + "ln_2.bias"] = hf[h + "layer_norm2.weight"], hf[h + "layer_norm2.bias"]
        o[b + "mlp.c_fc.weight"], o[b + "mlp.c_fc.bias"] = hf[h + "mlp.fc1.weight"], hf[h + "mlp.fc1.bias"]
        o[b + "mlp.c_proj.weight"], o[b + "mlp.c_proj.bias"] = hf[h + "mlp.fc2.weight"], hf[h + "mlp.fc2.bias"]
    o[prefix + "ln_post.weight"], o[prefix + "ln_post.bias"] = hf[V + "post_layernorm.weight"], hf[V + "post_layernorm.bias"]
    o[prefix + "proj"] = hf["visual_projection.weight"].t().contiguous()
    return o


def hf_text(gen, e):
    return {"text_model.embeddings.token_embedding.weight": torch.randn(100, e, generator=gen),
            "text_model.encoder.layers.0.self_attn.q_proj.weight": torch.randn(e, e, generator=gen),
            "text_model.final_layer_norm.weight": torch.ones(e),
            "text_projection.weight": torch.randn(e, e, generator=gen),
            "logit_scale": torch.tensor(math.log(100.0))}


def open_clip_text(gen, e, prefix=""):
    return {prefix + "token_embedding.weight": torch.randn(100, e, generator=gen),
            prefix + "positional_embedding": torch.randn(8, e, generator=gen),
            prefix + "transformer.resblocks.0.attn.in_proj_weight": torch.randn(3 * e, e, generator=gen),
            prefix + "ln_final.weight": torch.ones(e),
            prefix + "text_projection": torch.randn(e, e, generator=gen),
            prefix + "logit_scale": torch.tensor(math.log(100.0))}


def bf16(t):
    return {k: v.to(torch.bfloat16) for k, v in t.items()}


def hf_config(g):
    return {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": g["projectionDim"],
            "vision_config": {"hidden_size": g["width"], "num_attention_heads": g["heads"],
                              "num_hidden_layers": g["layers"], "intermediate_size": g["mlpDim"],
                              "image_size": g["imageSize"], "patch_size": g["patchSize"],
                              "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}}


def write_sharded(folder, tensors, g, torch_bin=False):
    """Two shards and an index, as Hugging Face writes them (safetensors, or .bin)."""
    os.makedirs(folder, exist_ok=True)
    names = list(tensors)
    half = len(names) // 2
    weight_map = {}
    for k, part in enumerate([names[:half], names[half:]]):
        if torch_bin:
            shard = f"pytorch_model-0000{k + 1}-of-00002.bin"
            torch.save({n: tensors[n] for n in part}, os.path.join(folder, shard))
        else:
            shard = f"model-0000{k + 1}-of-00002.safetensors"
            st.save(os.path.join(folder, shard), {n: tensors[n] for n in part}, {"format": "pt"})
        weight_map.update({n: shard for n in part})
    index = "pytorch_model.bin.index.json" if torch_bin else "model.safetensors.index.json"
    with open(os.path.join(folder, index), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config(g), f)


def main():
    out, g = sys.argv[1], json.loads(sys.argv[2])
    gen = torch.Generator().manual_seed(g.get("seed", 0))
    e = g["projectionDim"]
    base = hf_vision(g, gen)
    experts = {t: perturb(base, gen) for t in ["a", "b", "c"]}
    # Expert c is a CLIPVisionModel: its projection stays the pretrained one.
    experts["c"]["visual_projection.weight"] = base["visual_projection.weight"]
    for d in ["hf/base", "hf/experts", "oc/experts"]:
        os.makedirs(os.path.join(out, d), exist_ok=True)
    ids = {V + "embeddings.position_ids": torch.arange(base[V + "embeddings.position_embedding.weight"].shape[0]).unsqueeze(0)}

    # Hugging Face layout.
    st.save(f"{out}/hf/base/model.safetensors", {**base, **hf_text(gen, e), **ids}, {"format": "pt"})
    with open(f"{out}/hf/base/config.json", "w") as f:
        json.dump(hf_config(g), f)
    if not g.get("minimal"):
        write_sharded(f"{out}/hf_sharded/base", {**base, **hf_text(gen, e)}, g)
        write_sharded(f"{out}/hf_bin/base", {**base, **hf_text(gen, e), **ids}, g, torch_bin=True)
    st.save(f"{out}/hf/experts/a.safetensors", {**experts["a"], **hf_text(gen, e)}, {"format": "pt"})
    st.save(f"{out}/hf/experts/b.safetensors", bf16(experts["b"]), {"format": "pt"})
    no_proj = {k: v for k, v in experts["c"].items() if k != "visual_projection.weight"}
    st.save(f"{out}/hf/experts/c.safetensors", {**no_proj, **ids}, {"format": "pt"})

    # open_clip layout: the same numbers.
    if not g.get("minimal"):
        torch.save({**to_open_clip(base, g), **open_clip_text(gen, e)}, f"{out}/oc/base.pt")
    image_encoder = {**to_open_clip(experts["a"], g, "model.visual."), **open_clip_text(gen, e, "model.")}
    torch.save(image_encoder, f"{out}/oc/experts/a.pt")
    st.save(f"{out}/oc/experts/b.safetensors", bf16(to_open_clip(experts["b"], g)), {"format": "pt"})
    training = {"epoch": 3, "name": "c", "lr": 1e-5,
                "state_dict": to_open_clip(experts["c"], g, "module.visual.")}
    torch.save(training, f"{out}/oc/experts/c.pt")

    # Heads: one [classes, e] matrix per task, classes in the metadata, CLIP's log scale.
    heads = {f"{t}.weight": torch.randn(k, e, generator=gen) for t, k in [("a", 3), ("b", 4), ("c", 5)]}
    heads["logit_scale"] = torch.tensor(math.log(100.0))
    info = {t: {"classes": [f"{t}{i}" for i in range(k)]} for t, k in [("a", 3), ("b", 4), ("c", 5)]}
    st.save(f"{out}/heads.safetensors", heads, {"heads": json.dumps(info)})


main()
