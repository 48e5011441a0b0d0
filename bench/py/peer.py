"""The PyTorch side of `deno task bench`: runs one workload on the data the harness wrote and
prints one JSON line (per-iteration wall times in ms, CPU time per iteration, peak resident
memory VmHWM in MiB, values to cross-check against the TypeScript side).

usage: OPENBLAS_NUM_THREADS=T OMP_NUM_THREADS=T /usr/bin/python3 peer.py \
           --workload NAME --data DIR --threads T [--steps N] [--warmup W] [--out PATH] [--profile]

Workloads: vit_train, ri_step, eval (see bench/workloads.ts for the shapes), and merge_<method>
for task_arithmetic, ties, tsv_m, iso_cts, read (bench/py/merges.py).
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import merges  # noqa: E402
import stio  # noqa: E402
import vit  # noqa: E402


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def machine_ticks():
    """Machine-wide (busy, total) CPU clock ticks from /proc/stat's first line."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy, busy + v[3] + v[4]


def others_meter():
    """Starts measuring the cores other processes use; the returned function gives their
    average since (machine-wide busy cores minus this process's CPU time over wall time)."""
    t0, cpu0, wall0 = machine_ticks(), time.process_time(), time.perf_counter()

    def others():
        t1 = machine_ticks()
        if t0 is None or t1 is None or t1[1] <= t0[1]:
            return None
        busy = (t1[0] - t0[0]) / (t1[1] - t0[1]) * os.cpu_count()
        own = (time.process_time() - cpu0) / max(1e-9, time.perf_counter() - wall0)
        return max(0.0, busy - own)

    return others


def profile(step, runs=3):
    """Self CPU time per operator (ms per iteration) over `runs` profiled iterations, grouped
    like bench/profile_step.ts groups tfjs kernels, plus the top operators."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            step()
    out = {}
    for e in prof.key_averages():
        ms = e.self_cpu_time_total / 1000 / runs
        if ms <= 0:
            continue
        kind = KINDS.get(e.key.replace("aten::", ""), "other")
        out[kind] = out.get(kind, 0) + ms
        out[f"kernel {e.key}"] = ms
    return out


KINDS = {**{k: "matrix products" for k in ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear",
                                            "convolution", "_convolution", "mkldnn_convolution",
                                            "thnn_conv2d", "_slow_conv2d_forward",
                                            "_slow_conv2d_backward", "convolution_backward")},
         **{k: "elementwise" for k in ("add", "add_", "mul", "mul_", "sub", "div", "div_",
                                        "sigmoid", "sigmoid_backward", "neg", "exp", "log",
                                        "sqrt", "rsqrt", "addcmul_", "addcdiv_", "lerp_",
                                        "clamp_min", "pow", "where", "sign", "abs", "fill_",
                                        "zero_", "lt", "gt", "ge", "eq", "addcdiv", "_foreach_add_")},
         **{k: "layout (transpose, copy)" for k in ("copy_", "clone", "contiguous", "transpose",
                                                     "t", "view", "reshape", "expand", "cat",
                                                     "slice", "select", "as_strided", "permute",
                                                     "unsafe_view", "_unsafe_view", "empty",
                                                     "empty_like", "zeros", "zeros_like",
                                                     "empty_strided", "flatten", "stack")},
         **{k: "reductions" for k in ("sum", "mean", "max", "argmax", "norm", "linalg_vector_norm")},
         **{k: "softmax" for k in ("softmax", "_softmax", "log_softmax", "_log_softmax",
                                    "_softmax_backward_data", "_log_softmax_backward_data")},
         **{k: "normalisation" for k in ("layer_norm", "native_layer_norm",
                                          "native_layer_norm_backward")}}


def timed(step, steps, warmup, with_profile=False):
    """Runs step() warmup + steps times; returns (wall ms per timed step, CPU ms per step,
    the first value step() returned, the last one, and the operator profile when asked)."""
    first = step()
    for _ in range(warmup - 1):
        step()
    walls = []
    others = others_meter()
    cpu0 = time.process_time()
    last = first
    for _ in range(steps):
        t0 = time.perf_counter()
        last = step()
        walls.append((time.perf_counter() - t0) * 1000)
    cpu = (time.process_time() - cpu0) * 1000 / steps
    TIMED["others_cores"] = others()
    return walls, cpu, first, last, (profile(step) if with_profile else None)


TIMED = {}  # what the timed part measured besides times (others' cores)


def leaves(tensors):
    return {n: t.clone().requires_grad_(True) for n, t in tensors.items()}


def vit_train(spec, data, steps, warmup, with_profile):
    """lib/train's trainStep: cross-entropy through the frozen cosine head, backward, global-norm
    clipping (torch's clip_grad_norm_, the formula trainStep follows), AdamW."""
    cfg, s = spec["config"], spec["train"]
    p = leaves(stio.load_all(f"{data}/model.safetensors"))
    inputs = stio.load_all(f"{data}/train.safetensors")
    pixels, labels, head = inputs["pixels"], inputs["labels"].long(), inputs["head"]
    params = list(p.values())
    opt = torch.optim.AdamW(params, lr=s["lr"], weight_decay=s["weightDecay"])

    def step():
        opt.zero_grad(set_to_none=True)
        logits = vit.head_logits(head, s["logitScale"], vit.features(p, cfg, pixels))
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, s["clipNorm"])
        opt.step()
        return loss.item()

    return timed(step, steps, warmup, with_profile)


