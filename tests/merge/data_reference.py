"""Independent PyTorch references of the data-using merge methods, written from the papers and
the method descriptions (not from the TypeScript code), in float64 on the CLIP vision tower of
tests/models/clip_vision_ref.py. main(spec) reads θ0, the task vectors, the heads, the images
and the batches (which images each step reads: a data choice made by the caller), runs
spec["method"] and writes its outputs to spec["out"].

- RegMean (Jin et al. 2023): G_t = X_tᵀX_t / N_t over every linear layer's input rows while
  expert θ0 + τ_t runs on its batches; off-diagonals × alpha; M = (Σ G_t)^{-1} Σ G_t τ_tᵀ for
  linear weights (transposed back), the mean of the τ_t for every other tensor.
- RegMean++ (Nguyen et al. 2025): the same closed form, block by block: the embeddings and the
  pre-LayerNorm averaged, then block l's Gram matrices measured with the merged embeddings and
  blocks < l and expert t's block l; tail=regmean: post-LayerNorm averaged, projection by RegMean
  on the merged model's features; tail=pretrained: both left at θ0 (M = 0).
- Fisher merging (Matena & Raffel 2022, the batch estimator of FusionBench/MergeLM): F_t = Σ_B
  (∇ Σ_{i∈B} Σ_c sg(√p_ic) log p_ic)² / N_t; task weights 1/T, normalised by inverse global
  norms; M = Σ_t w_t (F_t + ε) τ_t / Σ_t w_t (F_t + ε).
- Ada-SVD (FusionBench's AdaSVDMergingForCLIPVisionModel over SMILE, Tang et al. 2024): every
  linear layer (the projection too unless projection=pretrained; none whose task matrices are
  all within 1e-8 of zero) becomes y = W0 x + b0 + Σ_t r_t(x)(ΔW_t x + Δb_t), r = softmax_t of
  ‖x projected on ΔW_t's top gate_k right singular vectors‖; the upscaled model (other tensors θ0,
  or the experts' mean except the class token with average_experts) runs on every task's
  inputs; r is averaged over every row; M = Σ_t r̄_t τ_t on those layers, the mean (or 0) elsewhere.
- AdaMerging (Yang et al. 2024): λ (T × L) starts at `init`; each step sums, over tasks, the
  mean entropy −Σ p log(p + 1e-8) of the model θ0 + Σ λ τ on the task's batch under its head,
  back-propagates to λ and takes one torch.optim.Adam step. Writes λ after every step.
- Frank-Wolfe merging, hard (Chen et al. 2025): θ starts at θ0 + s Σ τ_t (or θ0); each
  iteration back-propagates, one image at a time, ℓ/(N·T) (cross-entropy with the labels, or
  the entropy) of every task's N images under its head, scores every candidate (the experts
  θ0 + τ_t, then the initial model) by the cosine of the gradient with its whole parameters,
  summed over tensors (task) or per tensor (layer), and moves θ by 2/(k+2)·step_size·s toward
  the smallest. Writes the choices and the scores of every iteration.
- Frank-Wolfe merging, soft, with every task in the pool: rounds of layer-wise AdaMerging; round
  r starts at θ^r (θ^0 = θ0), merges θ^r + Σ λ_{t,ℓ} (θ_t − θ^r) with λ from `init` (round 0) or
  `ada_coeff`, `ada_steps` Adam steps on the summed entropy, and θ^{r+1} is the result. Writes λ
  after every step of every round.
- Concrete Task Arithmetic (Tang et al. 2023): a logit z per parameter entry (all `init`);
  each step the concrete sample s = σ((logit(u) + logit(σ(z))) / T) with the test's uniform
  noise u (probabilities clamped to float32's [eps, 1 − eps], s to [tiny, 1 − eps]), m = s /
  mean(s) per tensor, the model θ0 + Σ_t λ τ_t ⊙ m with λ = `scaling`, the summed entropy of
  every task's batch back-propagated to z, one torch.optim.Adam step. The final mask is drawn
  with the noise of step steps + 1 (concrete, or 1[u < σ(z)] for eval_mask=discrete); M =
  λ Σ_t τ_t ⊙ m. Writes every logit after every step, and every step's sample s, ∂L/∂m and ∂L/∂z.
- Concrete AdaMerging (the same paper, task- or layer-wise): mask step k samples m as above;
  the entropy of θ0 + Σ λ' τ ⊙ m (m held; λ' the previous step's inner result, λ0 at first) on
  loader step 2k − 1 gives the gradient of λ, which is reset to λ0 and takes one step of an Adam
  (lr base_lr) kept across mask steps; the entropy of θ0 + Σ λ τ ⊙ m on loader step 2k gives one
  Adam step of z. Then the final mask, λ ← λ0 and ada_steps Adam steps (lr ada_lr) of λ on
  loader steps 2·steps + j; M = Σ λ τ ⊙ m. Writes z and λ after every mask step, λ after every
  AdaMerging step, and the mask steps' s, ∂L/∂m and ∂L/∂z.
"""
import os
import re
import sys

