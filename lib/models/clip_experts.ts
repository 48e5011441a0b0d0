/**
 * A real-model experiment's inputs, described by plain paths and opened together with every
 * cross-check done up front: the base CLIP vision tower, one expert per task (any layout and
 * format `openClipVision` reads), the heads file, optionally a labelled test folder per task
 * and an unlabelled auxiliary folder. What a study needs to run RI, merge and evaluate on real
 * checkpoints instead of the built-in zoo.
 *
 * ```json
 * {
 *   "base": "ckpts/clip-vit-base-patch32",
 *   "experts": { "cars": "ckpts/cars.pt", "dtd": "ckpts/dtd.safetensors" },
 *   "heads": "ckpts/heads.safetensors",
 *   "tasks": { "cars": "data/cars/test", "dtd": "data/dtd/test" },
 *   "aux": "data/imagenet/train",
 *   "vit": { "heads": 12 }
 * }
 * ```
 *
 * Relative paths are resolved against a base directory (the configuration file's folder).
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import type { ViTConfig } from "./config.ts";
import { disposeHead, type Head } from "./head.ts";
import type { HostParams } from "./weights.ts";
import { readHeadsFile } from "./heads_file.ts";
import { type ClipVisionCheckpoint, openClipVision, readTower } from "./clip_checkpoint.ts";
import { type ClipImageFolder, clipImageFolder, clipLabelledFolder } from "../data/image_folder.ts";

/** Where a real-model experiment's files are. */
export interface ClipExpertsSpec {
  /** The pretrained vision tower θ0. */
  base: string;
  /** Task name → expert checkpoint. */
  experts: Record<string, string>;
  /** The heads file (one head per task, see `heads_file.ts`). */
  heads: string;
  /** Task name → labelled test folder (one sub-folder per class), for evaluation. */
  tasks?: Record<string, string>;
  /** Unlabelled auxiliary pictures (RI's data). */
  aux?: string;
  /** ViT configuration overrides (`heads`, `activation`, …), see `openClipVision`. */
  vit?: Partial<ViTConfig>;
}

const KEYS = ["base", "experts", "heads", "tasks", "aux", "vit"];

/**
 * Checks a real-model description (from JSON) and resolves its relative paths against
 * `baseDir`; errors name `where` and the key.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { resolveClipExpertsSpec } from "./clip_experts.ts";
 * const spec = resolveClipExpertsSpec({ base: "b.pt", experts: { mnist: "m.pt" }, heads: "h.safetensors" }, "/runs", "run.json");
 * deepStrictEqual([spec.base, spec.experts.mnist], ["/runs/b.pt", "/runs/m.pt"]);
 * ```
 */
