/**
 * Safetensors checkpoints as a {@linkcode Checkpoint}: one `.safetensors` file, or a sharded
 * checkpoint described by a `*.safetensors.index.json` (see hf_index.ts).
 *
 * Opening reads and validates every header (and, for a sharded checkpoint, checks the index
 * against the shards); tensor data is read only by `read`, one tensor at a time, through a
 * small bounded set of open file handles.
 *
 * @module
 */
import { SafetensorsReader, type TensorInfo } from "./safetensors.ts";
import { CheckpointError } from "./errors.ts";
import { Checkpoint, type CheckpointFormat, type OpenCheckpointOptions } from "./checkpoint.ts";
import {
  assertShardsExist,
  checkShardAgainstIndex,
  readShardIndex,
  type ShardIndex,
  shardPath,
} from "./hf_index.ts";
import { decodeToFloat32 } from "./dtype.ts";
import { WRITE_ID_KEY } from "./find.ts";
import { shapeText } from "../tensor/host.ts";

/** Where one tensor of a safetensors checkpoint lives: its shard file, dtype, shape and bytes. */
export interface CheckpointTensorInfo extends TensorInfo {
  /** Path of the `.safetensors` file holding it. */
  readonly file: string;
}

/**
 * A safetensors checkpoint opened for lazy reading (see {@linkcode openSafetensors}, or
 * `openCheckpoint` for any format). Reads are queued, so concurrent calls are safe.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { openSafetensors } from "./safetensors_checkpoint.ts";
 * import { writeSafetensors } from "./safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensors(path, [{ name: "w", shape: [2], data: new Float32Array([1, 2]) }]);
 * using ckpt = await openSafetensors(path);
 * equal(ckpt.openFiles, 1);
 * deepStrictEqual(ckpt.info("w").file, path);
 * deepStrictEqual(await ckpt.read("w"), new Float32Array([1, 2]));
 * ```
 */
export class SafetensorsCheckpoint extends Checkpoint<CheckpointTensorInfo> {
  /** Always `"safetensors"`. */
  readonly format: CheckpointFormat = "safetensors";
  readonly #open = new Map<string, SafetensorsReader>(); // least recently used first
  readonly #maxOpen: number;
  #queue: Promise<unknown> = Promise.resolve();

  /** Use {@linkcode openSafetensors}; this wraps headers already read and validated. */
  constructor(
    path: string,
    /** The shard files, in order (one entry for a single-file checkpoint). */
    readonly files: readonly string[],
    tensors: Map<string, CheckpointTensorInfo>,
    /** The shards' `__metadata__` (the first shard's value wins where they differ). */
    readonly metadata: Readonly<Record<string, string>>,
    /** The index file's `metadata` object (e.g. `total_size`), or undefined for one file. */
    readonly indexMetadata: Readonly<Record<string, unknown>> | undefined,
    options: OpenCheckpointOptions = {},
  ) {
    super(path, tensors, options);
    this.#maxOpen = Math.max(1, options.maxOpenFiles ?? 4);
  }

  /** Number of shard files currently open (at most `maxOpenFiles`). */
  get openFiles(): number {
    return this.#open.size;
  }

  /** The shard holding `info`. */
  protected override fileOf(info: CheckpointTensorInfo): string {
    return info.file;
  }

  /** Reads `info`'s bytes from its shard (through the bounded set of open files) as float32. */
  protected readValues(info: CheckpointTensorInfo): Promise<Float32Array> {
    const task = this.#queue.then(async () => {
      const reader = await this.#reader(info.file);
      assertUnchanged(info, reader.info(info.name), reader.path);
      return decodeToFloat32(await reader.readBytes(info.name), info.dtype);
    });
    this.#queue = task.catch(() => {});
    return task;
  }

  /** Closes every open shard file. */
  close(): void {
    for (const reader of this.#open.values()) reader.close();
    this.#open.clear();
  }

  /** Adopts a reader opened while validating, if a handle is free. */
  keepOpen(reader: SafetensorsReader): boolean {
    if (this.#open.size >= this.#maxOpen) return false;
    this.#open.set(reader.path, reader);
    return true;
  }

  async #reader(file: string): Promise<SafetensorsReader> {
    const cached = this.#open.get(file);
    if (cached) {
      this.#open.delete(file); // move to the most recently used end
      this.#open.set(file, cached);
      return cached;
    }
    while (this.#open.size >= this.#maxOpen) {
      const [oldest, reader] = this.#open.entries().next().value!;
      reader.close();
      this.#open.delete(oldest);
    }
    const reader = await SafetensorsReader.open(file);
    this.#open.set(file, reader);
    return reader;
  }
}

