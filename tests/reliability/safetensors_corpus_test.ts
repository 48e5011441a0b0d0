/**
 * A corpus of malformed safetensors files, generated here, one family per way a file can be
 * broken: each must end in a CheckpointError whose message starts with the file's path, names
 * the tensor at fault where there is one, and says what is wrong. Misaligned offsets are the
 * exception: they are valid (other writers do not align) and must read correctly.
 */
import { ok as assert, rejects } from "node:assert/strict";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { CheckpointError } from "../../lib/io/errors.ts";
import { openCheckpoint } from "../../lib/io/open.ts";
import { tempDir } from "../helpers/temp.ts";
import { buildFile, checkFile, overwrite, type RawTensor, seedFiles } from "./safetensors_fuzz.ts";
import { judge, specDecode } from "./safetensors_oracle.ts";
import { AllocationLimitError, installAllocationProbe } from "./alloc_probe.ts";
import { Rng } from "../../lib/tensor/random.ts";

/** Asserts a CheckpointError for `path` (and `tensor`) whose message holds every fragment. */
async function failsWith(
  work: Promise<unknown>,
  path: string,
  tensor: string | undefined,
  fragments: string[] = [],
): Promise<CheckpointError> {
  let caught: CheckpointError | undefined;
  await rejects(work, (err: Error) => {
    assert(err instanceof CheckpointError, `expected a CheckpointError, got ${err.stack}`);
    assert(err.message.startsWith(path), `file not named first: ${err.message}`);
    assert(err.tensor === tensor, `expected tensor ${tensor}, got ${err.tensor}: ${err.message}`);
    if (tensor !== undefined) assert(err.message.includes(`tensor "${tensor}"`), err.message);
    for (const f of fragments) assert(err.message.includes(f), `"${f}" not in: ${err.message}`);
    caught = err;
    return true;
  });
  return caught!;
}

/** Opens `path` and reads every tensor (so read-time faults surface too). */
async function openAndRead(path: string): Promise<void> {
  using file = await SafetensorsReader.open(path);
  for (const name of file.names()) await file.read(name);
}

const f32 = (name: string, values: number[]): RawTensor => ({
  name,
  dtype: "F32",
  shape: [values.length],
  bytes: new Uint8Array(new Float32Array(values).buffer),
});

/** Header text and data as a file (the length field tells the truth unless given). */
function rawFile(header: unknown, data = new Uint8Array(0), length?: bigint): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const entry = (dtype: unknown, shape: unknown, offsets: unknown) => ({
  dtype,
  shape,
  data_offsets: offsets,
});

Deno.test("corpus: truncated at every offset, each names the file and the cut tensor", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/cut.safetensors`;
  using out = await Deno.open(path, { write: true, create: true });
  for (const seed of await seedFiles()) {
    const verdict = judge(seed.bytes);
    assert(verdict.valid);
    const dataStart = Math.min(...verdict.tensors.map((t) => t.start), seed.bytes.length);
    const byOffset = [...verdict.tensors].sort((a, b) => a.start - b.start || a.end - b.end);
    for (let cut = 0; cut < seed.bytes.length; cut++) {
      overwrite(out, seed.bytes.subarray(0, cut));
      if (cut < 8) {
        await failsWith(openAndRead(path), path, undefined, ["shorter than the 8-byte"]);
      } else if (cut < dataStart || verdict.tensors.length === 0) {
        await failsWith(openAndRead(path), path, undefined, ["runs past the end of the file"]);
      } else {
        const cutTensor = byOffset.find((t) => t.end > cut)!.name;
        await failsWith(openAndRead(path), path, cutTensor, ["truncated?"]);
      }
    }
  }
});

Deno.test("corpus: a header length that lies, by every small amount and absurdly", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/length.safetensors`;
  const [mixed] = await seedFiles();
  const truth = new DataView(mixed.bytes.buffer).getBigUint64(0, true);
  const lies = [0n, 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, 100_000_001n];
  for (let n = 0n; n < BigInt(mixed.bytes.length) + 16n; n++) if (n !== truth) lies.push(n);
  using probe = installAllocationProbe();
  for (const n of lies) {
    const bytes = mixed.bytes.slice();
    new DataView(bytes.buffer).setBigUint64(0, n, true);
    await Deno.writeFile(path, bytes);
    probe.limit = bytes.length; // the header buffer must never exceed the file
    await rejects(openAndRead(path), (err: Error) => {
      assert(!(err instanceof AllocationLimitError), `length ${n}: ${err.message}`);
      assert(err instanceof CheckpointError && err.message.startsWith(path), `${n}: ${err}`);
      return true;
    });
    probe.limit = Infinity;
  }
});

