/**
 * Finding checkpoints on disk: the file that stands for a checkpoint in a folder (as Hugging
 * Face saves models), the experts in a folder of experts, and the task name a path gives.
 *
 * Recognised files: `.safetensors`, `*.safetensors.index.json` (sharded safetensors), PyTorch
 * files (`.pt`, `.pth`, `.bin`, `.ckpt`) and `*.bin.index.json` (sharded PyTorch). Shards
 * (`NAME-00001-of-00004.safetensors`) stand for their index, never for themselves.
 *
 * @module
 */
import { basename, join, resolve } from "node:path";
import { CheckpointError } from "./errors.ts";

/** The file name Hugging Face gives a single-file checkpoint. */
export const SINGLE_FILE_NAME = "model.safetensors";

/** The suffix of a sharded safetensors checkpoint's index file. */
export const INDEX_SUFFIX = ".safetensors.index.json";

/** The file name Hugging Face gives a sharded checkpoint's index. */
export const INDEX_FILE_NAME = "model.safetensors.index.json";

/** The suffix of a sharded PyTorch checkpoint's index file. */
export const TORCH_INDEX_SUFFIX = ".bin.index.json";

/** The file names Hugging Face gives a PyTorch checkpoint and its index. */
export const TORCH_FILE_NAME = "pytorch_model.bin";

/** The file name Hugging Face gives a sharded PyTorch checkpoint's index. */
export const TORCH_INDEX_FILE_NAME = "pytorch_model.bin.index.json";

/** A shard of a sharded checkpoint: `…-00001-of-00004.safetensors` (or `.bin`). */
export const SHARD_FILE: RegExp = /-\d{5}-of-\d{5}\.(safetensors|bin)$/;

/**
 * The `__metadata__` and index `metadata` key holding a sharded write's id (`writeCheckpoint`):
 * every shard of one write carries its index's id.
 */
export const WRITE_ID_KEY = "write_id";

/**
 * The checkpoint name a shard file belongs to (`model` for `model-00001-of-00004.safetensors`
 * and for `model-1a2b3c4d-00001-of-00004.safetensors`, whose `1a2b3c4d` is a write id), or
 * undefined when the name is not a shard's.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { shardStem } from "./find.ts";
 * equal(shardStem("model-1a2b3c4d-00002-of-00004.safetensors"), "model");
 * equal(shardStem("pytorch_model-00001-of-00002.bin"), "pytorch_model");
 * equal(shardStem("model.safetensors"), undefined);
 * ```
 */
export function shardStem(name: string): string | undefined {
  return /^(.*?)-(?:[0-9a-f]{8}-)?\d{5}-of-\d{5}\.(?:safetensors|bin)$/.exec(name)?.[1];
}

/**
 * True when `path`'s name marks a PyTorch checkpoint (`.pt`, `.pth`, `.bin`, `.ckpt`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isTorchCheckpointPath } from "./find.ts";
 * equal(isTorchCheckpointPath("pytorch_model.bin"), true);
 * equal(isTorchCheckpointPath("model.safetensors"), false);
 * ```
 */
export function isTorchCheckpointPath(path: string): boolean {
  return /\.(pt|pth|bin|ckpt)$/i.test(path);
}

/** A checkpoint's entry file by its name alone (not a shard). */
function isEntryName(name: string): boolean {
  if (name.endsWith(INDEX_SUFFIX) || name.endsWith(TORCH_INDEX_SUFFIX)) return true;
  return (name.endsWith(".safetensors") || isTorchCheckpointPath(name)) && !SHARD_FILE.test(name);
}

/**
 * The file that stands for the checkpoint in `dir`, safetensors first: `model.safetensors`,
 * else its one `*.safetensors.index.json` (`model.safetensors.index.json` among several), else
 * its one `.safetensors` file; then the same for PyTorch (`pytorch_model.bin.index.json`,
 * `pytorch_model.bin`, one PyTorch file).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { checkpointInDirectory } from "./find.ts";
 * import { writeSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/mnist.safetensors`, []);
 * equal(await checkpointInDirectory(dir), `${dir}/mnist.safetensors`);
 * ```
 */
