"""Independent PyTorch reference of CLIP's vision forward on checkpoint files as they are
stored, in both layouts, written from the architecture (Radford et al. 2021) and not from the
TypeScript code. Computes in float64.

- Hugging Face layout: explicit math over `vision_model.*` names (separate q/k/v).
- open_clip layout: the modules open_clip's VisionTransformer is made of (torch's
  nn.MultiheadAttention over the stacked in_proj weights, LayerNorms, `x @ proj`).

usage: python3 clip_ref.py JOBS_JSON PIXELS OUT
  JOBS_JSON  [{"path", "layout": "hf"|"open_clip", "prefix", "key"?, "projection_from"?, "cfg"}]
             `key` picks a nested dict of a torch.save file (e.g. "state_dict").
  PIXELS     safetensors with `pixels` [B, 3, H, W]
  OUT        safetensors written with `features.<job index>`
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

import st

V = "vision_model."


def load(job):
    if job["path"].endswith(".json"):  # a sharded safetensors index
        folder = os.path.dirname(job["path"])
        with open(job["path"]) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        t = {}
        for shard in shards:
            path = os.path.join(folder, shard)
            t.update(torch.load(path) if shard.endswith(".bin") else st.load(path)[0])
    elif job["path"].endswith(".safetensors"):
        t, _ = st.load(job["path"])
    else:
        t = torch.load(job["path"], map_location="cpu")
        if job.get("key"):
            t = t[job["key"]]
    p = job["prefix"]
    return {k[len(p):]: v for k, v in t.items() if k.startswith(p) and v.is_floating_point()}


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def act(cfg):
    return quick_gelu if cfg["activation"] == "quick_gelu" else F.gelu


def hf_features(p, pixels, cfg):
    p = {k: v.double() for k, v in p.items()}
    eps, heads = cfg["layerNormEps"], cfg["heads"]

    def ln(x, n):
        return F.layer_norm(x, x.shape[-1:], p[n + ".weight"], p[n + ".bias"], eps)

    def lin(x, n):
        return x @ p[n + ".weight"].T + p[n + ".bias"]

    x = F.conv2d(pixels, p[V + "embeddings.patch_embedding.weight"], stride=cfg["patchSize"])
    b, d = x.shape[0], x.shape[1]
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([p[V + "embeddings.class_embedding"].expand(b, 1, d), x], 1)
    x = ln(x + p[V + "embeddings.position_embedding.weight"], V + "pre_layrnorm")
    for i in range(cfg["layers"]):
        L = f"{V}encoder.layers.{i}."
        h = ln(x, L + "layer_norm1")
        t, hd = h.shape[1], d // heads

        def split(z):
            return z.reshape(b, t, heads, hd).transpose(1, 2)

        q, k, v = (split(lin(h, L + f"self_attn.{n}_proj")) for n in "qkv")
        a = torch.softmax(q @ k.transpose(-1, -2) * hd ** -0.5, -1) @ v
        x = x + lin(a.transpose(1, 2).reshape(b, t, d), L + "self_attn.out_proj")
        h = ln(x, L + "layer_norm2")
        x = x + lin(act(cfg)(lin(h, L + "mlp.fc1")), L + "mlp.fc2")
    pooled = ln(x[:, 0], V + "post_layernorm")
    return pooled @ p["visual_projection.weight"].T


class Block(nn.Module):
    """open_clip's ResidualAttentionBlock: x + attn(ln_1(x)), x + mlp(ln_2(x))."""

    def __init__(self, d, m, heads, eps, gelu):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.c_fc, self.c_proj, self.gelu = nn.Linear(d, m), nn.Linear(m, d), gelu

    def forward(self, x):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.c_proj(self.gelu(self.c_fc(self.ln_2(x))))


def open_clip_features(p, pixels, cfg):
    d, m, eps = cfg["width"], cfg["mlpDim"], cfg["layerNormEps"]
    blocks = nn.ModuleList([Block(d, m, cfg["heads"], eps, act(cfg)) for _ in range(cfg["layers"])]).double()
    state = {}
    for i in range(cfg["layers"]):
        r = f"transformer.resblocks.{i}."
        for k in ["ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", "attn.in_proj_weight",
                  "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias"]:
            state[f"{i}.{k}"] = p[r + k]
        for k in ["weight", "bias"]:
            state[f"{i}.c_fc.{k}"] = p[r + "mlp.c_fc." + k]
            state[f"{i}.c_proj.{k}"] = p[r + "mlp.c_proj." + k]
    blocks.load_state_dict({k: v.double() for k, v in state.items()})
    q = {k: v.double() for k, v in p.items()}
    x = F.conv2d(pixels, q["conv1.weight"], stride=cfg["patchSize"])
    b = x.shape[0]
    x = x.reshape(b, d, -1).permute(0, 2, 1)
    x = torch.cat([q["class_embedding"] + torch.zeros(b, 1, d, dtype=x.dtype), x], 1)
    x = F.layer_norm(x + q["positional_embedding"], (d,), q["ln_pre.weight"], q["ln_pre.bias"], eps)
    with torch.no_grad():
        for blk in blocks:
            x = blk(x)
    x = F.layer_norm(x[:, 0, :], (d,), q["ln_post.weight"], q["ln_post.bias"], eps)
    return x @ q["proj"]


def main():
    jobs, pixels_path, out_path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    pixels = st.load(pixels_path)[0]["pixels"].double()
    out = {}
    for i, job in enumerate(jobs):
        p = load(job)
        if job["layout"] == "hf":
            if "visual_projection.weight" not in p:
                p["visual_projection.weight"] = load(job["projection_from"])["visual_projection.weight"]
            f = hf_features(p, pixels, job["cfg"])
        else:
            f = open_clip_features(p, pixels, job["cfg"])
        out[f"features.{i}"] = f.float().contiguous()
    st.save(out_path, out)


if __name__ == "__main__":
    main()