def ri_step(spec, data, steps, warmup, with_profile):
    """One step of the RI trainer (lib/ri/trainer.ts with riLoss, KL): the batch the trainer's
    seeded order picks (the order is in the data), θ0 + τ' forward, logits under every head,
    KL to the cached targets (own + α/(N−1) Σ others), backward, AdamW (no clipping)."""
    cfg, s = spec["config"], spec["ri"]
    base = stio.load_all(f"{data}/model.safetensors")
    inputs = stio.load_all(f"{data}/ri.safetensors")
    tau = leaves({n: inputs[f"tau.{n}"] for n in base})
    aux = inputs["aux"]
    heads = [inputs[f"head.{j}"] for j in range(len(s["classes"]))]
    targets = [inputs[f"target.{j}"] for j in range(len(s["classes"]))]
    order = inputs["order"].long()
    opt = torch.optim.AdamW(list(tau.values()), lr=s["lr"], weight_decay=s["weightDecay"])
    own, n, batch = s["own"], len(heads), s["batch"]
    per_epoch = aux.shape[0] // batch
    counter = [0]

    def step():
        epoch, k = divmod(counter[0], per_epoch)
        counter[0] += 1
        idx = order[epoch % order.shape[0], k * batch:(k + 1) * batch]
        x = aux[idx]
        batch_targets = [t[idx] for t in targets]
        opt.zero_grad(set_to_none=True)
        params = {name: base[name] + tau[name] for name in base}
        f = vit.features(params, cfg, x)
        kls = [vit.kl(batch_targets[j], vit.head_logits(heads[j], s["logitScale"], f))
               for j in range(n)]
        others = sum(kls[j] for j in range(n) if j != own)
        loss = kls[own] + s["alpha"] / (n - 1) * others
        loss.backward()
        opt.step()
        return loss.item()

    return timed(step, steps, warmup, with_profile)


def evaluate(spec, data, steps, warmup, with_profile):
    """lib/train's accuracy: forward in passes of spec.eval.batch images, arg-max of the head's
    logits against the labels; returns the number correct."""
    cfg, s = spec["config"], spec["eval"]
    p = stio.load_all(f"{data}/merged.safetensors")
    inputs = stio.load_all(f"{data}/eval.safetensors")
    pixels, labels, head = inputs["pixels"], inputs["labels"].long(), inputs["head"]

    def step():
        correct = 0
        with torch.inference_mode():
            for start in range(0, pixels.shape[0], s["batch"]):
                x = pixels[start:start + s["batch"]]
                logits = vit.head_logits(head, s["logitScale"], vit.features(p, cfg, x))
                correct += int((logits.argmax(1) == labels[start:start + s["batch"]]).sum())
        return float(correct)

    return timed(step, steps, warmup, with_profile)


def merge(method, data, out):
    meta = json.load(open(f"{data}/merge/layout.json"))
    experts = [f"{data}/merge/{e}" for e in meta["experts"]]
    cpu0, t0, others = time.process_time(), time.perf_counter(), others_meter()
    phases = merges.METHODS[method](f"{data}/merge/{meta['base']}", experts, out)
    wall = (time.perf_counter() - t0) * 1000
    TIMED["others_cores"] = others()
    return [wall], (time.process_time() - cpu0) * 1000, phases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {"side": "pytorch", "workload": args.workload, "threads": torch.get_num_threads(),
              "version": torch.__version__}
    if args.workload.startswith("merge_"):
        walls, cpu, phases = merge(args.workload[len("merge_"):], args.data, args.out)
        result.update(times_ms=walls, cpu_ms=cpu, phases=phases)
    else:
        # ri_step_b32 is ri_step on the ViT-B/32-geometry data (the harness gives that directory)
        base = args.workload[:-len("_b32")] if args.workload.endswith("_b32") else args.workload
        run = {"vit_train": vit_train, "ri_step": ri_step, "eval": evaluate}[base]
        spec = json.load(open(f"{args.data}/spec.json"))
        walls, cpu, first, last, prof = run(spec, args.data, args.steps, max(args.warmup, 1),
                                            args.profile)
        result.update(times_ms=walls, cpu_ms=cpu, check={"first": first, "last": last})
        if prof:
            result["profile"] = prof
    result["peak_mib"] = peak_mib()
    result.update(TIMED)
    print(json.dumps(result))


main()
