/**
 * What a file is, from its first bytes: a safetensors file (8-byte little-endian header length
 * N with 8 + N ≤ the file's size, then `{`), a ZIP archive (PyTorch's `torch.save` format, or a
 * NumPy `.npz`), a Python pickle (PyTorch's legacy format), GGUF, NumPy `.npy`, HDF5 or ONNX.
 * Readers use it to pick themselves, and to name another format, with what to do instead,
 * rather than report its first bytes as an absurd safetensors header length.
 *
 * @module
 */
import { extname } from "node:path";

/** The formats recognised by their first bytes (or, for ONNX, its extension). */
export type FileFormat =
  | "safetensors"
  | "zip"
  | "pickle"
  | "gguf"
  | "numpy"
  | "hdf5"
  | "onnx"
  | "unknown";

/** How many leading bytes {@linkcode formatOfBytes} looks at. */
export const SNIFF_BYTES = 16;

/**
 * Opcodes a pickle's first value starts with after `PROTO n` (LONG1: torch.save's legacy magic
 * number; FRAME; `}` `]` `(` `)`; GLOBAL `c`; SHORT_BINUNICODE; BINUNICODE; NONE), so that a
 * safetensors length such as 0x0280 (bytes 80 02 00 …) is not taken for a pickle.
 */
const PICKLE_STARTS = new Set([0x8a, 0x95, 0x7d, 0x5d, 0x28, 0x29, 0x63, 0x8c, 0x58, 0x4e]);

const startsWith = (head: Uint8Array, bytes: readonly number[]) =>
  bytes.every((b, i) => head[i] === b);

/**
 * The format of a file from its first {@linkcode SNIFF_BYTES} bytes, its size and its name.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { formatOfBytes } from "./format.ts";
 * const st = new Uint8Array(16);
 * st[0] = 2; st[8] = 0x7b; st[9] = 0x7d; // header length 2: "{}"
 * equal(formatOfBytes(st, 10, "m.safetensors"), "safetensors");
 * equal(formatOfBytes(new TextEncoder().encode("PK\x03\x04"), 100, "m.pt"), "zip");
 * equal(formatOfBytes(new TextEncoder().encode("GGUF\x03\x00\x00\x00"), 100, "m.gguf"), "gguf");
 * ```
 */
export function formatOfBytes(head: Uint8Array, size: number, name: string): FileFormat {
  if (head.length >= 9) {
    const length = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (length + 8n <= BigInt(size) && head[8] === 0x7b) return "safetensors";
  }
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || startsWith(head, [0x50, 0x4b, 0x05, 0x06])) {
    return "zip";
  }
  if (head[0] === 0x80 && head[1] >= 2 && head[1] <= 5 && PICKLE_STARTS.has(head[2])) {
    return "pickle";
  }
  if (startsWith(head, [0x47, 0x47, 0x55, 0x46])) return "gguf"; // "GGUF"
  if (startsWith(head, [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59])) return "numpy"; // "\x93NUMPY"
  if (startsWith(head, [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a])) return "hdf5";
  if (extname(name).toLowerCase() === ".onnx") return "onnx";
  return "unknown";
}

/**
 * The format of the file at `path` (see {@linkcode formatOfBytes}); throws what `Deno.open`
 * throws when it cannot be read.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sniffFormat } from "./format.ts";
 * import { writeSafetensors } from "./safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensors(path, []);
 * equal(await sniffFormat(path), "safetensors");
 * ```
 */
export async function sniffFormat(path: string): Promise<FileFormat> {
  using file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  const head = new Uint8Array(SNIFF_BYTES);
  let done = 0;
  while (done < head.length) {
    const n = await file.read(head.subarray(done));
    if (n === null) break;
    done += n;
  }
  return formatOfBytes(head.subarray(0, done), size, path);
}

/** What each foreign format is, and what to do with it instead. */
const FOREIGN: Readonly<Record<Exclude<FileFormat, "safetensors" | "unknown">, string>> = {
  zip: "is a ZIP archive (PyTorch's torch.save format), not a safetensors file: open it with " +
    "openCheckpoint, which reads PyTorch checkpoints (deno task merge does)",
  pickle: "is a Python pickle (PyTorch's legacy torch.save format, before 1.6), not a " +
    "safetensors file: load it in Python and save it again with a current torch.save, or as " +
    "safetensors (safetensors.torch.save_file)",
  gguf: "is a GGUF file (llama.cpp), not a safetensors file: this toolkit reads safetensors " +
    "and PyTorch checkpoints; use the original Hugging Face checkpoint, or convert the GGUF " +
    "file back to safetensors",
  numpy: "is a NumPy .npy array file, not a checkpoint: save the arrays by name with " +
    "safetensors.numpy.save_file",
  hdf5: "is an HDF5 file (a Keras or TensorFlow .h5 model), not a safetensors file: export the " +
    "weights as safetensors from the framework that wrote it",
  onnx: "is an ONNX model, not a safetensors file: save the original PyTorch model's weights " +
    "as safetensors (safetensors.torch.save_file(model.state_dict(), path))",
};

/**
 * What to tell a reader expecting safetensors about a file of another format, or undefined when
 * the format is safetensors or unknown.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { foreignFormatProblem } from "./format.ts";
 * ok(foreignFormatProblem("gguf")?.startsWith("is a GGUF file"));
 * ok(foreignFormatProblem("unknown") === undefined);
 * ```
 */
export function foreignFormatProblem(format: FileFormat): string | undefined {
  return format === "safetensors" || format === "unknown" ? undefined : FOREIGN[format];
}

/**
 * The problem with a ZIP archive that `torch.save` did not write, when its members say what it
 * is: a NumPy `.npz` archive (every member a `.npy`).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { foreignZipProblem } from "./format.ts";
 * ok(foreignZipProblem(["a.npy", "b.npy"])?.startsWith("is a NumPy .npz archive"));
 * ok(foreignZipProblem(["x/data.pkl"]) === undefined);
 * ```
 */
export function foreignZipProblem(members: readonly string[]): string | undefined {
  if (members.length > 0 && members.every((m) => m.endsWith(".npy"))) {
    return "is a NumPy .npz archive, not a checkpoint: save the arrays by name with " +
      "safetensors.numpy.save_file";
  }
  return undefined;
}
