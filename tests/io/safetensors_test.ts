import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { SafetensorsReader, writeSafetensors } from "../../lib/io/safetensors.ts";
import { openSafetensors } from "../../lib/io/safetensors_checkpoint.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";

Deno.test("safetensors round-trips F32, F16, BF16 and F64 with metadata", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/a.safetensors`;
  const values = new Float32Array([0, 1, -2.5, 0.333251953125, 65504, -1e-7]);
  await writeSafetensors(path, [
    { name: "f32", shape: [2, 3], data: values },
    { name: "f16", shape: [6], data: values, dtype: "F16" },
    { name: "bf16", shape: [3, 2], data: values, dtype: "BF16" },
    { name: "f64", shape: [6], data: () => values, dtype: "F64" },
  ], { metadata: { format: "pt", note: "x" } });
  using file = await SafetensorsReader.open(path);
  deepStrictEqual(file.metadata, { format: "pt", note: "x" });
  deepStrictEqual(file.names(), ["f32", "f16", "bf16", "f64"]);
  deepStrictEqual(await file.read("f32"), values);
  deepStrictEqual(await file.read("f64"), values);
  const half = await file.read("f16");
  for (let i = 0; i < 5; i++) assert(Math.abs(half[i] - values[i]) <= Math.abs(values[i]) * 1e-3);
  equal(file.info("bf16").dtype, "BF16");
  deepStrictEqual(file.info("bf16").shape, [3, 2]);
});

/** Values that exercise rounding: ties, subnormals, the edges of F16's range, signed zero. */
const TRICKY = [
  0,
  -0,
  1,
  -2.5,
  1 / 3,
  Math.PI,
  1e-3,
  -7.25e-5,
  6e-8,
  3e-5,
  65504,
  -65519,
  1 + 2 ** -11,
  1 + 3 * 2 ** -11,
  1 + 2 ** -8,
  1 + 3 * 2 ** -8,
  1e30,
  -3.0e38,
  2 ** -130,
];

/** Five [3, 2] tensors written here as BF16 shards of at most 30 bytes. */
const SHARDED = Object.fromEntries(
  Array.from({ length: 5 }, (_, i) => [
    `blocks.${i}.w`,
    { shape: [3, 2], data: Float32Array.from({ length: 6 }, (_, j) => Math.cos(i * 6 + j)) },
  ]),
);

const MATRIX = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));

/**
 * One Python process (torch starts slowly) that reads what this module wrote, with struct, json
 * and torch.frombuffer only (tests/py/st.py), and writes files for this module to read.
 * argv: directory. Reads ours.safetensors and sharded/; writes theirs.safetensors and hf/.
 */
const INTEROP = `
import sys, os, json, st, torch
d = sys.argv[1]
res = {}

# 1. Our single file: PyTorch rounds the exact F32 values itself; our bytes must match its bits.
t, m = st.load(os.path.join(d, "ours.safetensors"))
bits = lambda x: x.view(torch.int16) if x.element_size() == 2 else x
same = lambda a, b: a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits(a), bits(b))
res["ours"] = {"f16": same(t["f16"], t["f32_f16"].half()), "bf16": same(t["bf16"], t["f32"].bfloat16()),
               "f64": same(t["f64"], t["f32"].double()), "m": t["m"].flatten().tolist(),
               "shape": list(t["m"].shape), "dtypes": {k: str(v.dtype) for k, v in t.items()}, "meta": m}

# 2. Our sharded checkpoint, through its index.
index = json.load(open(os.path.join(d, "sharded", "model.safetensors.index.json")))
vals, total, metas = {}, 0, []
for name, shard in index["weight_map"].items():
    t, m = st.load(os.path.join(d, "sharded", shard))
    metas.append(m)
    vals[name] = t[name].float().flatten().tolist()
    total += t[name].numel() * t[name].element_size()
res["sharded"] = {"values": vals, "total": total, "meta": index["metadata"], "shard_meta": metas}

# 3. A single file written by PyTorch.
torch.manual_seed(0)
tricky = torch.tensor(${JSON.stringify(TRICKY)}, dtype=torch.float64)
t = {"a": torch.randn(4, 5), "b": torch.randn(7).half(), "c": torch.randn(2, 2).bfloat16(),
     "d": torch.randn(3).double(), "i": torch.arange(5), "e": torch.zeros(0, 3), "s": torch.tensor(2.5),
     "t16": tricky.clamp(-65504, 65504).half(), "tb16": tricky.bfloat16(), "t64": tricky}
st.save(os.path.join(d, "theirs.safetensors"), t, {"src": "torch", "format": "pt"})
res["theirs"] = {"values": {k: v.double().flatten().tolist() for k, v in t.items()},
                 "shapes": {k: list(v.shape) for k, v in t.items()}}

# 4. A sharded checkpoint in the Hugging Face layout (weight_map sorted by name).
hf = os.path.join(d, "hf")
os.makedirs(hf)
t = {"embed.weight": torch.randn(6, 4), "layer.0.bias": torch.randn(4).half(), "head.weight": torch.randn(2, 4)}
shards = {"model-00001-of-00002.safetensors": ["embed.weight"],
          "model-00002-of-00002.safetensors": ["head.weight", "layer.0.bias"]}
