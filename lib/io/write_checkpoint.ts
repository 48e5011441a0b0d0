/**
 * Writes any {@linkcode TensorSource} as a checkpoint, streaming: each tensor is read (or
 * computed) from the source, encoded in the dtype asked for and written, so memory holds one
 * tensor at a time whatever the model's size. A source that allows concurrent reads
 * (`TensorSource.concurrentReads`: checkpoints on disk and merges of them) is read one tensor
 * ahead, the next tensor read while this one is written (two tensors held: the one being
 * written and the source's work on the next); others are read only after the previous tensor
 * is written. Either way the source is read in order, one read at a time. Output larger than
 * `maxShardBytes` is split into Hugging Face style shards plus a `*.safetensors.index.json`.
 *
 * A checkpoint is published as one unit, whatever is killed when:
 *
 * - One writer at a time per destination (`write_lock.ts`): a second write to the same
 *   checkpoint fails at once naming the first; a killed writer's lock is released by the kernel.
 * - Every file is written to a temporary name and renamed into place, so no file is ever partial.
 * - A sharded write names its shards after a fresh write id (`model-<id>-00001-of-00004.safetensors`)
 *   and records that id in every shard's `__metadata__` and in the index: the new shards never
 *   replace the old ones, and renaming the index into place is the one moment the checkpoint
 *   changes. Until then readers see the old checkpoint whole; after it, the new one. Readers
 *   refuse shards whose id is not the index's, so two writes can never be read as one.
 * - The previous checkpoint's files are removed after the switch; leftovers of a killed write
 *   (unreferenced shards, temporary files) are removed, and named, by the next write.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { SafetensorsWriter, type TensorSpec } from "./safetensors.ts";
import { CheckpointError } from "./errors.ts";
import { DTYPE_SIZES, type WritableDType } from "./dtype.ts";
import { writeFileAtomic } from "./atomic.ts";
import { INDEX_SUFFIX, WRITE_ID_KEY } from "./find.ts";
import { WriteLock } from "./write_lock.ts";
import { readAhead } from "./read_ahead.ts";
import type { TensorSource } from "../tensor/source.ts";
import { firstNonFinite, numel } from "../tensor/host.ts";

/** The moments of a write {@linkcode StagedWriteOptions.onStage} is told about. */
export type WriteStage =
  /** The destination's lock is held and leftovers of earlier writes are gone. */
  | "locked"
  /** One file (a shard, or the single file) is complete under its final name. */
  | "file"
  /** The checkpoint is switched: the index (or the single file) is in place. */
  | "published"
  /** The previous checkpoint's files are removed; the lock is about to be released. */
  | "done";

/** Options for {@linkcode writeCheckpoint}. */
export interface WriteCheckpointOptions {
  /** Stored dtype of every tensor (default F32); values are rounded to nearest even. */
  dtype?: WritableDType;
  /** `__metadata__` for every file; defaults to the source's `metadata` when it has one. */
  metadata?: Record<string, string>;
  /** Largest tensor-data size of one file; above it the output is sharded (default: no limit). */
  maxShardBytes?: number;
  /** Write NaN, ±Infinity and values that overflow the dtype instead of failing (default false). */
  allowNonFinite?: boolean;
  /** Called after each tensor is written (for progress bars). */
  onTensor?: (name: string, done: number, total: number) => void;
}

/**
 * Options of {@linkcode writeCheckpointStaged}: {@linkcode writeCheckpoint}'s and a hook at
 * each stage of the write.
 */
export interface StagedWriteOptions extends WriteCheckpointOptions {
  /**
   * Called at each stage of the write (with the file concerned) and awaited: how a test holds
   * a write at a chosen moment.
   */
  onStage?: (stage: WriteStage, file: string) => void | Promise<void>;
}

/** What {@linkcode writeCheckpoint} wrote. */
export interface WrittenCheckpoint {
  /** The file to open again: the `.safetensors` file, or the index of a sharded checkpoint. */
  path: string;
  /** Every `.safetensors` file written, in order. */
  files: string[];
  /** Bytes of tensor data over all files (the index's `total_size`). */
  totalBytes: number;
  /** The write id of a sharded checkpoint (in its index and every shard), else undefined. */
  writeId?: string;
  /** Leftovers of earlier, interrupted writes to this destination that were removed. */
  leftovers: string[];
}