Deno.test("corpus: headers that are not UTF-8 JSON objects", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/json.safetensors`;
  const good = JSON.stringify({ w: entry("F32", [1], [0, 4]) });
  const data = new Uint8Array(4);
  const cases: [string | Uint8Array, string][] = [
    ["", "not valid JSON"],
    [good.slice(0, -1), "not valid JSON"],
    [good.replace("}}", "},}"), "not valid JSON"],
    [good.replaceAll('"', "'"), "not valid JSON"],
    [`/* c */${good}`, "not valid JSON"],
    [good.replace("[0, 4]", "[0, NaN]").replace("[0,4]", "[0,NaN]"), "not valid JSON"],
    ["[1, 2]", "not a JSON object"],
    ["null", "not a JSON object"],
    ['"text"', "not a JSON object"],
    ["42", "not a JSON object"],
    [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), "not valid UTF-8"],
    [new Uint8Array([0x7b, 0xc3, 0x7d]), "not valid UTF-8"],
  ];
  for (const [header, problem] of cases) {
    const json = typeof header === "string" ? new TextEncoder().encode(header) : header;
    const bytes = new Uint8Array(8 + json.length + data.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    await Deno.writeFile(path, bytes);
    await failsWith(openAndRead(path), path, undefined, [problem]);
  }
});

Deno.test("corpus: unknown or malformed dtypes name the tensor and list the known ones", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/dtype.safetensors`;
  for (const dtype of ["F8_E4M3", "f32", "float32", "", 4, null, undefined, ["F32"]]) {
    await Deno.writeFile(path, rawFile({ w: entry(dtype, [1], [0, 4]) }, new Uint8Array(4)));
    await failsWith(openAndRead(path), path, "w", ["unknown dtype", "expected one of F64,F32"]);
  }
});

Deno.test("corpus: entries that are not objects", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/entry.safetensors`;
  for (const value of [null, 3, "F32"]) {
    await Deno.writeFile(path, rawFile({ w: value }));
    await failsWith(openAndRead(path), path, "w", ["entry is not an object"]);
  }
});

Deno.test("corpus: offsets that overlap, leave gaps, run out of range or are malformed", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/offsets.safetensors`;
  const data = new Uint8Array(16);
  const two = (a: unknown, b: unknown) => ({
    a: entry("F32", [2], a),
    b: entry("F32", [2], b),
  });
  const cases: [unknown, string, string][] = [
    [two([0, 8], [4, 12]), "b", 'overlap tensor "a"'],
    [two([0, 8], [0, 8]), "b", 'overlap tensor "a"'],
    [two([8, 16], [4, 12]), "b", "gap in the data section (expected it to start at 0)"],
    [two([0, 8], [12, 20]), "b", "run past the end of the data section (16 bytes"],
    [two([0, 8], [9, 17]), "b", "run past the end"],
    [two([0, 8], [2 ** 40, 2 ** 40 + 8]), "b", "run past the end"],
    [{ a: entry("F32", [2], [0, 8]), b: entry("F32", [1], [12, 16]) }, "b", "gap"],
    [two([0, 8], [8, 0]), "b", "begin ≤ end"],
    [two([0, 8], [8]), "b", "is not [begin, end]"],
    [two([0, 8], [8, 16, 16]), "b", "is not [begin, end]"],
    [two([0, 8], ["8", 16]), "b", "is not [begin, end]"],
    [two([0, 8], [8.5, 16.5]), "b", "is not [begin, end]"],
    [two([0, 8], [-8, 0]), "b", "is not [begin, end]"],
    [two([0, 8], [2 ** 53, 2 ** 53 + 8]), "b", "is not [begin, end]"],
    [two([0, 8], { begin: 8, end: 16 }), "b", "is not [begin, end]"],
    [{ a: entry("F32", [2], [0, 8]) }, "", "8 bytes at the end belong to no tensor"],
  ];
  for (const [header, tensor, problem] of cases) {
    await Deno.writeFile(path, rawFile(header, data));
    await failsWith(openAndRead(path), path, tensor || undefined, [problem]);
  }
});

