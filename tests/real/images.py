"""Writes test pictures with PIL and CLIP's preprocessing of each, computed the way
OpenAI's clip / open_clip do it through torchvision on PIL images (Resize(224, BICUBIC) =
PIL's resize, CenterCrop with round(), convert("RGB"), ToTensor, Normalize), written out
here with PIL and torch alone. Also PIL's own decoding of the JPEG files, to tell decoder
differences from preprocessing differences.

usage: python3 images.py OUT_DIR SIZE
(importable: `clip_reference` is CLIP's preprocessing of one PIL picture)
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

import st

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])


def picture(w, h, channels, rng):
    """Smooth gradients plus edges and noise: every resampling tap matters."""
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for c in range(channels):
        v = 128 + 90 * np.sin(x / (7 + 3 * c)) * np.cos(y / (11 + c)) + 40 * ((x // 13 + y // 17) % 2)
        planes.append(v + rng.normal(0, 12, (h, w)))
    a = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
    return Image.fromarray(a[..., 0] if channels == 1 else a, "L" if channels == 1 else "RGB")


def clip_reference(img, size):
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    img = img.crop((left, top, left + size, top + size)).convert("RGB")
    t = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255)
    return (t - MEAN[:, None, None]) / STD[:, None, None]


def main():
    out, size = sys.argv[1], int(sys.argv[2])
    os.makedirs(f"{out}/imgs", exist_ok=True)
    rng = np.random.default_rng(0)
    cases = {"rgb_300x200.png": (300, 200, 3), "grey_224x400.png": (224, 400, 1),
             "rgb_257x225.png": (257, 225, 3), "rgb_225x224.png": (225, 224, 3),
             "rgb_100x80.png": (100, 80, 3), "rgb_1000x750.png": (1000, 750, 3),
             "rgb_320x240.jpg": (320, 240, 3), "rgb444_240x320.jpg": (240, 320, 3),
             "grey_200x300.jpg": (200, 300, 1)}
    ref = {}
    for name, (w, h, c) in cases.items():
        path = f"{out}/imgs/{name}"
        if name.endswith(".jpg"):  # 4:2:0 chroma subsampling (PIL's default) unless named 444
            picture(w, h, c, rng).save(path, quality=95, subsampling=0 if "444" in name else 2)
        else:
            picture(w, h, c, rng).save(path)
        img = Image.open(path)
        img.load()
        ref[f"clip.{name}"] = clip_reference(img, size).contiguous()
        if name.endswith(".jpg"):
            ref[f"decoded.{name}"] = torch.from_numpy(np.asarray(img.convert("RGB")).copy())
    st.save(f"{out}/ref.safetensors", ref)


if __name__ == "__main__":
    main()