import torch
import torch.nn.functional as F

import st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import clip_vision_ref  # noqa: E402

torch.set_default_dtype(torch.float64)


def load(path):
    return {k: v.double() for k, v in st.load(path)[0].items()}


def pixels(images, task, idx, norm):
    x = images[f"images{task}"][list(idx)]
    return (x - norm["mean"]) / norm["std"]


def logits(p, x, cfg, head, scale):
    f = clip_vision_ref.features(p, x, cfg)
    return scale * (F.normalize(f, dim=-1) @ F.normalize(head, dim=-1).T)


# ---- RegMean ---------------------------------------------------------------------------------
class Capture:
    """Stands in for torch.nn.functional inside clip_vision_ref: records every linear input."""

    def __init__(self, names):
        self.names, self.sums, self.rows = names, {}, {}

    def __getattr__(self, k):
        return getattr(F, k)

    def linear(self, x, w, b=None):
        name = self.names[id(w)]
        rows = x.reshape(-1, x.shape[-1])
        self.sums[name] = self.sums.get(name, 0) + rows.T @ rows
        self.rows[name] = self.rows.get(name, 0) + rows.shape[0]
        return F.linear(x, w, b)


def regmean(spec, cfg, base, taus, images, norm):
    P, grams = spec["params"], []
    for t, tau in enumerate(taus):
        p = {k: base[k] + tau[k] for k in base}
        cap = Capture({id(v): k for k, v in p.items()})
        clip_vision_ref.F = cap
        try:
            with torch.no_grad():
                for idx in spec["batches"][t]:
                    clip_vision_ref.features(p, pixels(images, t, idx, norm), cfg)
        finally:
            clip_vision_ref.F = F
        grams.append({k: cap.sums[k] / cap.rows[k] for k in cap.sums})
    out = {}
    for k in base:
        if k in grams[0]:
            n = grams[0][k].shape[0]
            mask = torch.full((n, n), P["alpha"]).fill_diagonal_(1.0)
            G = [g[k] * mask for g in grams]
            rhs = sum(Gt @ tau[k].T for Gt, tau in zip(G, taus))
            out[k] = torch.linalg.solve(sum(G), rhs).T
        else:
            out[k] = sum(tau[k] for tau in taus) / len(taus)
    return out, {"linear": sorted(grams[0].keys())}


def grams_of(spec, cfg, p, t, images, norm, wanted):
    cap = Capture({id(v): k for k, v in p.items()})
    clip_vision_ref.F = cap
    try:
        with torch.no_grad():
            for idx in spec["batches"][t]:
                clip_vision_ref.features(p, pixels(images, t, idx, norm), cfg)
    finally:
        clip_vision_ref.F = F
    return {k: cap.sums[k] / cap.rows[k] for k in wanted}


