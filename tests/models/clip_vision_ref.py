"""Independent PyTorch reference of the CLIP vision tower, written from the architecture's
math (Radford et al. 2021; Hugging Face CLIPVisionModelWithProjection's parameter names),
not from the TypeScript code. Computes in float64.

usage: python3 clip_vision_ref.py PARAMS INPUTS OUT CONFIG_JSON
  PARAMS  safetensors with the vision-tower tensors
  INPUTS  safetensors with `pixels` [B, C, H, W], `probe` [B, P] (the loss is sum(features·probe)),
          and optionally `head` [K, P], `labels` [B] and `scale` [] (head logits + cross-entropy)
  OUT     safetensors written with `features`, `logits` (if a head is given) and `grad.<name>`
"""
import json
import sys

import torch
import torch.nn.functional as F

import st

V = "vision_model."


def layer_norm(x, p, name, eps):
    return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"], eps)


def act(x, kind):
    if kind == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    return F.gelu(x)  # exact, erf-based


def attention(x, p, pre, heads):
    b, t, d = x.shape
    hd = d // heads

    def proj(n):
        return F.linear(x, p[pre + n + ".weight"], p[pre + n + ".bias"])

    q = proj("q_proj").view(b, t, heads, hd).transpose(1, 2)
    k = proj("k_proj").view(b, t, heads, hd).transpose(1, 2)
    v = proj("v_proj").view(b, t, heads, hd).transpose(1, 2)
    w = torch.softmax((q @ k.transpose(-1, -2)) / hd ** 0.5, dim=-1)
    o = (w @ v).transpose(1, 2).reshape(b, t, d)
    return F.linear(o, p[pre + "out_proj.weight"], p[pre + "out_proj.bias"])


def features(p, pixels, cfg):
    eps = cfg["layerNormEps"]
    patch = F.conv2d(pixels, p[V + "embeddings.patch_embedding.weight"], stride=cfg["patchSize"])
    b = patch.shape[0]
    tokens = patch.flatten(2).transpose(1, 2)  # [B, N, D], patches in row-major order
    cls = p[V + "embeddings.class_embedding"].expand(b, 1, -1)
    x = torch.cat([cls, tokens], dim=1) + p[V + "embeddings.position_embedding.weight"]
    x = layer_norm(x, p, V + "pre_layrnorm", eps)
    for i in range(cfg["layers"]):
        pre = f"{V}encoder.layers.{i}."
        x = x + attention(layer_norm(x, p, pre + "layer_norm1", eps), p, pre + "self_attn.", cfg["heads"])
        h = layer_norm(x, p, pre + "layer_norm2", eps)
        h = F.linear(h, p[pre + "mlp.fc1.weight"], p[pre + "mlp.fc1.bias"])
        h = F.linear(act(h, cfg["activation"]), p[pre + "mlp.fc2.weight"], p[pre + "mlp.fc2.bias"])
        x = x + h
    pooled = layer_norm(x[:, 0, :], p, V + "post_layernorm", eps)
    return F.linear(pooled, p["visual_projection.weight"])


def main():
    params_path, inputs_path, out_path, cfg_json = sys.argv[1:5]
    cfg = json.loads(cfg_json)
    raw, _ = st.load(params_path)
    p = {k: v.double().requires_grad_(True) for k, v in raw.items()}
    inputs, _ = st.load(inputs_path)
    f = features(p, inputs["pixels"].double(), cfg)
    loss = (f * inputs["probe"].double()).sum()
    out = {"features": f.detach().float()}
    if "head" in inputs:
        w = inputs["head"].double()
        logits = inputs["scale"].double() * (F.normalize(f, dim=-1) @ F.normalize(w, dim=-1).T)
        loss = loss + F.cross_entropy(logits, inputs["labels"].long())
        out["logits"] = logits.detach().float()
    loss.backward()
    for k, v in p.items():
        out["grad." + k] = v.grad.float()
    st.save(out_path, out)


if __name__ == "__main__":  # importable: tests/merge/data_reference.py uses features()
    main()
