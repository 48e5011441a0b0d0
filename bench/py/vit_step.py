"""PyTorch peer of bench/vit_step.ts: forward + backward of a ViT shaped like VIT_TINY (28x28x1
images, 7x7 patches + class token = 17 tokens, width 64, 4 heads, MLP 256 with quick-GELU,
4 pre-LN layers, 64-d projection), loss = sum(features * probe), float32, written from the
architecture's math. Prints the median and minimum step time.

usage: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 vit_step.py [--threads 2] [--steps 10] [--batch 128]
"""
import argparse
import time

import torch
import torch.nn.functional as F

D, HEADS, MLP, LAYERS, PATCH, TOKENS, OUT = 64, 4, 256, 4, 7, 17, 64


def parameters():
    g = torch.Generator().manual_seed(0)

    def t(*shape, scale=0.02):
        return (torch.randn(*shape, generator=g) * scale).requires_grad_(True)

    def ones():
        return torch.ones(D, requires_grad=True)

    p = {"patch": t(D, 1, PATCH, PATCH), "cls": t(D), "pos": t(TOKENS, D), "proj": t(OUT, D),
         "pre": (ones(), t(D)), "post": (ones(), t(D))}
    for i in range(LAYERS):
        for n in ("q", "k", "v", "o"):
            p[f"{i}.{n}"] = (t(D, D), t(D))
        p[f"{i}.fc1"], p[f"{i}.fc2"] = (t(MLP, D), t(MLP)), (t(D, MLP), t(D))
        p[f"{i}.ln1"], p[f"{i}.ln2"] = (ones(), t(D)), (ones(), t(D))
    return p


def features(p, pixels):
    b = pixels.shape[0]
    ln = lambda x, w: F.layer_norm(x, (D,), w[0], w[1], 1e-5)
    x = F.conv2d(pixels, p["patch"], stride=PATCH).flatten(2).transpose(1, 2)
    x = ln(torch.cat([p["cls"].expand(b, 1, D), x], 1) + p["pos"], p["pre"])
    for i in range(LAYERS):
        h = ln(x, p[f"{i}.ln1"])
        q, k, v = (F.linear(h, *p[f"{i}.{n}"]).view(b, TOKENS, HEADS, D // HEADS).transpose(1, 2)
                   for n in "qkv")
        w = torch.softmax(q @ k.transpose(-1, -2) / (D // HEADS) ** 0.5, -1)
        x = x + F.linear((w @ v).transpose(1, 2).reshape(b, TOKENS, D), *p[f"{i}.o"])
        h = F.linear(ln(x, p[f"{i}.ln2"]), *p[f"{i}.fc1"])
        x = x + F.linear(h * torch.sigmoid(1.702 * h), *p[f"{i}.fc2"])
    return F.linear(ln(x[:, 0], p["post"]), p["proj"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = parameters()
    leaves = [t for v in p.values() for t in (v if isinstance(v, tuple) else (v,))]
    pixels = torch.randn(args.batch, 1, 28, 28)
    probe = torch.randn(args.batch, OUT)

    def step():
        for t in leaves:
            t.grad = None
        (features(p, pixels) * probe).sum().backward()

    for _ in range(2):
        step()
    times = []
    cpu0 = time.process_time()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    cpu = (time.process_time() - cpu0) * 1000 / args.steps
    times.sort()
    print(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads): step median "
          f"{times[len(times) // 2]:.1f} ms (min {times[0]:.1f}), CPU time {cpu:.1f} ms/step")


main()