def regmean_plusplus(spec, cfg, base, taus, images, norm):
    P, T = spec["params"], len(taus)

    def block(k):
        m = re.search(r"(?:^|\.)layers\.(\d+)\.", k)
        return int(m.group(1)) if m else None

    def is_tail(k):
        return k == "visual_projection.weight" or k.startswith("vision_model.post_layernorm")

    def linear(k):
        return k == "visual_projection.weight" or k.endswith(("_proj.weight", "fc1.weight", "fc2.weight"))

    M = {}

    def mean(k):
        M[k] = sum(tau[k] for tau in taus) / T

    def stage(members):
        wanted = [k for k in members if linear(k)]
        grams = [grams_of(spec, cfg, {k: base[k] + M.get(k, tau[k]) for k in base}, t, images,
                          norm, wanted) for t, tau in enumerate(taus)]
        for k in members:
            if k not in wanted:
                mean(k)
                continue
            n = grams[0][k].shape[0]
            mask = torch.full((n, n), P["alpha"]).fill_diagonal_(1.0)
            G = [g[k] * mask for g in grams]
            M[k] = torch.linalg.solve(sum(G), sum(Gt @ tau[k].T for Gt, tau in zip(G, taus))).T

    for k in base:
        if block(k) is None and not is_tail(k):
            mean(k)
    for b in range(cfg["layers"]):
        stage([k for k in base if block(k) == b])
    tail = [k for k in base if is_tail(k)]
    if P["tail"] == "pretrained":
        for k in tail:
            M[k] = torch.zeros_like(base[k])
    else:
        for k in tail:
            if k != "visual_projection.weight":
                mean(k)
        stage(["visual_projection.weight"])
    return M, {}


# ---- Fisher merging --------------------------------------------------------------------------
def fisher(spec, cfg, base, taus, images, heads, norm):
    P, fishers = spec["params"], []
    for t, tau in enumerate(taus):
        p = {k: (base[k] + tau[k]).requires_grad_(True) for k in base}
        acc, count = {k: torch.zeros_like(v) for k, v in p.items()}, 0
        for idx in spec["batches"][t]:
            z = logits(p, pixels(images, t, idx, norm), cfg, heads[f"head{t}"], heads[f"scale{t}"])
            loss = (torch.softmax(z, -1).sqrt().detach() * torch.log_softmax(z, -1)).sum()
            grads = torch.autograd.grad(loss, list(p.values()))
            for k, g in zip(p, grads):
                acc[k] += g ** 2
            count += len(idx)
        fishers.append({k: v / count for k, v in acc.items()})
    eps, T = P["epsilon"], len(taus)
    w = torch.full((T,), 1.0 / T)
    if P["normalize"]:
        norms = torch.stack([torch.sqrt(sum((f ** 2).sum() for f in ft.values())) for ft in fishers])
        inv = 1.0 / (norms + eps)
        w = w * inv / inv.sum()
    out = {}
    for k in base:
        num = sum(w[t] * (fishers[t][k] + eps) * taus[t][k] for t in range(T))
        den = sum(w[t] * (fishers[t][k] + eps) for t in range(T))
        out[k] = num / den
    return out, {"norms": [float(torch.sqrt(sum((f ** 2).sum() for f in ft.values()))) for ft in fishers]}


# ---- Ada-SVD ---------------------------------------------------------------------------------
class Mixture:
    """Stands in for torch.nn.functional inside clip_vision_ref: every upscaled linear layer is
    the routed mixture of θ0 and the task matrices; the routing probabilities are summed."""

    def __init__(self, names, experts):
        self.names, self.experts, self.sums, self.rows = names, experts, {}, {}

    def __getattr__(self, k):
        return getattr(F, k)

    def linear(self, x, w, b=None):
        name = self.names[id(w)]
        if name not in self.experts:
            return F.linear(x, w, b)
        directions, dws, dbs = self.experts[name]
        rows = x.reshape(-1, x.shape[-1])
        scores = torch.stack([(rows @ v).norm(dim=1) for v in directions], dim=1)  # [rows, T]
        r = torch.softmax(scores, dim=1)
        self.sums[name] = self.sums.get(name, 0) + r.sum(0)
        self.rows[name] = self.rows.get(name, 0) + rows.shape[0]
        y = F.linear(rows, w, b)
        for t, (dw, db) in enumerate(zip(dws, dbs)):
            y = y + r[:, t:t + 1] * F.linear(rows, dw, db)
        return y.reshape(*x.shape[:-1], y.shape[-1])


