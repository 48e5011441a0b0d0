"""Independent PyTorch references of the merge methods, written from docs/METHODS.md's math (not from
the TypeScript code). main(spec) reads task vectors (one safetensors file per task), merges them
with spec["method"] and spec["params"] (every parameter given explicitly), and writes alpha * M.

Tensor rules used here, restated from docs/METHODS.md:
- TA / TIES / DARE / Consensus: every tensor, flattened into one vector per task;
- TSV-M / Iso: 2-D tensors whose name lacks "text_projection" per matrix, the rest averaged;
- WUDI (official): linear weights inside transformer blocks, the rest left out (M = 0);
  WUDI ("all2d", FusionBench): every 2-D tensor optimised, the rest averaged;
- MagMax, EMR, TALL masks, Model Stock, SLERP, weighted average, DARE + average: every tensor;
- TSV-C: every 2-D tensor truncated per task, the rest kept per task;
- DOP: linear weights (blocks' and the projection) optimised pair by pair in task order, the
  class embedding left out, the rest averaged pair by pair.
Methods that build one model per task return a list of dicts (one per task); main() writes task
t's tensor "name" as "t{t}::name".
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
    if merge == "max":
        return chosen.abs().max(dim=0).values * gamma
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


# ---- MagMax: the value of largest magnitude, the last task on ties ----------------------------
def magmax(X):
    V = torch.stack(X)
    last = V.shape[0] - 1 - V.abs().flip(0).argmax(dim=0)  # argmax returns the first maximum
    return V.gather(0, last.unsqueeze(0)).squeeze(0)


# ---- Model Stock: per tensor, t = T cos(mean angle) / ((T - 1) cos + 1) ----------------------
def model_stock(X):
    T = len(X)
    flat = [x.double().flatten() for x in X]
    angles = []
    for i in range(T):
        for j in range(i + 1, T):
            cos = flat[i] @ flat[j] / (flat[i].norm() * flat[j].norm() + 1e-8)
            angles.append(torch.arccos(cos.clamp(-1, 1)))
    c = torch.cos(torch.stack(angles).mean())
    t = T * c / ((T - 1) * c + 1 + 1e-8)
    return (t * torch.stack(X).double().mean(dim=0)).float()


# ---- weighted average ------------------------------------------------------------------------
def weighted_average(taus, names, P):
    w = torch.tensor(P["weights"] or [1.0] * len(taus), dtype=torch.float64)
    if P["normalize"]:
        w = w / w.sum()
    return {n: sum(float(w[t]) * taus[t][n].double() for t in range(len(taus))).float()
            for n in names}


# ---- EMR: elect, mask, rescale (one model per task) ------------------------------------------
def emr(taus, names):
    T = len(taus)
    uni, masks = {}, {}
    for n in names:
        V = torch.stack([t[n] for t in taus])
        gamma = torch.where(V.sum(dim=0) > 0, 1.0, -1.0)
        masks[n] = V * gamma > 0
        uni[n] = gamma * (V.abs() * masks[n]).max(dim=0).values
    own = [sum(taus[t][n].abs().double().mean() for n in names) for t in range(T)]
    kept = [sum((uni[n] * masks[n][t]).abs().double().mean() for n in names) for t in range(T)]
    return [{n: (uni[n] * masks[n][t]) * float(own[t] / kept[t]) for n in names}
            for t in range(T)]


# ---- TSV-C: per task, 2-D tensors truncated to rank floor(r / T) -----------------------------
def tsv_c(taus, names):
    T = len(taus)
    out = []
    for tau in taus:
        d = {}
        for n in names:
            X = tau[n]
            if X.dim() == 2:
                k = int(min(X.shape) * (1 / T))
                u, s, vt = torch.linalg.svd(X, full_matrices=False)
                d[n] = u[:, :k] @ torch.diag(s[:k]) @ vt[:k, :]
            else:
                d[n] = X.clone()
        out.append(d)
    return out


# ---- TALL-mask compression: task t's model keeps tau_MTL where |tau_t| > lam |tau_MTL - tau_t| -
def tall_mask(taus, names, P):
    if P["mtl"] == "ties":
        mtl = elementwise(taus, names, lambda V: ties_vector(V, 20, "sum"))
    else:
        mtl = {n: sum(t[n] for t in taus) for n in names}
    return [{n: mtl[n] * (t[n].abs() > P["lambda"] * (mtl[n] - t[n]).abs()) for n in names}
            for t in taus]


# ---- SLERP of two models (or two task vectors), in float64 -----------------------------------
def slerp_pair(a, b, P):
    a, b = a.double().flatten(), b.double().flatten()
    na, nb = a.norm(), b.norm()
    ua = a / na if na > P["epsilon"] else a
    ub = b / nb if nb > P["epsilon"] else b
    d = ua @ ub
    t = P["t"]
    if d.abs() > P["dot_threshold"]:
        return (1 - t) * a + t * b
    om = torch.arccos(d)
    return (torch.sin((1 - t) * om) * a + torch.sin(t * om) * b) / torch.sin(om)


def slerp(taus, names, P, base):
    out = {}
    for n in names:
        if P["space"] == "weights":
            r = slerp_pair(base[n] + taus[0][n], base[n] + taus[1][n], P) - base[n].double().flatten()
        else:
            r = slerp_pair(taus[0][n], taus[1][n], P)
        out[n] = r.reshape(taus[0][n].shape).float()
    return out


# ---- SVC: calibrate the base merge's singular values, per 2-D tensor (in float64) -------------
def svc_calibrate(M, X, alpha):
    M = M.double()
    U, S, Vt = torch.linalg.svd(M, full_matrices=False)
    a = U.T @ M                                    # R x n responses of the merge
    gamma = torch.zeros_like(S)
    for D in X:
        b = U.T @ D.double()                       # R x n responses of the task
        s = (a * b).sum(dim=1) / (b * b).sum(dim=1).clamp(min=1e-12)
        gamma += torch.clamp(s, min=alpha)
    return (U * (len(X) * S / gamma)) @ Vt


def svc(taus, names, P, masks):
    base = P["base"]
    inner = {k: v for k, v in P.items() if k not in ("base", "base_scaling", "alpha")}
    inner["scaling"] = 1
    merged = merge(base, taus, names, inner, masks)
    out = {}
    for n in names:
        M = P["base_scaling"] * merged[n]
        out[n] = svc_calibrate(M, [t[n] for t in taus], P["alpha"]).float() if M.dim() == 2 else M
    return out


# ---- KnOTS: per layer [W | b] aligned by one SVD of the tasks side by side; TIES on Z ---------
def knots_layers(names):
    weights, biases, order = {}, {}, []
    for n in names:
        if ".weight" in n or "_weight" in n:
            stem = n.replace(".weight", "").replace("_weight", "")
            weights[stem] = n
        elif ".bias" in n or "_bias" in n:
            stem = n.replace(".bias", "").replace("_bias", "")
            biases[stem] = n
        else:
            continue
        if stem not in order:
            order.append(stem)
    return [(s, weights[s], biases.get(s)) for s in order if s in weights]


def knots(taus, names, P):
    layers = knots_layers(names)
    T = len(taus)
    aligned = []
    for stem, w, b in layers:
        norm = "norm" in stem or "ln" in stem
        mats = []
        for tau in taus:
            W = tau[w].double()
            X = torch.diag(W) if (norm and W.dim() == 1) else W.reshape(W.shape[0], -1)
            if b is not None:
                X = torch.cat([X, tau[b].double().reshape(-1, 1)], dim=1)
            mats.append(X)
        U, s, Vt = torch.linalg.svd(torch.cat(mats, dim=1), full_matrices=False)
        keep = s > P["eps"]
        U, s, Vt = U[:, keep], s[keep], Vt[keep]
        cols = mats[0].shape[1]
        Z = [s[:, None] * Vt[:, t * cols:(t + 1) * cols] for t in range(T)]
        aligned.append((stem, w, b, norm, U, Z))
    V = torch.stack([torch.cat([a[5][t].flatten() for a in aligned]) for t in range(T)])
    merged = ties_vector(V.float(), P["k"], P["merge"]).double()
    out = {n: torch.zeros_like(taus[0][n]) for n in names}
    i = 0
    for stem, w, b, norm, U, Z in aligned:
        size = Z[0].numel()
        M = U @ merged[i:i + size].reshape(Z[0].shape)
        i += size
        W = taus[0][w]
        wcols = M.shape[1] - (1 if b is not None else 0)
        out[w] = (torch.diagonal(M) if (norm and W.dim() == 1) else M[:, :wcols].reshape(W.shape)).float()
        if b is not None:
            out[b] = M[:, -1].float()
    return out


# ---- trust region, data-free: keep entries whose sum_{i != j} |t_i||t_j| is below its quantile
def trust_region(taus, names, P):
    V = flatten(taus, names)
    T = V.shape[0]
    omega = torch.zeros_like(V[0])
    for i in range(T):
        for j in range(T):
            if i != j:
                omega = omega + V[i].abs() * V[j].abs()
    D = omega.numel()
    threshold = omega.sort().values[max(0, min(int(D * P["quantile"]), D - 1))]
    shapes = {n: taus[0][n].shape for n in names}
    return unflatten(V.sum(dim=0) * (omega < threshold), names, shapes)


# ---- DOGE-TA: per block linear weight, projected Adam on the shared delta, then masked sum -----
def doge_ta(taus, names, P):
    T = len(taus)
    lin = [n for n in names if taus[0][n].dim() == 2 and BLOCK_LINEAR.search(n) is not None]
    thr = []
    for t in taus:
        v = torch.cat([t[n].flatten() for n in lin]).abs()
        D = v.numel()
        thr.append(v.kthvalue(D - int(D * P["k"] / 100)).values)
    out = {n: torch.zeros_like(taus[0][n]) for n in names}
    for n in lin:
        V = torch.stack([t[n] for t in taus])
        lam = P["lambda"] / V.flatten(1).norm(dim=1)
        S = (lam[:, None, None] * V).sum(0)
        c = lam.sum()
        m, cols = V.shape[1:]
        r = min(m, cols)
        each = r // T
        stacked = torch.zeros(m, r)
        for t in range(T):
            stacked[:, t * each:(t + 1) * each] = torch.linalg.svd(V[t], full_matrices=False)[0][:, :each]
        k = int(r / P["subspace"])
        Uk = torch.linalg.svd(stacked, full_matrices=False)[0][:, :k]
        proj = Uk @ Uk.T
        delta = torch.zeros(m, cols, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=P["lr"])
        for _ in range(P["iterations"]):
            loss = sum(((V[j] * (V[j] - S - c * delta)).sum(dim=1) ** 2).sum() for j in range(T))
            opt.zero_grad()
            loss.backward()
            delta.grad -= proj @ delta.grad
            opt.step()
        d = delta.detach()
        out[n] = sum(lam[t] * (V[t] + d) * (V[t].abs() >= thr[t]) for t in range(T))
    return out


# ---- DOP: continual, per linear weight Adam on the dual projection losses, rest averaged -------
def dop_linear(n):
    return (BLOCK_LINEAR.search(n) is not None or n == "visual_projection.weight"
            or n == "visual.proj" or n.endswith(".visual.proj"))


def dop_subspace(X, eps):
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)
    share = torch.cumsum(s.double(), 0) / s.double().sum()
    k = int((share.float() < eps).sum()) if s.sum() > 0 else 0
    return U[:, :k], s[:k], Vh[:k].T


def dop_pair(X1, X2, P):
    subs = [dop_subspace(X, P["svd_epsilon"]) for X in (X1, X2)]

    def loss(M, i):
        U, s, V = subs[i]
        D = M - (X1, X2)[i]
        lu = (s[:, None] * (U.T @ D)).square().sum()
        lv = ((D @ V) * s[None, :]).square().sum()
        return {"uv": lu + lv, "u": lu, "v": lv}[P["svd_proj_space"]]

    M = torch.nn.Parameter((X1 + X2) / 2)
    opt = torch.optim.Adam([M], lr=P["lr"])
    w = [P["alpha"], 1 - P["alpha"]]
    for _ in range(P["iterations"]):
        if P["mgda"]:
            g = []
            for i in range(2):
                L = loss(M, i)
                gi, = torch.autograd.grad(L, M)
                g.append(gi / L if L > 0 else torch.zeros_like(gi))
            a, b, c = (g[0] * g[0]).sum(), (g[0] * g[1]).sum(), (g[1] * g[1]).sum()
            gamma = 0.999 if b >= a else 0.001 if b >= c else float((c - b) / (a + c - 2 * b))
            sol = [gamma, 1 - gamma]
            w = [P["ema_beta"] * w[i] + (1 - P["ema_beta"]) * sol[i] for i in range(2)] \
                if P["ema"] else sol
        total = w[0] * loss(M, 0) + w[1] * loss(M, 1)
        opt.zero_grad()
        total.backward()
        opt.step()
    return M.detach()


def dop(taus, names, P):
    out = {}
    for n in names:
        m = taus[0][n].clone()
        for t in taus[1:]:
            if m.dim() == 2 and dop_linear(n):
                m = dop_pair(m, t[n], P)
            else:
                m = (m + t[n]) / 2
        out[n] = torch.zeros_like(m) if n.endswith("class_embedding") else m
    return out


# ---- main ------------------------------------------------------------------------------------
def merge(method, taus, names, P, masks, base=None):
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
    if method == "ties_max":
        return elementwise(taus, names, lambda V: ties_vector(V, P["k"], "max"))
    if method == "dare_average":
        dropped = [{n: t[n] * m[n] / (1 - P["p"]) if P["rescale"] else t[n] * m[n] for n in names}
                   for t, m in zip(taus, masks)]
        return {n: sum(t[n] for t in dropped) / T for n in names}
    if method == "weighted_average":
        return weighted_average(taus, names, P)
    if method == "magmax":
        return {n: magmax([t[n] for t in taus]) for n in names}
    if method == "model_stock":
        return {n: model_stock([t[n] for t in taus]) for n in names}
    if method == "emr":
        return emr(taus, names)
    if method == "tsv_c":
        return tsv_c(taus, names)
    if method == "tall_mask":
        return tall_mask(taus, names, P)
    if method == "slerp":
        return slerp(taus, names, P, base)
    if method.startswith("svc_"):
        return svc(taus, names, {**P, "base": method[4:]}, masks)
    if method == "knots":
        return knots(taus, names, P)
    if method == "trust_region":
        return trust_region(taus, names, P)
    if method == "doge_ta":
        return doge_ta(taus, names, P)
    if method == "dop":
        return dop(taus, names, P)
    raise ValueError(f"reference has no method {method}")


def main_all(specs):
    """Runs main on each spec in turn (one interpreter start for many cases)."""
    for spec in specs:
        main(spec)


def main(spec):
    taus = [st.load(path)[0] for path in spec["tasks"]]
    names = list(taus[0].keys())
    masks = [st.load(path)[0] for path in spec.get("masks") or []]
    base = st.load(spec["base"])[0] if spec.get("base") else None
    P = spec["params"]
    merged = merge(spec["method"], taus, names, P, masks, base)
    if isinstance(merged, list):  # one model per task
        st.save(spec["out"], {f"t{t}::{n}": (P["scaling"] * m[n]).float().contiguous()
                              for t, m in enumerate(merged) for n in names})
    else:
        st.save(spec["out"], {n: (P["scaling"] * merged[n]).float().contiguous() for n in names})