Deno.test("corpus: misaligned offsets are accepted on purpose and read correctly", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/misaligned.safetensors`;
  const rng = new Rng(3);
  const values = (n: number) => Array.from({ length: n }, () => rng.normal());
  for (const pad of [1, 2, 3, 5, 6, 7]) {
    const tensors: RawTensor[] = [
      { name: "pad", dtype: "U8", shape: [pad], bytes: new Uint8Array(pad).fill(9) },
      f32("f32", values(5)),
      {
        name: "f64",
        dtype: "F64",
        shape: [3],
        bytes: new Uint8Array(new Float64Array(values(3)).buffer),
      },
      { name: "f16", dtype: "F16", shape: [2], bytes: new Uint8Array([0x00, 0x3c, 0x00, 0xc0]) },
      { name: "bf16", dtype: "BF16", shape: [1], bytes: new Uint8Array([0x80, 0x3f]) },
      {
        name: "i64",
        dtype: "I64",
        shape: [2],
        bytes: new Uint8Array(new BigInt64Array([-5n, 7n]).buffer),
      },
    ];
    const bytes = buildFile(tensors);
    await Deno.writeFile(path, bytes);
    const verdict = judge(bytes);
    assert(verdict.valid);
    using file = await SafetensorsReader.open(path);
    for (const t of verdict.tensors) {
      const got = [...await file.read(t.name)];
      const want = specDecode(bytes.subarray(t.start, t.end), t.dtype);
      assert(
        JSON.stringify(got) === JSON.stringify(want),
        `${t.name} at +${pad}: ${got} ≠ ${want}`,
      );
    }
  }
});

Deno.test("corpus: shape × dtype size ≠ bytes, bad shapes, counts past 2^53", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/shape.safetensors`;
  const data = new Uint8Array(8);
  const cases: [unknown, unknown, string][] = [
    ["F32", [3], "holds 8 bytes but shape [3] × F32 (4 B) needs 12"],
    ["F32", [1], "holds 8 bytes but shape [1] × F32 (4 B) needs 4"],
    ["F64", [2], "needs 16"],
    ["F16", [2, 3], "needs 12"],
    ["F32", [], "holds 8 bytes but shape [] × F32 (4 B) needs 4"],
    ["F32", [2, 0], "needs 0"],
    ["F32", [-2], "not a list of non-negative integers"],
    ["F32", [2.5], "not a list of non-negative integers"],
    ["F32", ["2"], "not a list of non-negative integers"],
    ["F32", [2 ** 53], "not a list of non-negative integers"],
    ["F32", 2, "not a list of non-negative integers"],
    ["F32", null, "not a list of non-negative integers"],
    ["F32", [2 ** 31, 2 ** 31, 2 ** 31], "has more than 2^53 elements"],
    // The reference implementation refuses an overflowing product even before a zero.
    ["F32", [2 ** 40, 2 ** 40, 0], "has more than 2^53 elements"],
    ["F32", [...Array(20).fill(2 ** 52), 0], "has more than 2^53 elements"],
  ];
  for (const [dtype, shape, problem] of cases) {
    await Deno.writeFile(path, rawFile({ w: entry(dtype, shape, [0, 8]) }, data));
    await failsWith(openAndRead(path), path, "w", [problem]);
  }
});