def ada_svd(spec, cfg, base, taus, images, norm):
    P, T = spec["params"], len(taus)
    proj = "visual_projection.weight"

    def is_linear_weight(k):
        return k == proj or k.endswith(("_proj.weight", "fc1.weight", "fc2.weight"))

    experts = {}
    for k in base:
        if not is_linear_weight(k) or (k == proj and P["projection"] == "pretrained"):
            continue
        if all(bool((tau[k].abs() <= 1e-8).all()) for tau in taus):
            continue  # no expert changed it: the layer stays θ0
        out_dim, in_dim = base[k].shape
        g = min(P["gate_k"], out_dim, in_dim)
        directions = []
        for tau in taus:
            _, _, vh = torch.linalg.svd(tau[k])
            directions.append(vh[:g].T)  # [in, g]
        bias = k[:-len("weight")] + "bias"
        dbs = [tau[bias] if bias in base else None for tau in taus]
        experts[k] = (directions, [tau[k] for tau in taus], dbs)

    def linear_of(k):
        w = k[:-len("bias")] + "weight" if k.endswith(".bias") else k
        return w if is_linear_weight(w) else None

    def averaged(k):
        return P["average_experts"] and linear_of(k) is None and \
            k != "vision_model.embeddings.class_embedding"

    p = {k: base[k] + sum(tau[k] for tau in taus) / T if averaged(k) else base[k] for k in base}
    mix = Mixture({id(v): k for k, v in p.items()}, experts)
    clip_vision_ref.F = mix
    try:
        with torch.no_grad():
            for t in range(T):
                for idx in spec["batches"][t]:
                    clip_vision_ref.features(p, pixels(images, t, idx, norm), cfg)
    finally:
        clip_vision_ref.F = F
    routing = {k: mix.sums[k] / mix.rows[k] for k in experts}
    out = {}
    for k in base:
        w = linear_of(k)
        if w in routing:
            out[k] = sum(routing[w][t] * taus[t][k] for t in range(T))
        elif averaged(k):
            out[k] = sum(tau[k] for tau in taus) / T
        else:
            out[k] = torch.zeros_like(base[k])
    return out, {"routing": torch.stack([routing[k] for k in sorted(routing)])}


# ---- AdaMerging ------------------------------------------------------------------------------
def adamerging(spec, cfg, base, taus, images, heads, norm):
    P, names, T = spec["params"], spec["names"], len(taus)
    L = len(names) if spec["layer_wise"] else 1
    lam = torch.nn.Parameter(torch.full((T, L), float(P["init"])))
    opt = torch.optim.Adam([lam], lr=P["lr"])
    trajectory, losses = [], []

    def merged():
        used = lam.clamp(0, 1) if P["clamp"] else lam
        p = dict(base)
        for l, k in enumerate(names):
            p[k] = base[k] + sum(used[t, l if L > 1 else 0] * taus[t][k] for t in range(T))
        return p

    for step in range(P["steps"]):
        total = 0.0
        for t in range(T):
            x = pixels(images, t, spec["batches"][step][t], norm)
            z = logits(merged(), x, cfg, heads[f"head{t}"], heads[f"scale{t}"])
            prob = torch.softmax(z, -1)
            loss = -(prob * torch.log(prob + 1e-8)).sum(-1).mean()
            loss.backward()
            total += float(loss)
        opt.step()
        opt.zero_grad()
        trajectory.append(lam.detach().clone())
        losses.append(total)
    used = lam.detach().clamp(0, 1) if P["clamp"] else lam.detach()
    out = {k: sum(used[t, l if L > 1 else 0] * taus[t][k] for t in range(T))
           for l, k in enumerate(names)}
    return out, {"trajectory": torch.stack(trajectory), "losses": torch.tensor(losses)}


