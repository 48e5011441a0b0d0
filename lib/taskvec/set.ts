/**
 * A named set of task vectors (one per task), usually built from a base checkpoint and expert
 * checkpoints on disk, with the analyses a notebook wants: norms, cosine similarities and the
 * merged model θ0 + Σ λᵢ·τᵢ.
 *
 * @module
 */
import type { OpenCheckpointOptions } from "../io/checkpoint.ts";
import { expertCheckpoints, type ExpertPaths } from "../io/find.ts";
import { openCheckpoint } from "../io/open.ts";
import { assertDistinctFiles } from "../io/paths.ts";
import type { TensorSource } from "../tensor/source.ts";
import { type Figure, stack } from "../display/figure.ts";
import { displayWith } from "../display/jupyter.ts";
import { applyTaskVectors, TaskVector } from "./task_vector.ts";
import {
  type CosineSimilarity,
  type PassOptions,
  type TaskVectorNorms,
  type TaskVectorStats,
  taskVectorStats,
} from "./stats.ts";

export type { ExpertPaths };

/** Options of {@linkcode TaskVectorSet.open}. */
export interface OpenTaskVectorsOptions extends OpenCheckpointOptions {
  /**
   * How to open the base and each expert (default: `openCheckpoint`, any format): called for
   * the base without `base`, then for each expert with the opened base, whose configuration it
   * may need.
   */
  open?: (path: string, base?: TensorSource) => Promise<TensorSource & { close(): void }>;
}

/**
 * Task vectors τᵢ by task name, over a common base θ0 when they were built from one.
 * Everything is lazy: tensors are read when a pass or a write asks for them.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, ok } from "node:assert/strict";
 * import { MemorySource, TaskVectorSet } from "../../mod.ts";
 * import { TaskVector } from "./task_vector.ts";
 * const t = (v: number[]) => ({ w: { shape: [2], data: new Float32Array(v) } });
 * const base = new MemorySource("base", t([0, 0]));
 * const set = new TaskVectorSet(["a", "b"], [
 *   new TaskVector("a", base, new MemorySource("a", t([1, 0]))),
 *   new TaskVector("b", base, new MemorySource("b", t([1, 1]))),
 * ], base);
 * ok(Math.abs((await set.cosineSimilarity()).matrix[0][1] - Math.SQRT1_2) < 1e-12);
 * deepStrictEqual(await set.apply(1).read("w"), new Float32Array([2, 1]));
 * ```
 */
export class TaskVectorSet implements Disposable {
  readonly #owned: { close(): void }[];
  #stats?: Promise<TaskVectorStats>;

  /** Wraps task vectors; checkpoints in `owned` are closed by {@linkcode TaskVectorSet.close}. */
  constructor(
    /** Task names, one per vector. */
    readonly tasks: readonly string[],
    /** The task vectors, in the order of `tasks`. */
    readonly vectors: readonly TensorSource[],
    /** The base θ0 they were computed from, when known (needed by `apply`). */
    readonly base?: TensorSource,
    owned: readonly { close(): void }[] = [],
  ) {
    if (tasks.length !== vectors.length) {
      throw new Error(`${tasks.length} task names for ${vectors.length} task vectors`);
    }
    const seen = new Set<string>();
    for (const task of tasks) {
      if (seen.has(task)) throw new Error(`task "${task}" appears twice`);
      seen.add(task);
    }
    this.#owned = [...owned];
  }

  /**
   * Opens the base checkpoint and the experts, and builds τᵢ = θᵢ − θ0 lazily for each. Every
   * expert's tensor names and shapes are checked against the base now; the error names both
   * files and the tensor.
   */
  static async open(
    base: string,
    experts: ExpertPaths,
    options: OpenTaskVectorsOptions = {},
  ): Promise<TaskVectorSet> {
    const paths = await expertCheckpoints(base, experts);
    const open = options.open ?? ((path: string) => openCheckpoint(path, options));
    const opened: { close(): void }[] = [];
    try {
      const theta0 = await open(base);
      opened.push(theta0);
      const vectors: TaskVector[] = [];
      for (const [task, path] of Object.entries(paths)) {
        const expert = await open(path, theta0);
        opened.push(expert);
        vectors.push(new TaskVector(task, theta0, expert));
      }
      // The same file under two names (a link, the base as an expert) would count twice.
      await assertDistinctFiles([
        { label: `the base ${base}`, files: filesOf(theta0) },
        ...Object.entries(paths).map(([task, path], i) => ({
          label: `expert "${task}" ${path}`,
          files: filesOf(vectors[i].expert),
        })),
      ]);
      return new TaskVectorSet(Object.keys(paths), vectors, theta0, opened);
    } catch (err) {
      for (const c of opened) c.close();
      throw err;
    }
  }