Deno.test("corpus: a huge tensor claimed by a small file fails before allocating", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/huge.safetensors`;
  const claims = [
    entry("F32", [2 ** 20, 2 ** 20], [0, 2 ** 42]),
    entry("F64", [2 ** 25], [0, 2 ** 28]),
    entry("U8", [2 ** 31], [0, 2 ** 31]),
  ];
  using probe = installAllocationProbe();
  for (const claim of claims) {
    const bytes = rawFile({ w: claim }, new Uint8Array(16));
    await Deno.writeFile(path, bytes);
    probe.reset();
    probe.limit = bytes.length;
    await failsWith(openAndRead(path), path, "w", ["run past the end"]);
    probe.limit = Infinity;
    assert(probe.stats.largest <= bytes.length, `allocated ${probe.stats.largest}`);
  }
});

Deno.test("corpus: repeated names, however they are spelled", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/dup.safetensors`;
  const one = JSON.stringify(entry("F32", [1], [0, 4]));
  const two = JSON.stringify(entry("F32", [1], [4, 8]));
  const data = new Uint8Array(8);
  const cases: [string, string][] = [
    [`{"w": ${one}, "w": ${two}}`, "w"],
    [`{"w": ${one}, "\\u0077": ${two}}`, "w"],
    [`{"a\\"b": ${one}, "a\\u0022b": ${two}}`, 'a"b'],
    [
      `{"w": ${one}, "x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8], "w": 1}, "w": 1}`,
      "w",
    ],
    [`{"__metadata__": {}, "w": ${one}, "v": ${two}, "__metadata__": {}}`, "__metadata__"],
  ];
  for (const [header, name] of cases) {
    await Deno.writeFile(path, rawFile(header, data));
    await failsWith(openAndRead(path), path, name, ["appears twice"]);
  }
});

Deno.test("corpus: metadata that is not an object of strings", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/meta.safetensors`;
  for (const meta of [[], "x", 3, null, { a: 1 }, { a: null }, { a: { b: "c" } }]) {
    await Deno.writeFile(path, rawFile({ __metadata__: meta }));
    await failsWith(openAndRead(path), path, undefined, ["__metadata__"]);
  }
});

Deno.test("corpus: NaN and ±Infinity in every float dtype name the tensor and the index", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/nonfinite.safetensors`;
  const u16 = (...v: number[]) => new Uint8Array(new Uint16Array(v).buffer);
  const cases: [RawTensor, number, string][] = [
    [f32("w", [1, NaN]), 1, "NaN"],
    [f32("w", [Infinity]), 0, "Infinity"],
    [f32("w", [0, 0, -Infinity]), 2, "-Infinity"],
    [{ name: "h", dtype: "F16", shape: [2], bytes: u16(0x3c00, 0x7e00) }, 1, "NaN"],
    [{ name: "h", dtype: "F16", shape: [1], bytes: u16(0xfc00) }, 0, "-Infinity"],
    [{ name: "b", dtype: "BF16", shape: [2], bytes: u16(0x3f80, 0x7f80) }, 1, "Infinity"],
    [{ name: "b", dtype: "BF16", shape: [1], bytes: u16(0xffc1) }, 0, "NaN"],
    [
      {
        name: "d",
        dtype: "F64",
        shape: [2],
        bytes: new Uint8Array(new Float64Array([1, NaN]).buffer),
      },
      1,
      "NaN",
    ],
    // Finite in F64 but beyond float32: the value the model would compute with is ±Infinity.
    [
      {
        name: "d",
        dtype: "F64",
        shape: [1],
        bytes: new Uint8Array(new Float64Array([-1e300]).buffer),
      },
      0,
      "-Infinity",
    ],
  ];
  for (const [tensor, index, value] of cases) {
    await Deno.writeFile(path, buildFile([f32("ok", [1]), tensor]));
    await failsWith(openAndRead(path), path, tensor.name, [
      `value ${value} at flat index ${index}`,
      "expected finite weights",
    ]);
    using file = await SafetensorsReader.open(path);
    const allowed = await file.read(tensor.name, { allowNonFinite: true });
    assert(!Number.isFinite(allowed[index]));
  }
});

