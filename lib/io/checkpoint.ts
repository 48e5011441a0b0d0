/**
 * Checkpoints on disk as lazy {@linkcode TensorSource}s: one `.safetensors` file, a sharded
 * checkpoint described by a `*.safetensors.index.json` (Hugging Face layout:
 * `{"metadata": {...}, "weight_map": {tensor: shard file}}`), or a directory holding either.
 *
 * Opening reads and validates every header (and, for a sharded checkpoint, checks the index
 * against the shards); tensor data is read only by {@linkcode Checkpoint.read}, one tensor at a
 * time, through a small bounded set of open file handles.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import {
  CheckpointError,
  type ReadOptions,
  SafetensorsReader,
  type TensorInfo,
} from "./safetensors.ts";
import type { DType } from "./dtype.ts";
import type { TensorSource } from "../tensor/source.ts";
import { shapeText } from "../tensor/host.ts";

/** Options for {@linkcode openCheckpoint}. */
export interface OpenCheckpointOptions {
  /** Most shard files held open at once (default 4); others are reopened when read. */
  maxOpenFiles?: number;
  /** Accept NaN and ±Infinity values instead of failing on read (default false). */
  allowNonFinite?: boolean;
}

/** Where one tensor of a checkpoint lives: its shard file, dtype, shape and byte range. */
export interface CheckpointTensorInfo extends TensorInfo {
  /** Path of the `.safetensors` file holding it. */
  readonly file: string;
}

/** The file name Hugging Face gives a single-file checkpoint. */
export const SINGLE_FILE_NAME = "model.safetensors";

/** The suffix of a sharded checkpoint's index file. */
export const INDEX_SUFFIX = ".safetensors.index.json";

/** The file name Hugging Face gives a sharded checkpoint's index. */
export const INDEX_FILE_NAME = "model.safetensors.index.json";

/**
 * A checkpoint opened for lazy reading (see {@linkcode openCheckpoint}). Reads are queued, so
 * concurrent calls are safe; close it (or `using`) to release its file handles.
 *
 * @example
 * ```ts
 * import { openCheckpoint, writeSafetensors } from "../../mod.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensors(path, [{ name: "w", shape: [2], data: new Float32Array([1, 2]) }]);
 * using ckpt = await openCheckpoint(path);
 * console.log(ckpt.names(), ckpt.shape("w"), await ckpt.read("w"));
 * ```
 */
export class Checkpoint implements TensorSource, Disposable {
  readonly #tensors: Map<string, CheckpointTensorInfo>;
  readonly #open = new Map<string, SafetensorsReader>(); // least recently used first
  readonly #maxOpen: number;
  readonly #allowNonFinite: boolean;
  #queue: Promise<unknown> = Promise.resolve();

  /** Use {@linkcode openCheckpoint}; this wraps headers already read and validated. */
  constructor(
    /** The file opened: the `.safetensors` file or the index file. */
    readonly path: string,
    /** The shard files, in order (one entry for a single-file checkpoint). */
    readonly files: readonly string[],
    tensors: Map<string, CheckpointTensorInfo>,
    /** The shards' `__metadata__` (the first shard's value wins where they differ). */
    readonly metadata: Readonly<Record<string, string>>,
    /** The index file's `metadata` object (e.g. `total_size`), or undefined for one file. */
    readonly indexMetadata: Readonly<Record<string, unknown>> | undefined,
    options: OpenCheckpointOptions = {},
  ) {
    this.#tensors = tensors;
    this.#maxOpen = Math.max(1, options.maxOpenFiles ?? 4);
    this.#allowNonFinite = options.allowNonFinite ?? false;
  }

  /** The path, for messages. */
  get label(): string {
    return this.path;
  }

  /** Tensor names: shard by shard, in file order within each shard. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  /** True when the checkpoint holds `name`. */
  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** Shard file, dtype, shape and byte range of `name`; throws when absent. */
  info(name: string): CheckpointTensorInfo {
    const info = this.#tensors.get(name);
    if (!info) throw new CheckpointError(this.path, name, "no such tensor in this checkpoint");
    return info;
  }

  /** Shape of `name`. */
  shape(name: string): readonly number[] {
    return this.info(name).shape;
  }

  /** Stored dtype of `name`. */
  dtype(name: string): DType {
    return this.info(name).dtype;
  }

