"""The benchmark's Vision Transformer in PyTorch, written from the architecture (Hugging Face's
CLIP vision tower: patch convolution, class token, position embedding, pre-LayerNorm, pre-LN
blocks with separate q/k/v/out projections and a quick-GELU MLP, post-LayerNorm of the class
token, projection), reading parameters by their Hugging Face names. Cosine heads:
logits = scale * normalize(f) @ normalize_rows(W)^T."""
import torch
import torch.nn.functional as F

V = "vision_model."


def features(p, cfg, pixels):
    """Image features [batch, projectionDim] for pixels [batch, channels, size, size]."""
    b, d, heads = pixels.shape[0], cfg["width"], cfg["heads"]
    hd, eps = d // heads, cfg["layerNormEps"]

    def ln(x, name):
        return F.layer_norm(x, (d,), p[f"{name}.weight"], p[f"{name}.bias"], eps)

    x = F.conv2d(pixels, p[f"{V}embeddings.patch_embedding.weight"], stride=cfg["patchSize"])
    x = x.flatten(2).transpose(1, 2)
    cls = p[f"{V}embeddings.class_embedding"].expand(b, 1, d)
    x = torch.cat([cls, x], 1) + p[f"{V}embeddings.position_embedding.weight"]
    x = ln(x, f"{V}pre_layrnorm")
    tokens = x.shape[1]
    for i in range(cfg["layers"]):
        l = f"{V}encoder.layers.{i}."

        def proj(h, n):
            return F.linear(h, p[f"{l}self_attn.{n}.weight"], p[f"{l}self_attn.{n}.bias"])

        def split(t):
            return t.view(b, tokens, heads, hd).transpose(1, 2)

        h = ln(x, f"{l}layer_norm1")
        q, k, v = split(proj(h, "q_proj") * hd ** -0.5), split(proj(h, "k_proj")), split(proj(h, "v_proj"))
        mixed = torch.softmax(q @ k.transpose(-1, -2), -1) @ v
        x = x + proj(mixed.transpose(1, 2).reshape(b, tokens, d), "out_proj")
        h = F.linear(ln(x, f"{l}layer_norm2"), p[f"{l}mlp.fc1.weight"], p[f"{l}mlp.fc1.bias"])
        if cfg["activation"] == "quick_gelu":
            h = h * torch.sigmoid(1.702 * h)
        else:
            h = F.gelu(h)
        x = x + F.linear(h, p[f"{l}mlp.fc2.weight"], p[f"{l}mlp.fc2.bias"])
    return F.linear(ln(x[:, 0], f"{V}post_layernorm"), p["visual_projection.weight"])


def head_logits(weight, scale, f):
    """Cosine head: scale * normalize(f) @ normalize_rows(weight)^T."""
    return scale * F.normalize(f, dim=1, eps=1e-12) @ F.normalize(weight, dim=1, eps=1e-12).T


def kl(p, logits):
    """Mean over the batch of KL(p || softmax(logits)), p given as probabilities."""
    return (p * (torch.log(p.clamp_min(1e-30)) - torch.log_softmax(logits, 1))).sum(1).mean()
