"""Writes PyTorch checkpoints with torch.save (and a few hostile or broken ones) for the
reader's tests, and a safetensors file (tests/py/st.py) with the float32 values expected.

usage: python3 torch_files.py OUT_DIR
"""
import collections
import io
import math
import os
import sys
import zipfile

import numpy as np
import torch

import st

out = sys.argv[1]
g = torch.Generator().manual_seed(0)

big = torch.randn(20, generator=g)
sd = collections.OrderedDict()
sd["f32"] = torch.randn(2, 3, generator=g)
sd["f32_t"] = sd["f32"].t()  # a non-contiguous view sharing f32's storage
sd["slice"] = big[5:9]  # a storage offset
sd["step"] = big[::4]  # a stride
sd["f16"] = torch.randn(3, 2, generator=g).half()
sd["f16_scalar"] = torch.tensor(3.5, dtype=torch.float16)
sd["bf16"] = torch.randn(4, generator=g).bfloat16()
sd["f64"] = torch.randn(2, 2, generator=g).double()
sd["i64"] = torch.arange(-2, 3)
sd["i32"] = torch.arange(4, dtype=torch.int32)
sd["u8"] = torch.arange(250, 256, dtype=torch.uint8)
sd["bool"] = torch.tensor([True, False, True])
sd["empty"] = torch.zeros(0, 4)
sd["param"] = torch.nn.Parameter(torch.randn(3, generator=g))
sd._metadata = collections.OrderedDict([("", {"version": 1})])
torch.save(sd, f"{out}/sd.pt")
st.save(f"{out}/sd_ref.safetensors", {k: v.detach().float().contiguous() for k, v in sd.items()})

torch.save({"epoch": 3, "name": "run", "lr": 1.5e-5, "flag": True, "nothing": None,
            "huge": 2 ** 70, "neg": -5, "raw": b"ab", "betas": (0.9, 0.999),
            "state_dict": {"w": torch.ones(2), "layers": [torch.zeros(1), {"b": torch.ones(3)}]}},
           f"{out}/nested.pt")


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {out}/PWNED",))


class EvilEval:
    def __reduce__(self):
        return (eval, (f"open('{out}/PWNED2', 'w')",))


torch.save({"w": torch.ones(2), "x": Evil()}, f"{out}/evil_system.pt")
torch.save({"w": torch.ones(2), "x": EvilEval()}, f"{out}/evil_eval.pt")
torch.save(torch.nn.Linear(2, 2), f"{out}/module.pt")
torch.save({"w": torch.ones(2), "acc": np.float64(0.5)}, f"{out}/numpy.pt")
torch.save(sd, f"{out}/legacy.pt", _use_new_zipfile_serialization=False)


def rewrite(src, dst, compression=zipfile.ZIP_STORED, patch=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if patch and info.filename.endswith("data.pkl"):
                data = patch(data)
            zout.writestr(info.filename, data)


rewrite(f"{out}/sd.pt", f"{out}/deflated.pt", zipfile.ZIP_DEFLATED)
torch.save({"a": torch.arange(6.0).reshape(2, 3)}, f"{out}/small.pt")
rewrite(f"{out}/small.pt", f"{out}/oob.pt",
        patch=lambda b: b.replace(b"K\x02K\x03\x86", b"K\x04K\x03\x86", 1))
with open(f"{out}/sd.pt", "rb") as f:
    whole = f.read()
with open(f"{out}/truncated.pt", "wb") as f:
    f.write(whole[: len(whole) // 2])
