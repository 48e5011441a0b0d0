/**
 * Checkpoint mode of `deno task merge`: merge expert checkpoints on disk into one merged
 * checkpoint θ0 + α·M, streaming tensor by tensor (inputs are read one tensor at a time; the
 * output is written as it is computed, atomically), with the method, its effective
 * hyperparameters and the inputs recorded in the file's `__metadata__`.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { Checkpoint } from "../io/checkpoint.ts";
import { type ExpertPaths, INDEX_SUFFIX, shardStem } from "../io/find.ts";
import {
  assertOutputOutsideInputs,
  type FileGroup,
  type NamedPath,
  sameContentWarnings,
} from "../io/paths.ts";
import type { DType, WritableDType } from "../io/dtype.ts";
import { writeCheckpoint } from "../io/write_checkpoint.ts";
import { addInPlace } from "../linalg/vector.ts";
import { openTaskVectors } from "../taskvec/set.ts";
import { TaskVector } from "../taskvec/task_vector.ts";
import { checkCommonBase } from "../taskvec/base_check.ts";
import { readsOverlap, type TensorSource } from "../tensor/source.ts";
import {
  type MergeOptions,
  type MergeSummary,
  type PreparedMerge,
  prepareMerge,
  resolveMerge,
} from "./merge.ts";
import type { MergeMethod } from "./method.ts";

/** What {@linkcode mergeCheckpoints} needs. */
export interface MergeCheckpointOptions extends MergeOptions {
  /** Registry name of the method (or the method itself). */
  method: string | MergeMethod;
  /** The pretrained checkpoint θ0 (file, directory or sharded index). */
  base: string;
  /** The experts: checkpoint paths (tasks named after the files), a directory, or name → path. */
  experts: ExpertPaths;
  /** Output path (`.safetensors` file, `.safetensors.index.json`, or a directory). */
  out: string;
  /** Stored dtype (default: the base's float dtype when all its float tensors share one, else F32). */
  dtype?: WritableDType;
  /** Split the output into shards of at most this many bytes (default: one file). */
  maxShardBytes?: number;
  /**
   * Check that every expert is plausibly a fine-tune of the base (`checkCommonBase`: a few
   * weight matrices read, ‖θ − θ0‖ ≤ 0.5·‖θ0‖); default true.
   */
  checkBase?: boolean;
}

/** What {@linkcode mergeCheckpoints} wrote. */
export interface MergedCheckpoint {
  /** The checkpoint to open again (file, or index of a sharded output). */
  path: string;
  /** Every file written. */
  files: string[];
  /** The stored dtype. */
  dtype: WritableDType;
  /** Method, effective hyperparameters, tasks, notes (final, after the merge pass). */
  summary: MergeSummary;
  /** The `__metadata__` written (notes as known before the first tensor was written). */
  metadata: Record<string, string>;
  /** Tensors carried over from the base unmerged because they are not floating point. */
  carried: string[];
  /**
   * Methods that build one model per task: each task's checkpoint θ0 + α·M_t ({@linkcode
   * perTaskOutput} names them); `path` is then the first task's and `files` holds them all.
   */
  perTask?: { task: string; path: string; files: string[] }[];
  /** Inputs that look identical though stored in distinct files (see `sameContentWarnings`). */
  warnings: string[];
  /** Files of an interrupted earlier write to `out` that this write removed. */
  leftovers: string[];
}

const FLOAT_DTYPES: readonly DType[] = ["F64", "F32", "F16", "BF16"];