/** Values at or above these magnitudes round to infinity in the dtype (half-way to the next power). */
const OVERFLOW: Partial<Record<WritableDType, number>> = {
  F16: 65520,
  BF16: 3.3961775292304606e38,
};

/**
 * Writes `source` as a checkpoint at `path`, tensor by tensor, published as one unit (see the
 * module documentation).
 *
 * `path` ending in `.safetensors` names the file (shards become
 * `NAME-<id>-00001-of-0000N.safetensors` beside it, with `NAME.safetensors.index.json`); a path
 * ending in `.safetensors.index.json` always writes the sharded layout with an index; any other
 * path is a directory that receives `model.safetensors` (or shards and
 * `model.safetensors.index.json`). Missing directories are created. After a successful write the
 * other layout's entry file and the previous shards of the same name are removed, so that
 * opening the path again finds exactly what was written.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { writeCheckpoint } from "./write_checkpoint.ts";
 * import { openCheckpoint } from "./open.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const dir = await Deno.makeTempDir();
 * const src = new MemorySource("toy", { w: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } });
 * const out = await writeCheckpoint(`${dir}/toy.safetensors`, src, { dtype: "BF16", metadata: { format: "pt" } });
 * using ckpt = await openCheckpoint(out.path);
 * equal(ckpt.dtype("w"), "BF16");
 * deepStrictEqual(ckpt.metadata, { format: "pt" });
 * ```
 */
export async function writeCheckpoint(
  path: string,
  source: TensorSource,
  options: WriteCheckpointOptions = {},
): Promise<WrittenCheckpoint> {
  return await writeCheckpointStaged(path, source, options);
}

/**
 * {@linkcode writeCheckpoint} that tells `options.onStage` of each stage of the write and
 * awaits it (the reliability tests hold a write there; not exported by the kit's `mod.ts`).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { writeCheckpointStaged } from "./write_checkpoint.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const dir = await Deno.makeTempDir();
 * const src = new MemorySource("toy", { w: { shape: [1], data: new Float32Array([1]) } });
 * const stages: string[] = [];
 * await writeCheckpointStaged(`${dir}/toy.safetensors`, src, { onStage: (s) => void stages.push(s) });
 * deepStrictEqual(stages, ["locked", "file", "published", "done"]);
 * ```
 */
export async function writeCheckpointStaged(
  path: string,
  source: TensorSource,
  options: StagedWriteOptions = {},
): Promise<WrittenCheckpoint> {
  const layout = await outputLayout(path);
  const dtype = options.dtype ?? "F32";
  const specs = source.names().map((name) => ({ name, shape: source.shape(name), dtype }));
  assertUniqueNames(path, specs);
  const maxShardBytes = options.maxShardBytes ?? Infinity;
  if (!(maxShardBytes > 0)) {
    throw new CheckpointError(path, undefined, `maxShardBytes ${maxShardBytes} is not positive`);
  }
  const groups = planShards(specs, maxShardBytes);
  const sharded = groups.length > 1 || layout.forceIndex;
  const indexPath = join(layout.dir, `${layout.stem}${INDEX_SUFFIX}`);
  const single = join(layout.dir, `${layout.stem}.safetensors`);
  const stage = async (s: WriteStage, file: string) => await options.onStage?.(s, file);
  using _lock = await WriteLock.acquire(lockPath(layout), sharded ? indexPath : single);
  const leftovers = await removeLeftovers(layout);
  await stage("locked", sharded ? indexPath : single);
  const writeId = sharded ? newWriteId() : undefined;
  const files = writeId
    ? groups.map((_, i) => join(layout.dir, shardName(layout.stem, writeId, i, groups.length)))
    : [single];
  const metadata = options.metadata ?? metadataOf(source);
  const fileMetadata = writeId ? { ...metadata, [WRITE_ID_KEY]: writeId } : metadata;
  const progress = { done: 0, total: specs.length };
  const committed: string[] = [];
  try {
    for (let i = 0; i < groups.length; i++) {
      await writeShard(files[i], groups[i], source, fileMetadata, options, progress);
      committed.push(files[i]);
      await stage("file", files[i]);
    }
  } catch (err) {
    // A failed write leaves no file of its own behind: its shards were never published.
    if (writeId) { for (const file of committed) await Deno.remove(file).catch(() => {}); }
    throw err;
  }
  const totalBytes = specs.reduce((sum, s) => sum + specBytes(s), 0);
  if (writeId) await writeIndex(indexPath, groups, files, fileMetadata, totalBytes);
  await stage("published", writeId ? indexPath : single);
  await removeReplaced(layout, writeId ? indexPath : single, files);
  await stage("done", writeId ? indexPath : single);
  return { path: writeId ? indexPath : single, files, totalBytes, writeId, leftovers };
}

