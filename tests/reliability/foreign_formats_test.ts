/**
 * Files of another format given as a checkpoint are named as such, with what to do instead, and
 * every header and offset number is printed exactly (a double would round those above 2^53):
 * through `deno task merge` (one error line), through `openCheckpoint`, and through the
 * safetensors reader itself.
 */
import { equal, ok as assert, rejects } from "node:assert/strict";
import { join } from "node:path";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { openCheckpoint } from "../../lib/io/open.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { openTorchCheckpoint } from "../../lib/io/torch_zip.ts";
import { CheckpointError } from "../../lib/io/errors.ts";
import { randomModel, runMergeTask, tinyVitLayout, writeSource } from "../merge/fixtures.ts";

/** Real files of other formats (NumPy and PyTorch wrote them), and hand-made ones per spec. */
const WRITE_FOREIGN = `
import sys, struct, zipfile, numpy as np, torch
d = sys.argv[1]
np.save(f"{d}/array.npy", np.arange(6, dtype=np.float32))
np.savez(f"{d}/arrays.npz", a=np.zeros(3), b=np.ones(2))
torch.save({"w": torch.ones(2)}, f"{d}/legacy.pt", _use_new_zipfile_serialization=False)
torch.save({"w": torch.ones(2)}, f"{d}/zip.safetensors")  # a PyTorch ZIP under a safetensors name
# GGUF v3 with no tensors and no metadata: magic, version, tensor count, key-value count.
open(f"{d}/model.gguf", "wb").write(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
# HDF5's 8-byte signature, then a version-0 superblock's first bytes (h5py is not installed).
open(f"{d}/model.h5", "wb").write(b"\\x89HDF\\r\\n\\x1a\\n" + bytes(40))
# ONNX: a ModelProto with ir_version 7 and producer_name "test" (protobuf fields 1 and 2).
open(f"{d}/model.onnx", "wb").write(b"\\x08\\x07\\x12\\x04test")
# A state dict whose pickle claims a BINBYTES8 string of 2^63 bytes.
with zipfile.ZipFile(f"{d}/frame.pt", "w", zipfile.ZIP_STORED) as z:
    z.writestr("frame/data.pkl", b"\\x80\\x04\\x8e" + struct.pack("<Q", 2**63) + b"}.")
`;

const FOREIGN: [string, string][] = [
  ["array.npy", "is a NumPy .npy array file, not a checkpoint: save the arrays by name with"],
  ["arrays.npz", "is a NumPy .npz archive, not a checkpoint: save the arrays by name with"],
  ["legacy.pt", "a legacy (pre-1.6) torch.save file; load it in Python and save it again"],
  ["model.gguf", "is a GGUF file (llama.cpp), not a safetensors file"],
  ["model.h5", "is an HDF5 file (a Keras or TensorFlow .h5 model), not a safetensors file"],
  ["model.onnx", "is an ONNX model, not a safetensors file: save the original PyTorch model"],
];

/** A safetensors file with header `header` (and `data` zero bytes of data). */
async function safetensors(path: string, header: string, data = 0): Promise<string> {
  const json = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + json.length + data);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  await Deno.writeFile(path, bytes);
  return path;
}

/** A file whose 8-byte header length field holds `length`, followed by `{}`. */
async function claimedLength(path: string, length: bigint): Promise<string> {
  const bytes = new Uint8Array(10);
  new DataView(bytes.buffer).setBigUint64(0, length, true);
  bytes.set([0x7b, 0x7d], 8);
  await Deno.writeFile(path, bytes);
  return path;
}

async function failsWith(work: Promise<unknown>, file: string, says: string): Promise<void> {
  await rejects(work, (err: Error) => {
    assert(err instanceof CheckpointError, String(err));
    assert(err.message.startsWith(`${file}: `), err.message);
    assert(err.message.includes(says), `"${says}" not in: ${err.message}`);
    return true;
  });
}

