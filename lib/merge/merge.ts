/**
 * The merge driver: resolves a registered method and its parameters, runs the method's
 * whole-model passes, then computes the merged task vector α·M tensor by tensor, on demand,
 * so that it can be written to a checkpoint while streaming or collected in memory.
 *
 * @module
 */
import type { HostTensor } from "../tensor/host.ts";
import { MemorySource, type TensorSource } from "../tensor/source.ts";
import { scaleInPlace } from "./elementwise.ts";
import type {
  DataUse,
  MergeData,
  MergeMethod,
  Params,
  ProgressCallback,
  TensorMerger,
} from "./method.ts";
import { checkMergeData, describeDataUse } from "./data.ts";
import { numberParam, resolveParams } from "./params.ts";
import { getMethod } from "./registry.ts";
import { checkTasks } from "./stream.ts";
import { readTaskVectors } from "../taskvec/task_vector.ts";
import { scaleSource } from "../taskvec/weighted_sum.ts";
// figure.ts and jupyter.ts, not display/mod.ts: that one loads TensorFlow.js, which the
// streaming merge CLI never needs.
import { type Figure, table } from "../display/figure.ts";
import { formatNumber } from "../display/format.ts";
import { JUPYTER_DISPLAY, type MimeBundle } from "../display/jupyter.ts";
import type { TableCell } from "../display/spec.ts";

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
}

/** What a merge did: the method, its effective hyperparameters and facts found on the way. */
export interface MergeSummary {
  /** Registry name of the method. */
  method: string;
  /** Effective hyperparameters (defaults filled in, scaling override applied). */
  params: Params;
  /** Labels of the task vectors, in order. */
  tasks: string[];
  /** Per-task weights applied before merging, if any. */
  taskScales?: number[];
  /** Facts the method recorded (thresholds, counts). */
  notes: Record<string, unknown>;
  /** The data a data-using method read (absent for data-free methods). */
  data?: DataUse;
}

/**
 * Looks a method up when given by name, and resolves its parameters and scaling override.
 *
 * @example
 * ```ts
 * import { resolveMerge } from "./merge.ts";
 * const { method, params } = resolveMerge("ties", { params: { k: 10 }, scaling: 1 });
 * console.log(method.title, params); // TIES-Merging { k: 10, merge: "sum", scaling: 1 }
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
 * import { prepareMerge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number) => new MemorySource("τ", { w: { shape: [1], data: new Float32Array([v]) } });
 * const merged = await prepareMerge("average", [tau(1), tau(2)]);
 * console.log(merged.label, await merged.read("w")); // average(τ, τ) Float32Array [1.5]
 * ```
 */
export class PreparedMerge implements TensorSource {
  readonly #tasks: readonly TensorSource[];
  readonly #merger: TensorMerger;
  readonly #alpha: number;
  readonly #progress?: ProgressCallback;
  #done = 0;