/** The lock file guarding writes of `layout`'s checkpoint (hidden, beside it). */
function lockPath(layout: OutputLayout): string {
  return join(layout.dir, `.${layout.stem}.safetensors.lock`);
}

/** A fresh write id: 8 hexadecimal digits. */
function newWriteId(): string {
  return crypto.randomUUID().slice(0, 8);
}

interface OutputLayout {
  dir: string;
  stem: string;
  forceIndex: boolean;
}

async function outputLayout(path: string): Promise<OutputLayout> {
  const suffix = [INDEX_SUFFIX, ".safetensors"].find((end) => path.endsWith(end));
  const dir = suffix ? dirname(path) : path;
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new CheckpointError(dir, undefined, `cannot create directory: ${(err as Error).message}`);
  }
  if (!suffix) return { dir, stem: "model", forceIndex: false };
  const stem = basename(path).slice(0, -suffix.length);
  return { dir, stem, forceIndex: suffix === INDEX_SUFFIX };
}

function assertUniqueNames(path: string, specs: readonly TensorSpec[]): void {
  const seen = new Set<string>();
  for (const { name } of specs) {
    if (seen.has(name)) throw new CheckpointError(path, name, "the source lists this name twice");
    seen.add(name);
  }
}

function specBytes(spec: TensorSpec): number {
  return numel(spec.shape) * DTYPE_SIZES[spec.dtype];
}

/** Groups tensors in order; a shard closes when the next tensor would push it past the limit. */
function planShards(specs: readonly TensorSpec[], maxShardBytes: number): TensorSpec[][] {
  const groups: TensorSpec[][] = [[]];
  let bytes = 0;
  for (const spec of specs) {
    const size = specBytes(spec);
    const current = groups[groups.length - 1];
    if (current.length > 0 && bytes + size > maxShardBytes) {
      groups.push([spec]);
      bytes = size;
    } else {
      current.push(spec);
      bytes += size;
    }
  }
  return groups;
}

function shardName(stem: string, writeId: string, i: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `${stem}-${writeId}-${pad(i + 1)}-of-${pad(count)}.safetensors`;
}

function metadataOf(source: TensorSource): Record<string, string> {
  const metadata = (source as { metadata?: unknown }).metadata;
  if (typeof metadata !== "object" || metadata === null) return {};
  return Object.fromEntries(
    Object.entries(metadata).filter(([, v]) => typeof v === "string"),
  ) as Record<string, string>;
}

