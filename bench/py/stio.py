"""Streaming safetensors I/O for the PyTorch side of the benchmark, written from the format
(8-byte little-endian header length, JSON header with dtype/shape/data_offsets, raw
little-endian data): a reader that loads one tensor at a time from its file offset (as
safetensors.safe_open(...).get_tensor does) and a writer that writes tensors as they are
computed. Float32 only, which is what the benchmark writes."""
import json
import os
import struct

import torch


class Reader:
    """One safetensors file, read tensor by tensor."""

    def __init__(self, path):
        self.path = path
        self.file = open(path, "rb", buffering=0)
        (n,) = struct.unpack("<Q", self.file.read(8))
        header = json.loads(self.file.read(n).decode("utf-8"))
        header.pop("__metadata__", None)
        self.start = 8 + n
        self.entries = header
        # file order (by offset), as the TypeScript side lists names
        self.names = sorted(header, key=lambda k: header[k]["data_offsets"][0])

    def shape(self, name):
        return self.entries[name]["shape"]

    def get(self, name):
        e = self.entries[name]
        if e["dtype"] != "F32":
            raise ValueError(f"{self.path}: {name} is {e['dtype']}, expected F32")
        begin, end = e["data_offsets"]
        buf = bytearray(end - begin)
        self.file.seek(self.start + begin)
        view = memoryview(buf)
        done = 0
        while done < len(buf):
            got = self.file.readinto(view[done:])
            if not got:
                raise ValueError(f"{self.path}: {name} truncated")
            done += got
        t = torch.frombuffer(buf, dtype=torch.float32) if buf else torch.zeros(0)
        return t.reshape(e["shape"])

    def close(self):
        self.file.close()


def load_all(path):
    """Every tensor of a (small) file, by name."""
    r = Reader(path)
    try:
        return {name: r.get(name) for name in r.names}
    finally:
        r.close()


class Writer:
    """Writes float32 tensors in a known order and layout, one at a time, to path (atomically:
    a temporary file renamed at the end)."""

    def __init__(self, path, layout, metadata=None):
        header, offset = {}, 0
        if metadata:
            header["__metadata__"] = metadata
        for name, shape in layout:
            size = 4
            for d in shape:
                size *= d
            header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        h = json.dumps(header).encode("utf-8")
        h += b" " * (-len(h) % 8)
        self.path = path
        self.tmp = f"{path}.tmp{os.getpid()}"
        self.file = open(self.tmp, "wb")
        self.file.write(struct.pack("<Q", len(h)) + h)

    def write(self, tensor):
        self.file.write(memoryview(tensor.detach().contiguous().reshape(-1).numpy()).cast("B"))

    def close(self):
        self.file.close()
        os.replace(self.tmp, self.path)