/** A shard reopened after eviction must still hold the tensor where its header said. */
function assertUnchanged(expected: TensorInfo, now: TensorInfo, file: string): void {
  if (
    expected.dtype !== now.dtype || expected.start !== now.start ||
    shapeText(expected.shape) !== shapeText(now.shape)
  ) {
    throw new CheckpointError(file, expected.name, "file changed on disk since it was opened");
  }
}

/**
 * Opens a safetensors checkpoint lazily: a `.safetensors` file, or a `*.safetensors.index.json`
 * (sharded). Every header is validated now; errors are `CheckpointError`s naming the file (the
 * index and the shard for a sharded checkpoint) and the tensor. `openCheckpoint` opens any
 * format, and directories.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { openSafetensors } from "./safetensors_checkpoint.ts";
 * import { writeCheckpoint } from "./write_checkpoint.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const dir = await Deno.makeTempDir();
 * const src = new MemorySource("toy", {
 *   a: { shape: [4], data: new Float32Array([1, 2, 3, 4]) },
 *   b: { shape: [4], data: new Float32Array([5, 6, 7, 8]) },
 * });
 * const out = await writeCheckpoint(dir, src, { maxShardBytes: 16 }); // two shards and an index
 * using ckpt = await openSafetensors(out.path);
 * equal(ckpt.files.length, 2);
 * deepStrictEqual(await ckpt.read("b"), new Float32Array([5, 6, 7, 8]));
 * ```
 */
export async function openSafetensors(
  path: string,
  options: OpenCheckpointOptions = {},
): Promise<SafetensorsCheckpoint> {
  return path.endsWith(".json")
    ? await openSharded(await readShardIndex(path), options)
    : await openSingle(path, options);
}

async function openSingle(
  path: string,
  options: OpenCheckpointOptions,
): Promise<SafetensorsCheckpoint> {
  const reader = await SafetensorsReader.open(path);
  const tensors = new Map<string, CheckpointTensorInfo>();
  for (const name of reader.names()) tensors.set(name, { ...reader.info(name), file: path });
  const ckpt = new SafetensorsCheckpoint(
    path,
    [path],
    tensors,
    reader.metadata,
    undefined,
    options,
  );
  ckpt.keepOpen(reader);
  return ckpt;
}

/**
 * Opens the shards of a parsed index (the index says they are safetensors files).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { openSharded } from "./safetensors_checkpoint.ts";
 * import { readShardIndex } from "./hf_index.ts";
 * import { writeCheckpoint } from "./write_checkpoint.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const dir = await Deno.makeTempDir();
 * const src = new MemorySource("toy", { a: { shape: [1], data: new Float32Array([1]) } });
 * const out = await writeCheckpoint(`${dir}/m.safetensors.index.json`, src);
 * using ckpt = await openSharded(await readShardIndex(out.path));
 * deepStrictEqual(ckpt.names(), ["a"]);
 * ```
 */
export async function openSharded(
  index: ShardIndex,
  options: OpenCheckpointOptions = {},
): Promise<SafetensorsCheckpoint> {
  await assertShardsExist(index);
  const tensors = new Map<string, CheckpointTensorInfo>();
  const metadata: Record<string, string> = {};
  const readers: SafetensorsReader[] = [];
  const writeId = index.metadata?.[WRITE_ID_KEY];
  try {
    for (const shard of index.shards.keys()) {
      const reader = await SafetensorsReader.open(shardPath(index, shard));
      readers.push(reader);
      checkShardAgainstIndex(index, shard, reader.path, reader.names());
      if (writeId !== undefined) checkWriteId(index, shard, reader, writeId);
      for (const name of reader.names()) {
        tensors.set(name, { ...reader.info(name), file: reader.path });
      }
      for (const [k, v] of Object.entries(reader.metadata)) {
        if (k !== WRITE_ID_KEY) metadata[k] ??= v;
      }
    }
  } catch (err) {
    for (const r of readers) r.close();
    throw err;
  }
  const files = readers.map((r) => r.path);
  const ckpt = new SafetensorsCheckpoint(
    index.path,
    files,
    tensors,
    metadata,
    index.metadata,
    options,
  );
  for (const r of readers) if (!ckpt.keepOpen(r)) r.close();
  return ckpt;
}

/**
 * A shard of a write that recorded its id must carry the index's id: anything else means the
 * folder mixes two writes, which must never be read as one checkpoint.
 */
function checkWriteId(
  index: ShardIndex,
  shard: string,
  reader: SafetensorsReader,
  writeId: unknown,
): void {
  const own = reader.metadata[WRITE_ID_KEY];
  if (own === writeId) return;
  throw new CheckpointError(
    index.path,
    undefined,
    `shard "${shard}" (${reader.path}) belongs to another write (write id ` +
      `${JSON.stringify(own ?? null)}, the index's is ${JSON.stringify(writeId)}): the folder ` +
      `mixes two writes; write the checkpoint again`,
  );
}