export async function checkpointInDirectory(dir: string): Promise<string> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile || e.isSymlink) names.push(e.name);
  } catch (err) {
    throw new CheckpointError(dir, undefined, `cannot list: ${(err as Error).message}`);
  }
  names.sort();
  await refuseInterruptedWrite(dir, names);
  const found = pickEntry(dir, names, {
    single: SINGLE_FILE_NAME,
    indexSuffix: INDEX_SUFFIX,
    indexName: INDEX_FILE_NAME,
    isFile: (n) => n.endsWith(".safetensors") && !SHARD_FILE.test(n),
  }) ?? pickEntry(dir, names, {
    single: TORCH_FILE_NAME,
    indexSuffix: TORCH_INDEX_SUFFIX,
    indexName: TORCH_INDEX_FILE_NAME,
    isFile: (n) => isTorchCheckpointPath(n) && !SHARD_FILE.test(n),
  });
  if (found) return join(dir, found);
  const files = names.filter((n) => n.endsWith(".safetensors"));
  const seen = files.length ? `found ${files.join(", ")}: open one of them` : "found none";
  throw new CheckpointError(
    dir,
    undefined,
    `expected ${SINGLE_FILE_NAME}, a *${INDEX_SUFFIX}, a single .safetensors file or a ` +
      `PyTorch checkpoint (${seen})`,
  );
}

/**
 * Refuses a folder that a killed write left ambiguous: shards without their index (the index is
 * written last), or both `model.safetensors` and `model.safetensors.index.json` (a write that
 * changed the layout was killed between publishing one and removing the other).
 */
async function refuseInterruptedWrite(dir: string, names: readonly string[]): Promise<void> {
  const fail = (problem: string) => new CheckpointError(dir, undefined, problem);
  if (names.includes(SINGLE_FILE_NAME) && names.includes(INDEX_FILE_NAME)) {
    const [a, b] = await Promise.all(
      [SINGLE_FILE_NAME, INDEX_FILE_NAME].map((n) => Deno.stat(join(dir, n))),
    );
    const newer = (b.mtime?.getTime() ?? 0) > (a.mtime?.getTime() ?? 0)
      ? INDEX_FILE_NAME
      : SINGLE_FILE_NAME;
    throw fail(
      `holds both ${SINGLE_FILE_NAME} and ${INDEX_FILE_NAME}: a write that changed the ` +
        `layout was interrupted (${newer} is the newer), or two checkpoints share the folder; ` +
        `open one of them by its path, delete the other, or write the checkpoint again`,
    );
  }
  const entries = names.filter((n) =>
    n.endsWith(".safetensors") || n.endsWith(INDEX_SUFFIX) || n.endsWith(TORCH_INDEX_SUFFIX) ||
    isTorchCheckpointPath(n)
  );
  const shards = entries.filter((n) => shardStem(n) !== undefined);
  if (shards.length > 0 && shards.length === entries.length) {
    const shown = shards.slice(0, 3).join(", ") + (shards.length > 3 ? ", …" : "");
    throw fail(
      `holds ${shards.length} shard(s) (${shown}) but no index: shards are written before their ` +
        `index, so these are the leftovers of an interrupted write, not a checkpoint; write ` +
        `the checkpoint again (that removes them), or delete them`,
    );
  }
}

interface EntryRules {
  single: string;
  indexSuffix: string;
  indexName: string;
  isFile: (name: string) => boolean;
}

/** One format's entry among `names`, or undefined when it has none (throws when ambiguous). */
function pickEntry(dir: string, names: readonly string[], rules: EntryRules): string | undefined {
  if (names.includes(rules.single)) return rules.single;
  const indexes = names.filter((n) => n.endsWith(rules.indexSuffix));
  if (indexes.length === 1) return indexes[0];
  if (indexes.includes(rules.indexName)) return rules.indexName;
  if (indexes.length > 1) {
    throw new CheckpointError(
      dir,
      undefined,
      `several index files (${indexes.join(", ")}): open one`,
    );
  }
  const files = names.filter(rules.isFile);
  return files.length === 1 ? files[0] : undefined;
}