  /** Wraps a prepared merger over `tasks` (already weighted by `taskScales`, if any). */
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
  ) {
    this.#tasks = tasks;
    this.#merger = merger;
    this.#alpha = numberParam(params, "scaling");
    this.#progress = progress;
  }

  /** `method(τ1, …, τT)`. */
  get label(): string {
    return `${this.method.name}(${this.#tasks.map((t) => t.label).join(", ")})`;
  }

  /** The task vectors' tensor names. */
  names(): readonly string[] {
    return this.#tasks[0].names();
  }

  /** The shape of tensor `name`. */
  shape(name: string): readonly number[] {
    return this.#tasks[0].shape(name);
  }

  /** α·M for tensor `name`, computed now from the T task tensors. */
  async read(name: string): Promise<Float32Array> {
    const taus = await readTaskVectors(this.#tasks, name);
    const merged = await this.#merger.tensor(name, this.shape(name), taus);
    scaleInPlace(merged, this.#alpha);
    const total = this.names().length;
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
 * import { prepareMerge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number) => new MemorySource("τ", { w: { shape: [1], data: new Float32Array([v]) } });
 * const merged = await prepareMerge("task_arithmetic", [tau(1), tau(2)]);
 * console.log(await merged.read("w")); // Float32Array [0.9] (0.3 × 3, in float32)
 * ```
 */
export async function prepareMerge(
  method: string | MergeMethod,
  taskVectors: readonly TensorSource[],
  options: MergeOptions = {},
): Promise<PreparedMerge> {
  const { method: m, params } = resolveMerge(method, options);
  checkTasks(taskVectors);
  checkMergeData(m, params, taskVectors.length, options.data);
  const tasks = applyTaskScales(taskVectors, options.taskScales);
  const data = m.needs === "data" ? options.data : undefined;
  const merger = await m.prepare({ tasks, params, progress: options.progress, data });
  return new PreparedMerge(m, params, tasks, merger, options.taskScales, options.progress);
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

/**
 * A merge's summary as a table: the method, its effective hyperparameters, the tasks, the
 * task weights and the facts the method recorded, then any `extra` rows.
 *
 * @example
 * ```ts
 * import { mergeSummaryTable } from "./merge.ts";
 * const summary = { method: "ties", params: { k: 20, scaling: 0.3 }, tasks: ["a", "b"], notes: {} };
 * console.log(mergeSummaryTable(summary).toText());
 * ```
 */
export function mergeSummaryTable(
  summary: MergeSummary,
  extra: readonly [string, TableCell][] = [],
): Figure {
  const rows: TableCell[][] = [
    ["method", summary.method],
    ...Object.entries(summary.params).map(([k, v]) => [`parameter ${k}`, cellOf(v)]),
    ["tasks", summary.tasks.join(", ")],
  ];
  if (summary.taskScales) rows.push(["task weights", summary.taskScales.join(", ")]);
  if (summary.data) rows.push(["data read", describeDataUse(summary.data)]);
  for (const [k, v] of Object.entries(summary.notes)) rows.push([k, cellOf(v)]);
  rows.push(...extra.map(([k, v]) => [k, v]));
  return table({ columns: ["", "value"], rows, title: `Merge: ${summary.method}`, digits: 4 });
}

function cellOf(value: unknown): TableCell {
  if (typeof value === "number" || typeof value === "string") return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "number")) {
    return value.map((v) => formatNumber(v, 4)).join(", ");
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** The merged task vector α·M held in memory, with what produced it. */
export class MergedTaskVector extends MemorySource {
  /** Wraps merged tensors and the merge's summary. */
  constructor(
    tensors: Map<string, HostTensor>,
    /** Method, effective parameters, inputs, notes. */
    readonly summary: MergeSummary,
    label = `${summary.method}(${summary.tasks.join(", ")})`,
  ) {
    super(label, tensors);
  }

  /** The L2 norm of α·M over every tensor. */
  norm(): number {
    let sum = 0;
    for (const name of this.names()) for (const v of this.get(name).data) sum += v * v;
    return Math.sqrt(sum);
  }

  /** The summary and the norm as a table. */
  figure(): Figure {
    return mergeSummaryTable(this.summary, [
      ["tensors", this.names().length],
      ["‖α·M‖", this.norm()],
    ]);
  }

  /** What Deno's Jupyter kernel shows: {@linkcode MergedTaskVector.figure}. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return this.figure().toBundle();
  }

  /** The table as text. */
  override toString(): string {
    return this.figure().toText();
  }

  /** The table as text, for `console.log`. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/**
 * Merges task vectors in memory and returns α·M (add it to θ0 for the merged model). For large
 * models, write {@linkcode prepareMerge}'s lazy result to a checkpoint instead
 * (`mergeCheckpoints`).
 *
 * @example
 * ```ts
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [3], data: new Float32Array(v) } });
 * const m = await merge("ties", [tau([1, -2, 0.1]), tau([1, 3, -0.2])], {
 *   params: { k: 100, merge: "mean" }, scaling: 1,
 * });
 * console.log(m.get("w").data); // Float32Array [1, 3, -0.2]
 * ```
 */
export async function merge(
  method: string | MergeMethod,
  taskVectors: readonly TensorSource[],
  options: MergeOptions = {},
): Promise<MergedTaskVector> {
  const prepared = await prepareMerge(method, taskVectors, options);
  const tensors = new Map<string, HostTensor>();
  for (const name of prepared.names()) {
    tensors.set(name, { shape: prepared.shape(name), data: await prepared.read(name) });
  }
  return new MergedTaskVector(tensors, prepared.summary, prepared.label);
}
