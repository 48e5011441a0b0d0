/**
 * Real CLIP checkpoints as the models of a study: what `deno task merge --models FILE` and
 * `deno task ri --models FILE` run on instead of the built-in zoo. The JSON description
 * (docs/REAL_CHECKPOINTS.md) names the base vision tower, one expert per task, the heads file,
 * a labelled test folder per task and an unlabelled auxiliary folder; they are opened with
 * `openClipExperts`, which checks that they fit together before any work starts.
 *
 * A {@linkcode RealModels} offers what the study reads from a zoo (task names, geometry, θ0,
 * heads, experts, each task's test images), so RI, the merges and the evaluation run on the
 * same code for both. Pictures are CLIP-preprocessed as they are read, so no further pixel
 * normalisation applies.
 *
 * @module
 */
import { dirname } from "node:path";
import type { ViTConfig } from "../models/config.ts";
import type { Head } from "../models/head.ts";
import type { HostParams } from "../models/weights.ts";
import {
  type ClipExperts,
  openClipExperts,
  resolveClipExpertsSpec,
} from "../models/clip_experts.ts";
import { type ClipImageFolder, clipImageFolder } from "../data/image_folder.ts";
import type { ImageSet } from "../data/dataset.ts";
import { Rng } from "../tensor/random.ts";
import { progress, type ProgressMode } from "../display/progress.ts";

/** Pictures read per progress update. */
const CHUNK = 32;

let create: (experiment: ClipExperts, dir: string, progressMode: ProgressMode) => RealModels;

/**
 * A real-model experiment opened for a study (build it with {@linkcode openRealModels}).
 * Dispose it to free the heads and close the checkpoint files.
 */
export class RealModels implements Disposable {
  readonly #tests = new Map<string, Promise<{ test: ImageSet }>>();
  /** The opened files. */
  readonly #experiment: ClipExperts;
  /** The description file (shown in reports as the models' origin). */
  readonly dir: string;
  /** Progress display while pictures are read. */
  readonly progressMode: ProgressMode;

  private constructor(experiment: ClipExperts, dir: string, progressMode: ProgressMode) {
    this.#experiment = experiment;
    this.dir = dir;
    this.progressMode = progressMode;
  }

  static {
    create = (experiment, dir, progressMode) => new RealModels(experiment, dir, progressMode);
  }

  /** Task names, in the description's order. */
  get taskNames(): string[] {
    return [...this.#experiment.tasks];
  }

  /** The geometry; no pixel normalisation (CLIP preprocessing has normalised the pictures). */
  get config(): { model: ViTConfig; norm?: undefined } {
    return { model: this.#experiment.config };
  }

  /** θ0 in host memory. */
  get base(): HostParams {
    return this.#experiment.base;
  }

  /** One head per task, in task order. */
  get heads(): readonly Head[] {
    return this.#experiment.heads;
  }

  /** Expert `task`'s parameters, read from its file now. */
  expert(task: string): Promise<HostParams> {
    return this.#experiment.expert(task);
  }

  /** Task `task`'s whole labelled test folder in memory (read once, then kept). */
  data(task: string): Promise<{ test: ImageSet }> {
    const i = this.#experiment.tasks.indexOf(task);
    if (i < 0) throw new Error(`${this.dir}: no task "${task}" (tasks: ${this.taskNames})`);
    const folders = this.#experiment.tests;
    if (!folders) {
      throw new Error(
        `${this.dir}: no "tasks" test folders in this description; evaluation needs one ` +
          `labelled folder per task`,
      );
    }
    let out = this.#tests.get(task);
    if (!out) {
      const folder = folders[i];
      out = readAll(folder, all(folder.count), `test ${task}`, this.progressMode)
        .then((test) => ({ test }));
      this.#tests.set(task, out);
    }
    return out;
  }

  /**
   * RI's auxiliary set: `size` pictures (or the whole folder when it holds fewer) drawn
   * without repetition by `seed` from the description's `aux` folder (`spec` = `models`) or
   * from another folder (`dir:PATH`). Drawing spreads the set over a whole ImageNet-like tree,
   * whose sorted file list holds one class after another.
   */
  async auxiliarySet(spec: string, size: number, seed: number): Promise<ImageSet> {
    const folder = await this.auxFolder(spec);
    const n = Math.min(size, folder.count);
    const picked = new Rng(seed, "aux/real").permutation(folder.count).slice(0, n).sort();
    return await readAll(folder, picked, "aux pictures", this.progressMode);
  }

  /** The folder `spec` names: `models` (the description's `aux`) or `dir:PATH`. */
  async auxFolder(spec: string): Promise<ClipImageFolder> {
    if (spec === "models") {
      if (this.#experiment.aux) return this.#experiment.aux;
      throw new Error(
        `${this.dir}: no "aux" folder in this description; RI and distillation need ` +
          `unlabelled pictures (add "aux", or set the study's aux to dir:PATH)`,
      );
    }
    const path = spec.replace(/^(dir|folder):/, "");
    return await clipImageFolder(path, { size: this.#experiment.config.imageSize });
  }

  /** Frees the heads and closes the checkpoint files. */
  dispose(): void {
    this.#experiment.dispose();
  }

  /** Frees the heads and closes the checkpoint files (`using` support). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Opens the real-model description at `path` (JSON; relative paths inside it are resolved
 * against its folder) and checks that everything fits together.
 *
 * @example
 * ```ts ignore
 * using models = await openRealModels("runs/vitb32-8tasks.models.json");
 * console.log(models.taskNames, models.config.model.width);
 * ```
 */
export async function openRealModels(
  path: string,
  progressMode: ProgressMode = "auto",
): Promise<RealModels> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    throw new Error(`models ${path}: cannot read it as JSON (${(err as Error).message})`);
  }
  const spec = resolveClipExpertsSpec(json, dirname(path), `models ${path}`);
  return create(await openClipExperts(spec), path, progressMode);
}

function all(count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => i);
}

/** The pictures at `indices` as one labelled (or unlabelled) set, with a progress bar. */
async function readAll(
  folder: ClipImageFolder,
  indices: Int32Array,
  label: string,
  mode: ProgressMode,
): Promise<ImageSet> {
  const per = 3 * folder.size * folder.size;
  const pixels = new Float32Array(indices.length * per);
  const labels = new Int32Array(folder.labels.length ? indices.length : 0);
  const bar = progress(label, indices.length, { mode });
  for (let start = 0; start < indices.length; start += CHUNK) {
    const part = await folder.gather(indices.slice(start, start + CHUNK));
    pixels.set(part.pixels, start * per);
    if (labels.length) labels.set(part.labels, start);
    bar.update(start + part.count);
  }
  await bar.done();
  return {
    count: indices.length,
    channels: 3,
    size: folder.size,
    pixels,
    labels,
    classes: folder.classes,
  };
}
