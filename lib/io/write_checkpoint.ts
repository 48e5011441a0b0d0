/**
 * Writes any {@linkcode TensorSource} as a checkpoint, streaming: each tensor is read (or
 * computed) from the source, encoded in the dtype asked for and written before the next one is
 * read, so memory holds one tensor at a time whatever the model's size. Output larger than
 * `maxShardBytes` is split into Hugging Face style shards plus a `*.safetensors.index.json`.
 * Every file is written atomically (temporary file, then rename), the index last.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { SafetensorsWriter, type TensorSpec } from "./safetensors.ts";
import { CheckpointError } from "./errors.ts";
import { DTYPE_SIZES, type WritableDType } from "./dtype.ts";
import { writeFileAtomic } from "./atomic.ts";
import { INDEX_SUFFIX } from "./find.ts";
import type { TensorSource } from "../tensor/source.ts";
import { firstNonFinite, numel } from "../tensor/host.ts";

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

/** What {@linkcode writeCheckpoint} wrote. */
export interface WrittenCheckpoint {
  /** The file to open again: the `.safetensors` file, or the index of a sharded checkpoint. */
  path: string;
  /** Every `.safetensors` file written, in order. */
  files: string[];
  /** Bytes of tensor data over all files (the index's `total_size`). */
  totalBytes: number;
}

/** Values at or above these magnitudes round to infinity in the dtype (half-way to the next power). */
const OVERFLOW: Partial<Record<WritableDType, number>> = {
  F16: 65520,
  BF16: 3.3961775292304606e38,
};

/**
 * Writes `source` as a checkpoint at `path`, tensor by tensor.
 *
 * `path` ending in `.safetensors` names the file (shards become `NAME-00001-of-0000N.safetensors`
 * beside it, with `NAME.safetensors.index.json`); a path ending in `.safetensors.index.json`
 * always writes the sharded layout with an index; any other path is a directory that receives
 * `model.safetensors` (or `model-0000i-of-0000N.safetensors` and `model.safetensors.index.json`).
 * Missing directories are created.
 * After a successful write the other layout's entry file and stale shards of the same name are
 * removed, so that opening the path again finds exactly what was written.
 *
 * @example
 * ```ts
 * import { MemorySource, openCheckpoint, writeCheckpoint } from "../../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const src = new MemorySource("toy", { w: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } });
 * const out = await writeCheckpoint(`${dir}/toy.safetensors`, src, { dtype: "BF16", metadata: { format: "pt" } });
 * using ckpt = await openCheckpoint(out.path);
 * console.log(ckpt.dtype("w"), ckpt.metadata); // "BF16" { format: "pt" }
 * ```
 */
export async function writeCheckpoint(
  path: string,
  source: TensorSource,
  options: WriteCheckpointOptions = {},
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
  const files = sharded
    ? groups.map((_, i) => join(layout.dir, shardName(layout.stem, i, groups.length)))
    : [join(layout.dir, `${layout.stem}.safetensors`)];
  const metadata = options.metadata ?? metadataOf(source);
  const progress = { done: 0, total: specs.length };
  const committed: string[] = [];
  try {
    for (let i = 0; i < groups.length; i++) {
      await writeShard(files[i], groups[i], source, metadata, options, progress);
      committed.push(files[i]);
    }
  } catch (err) {
    // A failed write leaves no partial checkpoint of its own behind.
    for (const file of committed) await Deno.remove(file).catch(() => {});
    throw err;
  }
  const totalBytes = specs.reduce((sum, s) => sum + specBytes(s), 0);
  const indexPath = join(layout.dir, `${layout.stem}${INDEX_SUFFIX}`);
  if (sharded) await writeIndex(indexPath, groups, files, metadata, totalBytes);
  await removeStale(layout, sharded ? indexPath : files[0], files);
  return { path: sharded ? indexPath : files[0], files, totalBytes };
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

function shardName(stem: string, i: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `${stem}-${pad(i + 1)}-of-${pad(count)}.safetensors`;
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
    for (const spec of specs) {
      const data = await source.read(spec.name);
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

/** Removes the other layout's entry file and shards of the same stem that were not written now. */
async function removeStale(layout: OutputLayout, entry: string, files: string[]): Promise<void> {
  const shard = new RegExp(`^${escapeRegExp(layout.stem)}-\\d{5}-of-\\d{5}\\.safetensors$`);
  const candidates = [`${layout.stem}.safetensors`, `${layout.stem}${INDEX_SUFFIX}`];
  const keep = new Set([entry, ...files]);
  for await (const e of Deno.readDir(layout.dir)) {
    const path = join(layout.dir, e.name);
    if (!e.isFile || keep.has(path)) continue;
    if (candidates.includes(e.name) || shard.test(e.name)) await Deno.remove(path).catch(() => {});
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
