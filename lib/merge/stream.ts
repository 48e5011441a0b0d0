/**
 * Reading task vectors tensor by tensor for a merge, with as few live copies as possible:
 * each pass reads one tensor from every task, hands the T arrays to a visitor and drops them
 * before the next tensor.
 *
 * A task vector built from checkpoints ({@linkcode TaskVector}, τ = θ − θ0) is read here as the
 * expert's tensor with the base's subtracted in place, the base tensor read once per name and
 * shared by all tasks: T + 1 arrays per tensor and no intermediate garbage, which keeps a
 * streaming merge's peak memory near (T + 2) × the largest tensor. The values are the same
 * correctly rounded float32 differences `TaskVector.read` gives. Checkpoints' NaN/±Infinity
 * check runs on the differences, in the same pass as the subtraction, rather than as a scan of
 * every input tensor (the inputs are re-read and checked only when a difference is not finite).
 *
 * @module
 */
import { Checkpoint } from "../io/checkpoint.ts";
import { TaskVector } from "../taskvec/task_vector.ts";
import { assertSameLayout, type TensorSource } from "../tensor/source.ts";
import type { ProgressCallback } from "./method.ts";

/** Visits one tensor's values in every task (the arrays are the visitor's to keep or modify). */
export type TensorVisitor = (
  name: string,
  shape: readonly number[],
  taus: Float32Array[],
) => void | Promise<void>;

/** Changes task `task`'s values of tensor `name` in place right after they are read. */
export type TaskTransform = (
  task: number,
  name: string,
  shape: readonly number[],
  data: Float32Array,
) => void;

/**
 * A task vector multiplied by a weight (per-task weights applied before merging).
 *
 * @example
 * ```ts
 * import { ScaledTask } from "./stream.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const t = new MemorySource("τ", { w: { shape: [2], data: new Float32Array([1, 2]) } });
 * await new ScaledTask(t, 2).read("w"); // Float32Array [2, 4]
 * ```
 */
export class ScaledTask implements TensorSource {
  /** Wraps `task` with weight `scale`. */
  constructor(
    /** The task vector. */
    readonly task: TensorSource,
    /** Its weight. */
    readonly scale: number,
  ) {
    if (!Number.isFinite(scale)) throw new Error(`weight ${scale} for ${task.label} is not finite`);
  }

  /** `w·label`. */
  get label(): string {
    return `${this.scale}·${this.task.label}`;
  }

  /** The task's tensor names. */
  names(): readonly string[] {
    return this.task.names();
  }

  /** The shape of `name`. */
  shape(name: string): readonly number[] {
    return this.task.shape(name);
  }

  /** w·τ for tensor `name`. */
  async read(name: string): Promise<Float32Array> {
    return (await readTaskTensors([this], name))[0];
  }
}

/**
 * Reads tensor `name` from every task (fresh arrays), sharing the base tensor among
 * {@linkcode TaskVector}s built on the same base and applying {@linkcode ScaledTask} weights in
 * place.
 *
 * @example
 * ```ts
 * import { readTaskTensors } from "./stream.ts";
 * import { MemorySource, TaskVector } from "../../mod.ts";
 * const m = (v: number) => new MemorySource("m", { w: { shape: [1], data: new Float32Array([v]) } });
 * const base = m(1);
 * const taus = [new TaskVector("a", base, m(3)), new TaskVector("b", base, m(0))];
 * console.log(await readTaskTensors(taus, "w")); // [Float32Array [2], Float32Array [-1]]
 * ```
 */
export async function readTaskTensors(
  tasks: readonly TensorSource[],
  name: string,
): Promise<Float32Array[]> {
  const bases = new Map<TensorSource, Float32Array>();
  const out: Float32Array[] = [];
  for (const task of tasks) {
    const inner = task instanceof ScaledTask ? task.task : task;
    let data: Float32Array;
    if (inner instanceof TaskVector) {
      data = await readUnchecked(inner.expert, name);
      let base = bases.get(inner.base);
      if (!base) bases.set(inner.base, base = await readUnchecked(inner.base, name));
      // A NaN or ±Infinity in either input makes the difference non-finite: read both again
      // the checked way, which throws the checkpoint's usual error unless it allows them.
      if (!subtractFinite(data, base)) {
        await inner.expert.read(name);
        await inner.base.read(name);
      }
    } else {
      data = await inner.read(name);
    }
    if (task instanceof ScaledTask && task.scale !== 1) {
      for (let i = 0; i < data.length; i++) data[i] *= task.scale;
    }
    out.push(data);
  }
  return out;
}

/**
 * A checkpoint's tensor without the finiteness scan (the caller checks the values it derives);
 * other sources as they read.
 */
function readUnchecked(source: TensorSource, name: string): Promise<Float32Array> {
  return source instanceof Checkpoint
    ? source.read(name, { allowNonFinite: true })
    : source.read(name);
}

/**
 * `data −= base` in place; false when a result is NaN or ±Infinity (before float32 rounding,
 * as the inputs' own check would have found). One pass instead of a scan of each input.
 */
function subtractFinite(data: Float32Array, base: Float32Array): boolean {
  let check = 0; // d − d is 0 for finite d and NaN otherwise; NaN sticks
  for (let i = 0; i < data.length; i++) {
    const d = data[i] - base[i];
    data[i] = d;
    check += d - d;
  }
  return check === 0;
}

/**
 * Checks that there is at least one task vector and that all share the first one's layout.
 *
 * @example
 * ```ts
 * import { checkTasks } from "./stream.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const t = new MemorySource("τ", { w: { shape: [1], data: new Float32Array([1]) } });
 * checkTasks([t, t]);
 * ```
 */
export function checkTasks(tasks: readonly TensorSource[]): void {
  if (tasks.length === 0) throw new Error("merging needs at least one task vector");
  for (const t of tasks.slice(1)) assertSameLayout(tasks[0], t);
}

/**
 * One streaming pass: for each tensor name (in the first task's order), reads that tensor from
 * every task ({@linkcode readTaskTensors}), applies `transform` to each task's values, and
 * calls `visit`; reports progress as `phase`.
 *
 * @example
 * ```ts
 * import { forEachTensor } from "./stream.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const t = new MemorySource("τ", { w: { shape: [2], data: new Float32Array([1, 2]) } });
 * let total = 0;
 * await forEachTensor([t, t], "sum", (_name, _shape, taus) => {
 *   for (const tau of taus) for (const v of tau) total += v;
 * });
 * console.log(total); // 6
 * ```
 */
export async function forEachTensor(
  tasks: readonly TensorSource[],
  phase: string,
  visit: TensorVisitor,
  progress?: ProgressCallback,
  transform?: TaskTransform,
): Promise<void> {
  const names = tasks[0].names();
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const shape = tasks[0].shape(name);
    const taus = await readTaskTensors(tasks, name);
    if (transform) taus.forEach((tau, t) => transform(t, name, shape, tau));
    await visit(name, shape, taus);
    progress?.({ phase, done: i + 1, total: names.length, tensor: name });
  }
}
