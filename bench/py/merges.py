"""PyTorch peers of the benchmark's merges, written from docs/METHODS.md (task_arithmetic,
ties, tsv_m, iso_c) and run the way FusionBench/mergekit users run them on CPU: streaming key by key from
safetensors files (one tensor of the base and of each expert in memory at a time), the merged
checkpoint theta0 + alpha*M written as it is computed.

Each function takes the base path, the expert paths and the output path and returns a dict of
phase timings in seconds ("read": time spent reading tensors, "write": writing, "passes": wall
time of each pass)."""
import time

import torch

import stio

# The defaults the benchmark uses on both sides (FusionBench's, as the project's registry has them).
TA_SCALING = 0.3
TIES_K, TIES_SCALING = 20, 0.3
COMMON_FRACTION = 0.8


class Inputs:
    """The base and expert readers, with the time spent reading."""

    def __init__(self, base, experts):
        self.base = stio.Reader(base)
        self.experts = [stio.Reader(p) for p in experts]
        self.names = self.base.names
        self.read_s = 0.0

    def get(self, reader, name):
        t0 = time.perf_counter()
        t = reader.get(name)
        self.read_s += time.perf_counter() - t0
        return t

    def taus(self, name):
        """(theta0, [tau_t]) for one tensor."""
        base = self.get(self.base, name)
        return base, [self.get(e, name) - base for e in self.experts]

    def close(self):
        for r in [self.base, *self.experts]:
            r.close()


class Output:
    """The merged checkpoint, written tensor by tensor, with the time spent writing."""

    def __init__(self, path, inputs):
        self.writer = stio.Writer(path, [(n, inputs.base.shape(n)) for n in inputs.names])
        self.write_s = 0.0

    def write(self, tensor):
        t0 = time.perf_counter()
        self.writer.write(tensor)
        self.write_s += time.perf_counter() - t0

    def close(self):
        self.writer.close()


def _run(base, experts, out, passes):
    """Runs `passes` (functions of (inputs, output)) and returns the timings."""
    inputs = Inputs(base, experts)
    output = Output(out, inputs)
    times = {}
    try:
        for name, fn in passes:
            t0 = time.perf_counter()
            fn(inputs, output)
            times[name] = time.perf_counter() - t0
    finally:
        inputs.close()
    t0 = time.perf_counter()
    output.close()
    output.write_s += time.perf_counter() - t0
    return {"read": inputs.read_s, "write": output.write_s, "passes": times}


def task_arithmetic(base, experts, out):
    """M = sum_t tau_t; theta = theta0 + 0.3 M, every tensor."""

    def merge(inputs, output):
        for name in inputs.names:
            theta0, taus = inputs.taus(name)
            output.write(theta0 + TA_SCALING * torch.stack(taus).sum(0))

    return _run(base, experts, out, [("merge", merge)])


def ties(base, experts, out):
    """TIES: one global magnitude threshold per task over the whole flattened model (kthvalue),
    sign election with the whole-model majority for zeros, disjoint sum, lambda = 0.3."""
    state = {}

    def thresholds(inputs, _output):
        total = sum(_numel(inputs.base.shape(n)) for n in inputs.names)
        rank = total - int(total * (TIES_K / 100))
        flat = torch.empty(total)
        thr = []
        for expert in inputs.experts:  # one task at a time: one model-sized buffer
            at = 0
            for name in inputs.names:
                tau = inputs.get(expert, name) - inputs.get(inputs.base, name)
                flat[at:at + tau.numel()] = tau.reshape(-1).abs()
                at += tau.numel()
            thr.append(flat.kthvalue(rank).values.item())
        state["thr"] = thr

    def trimmed(inputs, name):
        theta0, taus = inputs.taus(name)
        stack = torch.stack(taus)
        keep = stack.abs() >= torch.tensor(state["thr"]).reshape([-1] + [1] * (stack.dim() - 1))
        return theta0, stack * keep

    def majority(inputs, _output):
        signs = 0.0
        for name in inputs.names:
            _, t = trimmed(inputs, name)
            signs += torch.sign(t.sum(0)).sum().item()
        state["majority"] = 1.0 if signs > 0 else -1.0 if signs < 0 else 0.0

    def merge(inputs, output):
        for name in inputs.names:
            theta0, t = trimmed(inputs, name)
            gamma = torch.sign(t.sum(0))
            gamma[gamma == 0] = state["majority"]
            agree = torch.where(gamma > 0, t > 0, t < 0)
            output.write(theta0 + TIES_SCALING * (t * agree).sum(0))

    return _run(base, experts, out,
                [("thresholds", thresholds), ("majority sign", majority), ("merge", merge)])


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _spectral(name, shape):
    return len(shape) == 2 and "text_projection" not in name


