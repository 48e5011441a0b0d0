"""PyTorch reference of a real-model study's evaluation, and the picture folders it reads.

Independent of the TypeScript code: pictures are read with PIL and preprocessed as CLIP does
(images.py), features come from the float64 vision forward of clip_ref.py on the stored
files, and each task is scored with its head as CLIP does (exp(logit_scale) times the cosine
of the feature with each class row); a picture's label is its sub-folder's class index.

usage: python3 study_ref.py HERE folders OUT_DIR SPEC_JSON
         SPEC_JSON {"aux": n, "classes": {"task": k, ...}, "per_class": m}: writes
         OUT_DIR/aux/{x,y}/NNN.png (+ one .jpg) and OUT_DIR/tests/<task>/<task><c>/NNN.png,
         pictures of several sizes and aspect ratios.
       python3 study_ref.py HERE accuracy SPEC_JSON OUT_JSON
         SPEC_JSON {"cfg", "heads", "tasks": {"task": folder}, "models": {"label": job}}
         (a job as in clip_ref.py); writes {"label": {"task": accuracy}}.
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, sys.argv[1])
import clip_ref  # noqa: E402
import images  # noqa: E402
import st  # noqa: E402

SIZES = [(40, 36), (36, 52), (64, 64), (33, 45), (50, 32)]


def folders(out, spec):
    rng = np.random.default_rng(1)
    n = 0

    def write(path, ext="png"):
        nonlocal n
        w, h = SIZES[n % len(SIZES)]
        n += 1
        os.makedirs(os.path.dirname(path), exist_ok=True)
        images.picture(w, h, 1 if n % 7 == 0 else 3, rng).save(f"{path}.{ext}")

    for i in range(spec["aux"]):
        write(f"{out}/aux/{'xy'[i % 2]}/{i:03d}", "jpg" if i == 0 else "png")
    for task, k in spec["classes"].items():
        for c in range(k):
            for j in range(spec["per_class"]):
                write(f"{out}/tests/{task}/{task}{c}/{j:03d}")


def features(job, pixels, cfg):
    p = clip_ref.load(job)
    if job["layout"] == "hf":
        if "visual_projection.weight" not in p:
            p["visual_projection.weight"] = clip_ref.load(job["projection_from"])["visual_projection.weight"]
        return clip_ref.hf_features(p, pixels, cfg)
    return clip_ref.open_clip_features(p, pixels, cfg)


def labelled(folder, classes, size):
    xs, ys = [], []
    for sub in sorted(os.listdir(folder)):
        for name in sorted(os.listdir(os.path.join(folder, sub))):
            img = Image.open(os.path.join(folder, sub, name))
            img.load()
            xs.append(images.clip_reference(img, size))
            ys.append(classes.index(sub))
    return torch.stack(xs).double(), torch.tensor(ys)


def accuracy(spec):
    cfg = spec["cfg"]
    tensors, meta = st.load(spec["heads"])
    info = json.loads(meta["heads"])
    scale = tensors["logit_scale"].double().exp()
    data = {t: labelled(f, info[t]["classes"], cfg["imageSize"]) for t, f in spec["tasks"].items()}
    out = {}
    for label, job in spec["models"].items():
        out[label] = {}
        for task, (x, y) in data.items():
            f = features(job, x, cfg)
            w = tensors[f"{task}.weight"].double()
            logits = scale * (f / f.norm(dim=-1, keepdim=True)) @ (w / w.norm(dim=-1, keepdim=True)).T
            out[label][task] = (logits.argmax(-1) == y).double().mean().item()
    return out


def main():
    if sys.argv[2] == "folders":
        folders(sys.argv[3], json.loads(sys.argv[4]))
    else:
        with open(sys.argv[4], "w") as f:
            json.dump(accuracy(json.loads(sys.argv[3])), f)


main()