wm = {}
for shard, names in shards.items():
    st.save(os.path.join(hf, shard), {n: t[n] for n in names}, {"format": "pt"})
    wm.update({n: shard for n in names})
json.dump({"metadata": {"total_size": 136}, "weight_map": dict(sorted(wm.items()))},
          open(os.path.join(hf, "model.safetensors.index.json"), "w"))
res["hf"] = {k: v.double().flatten().tolist() for k, v in t.items()}
print(json.dumps(res))
`;

async function writeOurs(dir: string): Promise<void> {
  const f16Safe = Float32Array.from(TRICKY.filter((v) => Math.abs(v) < 65520));
  const all = Float32Array.from(TRICKY);
  await writeSafetensors(`${dir}/ours.safetensors`, [
    { name: "f32", shape: [all.length], data: all },
    { name: "f32_f16", shape: [f16Safe.length], data: f16Safe },
    { name: "f16", shape: [f16Safe.length], data: f16Safe, dtype: "F16" },
    { name: "bf16", shape: [all.length], data: all, dtype: "BF16" },
    { name: "f64", shape: [all.length], data: all, dtype: "F64" },
    { name: "m", shape: [3, 4], data: MATRIX },
  ], { metadata: { who: "deno", format: "pt", empty: "" } });
  await writeCheckpoint(`${dir}/sharded`, new MemorySource("toy", SHARDED), {
    dtype: "BF16",
    maxShardBytes: 30,
    metadata: { format: "pt" },
  });
}

Deno.test("PyTorch interop in both directions (one Python process)", async (t) => {
  await using dir = await tempDir();
  await writeOurs(dir.path);
  const py = JSON.parse(await runPython(INTEROP, [dir.path]));

  await t.step("a file written here reads in PyTorch: F32, F16, BF16, F64 and metadata", () => {
    const got = py.ours;
    deepStrictEqual([got.f16, got.bf16, got.f64], [true, true, true]); // bit-identical rounding
    deepStrictEqual(got.dtypes, {
      f32: "torch.float32",
      f32_f16: "torch.float32",
      f16: "torch.float16",
      bf16: "torch.bfloat16",
      f64: "torch.float64",
      m: "torch.float32",
    });
    deepStrictEqual(got.meta, { who: "deno", format: "pt", empty: "" });
    deepStrictEqual(got.shape, [3, 4]);
    deepStrictEqual(Float32Array.from(got.m), MATRIX);
  });

  await t.step("a sharded checkpoint written here reads in PyTorch through its index", () => {
    const got = py.sharded;
    equal(got.total, 5 * 6 * 2);
    const id = (got.meta as Record<string, string>).write_id; // every shard carries the index's
    assert(/^[0-9a-f]{8}$/.test(id), `write id ${id}`);
    deepStrictEqual(got.meta, { format: "pt", write_id: id, total_size: 60 });
    for (const m of got.shard_meta) deepStrictEqual(m, { format: "pt", write_id: id });
    deepStrictEqual(Object.keys(got.values), Object.keys(SHARDED));
    for (const [name, tensor] of Object.entries(SHARDED)) {
      const close = (got.values[name] as number[]).every((v, k) =>
        Math.abs(v - tensor.data[k]) <= Math.abs(tensor.data[k]) * 2 ** -8
      );
      assert(close, name);
    }
  });

  await t.step("a file written by PyTorch reads here: all dtypes, integers, metadata", async () => {
    const expected = py.theirs as {
      values: Record<string, number[]>;
      shapes: Record<string, number[]>;
    };
    using file = await SafetensorsReader.open(`${dir.path}/theirs.safetensors`);
    deepStrictEqual(file.metadata, { src: "torch", format: "pt" });
    deepStrictEqual(file.names(), Object.keys(expected.values));
    deepStrictEqual(
      Object.fromEntries(file.names().map((n) => [n, file.info(n).dtype])),
      {
        a: "F32",
        b: "F16",
        c: "BF16",
        d: "F64",
        i: "I64",
        e: "F32",
        s: "F32",
        t16: "F16",
        tb16: "BF16",
        t64: "F64",
      },
    );
    for (const [name, values] of Object.entries(expected.values)) {
      deepStrictEqual(file.info(name).shape, expected.shapes[name], name);
      // Values come back from Python as doubles; F64 tensors are read as float32 here.
      deepStrictEqual(await file.read(name), Float32Array.from(values), name);
    }
  });

  await t.step("a sharded checkpoint in the Hugging Face layout reads here", async () => {
    using ckpt = await openSafetensors(`${dir.path}/hf/model.safetensors.index.json`);
    deepStrictEqual(ckpt.names(), ["embed.weight", "head.weight", "layer.0.bias"]);
    deepStrictEqual(ckpt.indexMetadata, { total_size: 136 });
    deepStrictEqual(ckpt.metadata, { format: "pt" });
    equal(ckpt.dtype("layer.0.bias"), "F16");
    for (const [name, values] of Object.entries(py.hf as Record<string, number[]>)) {
      deepStrictEqual(await ckpt.read(name), Float32Array.from(values), name);
    }
  });
});