/**
 * Merges expert checkpoints with a registered method and writes θ0 + α·M. Tensors whose base
 * dtype is not floating point (e.g. `position_ids`) are not part of the task vectors, as in the
 * reference code; they are written with the base's values.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { mergeCheckpoints } from "./files.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * import { openCheckpoint } from "../io/open.ts";
 * import { writeCheckpoint } from "../io/write_checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * const model = (v: number) => new MemorySource("m", { w: { shape: [2], data: new Float32Array([v, 1]) } });
 * await writeCheckpoint(`${dir}/base.safetensors`, model(1));
 * await writeCheckpoint(`${dir}/a.safetensors`, model(1.25));
 * await writeCheckpoint(`${dir}/b.safetensors`, model(1.5));
 * const out = await mergeCheckpoints({
 *   method: "task_arithmetic", base: `${dir}/base.safetensors`,
 *   experts: [`${dir}/a.safetensors`, `${dir}/b.safetensors`], out: `${dir}/merged.safetensors`,
 *   scaling: 0.5,
 * });
 * equal(out.metadata.merge_method, "task_arithmetic");
 * equal(out.metadata.merge_params, '{"scaling":0.5}');
 * using merged = await openCheckpoint(out.path);
 * deepEqual(await merged.read("w"), new Float32Array([1.375, 1])); // θ0 + 0.5·(0.25 + 0.5)
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function mergeCheckpoints(options: MergeCheckpointOptions): Promise<MergedCheckpoint> {
  // A bad method or bad parameters fail before any file is read.
  const { method } = resolveMerge(options.method, options);
  await assertOutputOutsideInputs({ what: "--out", path: options.out }, [
    { what: "--base", path: options.base },
    ...expertInputs(options.experts),
  ]);
  using set = await openTaskVectors(options.base, options.experts);
  const base = set.base;
  if (!(base instanceof Checkpoint)) throw new Error(`${options.base}: not opened as a checkpoint`);
  const experts = set.vectors.map((v) => v instanceof TaskVector ? v.expert : v);
  const perTask = method.output === "per-task";
  const outs = perTask ? set.tasks.map((t) => perTaskOutput(options.out, t)) : [options.out];
  for (const out of outs) await assertOutputIsNoInput(out, [base, ...experts]);
  const warnings = await sameContentWarnings(fileGroups(set.tasks, base, experts));
  const floats = base.names().filter((name) => FLOAT_DTYPES.includes(base.dtype(name)));
  const carried = base.names().filter((name) => !FLOAT_DTYPES.includes(base.dtype(name)));
  const vectors = carried.length === 0 ? set.vectors : set.vectors.map((v) => subset(v, floats));
  if (options.checkBase ?? true) {
    await checkCommonBase(subset(base, floats), experts.map((e) => subset(e, floats)));
  }
  const merged = await prepareMerge(options.method, vectors, {
    ...options,
    baseModel: subset(base, floats),
  });
  const dtype = options.dtype ?? baseDtype(base, floats);
  const metadata = mergeMetadata(merged, options.base, set.tasks, expertLabels(set.vectors));
  const write = (out: string, source: TensorSource, extra: Record<string, string> = {}) =>
    writeCheckpoint(out, mergedModel(base, source), {
      dtype,
      metadata: { ...metadata, ...extra },
      maxShardBytes: options.maxShardBytes,
    });
  if (!perTask) {
    const written = await write(options.out, merged);
    return {
      path: written.path,
      files: written.files,
      dtype,
      summary: merged.summary,
      metadata,
      carried,
      warnings,
      leftovers: written.leftovers,
    };
  }
  // One checkpoint per task; each recomputes the tensors it needs from the task vectors.
  const tasks: { task: string; path: string; files: string[] }[] = [];
  const leftovers: string[] = [];
  for (const [t, task] of set.tasks.entries()) {
    const written = await write(outs[t], merged.task(t), { merge_task: task });
    tasks.push({ task, path: written.path, files: written.files });
    leftovers.push(...written.leftovers);
  }
  return {
    path: tasks[0].path,
    files: tasks.flatMap((t) => t.files),
    dtype,
    summary: merged.summary,
    metadata,
    carried,
    perTask: tasks,
    warnings,
    leftovers,
  };
}

/** The experts as inputs an output must stay out of: the folder, or each file. */
function expertInputs(experts: ExpertPaths): NamedPath[] {
  if (typeof experts === "string") return [{ what: "--experts", path: experts }];
  const paths = Array.isArray(experts)
    ? experts as readonly string[]
    : Object.values(experts as Record<string, string>);
  return paths.map((path) => ({ what: "--experts", path }));
}

/** Base and experts as the files each reads, named for messages. */
function fileGroups(
  tasks: readonly string[],
  base: Checkpoint,
  experts: readonly TensorSource[],
): FileGroup[] {
  const files = (source: TensorSource) => source instanceof Checkpoint ? source.files : [];
  return [
    { label: `the base ${base.label}`, files: base.files },
    ...experts.map((e, i) => ({ label: `expert "${tasks[i]}" ${e.label}`, files: files(e) })),
  ];
}

/**
 * Where a per-task method's checkpoint for `task` goes, given `--out`: `x.safetensors` becomes
 * `x.TASK.safetensors` (likewise a sharded index), and a directory gets a subdirectory `TASK`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { perTaskOutput } from "./files.ts";
 * equal(perTaskOutput("out/emr.safetensors", "mnist"), "out/emr.mnist.safetensors");
 * equal(perTaskOutput("out/emr", "mnist"), "out/emr/mnist");
 * ```
 */