  /** The task vector of `task`; throws listing the tasks when absent. */
  get(task: string): TensorSource {
    const i = this.tasks.indexOf(task);
    if (i < 0) throw new Error(`no task "${task}" (tasks: ${this.tasks.join(", ")})`);
    return this.vectors[i];
  }

  /** Tensor names (those of the first vector). */
  names(): readonly string[] {
    return this.vectors[0]?.names() ?? [];
  }

  /** Per-tensor and global L2 norms, in one streaming pass. */
  async norms(options: PassOptions = {}): Promise<TaskVectorNorms> {
    return (await this.stats(options)).norms;
  }

  /** The N×N cosine-similarity matrix, in one streaming pass. */
  async cosineSimilarity(options: PassOptions = {}): Promise<CosineSimilarity> {
    return (await this.stats(options)).cosine;
  }

  /** Norms and cosine similarities together, from a single streaming pass. */
  stats(options: PassOptions = {}): Promise<TaskVectorStats> {
    return taskVectorStats(this.tasks, this.vectors, options);
  }

  /**
   * θ0 + Σ λᵢ·τᵢ as a lazy source: one λ for every task, or one per task in `tasks` order.
   */
  apply(lambdas: number | readonly number[]): TensorSource {
    if (!this.base) throw new Error("this task-vector set has no base model to apply to");
    return applyTaskVectors(this.base, this.vectors, lambdas);
  }

  /** Closes the checkpoints this set opened. */
  close(): void {
    for (const c of this.#owned) c.close();
  }

  /** Closes the checkpoints this set opened (`using` support). */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * The norms as bars and the cosine similarities as a heatmap, from one streaming pass made
   * the first time (what a notebook shows).
   */
  async figure(): Promise<Figure> {
    this.#stats ??= this.stats().catch((err) => {
      this.#stats = undefined; // a failed pass is not remembered
      throw err;
    });
    const { norms, cosine } = await this.#stats;
    return stack([norms.figure(), cosine.figure()], { title: this.headline() });
  }

  /** A one-line summary. */
  headline(): string {
    return `TaskVectorSet(${this.tasks.length} tasks: ${this.tasks.join(", ")}; ` +
      `${this.names().length} tensors; base ${this.base?.label ?? "unknown"})`;
  }
}
displayWith(TaskVectorSet.prototype, (s) => s.figure(), { text: (s) => s.headline() });

/**
 * Opens task vectors from a base checkpoint and expert checkpoints; see
 * {@linkcode TaskVectorSet.open}.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { MemorySource, openTaskVectors, writeCheckpoint } from "../../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const model = (v: number) => new MemorySource("m", { w: { shape: [1], data: new Float32Array([v]) } });
 * await writeCheckpoint(`${dir}/base.safetensors`, model(1));
 * await writeCheckpoint(`${dir}/experts/mnist.safetensors`, model(3));
 * using set = await openTaskVectors(`${dir}/base.safetensors`, `${dir}/experts`);
 * deepStrictEqual(set.tasks, ["mnist"]);
 * deepStrictEqual(await set.get("mnist").read("w"), new Float32Array([2]));
 * ```
 */
export function openTaskVectors(
  base: string,
  experts: ExpertPaths,
  options: OpenTaskVectorsOptions = {},
): Promise<TaskVectorSet> {
  return TaskVectorSet.open(base, experts, options);
}

/** The files a model is read from (`files` of a checkpoint or a CLIP tower), else none. */
function filesOf(model: TensorSource): readonly string[] {
  const files = (model as { files?: unknown }).files;
  return Array.isArray(files) ? files : [];
}