# ---- Frank-Wolfe merging (hard) ---------------------------------------------------------------
def fw_hard(spec, cfg, base, taus, images, heads, norm):
    P, names, T = spec["params"], spec["names"], len(taus)
    s = P["init_scaling"]
    start = 0.0 if P["init"] == "base" else s
    init = {k: start * sum(tau[k] for tau in taus) for k in names}
    cands = taus + [init]  # each candidate's offset from θ0; its parameters are θ0 + offset
    m = {k: v.clone() for k, v in init.items()}
    n = P["examples"]
    choices, scores, losses = [], [], []
    for k, batches in enumerate(spec["batches"]):
        p = {kk: (base[kk] + m[kk] if kk in m else base[kk]).requires_grad_(True) for kk in base}
        total = 0.0
        for t in range(T):
            for i in batches[t]:
                z = logits(p, pixels(images, t, [i], norm), cfg, heads[f"head{t}"], heads[f"scale{t}"])
                if P["loss"] == "cross_entropy":
                    loss = F.cross_entropy(z, torch.tensor([spec["labels"][t][i]]))
                else:
                    prob = torch.softmax(z, -1)
                    loss = -(prob * torch.log(prob + 1e-8)).sum(-1).mean()
                loss = loss / (n * T)
                loss.backward()
                total += float(loss)
        losses.append(total)
        cos = torch.tensor([[float((p[kk].grad * (base[kk] + c[kk])).sum()
                                   / (p[kk].grad.norm() * (base[kk] + c[kk]).norm()))
                             for kk in names] for c in cands])  # [T + 1, tensors]
        scores.append(cos)
        if P["granularity"] == "task":
            chosen = [int(torch.argmin(cos.sum(1)))] * len(names)
        else:
            chosen = [int(torch.argmin(cos[:, j])) for j in range(len(names))]
        choices.append(torch.tensor(chosen if P["granularity"] == "layer" else chosen[:1]))
        gamma = 2 / (k + 2) * P["step_size"] * s
        for j, kk in enumerate(names):
            m[kk] = m[kk] + gamma * (cands[chosen[j]][kk] - m[kk])
    return m, {"choices": torch.stack(choices).double(), "scores": torch.stack(scores),
               "losses": torch.tensor(losses)}


# ---- Frank-Wolfe merging (soft) ---------------------------------------------------------------
def fw_soft(spec, cfg, base, taus, images, heads, norm):
    P, names, T = spec["params"], spec["names"], len(taus)
    theta = {k: v.clone() for k, v in base.items()}
    trajectory = []
    for r in range(P["steps"]):
        experts = [{k: base[k] + tau[k] - theta[k] for k in names} for tau in taus]  # θ_t − θ^r
        lam = torch.nn.Parameter(torch.full((T, len(names)), float(P["init"] if r == 0
                                                                   else P["ada_coeff"])))
        opt = torch.optim.Adam([lam], lr=P["lr"])

        def merged():
            p = dict(theta)
            for l, k in enumerate(names):
                p[k] = theta[k] + sum(lam[t, l] * experts[t][k] for t in range(T))
            return p

        for s in range(P["ada_steps"]):
            for t in range(T):
                x = pixels(images, t, spec["batches"][r][s][t], norm)
                z = logits(merged(), x, cfg, heads[f"head{t}"], heads[f"scale{t}"])
                prob = torch.softmax(z, -1)
                (-(prob * torch.log(prob + 1e-8)).sum(-1).mean()).backward()
            opt.step()
            opt.zero_grad()
            trajectory.append(lam.detach().clone())
        with torch.no_grad():
            theta = merged()
    return {k: theta[k] - base[k] for k in names}, {"trajectory": torch.stack(trajectory)}


# ---- Concrete Task Arithmetic ----------------------------------------------------------------
F32 = torch.finfo(torch.float32)