async function writeShard(
  file: string,
  specs: readonly TensorSpec[],
  source: TensorSource,
  metadata: Record<string, string>,
  options: WriteCheckpointOptions,
  progress: { done: number; total: number },
): Promise<void> {
  const writer = await SafetensorsWriter.create(file, specs, metadata);
  try {
    // Where the source allows it, the next tensor is read (or computed) while this one is
    // checked and written.
    const ahead = source.concurrentReads === true;
    let i = 0;
    for await (const data of readAhead(specs.length, (k) => source.read(specs[k].name), ahead)) {
      const spec = specs[i++];
      if (!options.allowNonFinite) checkValues(file, spec, data);
      await writer.write(spec.name, data);
      options.onTensor?.(spec.name, ++progress.done, progress.total);
    }
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writer.commit();
}

function checkValues(file: string, spec: TensorSpec, data: Float32Array): void {
  const bad = firstNonFinite(data);
  if (bad >= 0) {
    throw new CheckpointError(
      file,
      spec.name,
      `value ${data[bad]} at flat index ${bad} (expected finite values; ` +
        `allowNonFinite writes them anyway)`,
    );
  }
  const limit = OVERFLOW[spec.dtype];
  if (limit === undefined) return;
  for (let i = 0; i < data.length; i++) {
    if (Math.abs(data[i]) >= limit) {
      throw new CheckpointError(
        file,
        spec.name,
        `value ${data[i]} at flat index ${i} overflows ${spec.dtype} (it would be stored as ` +
          `infinity; write F32 instead)`,
      );
    }
  }
}

async function writeIndex(
  indexPath: string,
  groups: readonly TensorSpec[][],
  files: readonly string[],
  metadata: Record<string, string>,
  totalBytes: number,
): Promise<void> {
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    for (const spec of group) weightMap[spec.name] = basename(files[i]);
  });
  const index = { metadata: { ...metadata, total_size: totalBytes }, weight_map: weightMap };
  try {
    await writeFileAtomic(indexPath, JSON.stringify(index, null, 2) + "\n");
  } catch (err) {
    throw new CheckpointError(indexPath, undefined, (err as Error).message);
  }
}

/** Names of `layout`'s files in its folder (the entry files, shards and temporary files). */
function layoutNames(layout: OutputLayout) {
  const stem = escapeRegExp(layout.stem);
  const shard = `${stem}-(?:[0-9a-f]{8}-)?\\d{5}-of-\\d{5}\\.safetensors`;
  const entry = `${stem}\\.safetensors(?:\\.index\\.json)?`;
  return {
    shard: new RegExp(`^${shard}$`),
    temporary: new RegExp(`^(?:${entry}|${shard})\\.\\d+-[0-9a-f]{8}\\.tmp$`),
    entries: [`${layout.stem}.safetensors`, `${layout.stem}${INDEX_SUFFIX}`],
  };
}

/**
 * Removes (under the lock) what interrupted writes to this destination left: temporary files,
 * and shards that the index in place does not list (all of them when there is no index).
 */
async function removeLeftovers(layout: OutputLayout): Promise<string[]> {
  const names = layoutNames(layout);
  const indexPath = join(layout.dir, `${layout.stem}${INDEX_SUFFIX}`);
  let listed: Set<string> | undefined = new Set();
  try {
    const index = JSON.parse(await Deno.readTextFile(indexPath));
    listed = new Set(Object.values(index?.weight_map ?? {}).map(String));
  } catch (err) {
    // No index: no shard is listed. An unreadable one: keep every shard (not ours to judge).
    if (!(err instanceof Deno.errors.NotFound)) listed = undefined;
  }
  const removed: string[] = [];
  for await (const e of Deno.readDir(layout.dir)) {
    if (!e.isFile) continue;
    const orphan = names.shard.test(e.name) && listed !== undefined && !listed.has(e.name);
    if (orphan || names.temporary.test(e.name)) {
      const path = join(layout.dir, e.name);
      await Deno.remove(path).then(() => removed.push(path), () => {});
    }
  }
  return removed.sort();
}

/**
 * After the switch: removes the other layout's entry file first (so the folder names one
 * checkpoint again), then the shards of the same name that this write did not write.
 */
async function removeReplaced(layout: OutputLayout, entry: string, files: string[]): Promise<void> {
  const names = layoutNames(layout);
  const keep = new Set([entry, ...files]);
  for (const name of names.entries) {
    const path = join(layout.dir, name);
    if (!keep.has(path)) await Deno.remove(path).catch(() => {});
  }
  for await (const e of Deno.readDir(layout.dir)) {
    const path = join(layout.dir, e.name);
    if (e.isFile && !keep.has(path) && names.shard.test(e.name)) {
      await Deno.remove(path).catch(() => {});
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
