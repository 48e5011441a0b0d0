/**
 * The merge driver: resolves a registered method and its parameters, runs the method's
 * whole-model passes, then computes the merged task vector α·M tensor by tensor, on demand,
 * so that it can be written to a checkpoint while streaming or collected in memory.
 *
 * @module
 */
import type { HostTensor } from "../tensor/host.ts";
import { MemorySource, readsOverlap, type TensorSource } from "../tensor/source.ts";
import { scaleInPlace } from "./elementwise.ts";
import type { MergeData, MergeMethod, Params, ProgressCallback, TensorMerger } from "./method.ts";
import { checkMergeData } from "./data.ts";
import { numberParam, resolveParams } from "./params.ts";
import { getMethod, taskCountText } from "./registry.ts";
import { checkTasks } from "./stream.ts";
import { readTaskVectors, TaskVector } from "../taskvec/task_vector.ts";
import { scaleSource, WeightedSum } from "../taskvec/weighted_sum.ts";
import { displayWith, type Figure } from "../display/mod.ts";
import { type MergeSummary, mergeSummaryTable } from "./summary.ts";

export type { MergeSummary } from "./summary.ts";

/** Options of {@linkcode merge} and {@linkcode prepareMerge}. */
export interface MergeOptions {
  /** Hyperparameters by name (numbers, strings, booleans, or their text); others take defaults. */
  params?: Readonly<Record<string, unknown>>;
  /** Overrides the `scaling` parameter (α in θ0 + α·M). */
  scaling?: number;
  /** Per-task weights w_t: the method merges w_t·τ_t (default all 1). */
  taskScales?: readonly number[];
  /** Receives progress of every pass (whole-model passes first, then "merge"). */
  progress?: ProgressCallback;
  /**
   * The model, heads and data that data-using methods read (`needs: "data"`); ignored by
   * data-free methods. Its heads are in the order of the task vectors.
   */
  data?: MergeData;
  /**
   * θ0, for methods that read it ({@linkcode MergeMethod.needsBase}); by default the common
   * base of the task vectors when they are {@linkcode TaskVector}s.
   */
  baseModel?: TensorSource;
}

/**
 * Looks a method up when given by name, and resolves its parameters and scaling override.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { resolveMerge } from "./merge.ts";
 * const { method, params } = resolveMerge("ties", { params: { k: 10 }, scaling: 1 });
 * equal(method.title, "TIES-Merging");
 * deepEqual(params, { k: 10, merge: "sum", scaling: 1 }); // merge: the default
 * ```
 */
export function resolveMerge(
  method: string | MergeMethod,
  options: MergeOptions = {},
): { method: MergeMethod; params: Params } {
  const m = typeof method === "string" ? getMethod(method) : method;
  const given: Record<string, unknown> = { ...options.params };
  if (options.scaling !== undefined) given.scaling = options.scaling;
  return { method: m, params: resolveParams(m, given) };
}

/**
 * A merge whose whole-model passes have run: a lazy {@linkcode TensorSource} of α·M whose
 * `read(name)` reads that tensor from every task, merges it and scales it. Reading every name
 * once streams the merge with about (T + 2) tensors in memory; `writeCheckpoint` consumes it
 * directly. Build it with {@linkcode prepareMerge}.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { prepareMerge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number) => new MemorySource("τ", { w: { shape: [1], data: new Float32Array([v]) } });
 * const merged = await prepareMerge("average", [tau(1), tau(2)]);
 * equal(merged.label, "average(τ, τ)");
 * deepEqual(await merged.read("w"), new Float32Array([1.5]));
 * ```
 */
export class PreparedMerge implements TensorSource {
  readonly #tasks: readonly TensorSource[];
  readonly #merger: TensorMerger;
  readonly #alpha: number;
  readonly #progress?: ProgressCallback;
  readonly #base?: TensorSource;
  #done = 0;
  #total?: number;