def concrete_sample(z, u, temperature):
    p = torch.sigmoid(z).clamp(F32.eps, 1 - F32.eps)
    u = u.clamp(F32.eps, 1 - F32.eps)
    x = (torch.log(u) - torch.log1p(-u) + torch.log(p) - torch.log1p(-p)) / temperature
    return torch.sigmoid(x).clamp(F32.tiny, 1 - F32.eps)


def concrete_ta(spec, cfg, base, taus, images, heads, norm):
    P, names, T = spec["params"], spec["names"], len(taus)
    noise = load(spec["noise"])
    z = {k: torch.full_like(base[k], float(P["init"])).requires_grad_(True) for k in names}
    opt = torch.optim.Adam(list(z.values()), lr=P["lr"])
    lam, temp = P["scaling"], P["temperature"]
    trajectory, losses, samples, mgrads, zgrads = [], [], [], [], []
    for step in range(P["steps"]):
        sample, mask = {}, {}
        for k in names:
            sample[k] = concrete_sample(z[k], noise[f"u{step + 1}/{k}"], temp)
            mask[k] = sample[k] / sample[k].mean()
            mask[k].retain_grad()
        p = dict(base)
        for k in names:
            p[k] = base[k] + sum(lam * mask[k] * taus[t][k] for t in range(T))
        total = 0
        for t in range(T):
            x = pixels(images, t, spec["batches"][step][t], norm)
            prob = torch.softmax(logits(p, x, cfg, heads[f"head{t}"], heads[f"scale{t}"]), -1)
            total = total - (prob * torch.log(prob + 1e-8)).sum(-1).mean()
        opt.zero_grad()
        total.backward()
        opt.step()
        trajectory.append(torch.cat([z[k].detach().flatten() for k in names]))
        samples.append(torch.cat([sample[k].detach().flatten() for k in names]))
        mgrads.append(torch.cat([mask[k].grad.flatten() for k in names]))
        zgrads.append(torch.cat([z[k].grad.flatten() for k in names]))
        losses.append(float(total))
    out = {}
    with torch.no_grad():
        for k in names:
            u = noise[f"u{P['steps'] + 1}/{k}"]
            if P["eval_mask"] == "continuous":
                s = concrete_sample(z[k], u, temp)
            else:
                s = (u < torch.sigmoid(z[k])).double()
            out[k] = lam * (s / s.mean()) * sum(taus[t][k] for t in range(T))
    return out, {"trajectory": torch.stack(trajectory), "losses": torch.tensor(losses),
                 "samples": torch.stack(samples), "mask_grads": torch.stack(mgrads),
                 "logit_grads": torch.stack(zgrads)}