  /** Total bytes of tensor data over all shards. */
  get byteSize(): number {
    let total = 0;
    for (const info of this.#tensors.values()) total += info.byteLength;
    return total;
  }

  /** Number of shard files currently open (at most `maxOpenFiles`). */
  get openFiles(): number {
    return this.#open.size;
  }

  /**
   * Reads one tensor as float32, failing on NaN or ±Infinity unless allowed (here or at open).
   */
  read(name: string, options: ReadOptions = {}): Promise<Float32Array> {
    const info = this.info(name);
    const allowNonFinite = options.allowNonFinite ?? this.#allowNonFinite;
    const task = this.#queue.then(async () => {
      const reader = await this.#reader(info.file);
      assertUnchanged(info, reader.info(name), reader.path);
      return reader.read(name, { allowNonFinite });
    });
    this.#queue = task.catch(() => {});
    return task;
  }

  /** Closes every open shard file. */
  close(): void {
    for (const reader of this.#open.values()) reader.close();
    this.#open.clear();
  }

  /** Closes every open shard file (`using` support). */
  [Symbol.dispose](): void {
    this.close();
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
 * Opens a checkpoint lazily: a `.safetensors` file, a `*.safetensors.index.json` (sharded), or
 * a directory holding `model.safetensors`, one `*.safetensors.index.json`, or a single
 * `.safetensors` file. Every header is validated now; errors are {@linkcode CheckpointError}s
 * naming the file (the index and the shard for a sharded checkpoint) and the tensor.
 *
 * @example
 * ```ts
 * import { MemorySource, openCheckpoint, writeCheckpoint } from "../../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const src = new MemorySource("toy", {
 *   a: { shape: [4], data: new Float32Array([1, 2, 3, 4]) },
 *   b: { shape: [4], data: new Float32Array([5, 6, 7, 8]) },
 * });
 * await writeCheckpoint(dir, src, { maxShardBytes: 16 }); // two shards and an index
 * using ckpt = await openCheckpoint(dir);
 * console.log(ckpt.files.length, await ckpt.read("b")); // 2 Float32Array [5, 6, 7, 8]
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
  return entry.endsWith(".json")
    ? await openSharded(entry, options)
    : await openSingle(entry, options);
}

/**
 * The file that stands for the checkpoint in `dir`: `model.safetensors`, else its one
 * `*.safetensors.index.json` (`model.safetensors.index.json` among several), else its one
 * `.safetensors` file.
 *
 * @example
 * ```ts
 * import { checkpointInDirectory, writeSafetensors } from "../../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/mnist.safetensors`, []);
 * console.log(await checkpointInDirectory(dir)); // ".../mnist.safetensors"
 * ```
 */
export async function checkpointInDirectory(dir: string): Promise<string> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
  names.sort();
  if (names.includes(SINGLE_FILE_NAME)) return join(dir, SINGLE_FILE_NAME);
  const indexes = names.filter((n) => n.endsWith(INDEX_SUFFIX));
  if (indexes.length === 1) return join(dir, indexes[0]);
  if (indexes.includes(INDEX_FILE_NAME)) return join(dir, INDEX_FILE_NAME);
  if (indexes.length > 1) {
    throw new CheckpointError(
      dir,
      undefined,
      `several index files (${indexes.join(", ")}): open one`,
    );
  }
  const files = names.filter((n) => n.endsWith(".safetensors"));
  if (files.length === 1) return join(dir, files[0]);
  const found = files.length ? `found ${files.join(", ")}: open one of them` : "found none";
  throw new CheckpointError(
    dir,
    undefined,
    `expected ${SINGLE_FILE_NAME}, a *${INDEX_SUFFIX} or a single .safetensors file (${found})`,
  );
}

async function openSingle(path: string, options: OpenCheckpointOptions): Promise<Checkpoint> {
  const reader = await SafetensorsReader.open(path);
  const tensors = new Map<string, CheckpointTensorInfo>();
  for (const name of reader.names()) tensors.set(name, { ...reader.info(name), file: path });
  const ckpt = new Checkpoint(path, [path], tensors, reader.metadata, undefined, options);
  ckpt.keepOpen(reader);
  return ckpt;
}

/** The parsed index: its metadata, and tensor names grouped by shard in first-seen order. */
interface ParsedIndex {
  metadata: Record<string, unknown> | undefined;
  weightMap: Map<string, string>;
  shards: Map<string, string[]>;
}

async function readIndex(indexPath: string): Promise<ParsedIndex> {
  const fail = (problem: string, tensor?: string) =>
    new CheckpointError(indexPath, tensor, problem);
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (err) {
    throw fail(`not a readable JSON index (${(err as Error).message})`);
  }
  const { metadata, weight_map: map } = (json ?? {}) as Record<string, unknown>;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw fail(`expected {"weight_map": {tensor: shard file}} (no weight_map object found)`);
  }
  if (metadata !== undefined && (typeof metadata !== "object" || Array.isArray(metadata))) {
    throw fail(`"metadata" is not an object`);
  }
  const weightMap = new Map<string, string>();
  const shards = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== "string" || shard === "" || isAbsolute(shard)) {
      throw fail(`weight_map value ${JSON.stringify(shard)} is not a relative file name`, name);
    }
    weightMap.set(name, shard);
    shards.set(shard, [...(shards.get(shard) ?? []), name]);
  }
  return { metadata: (metadata ?? undefined) as Record<string, unknown>, weightMap, shards };
}

async function openSharded(indexPath: string, options: OpenCheckpointOptions): Promise<Checkpoint> {
  const index = await readIndex(indexPath);
  const dir = dirname(indexPath);
  for (const [shard, names] of index.shards) {
    try {
      await Deno.stat(join(dir, shard));
    } catch {
      throw new CheckpointError(
        indexPath,
        names[0],
        `shard "${shard}" (${join(dir, shard)}) does not exist; the index lists ` +
          `${names.length} tensor(s) in it`,
      );
    }
  }
  const tensors = new Map<string, CheckpointTensorInfo>();
  const metadata: Record<string, string> = {};
  const readers: SafetensorsReader[] = [];
  try {
    for (const shard of index.shards.keys()) {
      const reader = await SafetensorsReader.open(join(dir, shard));
      readers.push(reader);
      checkShardAgainstIndex(indexPath, shard, reader, index);
      for (const name of reader.names()) {
        tensors.set(name, { ...reader.info(name), file: reader.path });
      }
      for (const [k, v] of Object.entries(reader.metadata)) metadata[k] ??= v;
    }
  } catch (err) {
    for (const r of readers) r.close();
    throw err;
  }
  const files = readers.map((r) => r.path);
  const ckpt = new Checkpoint(indexPath, files, tensors, metadata, index.metadata, options);
  for (const r of readers) if (!ckpt.keepOpen(r)) r.close();
  return ckpt;
}

function checkShardAgainstIndex(
  indexPath: string,
  shard: string,
  reader: SafetensorsReader,
  index: ParsedIndex,
): void {
  for (const name of index.shards.get(shard)!) {
    if (!reader.has(name)) {
      throw new CheckpointError(
        indexPath,
        name,
        `the index puts it in shard "${shard}", but ${reader.path} has no such tensor`,
      );
    }
  }
  for (const name of reader.names()) {
    const listed = index.weightMap.get(name);
    if (listed !== shard) {
      const where = listed === undefined
        ? "the index does not list it"
        : `the index says "${listed}"`;
      throw new CheckpointError(
        indexPath,
        name,
        `found in shard "${shard}" (${reader.path}) but ${where}`,
      );
    }
  }
}

/**
 * The name a checkpoint file or directory gives a task: its base name without the
 * `.safetensors` or `.safetensors.index.json` suffix.
 *
 * @example
 * ```ts
 * import { checkpointStem } from "./checkpoint.ts";
 * checkpointStem("experts/mnist.safetensors"); // "mnist"
 * checkpointStem("experts/svhn/"); // "svhn"
 * ```
 */
export function checkpointStem(path: string): string {
  const name = basename(path.replace(/\/+$/, ""));
  return name.replace(/\.safetensors\.index\.json$|\.safetensors$/, "");
}

const SHARD_FILE = /-\d{5}-of-\d{5}\.safetensors$/;

/**
 * The checkpoints in a directory of experts, by task name (sorted): each `.safetensors` file
 * (shards excepted), each `*.safetensors.index.json`, and each subdirectory holding a
 * checkpoint. Paths in `exclude` (such as the base model's) are left out.
 *
 * @example
 * ```ts
 * import { listCheckpoints, writeSafetensors } from "../../mod.ts";
 * const dir = await Deno.makeTempDir();
 * for (const task of ["svhn", "mnist", "base"]) await writeSafetensors(`${dir}/${task}.safetensors`, []);
 * const experts = await listCheckpoints(dir, [`${dir}/base.safetensors`]);
 * console.log(Object.keys(experts)); // ["mnist", "svhn"]
 * ```
 */
export async function listCheckpoints(
  dir: string,
  exclude: readonly string[] = [],
): Promise<Record<string, string>> {
  const skip = new Set(exclude.map((p) => resolve(p)));
  const found: [string, string][] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (skip.has(resolve(path))) continue;
      const isFile = e.isFile && (e.name.endsWith(INDEX_SUFFIX) ||
        (e.name.endsWith(".safetensors") && !SHARD_FILE.test(e.name)));
      const isDir = e.isDirectory &&
        await checkpointInDirectory(path).then(() => true, () => false);
      if (isFile || isDir) found.push([checkpointStem(path), path]);
    }
  } catch (err) {
    throw new CheckpointError(dir, undefined, `cannot list: ${(err as Error).message}`);
  }
  found.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1);
  const out: Record<string, string> = {};
  for (const [task, path] of found) {
    if (Object.hasOwn(out, task)) {
      throw new CheckpointError(
        dir,
        undefined,
        `two checkpoints for task "${task}": ${out[task]} and ${path}`,
      );
    }
    out[task] = path;
  }
  return out;
}
