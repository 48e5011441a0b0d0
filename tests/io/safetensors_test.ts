import { deepStrictEqual, equal, ok as assert, rejects } from "node:assert/strict";
import { SafetensorsReader, writeSafetensors } from "../../lib/io/safetensors.ts";
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

Deno.test("a file written here reads in PyTorch with the same values", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/b.safetensors`;
  const data = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i) * 3);
  await writeSafetensors(path, [
    { name: "w", shape: [3, 4], data },
    { name: "h", shape: [12], data, dtype: "BF16" },
  ], { metadata: { who: "deno" } });
  const out = await runPython(
    `import sys, st, torch, json
t, m = st.load(sys.argv[1])
print(json.dumps({"w": t["w"].flatten().tolist(), "h": t["h"].float().flatten().tolist(),
                  "shape": list(t["w"].shape), "meta": m}))`,
    [path],
  );
  const got = JSON.parse(out);
  deepStrictEqual(got.shape, [3, 4]);
  deepStrictEqual(got.meta, { who: "deno" });
  deepStrictEqual(Float32Array.from(got.w), data);
  using file = await SafetensorsReader.open(path);
  deepStrictEqual(Float32Array.from(got.h), await file.read("h"));
});

Deno.test("a file written by PyTorch reads here with the same values", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/c.safetensors`;
  const out = await runPython(
    `import sys, st, torch, json
torch.manual_seed(0)
t = {"a": torch.randn(4, 5), "b": torch.randn(7).half(), "c": torch.randn(2, 2).bfloat16(),
     "d": torch.randn(3).double(), "i": torch.arange(5)}
st.save(sys.argv[1], t, {"src": "torch"})
print(json.dumps({k: v.float().flatten().tolist() for k, v in t.items()}))`,
    [path],
  );
  const expected = JSON.parse(out) as Record<string, number[]>;
  using file = await SafetensorsReader.open(path);
  equal(file.metadata.src, "torch");
  for (const [name, values] of Object.entries(expected)) {
    deepStrictEqual(await file.read(name), Float32Array.from(values), name);
  }
});

Deno.test("a header length past the end of the file is named in the error", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/bad.safetensors`;
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
  await Deno.writeFile(path, bytes);
  await rejects(SafetensorsReader.open(path), (err: Error) => {
    assert(err.message.includes(path) && err.message.includes("past the end"), err.message);
    return true;
  });
});