def _polar(a):
    """Nearest orthogonal matrix P Q^T from the thin SVD a = P S Q^T."""
    p, _, qt = torch.linalg.svd(a, full_matrices=False)
    return p @ qt


def tsv_m_matrix(taus):
    """TSV-M of one matrix: top floor(r/T) components per task, concatenated, polar factors."""
    m, n = taus[0].shape
    r, T = min(m, n), len(taus)
    k = r // T
    u, s, vt = torch.zeros(m, r), torch.zeros(r), torch.zeros(r, n)
    for t, tau in enumerate(taus):
        ut, st, vtt = torch.linalg.svd(tau, full_matrices=False)
        u[:, t * k:(t + 1) * k] = ut[:, :k]
        s[t * k:(t + 1) * k] = st[:k]
        vt[t * k:(t + 1) * k] = vtt[:k]
    return (_polar(u) * s) @ _polar(vt)


def iso_cts_matrix(taus, fraction=COMMON_FRACTION):
    """Iso-CTS of one matrix: common subspace of the sum, task-specific directions outside it,
    polar factors, one flat spectrum at the mean of the kept singular values."""
    m, n = taus[0].shape
    r, T = min(m, n), len(taus)
    common = int(fraction * r)
    specific = round((r - common) / T) * T  # Python's round: half to even, as the original
    common, per_task = r - specific, specific // T
    u, s, vt = torch.linalg.svd(torch.stack(taus).sum(0), full_matrices=False)
    uc = u[:, :common]
    us, ss, vts = [], [], []
    for tau in taus:
        if per_task == 0:
            break
        ut, st, vtt = torch.linalg.svd(tau - uc @ (uc.T @ tau), full_matrices=False)
        us.append(ut[:, :per_task])
        ss.append(st[:per_task])
        vts.append(vtt[:per_task])
    u_all = torch.cat(us + [uc], 1)
    vt_all = torch.cat(vts + [vt[:common]], 0)
    sigma = torch.cat(ss + [s[:common]])
    return sigma.mean() * (_polar(u_all) @ _polar(vt_all))


def _per_matrix(merge_matrix):
    def run(base, experts, out):
        def merge(inputs, output):
            for name in inputs.names:
                theta0, taus = inputs.taus(name)
                if _spectral(name, theta0.shape):
                    m = merge_matrix(taus)
                else:
                    m = torch.stack(taus).mean(0)
                output.write(theta0 + m)  # alpha = 1 (FusionBench)

        return _run(base, experts, out, [("merge", merge)])

    return run


tsv_m = _per_matrix(tsv_m_matrix)
iso_cts = _per_matrix(iso_cts_matrix)


def read_only(base, experts, out):
    """The I/O floor: every tensor of the base and the experts read once, tau = theta - theta0
    formed (nothing merged; the first expert's tau is written so an output exists)."""

    def read(inputs, output):
        for name in inputs.names:
            _, taus = inputs.taus(name)
            output.write(taus[0])

    return _run(base, experts, out, [("read", read)])


METHODS = {"task_arithmetic": task_arithmetic, "ties": ties, "tsv_m": tsv_m,
           "iso_cts": iso_cts, "read": read_only}