Deno.test("corpus: paths that are not regular safetensors files", async () => {
  await using dir = await tempDir();
  await failsWith(openAndRead(dir.path), dir.path, undefined, ["cannot read", "directory"]);
  await failsWith(openAndRead("/dev/null"), "/dev/null", undefined, ["0 bytes"]);
  const missing = `${dir.path}/absent.safetensors`;
  await failsWith(openAndRead(missing), missing, undefined, ["cannot open"]);
  const path = `${dir.path}/closed.safetensors`;
  await Deno.writeFile(path, buildFile([f32("w", [1])]));
  const file = await SafetensorsReader.open(path);
  file.close();
  await failsWith(file.read("w"), path, "w", ["cannot read"]);
});

Deno.test("corpus: sharded checkpoints with a broken index or shard", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await Deno.writeFile(`${d}/s1.safetensors`, buildFile([f32("a", [1])]));
  await Deno.writeFile(`${d}/s2.safetensors`, buildFile([f32("b", [2])]));
  await Deno.writeFile(
    `${d}/bad.safetensors`,
    rawFile({ c: entry("F32", [1], [0, 8]) }, new Uint8Array(8)),
  );
  await Deno.mkdir(`${d}/folder.safetensors`);
  await Deno.writeFile(`${d}/s3.safetensors`, buildFile([f32("c", [1]), f32("d", [1])]));
  const index = `${d}/model.safetensors.index.json`;
  const map = (m: Record<string, unknown>) => JSON.stringify({ metadata: {}, weight_map: m });
  const cases: [string, string, string | undefined, string][] = [
    ["{", index, undefined, "not a readable JSON index"],
    ['{"metadata": {}}', index, undefined, "no weight_map object"],
    [JSON.stringify({ weight_map: [] }), index, undefined, "no weight_map object"],
    [
      JSON.stringify({ metadata: 3, weight_map: {} }),
      index,
      undefined,
      '"metadata" is not an object',
    ],
    [map({ a: "/abs/s1.safetensors" }), index, "a", "not a relative file name"],
    [map({ a: 7 }), index, "a", "not a relative file name"],
    [map({ a: "s1.safetensors", b: "gone.safetensors" }), index, "b", "does not exist"],
    [map({ a: "s1.safetensors", b: "s1.safetensors" }), index, "b", "has no such tensor"],
    [map({ a: "s2.safetensors", b: "s2.safetensors" }), index, "a", "has no such tensor"],
    [map({}), index, undefined, ""],
    [map({ c: "s3.safetensors" }), index, "d", "the index does not list it"],
    [
      map({ c: "s3.safetensors", d: "s1.safetensors" }),
      index,
      "d",
      'the index says "s1.safetensors"',
    ],
    [map({ c: "bad.safetensors" }), `${d}/bad.safetensors`, "c", "needs 4"],
    [map({ x: "folder.safetensors" }), `${d}/folder.safetensors`, undefined, "cannot read"],
  ];
  for (const [text, file, tensor, problem] of cases) {
    await Deno.writeTextFile(index, text);
    if (problem === "") {
      using empty = await openCheckpoint(index); // an empty map is an empty checkpoint
      assert(empty.names().length === 0);
      continue;
    }
    await failsWith(openCheckpoint(index), file, tensor, [problem]);
  }
});

Deno.test("corpus: the fuzz checker itself catches a reader whose values are wrong", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/checker.safetensors`;
  const written = buildFile([f32("w", [1, 2, 3])]);
  const claimed = buildFile([f32("w", [1, 2, 4])]);
  await Deno.writeFile(path, written);
  await rejects(checkFile(path, claimed, new Rng(0)), /"w"\[2\] = 3, the bytes say 4/);
  const invalid = rawFile({ w: entry("F32", [1], [0, 8]) }, new Uint8Array(8));
  await rejects(checkFile(path, invalid, new Rng(0)), /invalid file \(byte count\) opened/);
  await Deno.writeFile(path, invalid);
  await rejects(checkFile(path, written, new Rng(0)), /valid file refused/);
});