def concrete_adamerging(spec, cfg, base, taus, images, heads, norm):
    P, names, T = spec["params"], spec["names"], len(taus)
    L = len(names) if spec["layer_wise"] else 1
    noise = load(spec["noise"])
    temp, steps = P["temperature"], P["steps"]
    z = {k: torch.full_like(base[k], float(P["init"])).requires_grad_(True) for k in names}
    opt = torch.optim.Adam(list(z.values()), lr=P["lr"])
    lam0 = torch.full((T, L), float(P["lambda_init"]))
    lam = torch.nn.Parameter(lam0.clone())
    inner = torch.optim.Adam([lam], lr=P["base_lr"])

    def merged(w, mask):
        p = dict(base)
        for l, k in enumerate(names):
            p[k] = base[k] + sum(w[t, l if L > 1 else 0] * taus[t][k] * mask[k] for t in range(T))
        return p

    def entropy(p, at):  # loader step at (from 1)
        total = 0
        for t in range(T):
            x = pixels(images, t, spec["batches"][at - 1][t], norm)
            prob = torch.softmax(logits(p, x, cfg, heads[f"head{t}"], heads[f"scale{t}"]), -1)
            total = total - (prob * torch.log(prob + 1e-8)).sum(-1).mean()
        return total

    previous = lam0.clone()
    trajectory, inner_lambdas, samples, mgrads, zgrads = [], [], [], [], []
    for step in range(1, steps + 1):
        sample, mask = {}, {}
        for k in names:
            sample[k] = concrete_sample(z[k], noise[f"u{step}/{k}"], temp)
            mask[k] = sample[k] / sample[k].mean()
            mask[k].retain_grad()
        w = previous.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(entropy(merged(w, {k: m.detach() for k, m in mask.items()}),
                                           2 * step - 1), w)
        with torch.no_grad():
            lam.copy_(lam0)
        lam.grad = g
        inner.step()
        previous = lam.detach().clone()
        loss = entropy(merged(previous, mask), 2 * step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        trajectory.append(torch.cat([z[k].detach().flatten() for k in names]))
        inner_lambdas.append(previous.clone())
        samples.append(torch.cat([sample[k].detach().flatten() for k in names]))
        mgrads.append(torch.cat([mask[k].grad.flatten() for k in names]))
        zgrads.append(torch.cat([z[k].grad.flatten() for k in names]))
    with torch.no_grad():
        final = {}
        for k in names:
            u = noise[f"u{steps + 1}/{k}"]
            if P["eval_mask"] == "continuous":
                s = concrete_sample(z[k], u, temp)
            else:
                s = (u < torch.sigmoid(z[k])).double()
            final[k] = s / s.mean()
    lam_a = torch.nn.Parameter(lam0.clone())
    ada = torch.optim.Adam([lam_a], lr=P["ada_lr"])
    ada_lambdas = []
    for j in range(1, P["ada_steps"] + 1):
        loss = entropy(merged(lam_a, final), 2 * steps + j)
        ada.zero_grad()
        loss.backward()
        ada.step()
        ada_lambdas.append(lam_a.detach().clone())
    lam_f = lam_a.detach()
    out = {k: sum(lam_f[t, l if L > 1 else 0] * taus[t][k] * final[k] for t in range(T))
           for l, k in enumerate(names)}
    return out, {"trajectory": torch.stack(trajectory), "inner_lambda": torch.stack(inner_lambdas),
                 "ada_lambda": torch.stack(ada_lambdas), "samples": torch.stack(samples),
                 "mask_grads": torch.stack(mgrads), "logit_grads": torch.stack(zgrads)}


def main(spec):
    cfg = spec["config"]
    base = load(spec["base"])
    taus = [load(path) for path in spec["tasks"]]
    images = load(spec["images"])
    heads = load(spec["heads"])
    norm = spec["norm"]
    method = spec["method"]
    if method == "regmean":
        merged, extra = regmean(spec, cfg, base, taus, images, norm)
    elif method == "regmean_plusplus":
        merged, extra = regmean_plusplus(spec, cfg, base, taus, images, norm)
    elif method == "fisher":
        merged, extra = fisher(spec, cfg, base, taus, images, heads, norm)
    elif method in ("adamerging", "adamerging_task"):
        merged, extra = adamerging(spec, cfg, base, taus, images, heads, norm)
    elif method == "fw_hard":
        merged, extra = fw_hard(spec, cfg, base, taus, images, heads, norm)
    elif method == "fw_soft":
        merged, extra = fw_soft(spec, cfg, base, taus, images, heads, norm)
    elif method == "concrete_ta":
        merged, extra = concrete_ta(spec, cfg, base, taus, images, heads, norm)
    elif method == "ada_svd":
        merged, extra = ada_svd(spec, cfg, base, taus, images, norm)
    elif method in ("concrete_adamerging", "concrete_adamerging_task"):
        merged, extra = concrete_adamerging(spec, cfg, base, taus, images, heads, norm)
    else:
        raise ValueError(f"no reference for {method}")
    out = {f"M.{k}": v.float().contiguous() for k, v in merged.items()}
    for k, v in extra.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.float().contiguous()
    st.save(spec["out"], out, {k: ",".join(v) for k, v in extra.items() if isinstance(v, list)
                               and all(isinstance(s, str) for s in v)})


def main_all(specs):
    for spec in specs:
        main(spec)