export function perTaskOutput(out: string, task: string): string {
  const suffix = [INDEX_SUFFIX, ".safetensors"].find((end) => out.endsWith(end));
  if (suffix) return `${out.slice(0, -suffix.length)}.${task}${suffix}`;
  return join(out, task);
}

/**
 * Refuses an output that would replace a file of the inputs (the output's file, its other
 * layout's entry file or its shards, as `writeCheckpoint` names them): the merge would
 * overwrite the base or an expert it is reading.
 */
async function assertOutputIsNoInput(out: string, inputs: readonly TensorSource[]): Promise<void> {
  const suffix = [INDEX_SUFFIX, ".safetensors"].find((end) => out.endsWith(end));
  const dir = await canonical(suffix ? dirname(out) : out);
  const stem = suffix ? basename(out).slice(0, -suffix.length) : "model";
  for (const input of inputs) {
    if (!(input instanceof Checkpoint)) continue;
    for (const file of new Set([input.path, ...input.files])) {
      const real = await canonical(file);
      const name = basename(real);
      const replaced = name === `${stem}.safetensors` || name === `${stem}${INDEX_SUFFIX}` ||
        (name.endsWith(".safetensors") && shardStem(name) === stem);
      if (dirname(real) === dir && replaced) {
        throw new Error(
          `--out ${out} would overwrite ${file}, which this merge reads: write the merged ` +
            `model elsewhere`,
        );
      }
    }
  }
}

/** The path with symbolic links resolved where it exists, else made absolute. */
async function canonical(path: string): Promise<string> {
  return await Deno.realPath(path).catch(() => resolve(path));
}

/** The experts' paths, from the task vectors' expert checkpoints. */
function expertLabels(vectors: readonly TensorSource[]): string[] {
  return vectors.map((v) => v instanceof TaskVector ? v.expert.label : v.label);
}

/** The metadata recorded with a merged checkpoint. */
function mergeMetadata(
  merged: PreparedMerge,
  base: string,
  tasks: readonly string[],
  experts: readonly string[],
): Record<string, string> {
  const summary = merged.summary;
  const metadata: Record<string, string> = {
    format: "pt",
    merge_method: summary.method,
    merge_params: JSON.stringify(summary.params),
    merge_base: base,
    merge_experts: JSON.stringify(Object.fromEntries(tasks.map((t, i) => [t, experts[i]]))),
  };
  if (summary.taskScales) metadata.merge_task_scales = JSON.stringify(summary.taskScales);
  // Facts from the whole-model passes (TIES thresholds) are known before any tensor is written.
  if (Object.keys(summary.notes).length > 0) metadata.merge_notes = JSON.stringify(summary.notes);
  return metadata;
}

function baseDtype(base: Checkpoint, floats: readonly string[]): WritableDType {
  const dtypes = new Set(floats.map((name) => base.dtype(name)));
  const [only] = dtypes;
  return dtypes.size === 1 && only !== undefined ? only as WritableDType : "F32";
}

/** `source` restricted to `names` (in that order). */
function subset(source: TensorSource, names: readonly string[]): TensorSource {
  return {
    label: source.label,
    names: () => names,
    shape: (name) => source.shape(name),
    read: (name) => source.read(name),
    concurrentReads: source.concurrentReads,
  };
}

/** θ0 + α·M as a lazy source over all of θ0's tensors (unmerged ones are θ0's own values). */
function mergedModel(base: TensorSource, merged: TensorSource): TensorSource {
  const mergedNames = new Set(merged.names());
  const concurrentReads = readsOverlap([base, merged]);
  return {
    label: `θ0 + ${merged.label}`,
    names: () => base.names(),
    shape: (name) => base.shape(name),
    read: async (name) => {
      if (!mergedNames.has(name)) return await base.read(name);
      if (!concurrentReads) {
        const m = await merged.read(name);
        return addInPlace(await base.read(name), m);
      }
      // θ0's tensor is read while α·M is computed; the merge's error, if any, comes first.
      const [m, theta0] = await Promise.allSettled([merged.read(name), base.read(name)]);
      if (m.status === "rejected") throw m.reason;
      if (theta0.status === "rejected") throw theta0.reason;
      return addInPlace(theta0.value, m.value);
    },
    concurrentReads,
  };
}
