/**
 * Which paths are the same thing: an output that would land inside (or on) an input, and one
 * checkpoint given under two names (a symbolic link, a hard link, the base listed as an expert).
 *
 * Paths are compared after resolving symbolic links (`realpath` of the longest part that exists);
 * files are compared by device and inode where the file system gives them, so that a hard link is
 * caught too. Identical content in distinct files cannot be told apart by name or inode: it is
 * found by sampling bytes (see {@linkcode sameContentWarnings}) and reported as a warning.
 *
 * @module
 */
import { basename, dirname, join, resolve, sep } from "node:path";

/** An input of a command, for messages: what it is (`--base`, `aux folder`) and its path. */
export interface NamedPath {
  /** What the path is, as the user named it (a flag or a description). */
  what: string;
  /** The path as given. */
  path: string;
}

/**
 * `path` absolute with symbolic links resolved: the longest existing prefix through `realpath`,
 * the rest appended as written (so that an output not yet created resolves too).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { canonicalPath } from "./paths.ts";
 * const dir = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.symlink(dir, `${dir}-link`);
 * equal(await canonicalPath(`${dir}-link/not/yet/there.safetensors`), `${dir}/not/yet/there.safetensors`);
 * ```
 */
export async function canonicalPath(path: string): Promise<string> {
  let head = resolve(path);
  const rest: string[] = [];
  for (;;) {
    try {
      return join(await Deno.realPath(head), ...rest);
    } catch {
      const parent = dirname(head);
      if (parent === head) return resolve(path);
      rest.unshift(basename(head));
      head = parent;
    }
  }
}

/** True when `inner` is `outer` or lies under it (both canonical). */
function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}

/**
 * Refuses an output equal to, or inside, any input (a folder of experts, a model folder, an
 * auxiliary folder, a file): writing there would change what is read, or make the next run read
 * the output as an input. Checked before anything is written; the message names both.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { assertOutputOutsideInputs } from "./paths.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/experts`);
 * await assertOutputOutsideInputs({ what: "--out", path: `${dir}/merged` }, [{ what: "--experts", path: `${dir}/experts` }]);
 * await rejects(
 *   assertOutputOutsideInputs({ what: "--out", path: `${dir}/experts/m.safetensors` }, [{ what: "--experts", path: `${dir}/experts` }]),
 *   /--out .* is inside --experts/,
 * );
 * ```
 */
export async function assertOutputOutsideInputs(
  output: NamedPath,
  inputs: readonly NamedPath[],
): Promise<void> {
  const out = await canonicalPath(output.path);
  for (const input of inputs) {
    const real = await canonicalPath(input.path);
    if (!within(out, real)) continue;
    const where = out === real ? "is" : "is inside";
    throw new Error(
      `${output.what} ${output.path} ${where} ${input.what} ${input.path}, which this run reads: ` +
        `write the output elsewhere`,
    );
  }
}

/** What identifies a file: device and inode where known, else its canonical path. */
async function identity(path: string): Promise<string> {
  const info = await Deno.stat(path).catch(() => undefined);
  if (info?.ino !== null && info?.ino !== undefined) return `inode ${info.dev}:${info.ino}`;
  return `path ${await canonicalPath(path)}`;
}

/** A model read from files: its name for messages and every file it reads. */
export interface FileGroup {
  /** The name the user gave (a path, or a task and its path). */
  label: string;
  /** Every file read (shards included). */
  files: readonly string[];
}

/**
 * Refuses two models that read the same file: a symbolic or hard link to an expert given beside
 * it, the base listed as an expert, one shard shared by two indexes. The message names both.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { assertDistinctFiles } from "./paths.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.safetensors`, "x");
 * await Deno.link(`${dir}/a.safetensors`, `${dir}/b.safetensors`);
 * await rejects(
 *   assertDistinctFiles([{ label: "a", files: [`${dir}/a.safetensors`] }, { label: "b", files: [`${dir}/b.safetensors`] }]),
 *   /b: .* is the same file as .*, which a reads/,
 * );
 * ```
 */
