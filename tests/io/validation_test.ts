import { ok as assert, rejects } from "node:assert/strict";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { CheckpointError } from "../../lib/io/errors.ts";
import { tempDir } from "../helpers/temp.ts";
import { f32Bytes, writeRaw } from "./raw_file.ts";

/** Asserts that `work` fails with a CheckpointError whose message holds every fragment. */
async function failsWith(work: Promise<unknown>, fragments: string[]): Promise<void> {
  await rejects(work, (err: Error) => {
    assert(err instanceof CheckpointError, `expected a CheckpointError, got ${err}`);
    for (const f of fragments) assert(err.message.includes(f), `"${f}" not in: ${err.message}`);
    return true;
  });
}

const entry = (dtype: string, shape: number[], begin: number, end: number) => ({
  dtype,
  shape,
  data_offsets: [begin, end],
});

Deno.test("validation: header length past the end of the file", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/long.safetensors`;
  await writeRaw(path, { w: entry("F32", [1], 0, 4) }, f32Bytes([1]), 1000);
  await failsWith(SafetensorsReader.open(path), [path, "header length 1000", "past the end"]);
});

Deno.test("validation: a file shorter than the length field", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/tiny.safetensors`;
  await Deno.writeFile(path, new Uint8Array(5));
  await failsWith(SafetensorsReader.open(path), [path, "5 bytes", "8-byte header length"]);
});

Deno.test("validation: invalid JSON header", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/json.safetensors`;
  await writeRaw(
    path,
    '{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]',
    f32Bytes([1]),
  );
  await failsWith(SafetensorsReader.open(path), [path, "not valid JSON"]);
});

Deno.test("validation: a header that is JSON but not an object", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/array.safetensors`;
  await writeRaw(path, "[1, 2]");
  await failsWith(SafetensorsReader.open(path), [path, "not a JSON object"]);
});

Deno.test("validation: unknown dtype", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/dtype.safetensors`;
  await writeRaw(path, { w: entry("F8_E4M3", [4], 0, 4) }, new Uint8Array(4));
  await failsWith(SafetensorsReader.open(path), [path, 'tensor "w"', 'unknown dtype "F8_E4M3"']);
});

Deno.test("validation: offsets out of range of the data section", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/range.safetensors`;
  const header = { a: entry("F32", [1], 0, 4), b: entry("F32", [2], 4, 12) };
  await writeRaw(path, header, f32Bytes([1, 2]));
  await failsWith(SafetensorsReader.open(path), [
    path,
    'tensor "b"',
    "data_offsets [4, 12] run past the end of the data section (8 bytes",
  ]);
});

Deno.test("validation: offsets that are not [begin, end]", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/order.safetensors`;
  await writeRaw(path, { w: entry("F32", [1], 4, 0) }, f32Bytes([1]));
  await failsWith(SafetensorsReader.open(path), [path, 'tensor "w"', "begin ≤ end"]);
});

Deno.test("validation: overlapping tensors", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/overlap.safetensors`;
  const header = { a: entry("F32", [2], 0, 8), b: entry("F32", [2], 4, 12) };
  await writeRaw(path, header, f32Bytes([1, 2, 3]));
  await failsWith(SafetensorsReader.open(path), [path, 'tensor "b"', 'overlap tensor "a"']);
});

Deno.test("validation: a gap between tensors", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/gap.safetensors`;
  const header = { a: entry("F32", [1], 0, 4), b: entry("F32", [1], 8, 12) };
  await writeRaw(path, header, f32Bytes([1, 2, 3]));
  await failsWith(SafetensorsReader.open(path), [path, 'tensor "b"', "gap", "start at 4"]);
});

Deno.test("validation: bytes at the end that belong to no tensor", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/tail.safetensors`;
  await writeRaw(path, { a: entry("F32", [1], 0, 4) }, f32Bytes([1, 2]));
  await failsWith(SafetensorsReader.open(path), [path, "cover 4 bytes", "has 8", "no tensor"]);
});