  /**
   * Wraps a prepared merger over `tasks` (already weighted by `taskScales`, if any); `base` is
   * θ0 for methods that read it.
   */
  constructor(
    /** The method. */
    readonly method: MergeMethod,
    /** Its effective hyperparameters. */
    readonly params: Params,
    tasks: readonly TensorSource[],
    merger: TensorMerger,
    /** Per-task weights applied before merging, if any. */
    readonly taskScales?: readonly number[],
    progress?: ProgressCallback,
    base?: TensorSource,
  ) {
    this.#tasks = tasks;
    this.#merger = merger;
    this.#alpha = numberParam(params, "scaling");
    this.#progress = progress;
    this.#base = base;
  }

  /**
   * True when the merge's reads are independent: the method's merger says so
   * ({@linkcode TensorMerger.concurrentReads}) and every task vector (and θ0, for methods that
   * read it) allows concurrent reads.
   */
  get concurrentReads(): boolean {
    return this.#merger.concurrentReads === true &&
      readsOverlap(this.#base ? [...this.#tasks, this.#base] : this.#tasks);
  }

  /** True when the method builds one model per task ({@linkcode PreparedMerge.task}). */
  get perTask(): boolean {
    return this.method.output === "per-task";
  }

  /** Number of task vectors merged. */
  get taskCount(): number {
    return this.#tasks.length;
  }

  /** `method(τ1, …, τT)`. */
  get label(): string {
    return `${this.method.name}(${this.#taskLabels()})`;
  }

  /** The task vectors' tensor names. */
  names(): readonly string[] {
    return this.#tasks[0].names();
  }

  /** The shape of tensor `name`. */
  shape(name: string): readonly number[] {
    return this.#tasks[0].shape(name);
  }

  /**
   * α·M for tensor `name`, computed now from the T task tensors. Throws for methods that build
   * one model per task (read {@linkcode PreparedMerge.task} instead).
   */
  async read(name: string): Promise<Float32Array> {
    if (this.perTask) throw new Error(perTaskMessage(this.method));
    const taus = await readTaskVectors(this.#tasks, name);
    const base = await this.#base?.read(name);
    const merged = await this.#merger.tensor(name, this.shape(name), taus, base);
    return this.#finish(name, merged);
  }

  /**
   * Task `task`'s reconstructed task vector α·M_t as a lazy source, for methods that build one
   * model per task (`output: "per-task"`); for the others, the one merged α·M.
   */
  task(task: number): TensorSource {
    if (!Number.isInteger(task) || task < 0 || task >= this.#tasks.length) {
      throw new Error(`${this.label}: no task ${task} (${this.#tasks.length} task vectors)`);
    }
    if (!this.perTask) return this;
    const merger = this.#merger;
    if (!merger.taskTensor) {
      throw new Error(`method "${this.method.name}" is per-task but its merger has no taskTensor`);
    }
    return {
      label: `${this.method.name}[${this.#tasks[task].label}](${this.#taskLabels()})`,
      names: () => this.names(),
      shape: (name) => this.shape(name),
      read: async (name) => {
        const taus = await readTaskVectors(this.#tasks, name);
        const base = await this.#base?.read(name);
        return this.#finish(
          name,
          await merger.taskTensor!(task, name, this.shape(name), taus, base),
        );
      },
    };
  }

  /**
   * Every task's α·M_t for tensor `name` (one read of the task tensors for all of them), for
   * methods that build one model per task.
   */
  async readTasks(name: string): Promise<Float32Array[]> {
    const merger = this.#merger;
    if (!this.perTask || !merger.taskTensor) {
      throw new Error(`method "${this.method.name}" builds one merged model: read(name)`);
    }
    const taus = await readTaskVectors(this.#tasks, name);
    const base = await this.#base?.read(name);
    const shape = this.shape(name);
    const out: Float32Array[] = [];
    for (let t = 0; t < taus.length; t++) {
      out.push(scaleInPlace(await merger.taskTensor(t, name, shape, taus, base), this.#alpha));
    }
    const total = this.names().length;
    this.#done = this.#done % total + 1;
    this.#progress?.({ phase: "merge", done: this.#done, total, tensor: name });
    return out;
  }

  #taskLabels(): string {
    return this.#tasks.map((t) => t.label).join(", ");
  }

  #finish(name: string, merged: Float32Array): Float32Array {
    scaleInPlace(merged, this.#alpha);
    // Counted once: a source may build its name list afresh on every call.
    const total = this.#total ??= this.names().length;
    this.#done = this.#done % total + 1;
    this.#progress?.({ phase: "merge", done: this.#done, total, tensor: name });
    return merged;
  }

  /** Method, effective parameters, inputs and the facts found so far. */
  get summary(): MergeSummary {
    return {
      method: this.method.name,
      params: this.params,
      tasks: this.#tasks.map((t) => t.label),
      ...(this.taskScales ? { taskScales: [...this.taskScales] } : {}),
      notes: { ...this.#merger.notes },
      ...(this.#merger.dataUse ? { data: this.#merger.dataUse } : {}),
    };
  }
}

/**
 * Prepares a merge: resolves the method and its parameters, checks the task vectors' layouts,
 * and runs the method's whole-model streaming passes (TIES thresholds, …). The result computes
 * α·M tensor by tensor on demand.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { prepareMerge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number) => new MemorySource("τ", { w: { shape: [1], data: new Float32Array([v]) } });
 * const merged = await prepareMerge("task_arithmetic", [tau(1), tau(2)]);
 * deepEqual(await merged.read("w"), new Float32Array([0.9])); // 0.3 × 3, in float32
 * ```
 */
export async function prepareMerge(
  method: string | MergeMethod,
  taskVectors: readonly TensorSource[],
  options: MergeOptions = {},
): Promise<PreparedMerge> {
  const { method: m, params } = resolveMerge(method, options);
  checkTasks(taskVectors);
  checkTaskCount(m, taskVectors.length);
  checkMergeData(m, params, taskVectors.length, options.data);
  const base = m.needsBase ? baseOf(m, taskVectors, options.baseModel) : undefined;
  const tasks = applyTaskScales(taskVectors, options.taskScales);
  const data = m.needs === "data" ? options.data : undefined;
  const merger = await m.prepare({ tasks, params, progress: options.progress, data, base });
  return new PreparedMerge(m, params, tasks, merger, options.taskScales, options.progress, base);
}

/**
 * Fails, naming the method and what it accepts, when it cannot merge `count` task vectors
 * (SLERP merges exactly two).
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkTaskCount } from "./merge.ts";
 * import { getMethod } from "./registry.ts";
 * checkTaskCount(getMethod("ties"), 8); // fine
 * const pairwise = { ...getMethod("ties"), taskCount: { min: 2, max: 2 } };
 * throws(() => checkTaskCount(pairwise, 3), /method "ties" merges exactly 2 task vectors, not 3/);
 * ```
 */
export function checkTaskCount(method: MergeMethod, count: number): void {
  const { min = 1, max = Infinity } = method.taskCount ?? {};
  if (count >= min && count <= max) return;
  throw new Error(
    `method "${method.name}" merges ${taskCountText(method.taskCount ?? {})} task vectors, ` +
      `not ${count}`,
  );
}

/** The message for reading one merged model from a method that builds one per task. */
function perTaskMessage(method: MergeMethod): string {
  return `method "${method.name}" builds one model per task, not one merged model: read each ` +
    `task's model (PreparedMerge.task(t), MergedTaskVector.perTask[t])`;
}

/** θ0 for a method that reads it: given, or the task vectors' common base. */
function baseOf(
  method: MergeMethod,
  tasks: readonly TensorSource[],
  given: TensorSource | undefined,
): TensorSource {
  if (given) {
    checkTasks([tasks[0], given]);
    return given;
  }
  const bases = new Set(
    tasks.map((t) => t instanceof WeightedSum && t.terms.length === 1 ? t.terms[0].source : t)
      .map((t) => t instanceof TaskVector ? t.base : undefined),
  );
  const [only] = bases;
  if (bases.size === 1 && only !== undefined) return only;
  throw new Error(
    `method "${method.name}" reads θ0 itself: pass the base model (options.baseModel), or task ` +
      `vectors built from checkpoints on one base`,
  );
}

function applyTaskScales(
  tasks: readonly TensorSource[],
  scales: readonly number[] | undefined,
): readonly TensorSource[] {
  if (!scales) return tasks;
  if (scales.length !== tasks.length) {
    throw new Error(`taskScales has ${scales.length} values for ${tasks.length} task vectors`);
  }
  return tasks.map((t, i) => scales[i] === 1 ? t : scaleSource(t, scales[i]));
}

/** The merged task vector α·M held in memory, with what produced it. */
export class MergedTaskVector extends MemorySource {
  /**
   * Wraps merged tensors and the merge's summary; `perTask` holds the per-task task vectors of
   * a per-task method (then `tensors` is empty).
   */
  constructor(
    tensors: Map<string, HostTensor>,
    /** Method, effective parameters, inputs, notes. */
    readonly summary: MergeSummary,
    label = `${summary.method}(${summary.tasks.join(", ")})`,
    /** Per-task methods: task t's α·M_t, in task order. */
    readonly perTask?: readonly MemorySource[],
  ) {
    super(label, tensors);
  }

  /** Tensor names (per-task merges: throws, naming where the task vectors are). */
  override names(): string[] {
    this.#singleOnly();
    return super.names();
  }

  /** The tensors by name (per-task merges: throws, naming where the task vectors are). */
  override tensors(): Map<string, HostTensor> {
    this.#singleOnly();
    return super.tensors();
  }

  /** The stored tensor (per-task merges: throws, naming where the task vectors are). */
  override get(name: string): HostTensor {
    this.#singleOnly();
    return super.get(name);
  }

  #singleOnly(): void {
    if (this.perTask) {
      throw new Error(
        `${this.label}: method "${this.summary.method}" built one model per task: read ` +
          `.perTask[t] (task t's α·M_t)`,
      );
    }
  }

  /** The L2 norm of α·M over every tensor (per-task merges: the mean over tasks of ‖α·M_t‖). */
  norm(): number {
    const norm = (source: MemorySource) => {
      let sum = 0;
      for (const name of source.names()) for (const v of source.get(name).data) sum += v * v;
      return Math.sqrt(sum);
    };
    if (!this.perTask) return norm(this);
    return this.perTask.reduce((a, s) => a + norm(s), 0) / this.perTask.length;
  }

  /** The summary and the norm as a table. */
  figure(): Figure {
    if (this.perTask) {
      return mergeSummaryTable(this.summary, [
        ["output", "one model per task"],
        ["tensors", this.perTask[0].names().length],
        ["mean over tasks of ‖α·M_t‖", this.norm()],
      ]);
    }
    return mergeSummaryTable(this.summary, [
      ["tensors", this.names().length],
      ["‖α·M‖", this.norm()],
    ]);
  }
}
displayWith(MergedTaskVector.prototype, (m) => m.figure());

/**
 * Merges task vectors in memory and returns α·M (add it to θ0 for the merged model). For large
 * models, write {@linkcode prepareMerge}'s lazy result to a checkpoint instead
 * (`mergeCheckpoints`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [3], data: new Float32Array(v) } });
 * const m = await merge("ties", [tau([1, -2, 0.1]), tau([1, 3, -0.2])], {
 *   params: { k: 100, merge: "mean" }, scaling: 1,
 * });
 * deepEqual(m.get("w").data, new Float32Array([1, 3, -0.2])); // the mean of the agreeing entries
 * ```
 */
export async function merge(
  method: string | MergeMethod,
  taskVectors: readonly TensorSource[],
  options: MergeOptions = {},
): Promise<MergedTaskVector> {
  const prepared = await prepareMerge(method, taskVectors, options);
  if (prepared.perTask) {
    const perTask = Array.from({ length: prepared.taskCount }, () => new Map<string, HostTensor>());
    for (const name of prepared.names()) {
      const shape = prepared.shape(name);
      (await prepared.readTasks(name)).forEach((data, t) => perTask[t].set(name, { shape, data }));
    }
    const labels = prepared.summary.tasks;
    const sources = perTask.map((m, t) =>
      new MemorySource(`${prepared.method.name}[${labels[t]}]`, m)
    );
    return new MergedTaskVector(new Map(), prepared.summary, prepared.label, sources);
  }
  const tensors = new Map<string, HostTensor>();
  for (const name of prepared.names()) {
    tensors.set(name, { shape: prepared.shape(name), data: await prepared.read(name) });
  }
  return new MergedTaskVector(tensors, prepared.summary, prepared.label);
}