/**
 * The name a checkpoint file or directory gives a task: its base name without the checkpoint
 * extension (`.safetensors`, `.safetensors.index.json`, `.bin.index.json`, `.pt`, `.pth`,
 * `.bin`, `.ckpt`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { checkpointStem } from "./find.ts";
 * equal(checkpointStem("experts/mnist.safetensors"), "mnist");
 * equal(checkpointStem("experts/svhn/"), "svhn");
 * equal(checkpointStem("experts/gtsrb.pt"), "gtsrb");
 * ```
 */
export function checkpointStem(path: string): string {
  const name = basename(path.replace(/\/+$/, ""));
  return name.replace(
    /\.safetensors\.index\.json$|\.bin\.index\.json$|\.safetensors$|\.(pt|pth|bin|ckpt)$/i,
    "",
  );
}

/**
 * The checkpoints in a directory of experts, by task name (sorted): each checkpoint file
 * (shards excepted), each index, and each subdirectory holding a checkpoint. Paths in
 * `exclude` (such as the base model's) are left out.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { listCheckpoints } from "./find.ts";
 * import { writeSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * for (const task of ["svhn", "mnist", "base"]) await writeSafetensors(`${dir}/${task}.safetensors`, []);
 * const experts = await listCheckpoints(dir, [`${dir}/base.safetensors`]);
 * deepStrictEqual(Object.keys(experts), ["mnist", "svhn"]);
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
      const isFile = (e.isFile || e.isSymlink) && isEntryName(e.name) &&
        await Deno.stat(path).then((s) => s.isFile, () => false);
      const isDir = !isFile && await Deno.stat(path).then((s) => s.isDirectory, () => false) &&
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

/**
 * Experts to open: a directory of expert checkpoints (see {@linkcode listCheckpoints}), a list
 * of checkpoint paths (tasks named after the files), or task names mapped to paths.
 */
export type ExpertPaths = string | readonly string[] | Readonly<Record<string, string>>;

/**
 * Task name → checkpoint path, from any {@linkcode ExpertPaths} form. A directory that is one
 * checkpoint (a Hugging Face model folder) is one expert; any other directory lists its experts
 * (the base left out). Two paths that give one task name are refused.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { expertCheckpoints } from "./find.ts";
 * deepStrictEqual(
 *   await expertCheckpoints("base.safetensors", ["e/mnist.safetensors", "e/svhn.pt"]),
 *   { mnist: "e/mnist.safetensors", svhn: "e/svhn.pt" },
 * );
 * ```
 */
export async function expertCheckpoints(
  base: string,
  experts: ExpertPaths,
): Promise<Record<string, string>> {
  if (typeof experts === "string") {
    const info = await Deno.stat(experts).catch(() => undefined);
    if (info?.isDirectory && !(await holdsOneCheckpoint(experts))) {
      const found = await listCheckpoints(experts, [base]);
      if (Object.keys(found).length === 0) {
        throw new Error(`${experts}: no expert checkpoints in this directory`);
      }
      return found;
    }
    return { [checkpointStem(experts)]: experts };
  }
  if (!Array.isArray(experts)) return { ...(experts as Record<string, string>) };
  const out: Record<string, string> = {};
  for (const path of experts as readonly string[]) {
    const task = checkpointStem(path);
    if (Object.hasOwn(out, task)) {
      throw new Error(`task "${task}" named twice: ${out[task]} and ${path}`);
    }
    out[task] = path;
  }
  return out;
}

/** A directory that is itself one (Hugging Face style) checkpoint rather than a set of experts. */
async function holdsOneCheckpoint(dir: string): Promise<boolean> {
  for (const name of [SINGLE_FILE_NAME, INDEX_FILE_NAME, TORCH_FILE_NAME, TORCH_INDEX_FILE_NAME]) {
    if (await Deno.stat(join(dir, name)).then(() => true, () => false)) return true;
  }
  return false;
}