Deno.test("validation: byte length differs from shape × dtype size", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/size.safetensors`;
  await writeRaw(path, { w: entry("F16", [2, 3], 0, 8) }, new Uint8Array(8));
  await failsWith(SafetensorsReader.open(path), [
    path,
    'tensor "w"',
    "holds 8 bytes but shape [2, 3] × F16 (2 B) needs 12",
  ]);
});

Deno.test("validation: bad shapes", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/shape.safetensors`;
  await writeRaw(path, { w: entry("F32", [-1], 0, 0) });
  await failsWith(SafetensorsReader.open(path), [path, 'tensor "w"', "non-negative integers"]);
});

Deno.test("validation: duplicate names", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/dup.safetensors`;
  const one = JSON.stringify(entry("F32", [1], 0, 4));
  const two = JSON.stringify(entry("F32", [1], 4, 8));
  await writeRaw(path, `{"w": ${one}, "v": {"nested": {"w": 1}}, "w": ${two}}`, f32Bytes([1, 2]));
  await failsWith(SafetensorsReader.open(path), [path, 'tensor "w"', "appears twice"]);
});

Deno.test("validation: a name repeated only inside a nested object is not a duplicate", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/nested.safetensors`;
  const header = { __metadata__: { w: "x" }, w: entry("F32", [1], 0, 4) };
  await writeRaw(path, header, f32Bytes([7]));
  using file = await SafetensorsReader.open(path);
  assert((await file.read("w"))[0] === 7);
});

Deno.test("validation: metadata must be strings", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/meta.safetensors`;
  await writeRaw(path, { __metadata__: { total: 3 }, w: entry("F32", [1], 0, 4) }, f32Bytes([1]));
  await failsWith(SafetensorsReader.open(path), [path, '__metadata__ entry "total"']);
});

Deno.test("validation: a truncated file names the tensor that runs past its end", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/cut.safetensors`;
  const header = { a: entry("F32", [2], 0, 8), b: entry("F32", [4], 8, 24) };
  await writeRaw(path, header, f32Bytes([1, 2, 3, 4, 5, 6]).subarray(0, 20));
  await failsWith(SafetensorsReader.open(path), [path, 'tensor "b"', "truncated"]);
});

Deno.test("validation: a file truncated after opening fails on read, naming the tensor", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/shrunk.safetensors`;
  await writeRaw(path, { a: entry("F32", [4], 0, 16) }, f32Bytes([1, 2, 3, 4]));
  using file = await SafetensorsReader.open(path);
  await Deno.truncate(path, (await Deno.stat(path)).size - 6);
  await failsWith(file.read("a"), [path, 'tensor "a"', "truncated"]);
});

Deno.test("validation: NaN and infinities are rejected on read unless allowed", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/nan.safetensors`;
  const half = new Uint8Array(new Uint16Array([0x3c00, 0x7c00]).buffer); // 1, +Inf in F16
  const bf16 = new Uint8Array(new Uint16Array([0x7fc0]).buffer); // NaN in BF16
  const data = new Uint8Array([...f32Bytes([1, -Infinity, 2]), ...half, ...bf16]);
  const header = {
    f32: entry("F32", [3], 0, 12),
    f16: entry("F16", [2], 12, 16),
    bf16: entry("BF16", [1], 16, 18),
  };
  await writeRaw(path, header, data);
  using file = await SafetensorsReader.open(path);
  await failsWith(file.read("f32"), [path, 'tensor "f32"', "-Infinity at flat index 1"]);
  await failsWith(file.read("f16"), [path, 'tensor "f16"', "Infinity at flat index 1"]);
  await failsWith(file.read("bf16"), [path, 'tensor "bf16"', "NaN at flat index 0"]);
  const allowed = await file.read("f32", { allowNonFinite: true });
  assert(allowed[1] === -Infinity && allowed[2] === 2);
});

Deno.test("validation: a missing file is named", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/absent.safetensors`;
  await failsWith(SafetensorsReader.open(path), [path, "cannot open"]);
});
