/**
 * The one way to open a checkpoint: {@linkcode openCheckpoint} takes a file, an index or a
 * folder and picks the reader from what the bytes are, not from the name:
 *
 * | path                                   | reader                                  |
 * | -------------------------------------- | --------------------------------------- |
 * | a safetensors file                     | `SafetensorsCheckpoint`                 |
 * | `*.safetensors.index.json`             | `SafetensorsCheckpoint` (sharded)       |
 * | a PyTorch ZIP (`.pt`, `.pth`, `.bin`)  | `TorchCheckpoint`                       |
 * | `*.bin.index.json`                     | `ShardedTorchCheckpoint`                |
 * | a folder                               | its checkpoint, as `checkpointInDirectory` finds it |
 *
 * A file of another format (legacy pickle, GGUF, NumPy, HDF5, ONNX) fails naming the format and
 * what to do instead.
 *
 * @module
 */
import { extname } from "node:path";
import type { Checkpoint, OpenCheckpointOptions } from "./checkpoint.ts";
import { CheckpointError } from "./errors.ts";
import { checkpointInDirectory, isTorchCheckpointPath } from "./find.ts";
import { sniffFormat } from "./format.ts";
import { readShardIndex, type ShardIndex, shardPath } from "./hf_index.ts";
import { openSafetensors, openSharded } from "./safetensors_checkpoint.ts";
import { openTorchCheckpoint, openTorchShards } from "./torch_zip.ts";

/**
 * Opens a checkpoint lazily, whatever its format: a safetensors file, a sharded safetensors
 * index, a PyTorch ZIP checkpoint, a sharded PyTorch index, or a folder holding one of them (as
 * Hugging Face saves models). Every header is validated now; tensor data is read by `read`, one
 * tensor at a time. Errors are `CheckpointError`s naming the file and, where one is at fault,
 * the tensor.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { openCheckpoint } from "./open.ts";
 * import { writeCheckpoint } from "./write_checkpoint.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const dir = await Deno.makeTempDir();
 * const src = new MemorySource("toy", {
 *   a: { shape: [4], data: new Float32Array([1, 2, 3, 4]) },
 *   b: { shape: [4], data: new Float32Array([5, 6, 7, 8]) },
 * });
 * await writeCheckpoint(dir, src, { maxShardBytes: 16 }); // two shards and an index
 * using ckpt = await openCheckpoint(dir);
 * equal(ckpt.files.length, 2);
 * deepStrictEqual(await ckpt.read("b"), new Float32Array([5, 6, 7, 8]));
 * ```
 */
export async function openCheckpoint(
  path: string,
  options: OpenCheckpointOptions = {},
): Promise<Checkpoint> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (err) {
    throw new CheckpointError(path, undefined, `cannot open: ${(err as Error).message}`);
  }
  const entry = stat.isDirectory ? await checkpointInDirectory(path) : path;
  if (extname(entry).toLowerCase() === ".json") {
    const index = await readShardIndex(entry);
    return await holdsTorchShards(index)
      ? await openTorchShards(index, options)
      : await openSharded(index, options);
  }
  const format = await sniffFormat(entry).catch(() => "unknown");
  return format === "zip" || format === "pickle"
    ? await openTorchCheckpoint(entry, options)
    : await openSafetensors(entry, options);
}

/** True when the index's first shard is a PyTorch file (by its name, else by its bytes). */
async function holdsTorchShards(index: ShardIndex): Promise<boolean> {
  const [first] = index.shards.keys();
  if (first === undefined || first.endsWith(".safetensors")) return false;
  if (isTorchCheckpointPath(first)) return true;
  const format = await sniffFormat(shardPath(index, first)).catch(() => "unknown");
  return format === "zip" || format === "pickle";
}
