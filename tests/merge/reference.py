"""Independent PyTorch references of the merge methods, written from MERGING.md's math (not from
the TypeScript code). main(spec) reads task vectors (one safetensors file per task), merges them
with spec["method"] and spec["params"] (every parameter given explicitly), and writes alpha * M.

Tensor rules used here, restated from MERGING.md:
- TA / TIES / DARE / Consensus: every tensor, flattened into one vector per task;
- TSV-M / Iso: 2-D tensors whose name lacks "text_projection" per matrix, the rest averaged;
- WUDI (official): linear weights inside transformer blocks, the rest left out (M = 0);
  WUDI ("all2d", FusionBench): every 2-D tensor optimised, the rest averaged.
"""
import re

import torch

import st


def flatten(taus, names):
    return torch.stack([torch.cat([tau[n].flatten() for n in names]) for tau in taus])


def unflatten(vec, names, shapes):
    out, i = {}, 0
    for n in names:
        size = 1
        for d in shapes[n]:
            size *= d
        out[n] = vec[i:i + size].reshape(shapes[n])
        i += size
    return out


# ---- TIES (MERGING.md section 3) -----------------------------------------------------------
def ties_vector(V, k, merge):
    """V: T x D task vectors. Trim to top-k percent per row, elect signs, disjoint merge."""
    T, D = V.shape
    if k != 100:
        keep = int(D * (k / 100))
        thr = V.abs().kthvalue(D - keep, dim=1, keepdim=True).values
        V = V * (V.abs() >= thr)
    gamma = torch.sign(V.sum(dim=0))
    gamma[gamma == 0] = torch.sign(gamma.sum())
    agree = torch.where(gamma > 0, V > 0, V < 0)
    chosen = V * agree
    total = chosen.sum(dim=0)
    if merge == "mean":
        return total / torch.clamp(agree.sum(dim=0).float(), min=1)
    return total


def elementwise(taus, names, fn):
    shapes = {n: taus[0][n].shape for n in names}
    return unflatten(fn(flatten(taus, names)), names, shapes)


# ---- Consensus (section 9) -------------------------------------------------------------------
def consensus(V, mtl, lam, prune_k):
    masks = V.abs() > lam * (mtl.unsqueeze(0) - V).abs()
    return mtl * (masks.sum(dim=0) >= prune_k)


# ---- main ------------------------------------------------------------------------------------
def merge(method, taus, names, P, masks):
    T = len(taus)
    if method == "average":
        return {n: sum(t[n] for t in taus) / T for n in names}
    if method == "task_arithmetic":
        return {n: sum(t[n] for t in taus) for n in names}
    if method == "ties":
        return elementwise(taus, names, lambda V: ties_vector(V, P["k"], P["merge"]))
    if method in ("dare_ta", "dare_ties"):
        dropped = [{n: t[n] * m[n] / (1 - P["p"]) if P["rescale"] else t[n] * m[n] for n in names}
                   for t, m in zip(taus, masks)]
        if method == "dare_ta":
            return {n: sum(t[n] for t in dropped) for n in names}
        return elementwise(dropped, names, lambda V: ties_vector(V, P["k"], P["merge"]))
    if method == "consensus_ta":
        return elementwise(taus, names,
                           lambda V: consensus(V, V.sum(dim=0), P["lambda"], P["prune_k"]))
    if method == "consensus_ties":
        return elementwise(taus, names, lambda V: consensus(
            V, ties_vector(V, P["k"], P["merge"]), P["lambda"], P["prune_k"]))
    raise ValueError(f"reference has no method {method}")


def main(spec):
    taus = [st.load(path)[0] for path in spec["tasks"]]
    names = list(taus[0].keys())
    masks = [st.load(path)[0] for path in spec.get("masks") or []]
    P = spec["params"]
    merged = merge(spec["method"], taus, names, P, masks)
    st.save(spec["out"], {n: (P["scaling"] * merged[n]).float().contiguous() for n in names})
