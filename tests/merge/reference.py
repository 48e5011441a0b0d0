"""Independent PyTorch references of the merge methods, written from docs/METHODS.md's math (not from
the TypeScript code). main(spec) reads task vectors (one safetensors file per task), merges them
with spec["method"] and spec["params"] (every parameter given explicitly), and writes alpha * M.

Tensor rules used here, restated from docs/METHODS.md:
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


# ---- TIES (docs/METHODS.md, ties) -----------------------------------------------------------
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


# ---- TSV-M, Iso-C, Iso-CTS (sections 5 and 6) -----------------------------------------------
def is_spectral(name, shape):
    return len(shape) == 2 and "text_projection" not in name


def spectral(taus, names, fn):
    out = {}
    for n in names:
        X = [t[n] for t in taus]
        out[n] = fn(X) if is_spectral(n, X[0].shape) else sum(X) / len(X)
    return out


def polar(A):
    U, _, Vh = torch.linalg.svd(A, full_matrices=False)
    return U @ Vh


def tsv_m(X):
    m, n = X[0].shape
    r, T = min(m, n), len(X)
    k = r // T
    opts = {"dtype": X[0].dtype}
    U, s, Vt = torch.zeros(m, r, **opts), torch.zeros(r, **opts), torch.zeros(r, n, **opts)
    for t, D in enumerate(X):
        u, sv, vt = torch.linalg.svd(D, full_matrices=False)
        U[:, t * k:(t + 1) * k] = u[:, :k]
        s[t * k:(t + 1) * k] = sv[:k]
        Vt[t * k:(t + 1) * k, :] = vt[:k, :]
    return polar(U) @ torch.diag(s) @ polar(Vt)


def iso_c(X):
    u, s, vt = torch.linalg.svd(sum(X), full_matrices=False)
    return s.mean() * (u @ vt)


def iso_cts(X, f):
    m, n = X[0].shape
    r, T = min(m, n), len(X)
    kc = int(r * f)
    spec = round((r - kc) / T) * T  # Python's round: halves to even
    kc, kt = r - spec, spec // T
    u, s, vt = torch.linalg.svd(sum(X), full_matrices=False)
    Uc, sc, Vct = u[:, :kc], s[:kc], vt[:kc, :]
    Us, ss, Vs = [], [], []
    for D in X:
        R = D - Uc @ (Uc.T @ D)
        ut, st_, vtt = torch.linalg.svd(R, full_matrices=False)
        Us.append(ut[:, :kt]), ss.append(st_[:kt]), Vs.append(vtt[:kt, :])
    U_all = torch.cat(Us + [Uc], dim=1)
    s_all = torch.cat(ss + [sc])
    Vt_all = torch.cat(Vs + [Vct], dim=0)
    return s_all.mean() * (polar(U_all) @ polar(Vt_all))


# ---- WUDI (section 7): autograd and torch.optim.Adam, as the pseudocode -----------------------
BLOCK_LINEAR = re.compile(
    r"(^|\.)(layers|resblocks)\.\d+\..*(self_attn\.(q|k|v|out)_proj\.weight|mlp\.(fc1|fc2)\.weight"
    r"|attn\.in_proj_weight|attn\.out_proj\.weight|mlp\.(c_fc|c_proj)\.weight)$")


def wudi_matrix(X, iters, lr):
    D = torch.stack(X)
    w = 1 / torch.square(torch.norm(D.reshape(len(X), -1), dim=1))
    M = torch.nn.Parameter(D.sum(dim=0).clone())
    opt = torch.optim.Adam([M], lr=lr, weight_decay=0)
    for _ in range(iters):
        loss = sum(w[t] * torch.square((M - D[t]) @ D[t].T).sum() for t in range(len(X)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return M.detach()


def wudi(taus, names, P):
    out = {}
    for n in names:
        X = [t[n] for t in taus]
        if P["tensors"] == "linear":
            optimise = X[0].dim() == 2 and BLOCK_LINEAR.search(n) is not None
            other = torch.zeros_like(X[0])
        else:
            optimise = X[0].dim() == 2
            other = sum(X) / len(X)
        out[n] = wudi_matrix(X, P["iterations"], P["lr"]) if optimise else other
    return out


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
    if method == "tsv_m":
        return spectral(taus, names, tsv_m)
    if method == "iso_c":
        return spectral(taus, names, iso_c)
    if method == "iso_cts":
        return spectral(taus, names, lambda X: iso_cts(X, P["common_fraction"]))
    if method == "wudi":
        return wudi(taus, names, P)
    raise ValueError(f"reference has no method {method}")


def main_all(specs):
    """Runs main on each spec in turn (one interpreter start for many cases)."""
    for spec in specs:
        main(spec)


def main(spec):
    taus = [st.load(path)[0] for path in spec["tasks"]]
    names = list(taus[0].keys())
    masks = [st.load(path)[0] for path in spec.get("masks") or []]
    P = spec["params"]
    merged = merge(spec["method"], taus, names, P, masks)
    st.save(spec["out"], {n: (P["scaling"] * merged[n]).float().contiguous() for n in names})