export function resolveClipExpertsSpec(
  value: unknown,
  baseDir: string,
  where = "models",
): ClipExpertsSpec {
  const fail = (problem: string) => new Error(`${where}: ${problem}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw fail(`expected an object with ${KEYS.join(", ")}`);
  }
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (!KEYS.includes(key)) throw fail(`unknown key "${key}"; valid keys are ${KEYS.join(", ")}`);
  }
  const path = (key: string, p: unknown) => {
    if (typeof p !== "string" || p === "") {
      throw fail(`${key} must be a path, got ${JSON.stringify(p)}`);
    }
    return isAbsolute(p) ? p : join(baseDir, p);
  };
  const paths = (key: string, m: unknown) => {
    if (typeof m !== "object" || m === null || Array.isArray(m) || Object.keys(m).length === 0) {
      throw fail(`${key} must map task names to paths`);
    }
    return Object.fromEntries(Object.entries(m).map(([t, p]) => [t, path(`${key}.${t}`, p)]));
  };
  if (
    v.vit !== undefined && (typeof v.vit !== "object" || v.vit === null || Array.isArray(v.vit))
  ) {
    throw fail("vit must be an object of ViT configuration fields");
  }
  return {
    base: path("base", v.base),
    experts: paths("experts", v.experts),
    heads: path("heads", v.heads),
    ...(v.tasks === undefined ? {} : { tasks: paths("tasks", v.tasks) }),
    ...(v.aux === undefined ? {} : { aux: path("aux", v.aux) }),
    ...(v.vit === undefined ? {} : { vit: v.vit as Partial<ViTConfig> }),
  };
}

/**
 * The opened experiment (see {@linkcode openClipExperts}): the base in memory, experts read
 * on demand, heads in task order, folders ready to stream. Dispose it to free the heads and
 * close the files.
 */
export class ClipExperts implements Disposable {
  /** Use {@linkcode openClipExperts}. */
  constructor(
    /** What it was opened from (paths resolved). */
    readonly spec: ClipExpertsSpec,
    /** The ViT configuration (the base's). */
    readonly config: ViTConfig,
    /** Task names, in the order of `spec.experts`. */
    readonly tasks: readonly string[],
    /** θ0's parameters in host memory. */
    readonly base: HostParams,
    /** The lazy views of the base and the experts (task order), for streaming merges. */
    readonly views: { base: ClipVisionCheckpoint; experts: readonly ClipVisionCheckpoint[] },
    /** One head per task, in task order. */
    readonly heads: readonly Head[],
    /** One labelled test folder per task (task order), when `spec.tasks` was given. */
    readonly tests: readonly ClipImageFolder[] | undefined,
    /** The auxiliary folder, when `spec.aux` was given. */
    readonly aux: ClipImageFolder | undefined,
  ) {}

  /** Expert `task`'s parameters, read into host memory now. */
  async expert(task: string): Promise<HostParams> {
    const i = this.tasks.indexOf(task);
    if (i < 0) throw new Error(`no expert "${task}" (experts: ${this.tasks.join(", ")})`);
    return await readTower(this.views.experts[i]);
  }

  /** Frees the heads and closes the checkpoint files. */
  dispose(): void {
    this.heads.forEach(disposeHead);
    this.views.base.close();
    this.views.experts.forEach((e) => e.close());
  }

  /** Frees the heads and closes the checkpoint files (`using` support). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Opens a real-model experiment and checks that it fits together: every expert opens with
 * the base's configuration (its projection borrowed from the base when it has none), every
 * task has a head whose dimension is the model's projection, and every test folder's
 * sub-folders are classes of its task's head. Errors name the file, tensor or folder.
 *
 * @example
 * ```ts ignore
 * using experiment = await openClipExperts(resolveClipExpertsSpec(json, "runs"));
 * console.log(experiment.tasks, experiment.config.width);
 * ```
 */
export async function openClipExperts(spec: ClipExpertsSpec): Promise<ClipExperts> {
  const base = await openClipVision(spec.base, { config: spec.vit });
  const experts: ClipVisionCheckpoint[] = [];
  let heads: Head[] = [];
  try {
    const tasks = Object.keys(spec.experts);
    for (const task of tasks) {
      experts.push(
        await openClipVision(spec.experts[task], { config: base.config, projectionFrom: base }),
      );
    }
    heads = await readHeadsFile(spec.heads, { featureDim: base.config.projectionDim, tasks });
    const tests = spec.tasks ? await testFolders(spec.tasks, tasks, heads, base.config) : undefined;
    const aux = spec.aux
      ? await clipImageFolder(spec.aux, { size: base.config.imageSize })
      : undefined;
    const host = await readTower(base);
    return new ClipExperts(spec, base.config, tasks, host, { base, experts }, heads, tests, aux);
  } catch (err) {
    heads.forEach(disposeHead);
    base.close();
    experts.forEach((e) => e.close());
    throw err;
  }
}

async function testFolders(
  folders: Record<string, string>,
  tasks: readonly string[],
  heads: readonly Head[],
  config: ViTConfig,
): Promise<ClipImageFolder[]> {
  const extra = Object.keys(folders).filter((t) => !tasks.includes(t));
  if (extra.length) {
    throw new Error(`tasks: folder(s) for ${extra.join(", ")}, which have no expert`);
  }
  const out: ClipImageFolder[] = [];
  for (const [i, task] of tasks.entries()) {
    const path = folders[task];
    if (!path) throw new Error(`tasks: no test folder for expert "${task}"`);
    out.push(await clipLabelledFolder(path, { classes: heads[i].classes, size: config.imageSize }));
  }
  return out;
}