export async function assertDistinctFiles(groups: readonly FileGroup[]): Promise<void> {
  const seen = new Map<string, { group: FileGroup; file: string }>();
  for (const group of groups) {
    for (const file of new Set(group.files)) {
      const id = await identity(file);
      const first = seen.get(id);
      if (first && first.group !== group) {
        const how = id.startsWith("inode") ? ` (${id})` : "";
        throw new Error(
          `${group.label}: ${file} is the same file as ${first.file}${how}, which ` +
            `${first.group.label} reads: the same model would count twice; give each model once`,
        );
      }
      seen.set(id, { group, file });
    }
  }
}

/** Bytes compared per sample, and samples per file. */
const SAMPLE_BYTES = 65_536;
const SAMPLES = 16;

/**
 * Warnings for models stored in distinct files whose content looks identical: the same total
 * size and the same bytes at 16 places spread over every file (64 KiB each, the first and last
 * included). Reading about 1 MiB per file, it cannot prove equality, so it only warns; a real
 * fine-tune differs almost everywhere, so different models never match by chance.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { sameContentWarnings } from "./paths.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.safetensors`, "same bytes");
 * await Deno.writeTextFile(`${dir}/b.safetensors`, "same bytes");
 * await Deno.writeTextFile(`${dir}/c.safetensors`, "other byte");
 * const group = (n: string) => ({ label: n, files: [`${dir}/${n}.safetensors`] });
 * const warnings = await sameContentWarnings([group("a"), group("b"), group("c")]);
 * equal(warnings.length, 1);
 * deepStrictEqual(warnings[0].startsWith("b and a hold identical bytes"), true);
 * ```
 */
export async function sameContentWarnings(groups: readonly FileGroup[]): Promise<string[]> {
  const sizes = await Promise.all(groups.map(async (g) => {
    let total = 0;
    for (const file of g.files) total += (await Deno.stat(file)).size;
    return total;
  }));
  const fingerprints = new Map<FileGroup, string>();
  const fingerprint = async (g: FileGroup) => {
    let text = fingerprints.get(g);
    if (text === undefined) fingerprints.set(g, text = await sampleDigest(g.files));
    return text;
  };
  const warnings: string[] = [];
  for (let i = 1; i < groups.length; i++) {
    for (let j = 0; j < i; j++) {
      if (sizes[i] !== sizes[j] || groups[i].files.length !== groups[j].files.length) continue;
      if (await fingerprint(groups[i]) !== await fingerprint(groups[j])) continue;
      warnings.push(
        `${groups[i].label} and ${groups[j].label} hold identical bytes wherever sampled ` +
          `(${sizes[i]} bytes each): probably the same model in two files, which would count ` +
          `twice (or give a zero task vector against the base)`,
      );
      break;
    }
  }
  return warnings;
}

/** SHA-256 over the sampled bytes of each file, in order. */
async function sampleDigest(files: readonly string[]): Promise<string> {
  const parts: Uint8Array[] = [];
  for (const path of files) {
    using file = await Deno.open(path, { read: true });
    const size = (await file.stat()).size;
    const count = Math.min(SAMPLES, Math.ceil(size / SAMPLE_BYTES));
    for (let k = 0; k < count; k++) {
      const at = count === 1 ? 0 : Math.floor((size - SAMPLE_BYTES) * k / (count - 1));
      const bytes = new Uint8Array(Math.min(SAMPLE_BYTES, size));
      await file.seek(Math.max(0, at), Deno.SeekMode.Start);
      let done = 0;
      while (done < bytes.length) {
        const n = await file.read(bytes.subarray(done));
        if (n === null) break;
        done += n;
      }
      parts.push(bytes.subarray(0, done));
    }
  }
  const total = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    total.set(p, at);
    at += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", total));
  return [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
}
