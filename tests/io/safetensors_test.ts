import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { SafetensorsReader, writeSafetensors } from "../../lib/io/safetensors.ts";
import { openCheckpoint } from "../../lib/io/checkpoint.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { runPython, tempDir } from "../helpers/python.ts";

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

Deno.test("a file written here reads in PyTorch: F32, F16, BF16, F64 and metadata", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/b.safetensors`;
  const f16Safe = Float32Array.from(TRICKY.filter((v) => Math.abs(v) < 65520));
  const all = Float32Array.from(TRICKY);
  await writeSafetensors(path, [
    { name: "f32", shape: [all.length], data: all },
    { name: "f32_f16", shape: [f16Safe.length], data: f16Safe },
    { name: "f16", shape: [f16Safe.length], data: f16Safe, dtype: "F16" },
    { name: "bf16", shape: [all.length], data: all, dtype: "BF16" },
    { name: "f64", shape: [all.length], data: all, dtype: "F64" },
    { name: "m", shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)) },
  ], { metadata: { who: "deno", format: "pt", empty: "" } });
  // PyTorch rounds the exact F32 values itself; our bytes must be bit-identical to its.
  const out = await runPython(
    `import sys, st, torch, json
t, m = st.load(sys.argv[1])
same = lambda a, b: a.dtype == b.dtype and a.shape == b.shape and torch.equal(
    a.view(torch.int16 if a.element_size() == 2 else a.dtype), b.view(torch.int16 if b.element_size() == 2 else b.dtype))
print(json.dumps({
  "f16": same(t["f16"], t["f32_f16"].half()),
  "bf16": same(t["bf16"], t["f32"].bfloat16()),
  "f64": same(t["f64"], t["f32"].double()),
  "m": t["m"].flatten().tolist(), "shape": list(t["m"].shape),
  "dtypes": {k: str(v.dtype) for k, v in t.items()}, "meta": m}))`,
    [path],
  );
  const got = JSON.parse(out);
  deepStrictEqual({ f16: got.f16, bf16: got.bf16, f64: got.f64 }, {
    f16: true,
    bf16: true,
    f64: true,
  });
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
  deepStrictEqual(
    Float32Array.from(got.m),
    Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)),
  );
});

Deno.test("a file written by PyTorch reads here: F32, F16, BF16, F64, integers, metadata", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/c.safetensors`;
  const out = await runPython(
    `import sys, st, torch, json
torch.manual_seed(0)
tricky = torch.tensor(${JSON.stringify(TRICKY)}, dtype=torch.float64)
t = {"a": torch.randn(4, 5), "b": torch.randn(7).half(), "c": torch.randn(2, 2).bfloat16(),
     "d": torch.randn(3).double(), "i": torch.arange(5), "e": torch.zeros(0, 3),
     "t16": tricky.clamp(-65504, 65504).half(), "tb16": tricky.bfloat16(), "t64": tricky}
st.save(sys.argv[1], t, {"src": "torch", "format": "pt"})
print(json.dumps({"values": {k: v.double().flatten().tolist() for k, v in t.items()},
                  "shapes": {k: list(v.shape) for k, v in t.items()}}))`,
    [path],
  );
  const expected = JSON.parse(out) as {
    values: Record<string, number[]>;
    shapes: Record<string, number[]>;
  };
  using file = await SafetensorsReader.open(path);
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

Deno.test("a sharded checkpoint written here reads in PyTorch through its index", async () => {
  await using dir = await tempDir();
  const tensors = Object.fromEntries(
    Array.from({ length: 5 }, (_, i) => [
      `blocks.${i}.w`,
      { shape: [3, 2], data: Float32Array.from({ length: 6 }, (_, j) => Math.cos(i * 6 + j)) },
    ]),
  );
  const out = await writeCheckpoint(dir.path, new MemorySource("toy", tensors), {
    dtype: "BF16",
    maxShardBytes: 30,
    metadata: { format: "pt" },
  });
  const py = await runPython(
    `import sys, os, st, torch, json
index = json.load(open(sys.argv[1]))
d = os.path.dirname(sys.argv[1])
res, total = {}, 0
for name, shard in index["weight_map"].items():
    t, m = st.load(os.path.join(d, shard))
    assert m == {"format": "pt"}, m
    res[name] = t[name].float().flatten().tolist()
    total += t[name].numel() * t[name].element_size()
print(json.dumps({"values": res, "total": total, "meta": index["metadata"]}))`,
    [out.path],
  );
  const got = JSON.parse(py);
  equal(got.total, 5 * 6 * 2);
  deepStrictEqual(got.meta, { format: "pt", total_size: 60 });
  deepStrictEqual(Object.keys(got.values), Object.keys(tensors));
  for (const [name, t] of Object.entries(tensors)) {
    const close = (got.values[name] as number[]).every((v, k) =>
      Math.abs(v - t.data[k]) <= Math.abs(t.data[k]) * 2 ** -8
    );
    assert(close, name);
  }
});

Deno.test("a sharded checkpoint written by PyTorch in the Hugging Face layout reads here", async () => {
  await using dir = await tempDir();
  const out = await runPython(
    `import sys, os, st, torch, json
torch.manual_seed(1)
d = sys.argv[1]
t = {"embed.weight": torch.randn(6, 4), "layer.0.bias": torch.randn(4).half(), "head.weight": torch.randn(2, 4)}
shards = {"model-00001-of-00002.safetensors": ["embed.weight"],
          "model-00002-of-00002.safetensors": ["head.weight", "layer.0.bias"]}
wm = {}
for shard, names in shards.items():
    st.save(os.path.join(d, shard), {n: t[n] for n in names}, {"format": "pt"})
    wm.update({n: shard for n in names})
wm = dict(sorted(wm.items()))
json.dump({"metadata": {"total_size": 136}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
print(json.dumps({k: v.double().flatten().tolist() for k, v in t.items()}))`,
    [dir.path],
  );
  const expected = JSON.parse(out) as Record<string, number[]>;
  using ckpt = await openCheckpoint(dir.path);
  deepStrictEqual(ckpt.names(), ["embed.weight", "head.weight", "layer.0.bias"]);
  deepStrictEqual(ckpt.indexMetadata, { total_size: 136 });
  deepStrictEqual(ckpt.metadata, { format: "pt" });
  equal(ckpt.dtype("layer.0.bias"), "F16");
  for (const [name, values] of Object.entries(expected)) {
    deepStrictEqual(await ckpt.read(name), Float32Array.from(values), name);
  }
});