Deno.test("files of another format are named, with what to do, by the merge command and the readers", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await runPython(WRITE_FOREIGN, [d]);
  const layout = tinyVitLayout();
  for (const e of [0, 1]) {
    await writeSource(join(d, `e${e}.safetensors`), randomModel(layout, 1, e));
  }
  for (const [name, says] of FOREIGN) {
    const path = join(d, name);
    await failsWith(openCheckpoint(path), path, says);
    const run = await runMergeTask([
      "--method",
      "task_arithmetic",
      "--base",
      path,
      "--experts",
      join(d, "e0.safetensors"),
      join(d, "e1.safetensors"),
      "--out",
      join(d, "out"),
    ]);
    equal(run.code, 1, run.stdout);
    const lines = run.stderr.trim().split("\n");
    equal(lines.length, 1, run.stderr);
    assert(lines[0].startsWith(`error: ${path}: `) && lines[0].includes(says), lines[0]);
  }
  // The safetensors reader names them too, the PyTorch formats included.
  await failsWith(
    SafetensorsReader.open(join(d, "legacy.pt")),
    join(d, "legacy.pt"),
    "is a Python pickle",
  );
  const zip = join(d, "zip.safetensors");
  await failsWith(
    SafetensorsReader.open(zip),
    zip,
    "is a ZIP archive (PyTorch's torch.save format)",
  );
  using opened = await openCheckpoint(zip); // openCheckpoint goes by the bytes, not the name
  equal(opened.format, "pytorch");
});

Deno.test("header and offset numbers beyond 2^53 are printed exactly", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await runPython(WRITE_FOREIGN, [d]);
  const lengths: [bigint, string][] = [
    [2n ** 63n, "9223372036854775808"],
    [2n ** 64n - 1n, "18446744073709551615"],
    [2n ** 53n + 1n, "9007199254740993"],
  ];
  for (const [length, text] of lengths) {
    const path = await claimedLength(join(d, `len${text}.safetensors`), length);
    await failsWith(
      SafetensorsReader.open(path),
      path,
      `header length ${text} runs past the end of the file (10 bytes)`,
    );
  }
  const entry = (fields: string) => `{"a":{${fields}}}`;
  const headers: [string, string][] = [
    [
      entry('"dtype":"F32","shape":[18446744073709551617],"data_offsets":[0,4]'),
      "shape [18446744073709551617] is not a list of non-negative integers",
    ],
    [
      entry('"dtype":"F32","shape":[1],"data_offsets":[0,9007199254740993]'),
      "data_offsets [0,9007199254740993] is not [begin, end] with integers",
    ],
    [
      entry('"dtype":"F32","shape":[1],"data_offsets":[36893488147419103232,4]'),
      "data_offsets [36893488147419103232,4] is not",
    ],
    [entry('"dtype":1e400,"shape":[1],"data_offsets":[0,4]'), "unknown dtype 1e400 (expected"],
    [entry('"dtype":"F32","shape":[1.50],"data_offsets":[0,4]'), "shape [1.50] is not a list"],
  ];
  for (const [i, [header, says]] of headers.entries()) {
    const path = await safetensors(join(d, `h${i}.safetensors`), header, 4);
    await failsWith(SafetensorsReader.open(path), path, `tensor "a": ${says}`);
  }
  const frame = join(d, "frame.pt");
  await failsWith(openCheckpoint(frame), frame, "length 9223372036854775808 runs past the pickle");
  // A ZIP64 end record pointing 2^64 − 1 bytes into the file.
  const zip64 = join(d, "zip64.pt");
  const bytes = new Uint8Array(42);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 0x07064b50, true); // ZIP64 end-of-directory locator
  view.setBigUint64(8, 2n ** 64n - 1n, true);
  view.setUint32(16, 1, true);
  view.setUint32(20, 0x06054b50, true); // end of directory, every field overflowed
  view.setUint16(28, 0xffff, true);
  view.setUint16(30, 0xffff, true);
  view.setUint32(32, 0xffffffff, true);
  view.setUint32(36, 0xffffffff, true);
  await Deno.writeFile(zip64, bytes);
  await failsWith(
    openTorchCheckpoint(zip64),
    zip64,
    "ZIP64 directory end offset 18446744073709551615 is beyond any file's size",
  );
});
