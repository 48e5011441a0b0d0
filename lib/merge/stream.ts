/**
 * The whole-model passes of a merge: each pass reads one tensor from every task
 * (`readTaskVectors` of lib/taskvec, which shares a base tensor among the tasks built on it),
 * hands the T arrays to a visitor and drops them when it returns. When every task allows
 * concurrent reads (`TensorSource.concurrentReads`: task vectors of checkpoints on disk), the
 * next tensor is read while the visitor works on the current one (`readAhead`: the runtime's
 * I/O threads read while the main thread computes), so memory stays near (2T + 3) × the
 * largest tensor: the T arrays visited, the visitor's own output, and the next tensor's T
 * differences plus θ0's tensor. Otherwise (tasks in memory, sources derived from others) each
 * tensor is read only after the previous one's visit, and memory stays near (T + 2) × the
 * largest tensor.
 *
 * @module
 */
import { readAhead } from "../io/read_ahead.ts";
import { readTaskVectors } from "../taskvec/task_vector.ts";
import { assertSameLayout, readsOverlap, type TensorSource } from "../tensor/source.ts";
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
 * Checks that there is at least one task vector and that all share the first one's layout.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkTasks } from "./stream.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const t = new MemorySource("τ", { w: { shape: [1], data: new Float32Array([1]) } });
 * const u = new MemorySource("υ", { w: { shape: [2], data: new Float32Array([1, 2]) } });
 * checkTasks([t, t]);
 * throws(() => checkTasks([t, u]), /tensor "w" has shape \[1\] in τ but \[2\] in υ/);
 * throws(() => checkTasks([]), /at least one task vector/);
 * ```
 */
export function checkTasks(tasks: readonly TensorSource[]): void {
  if (tasks.length === 0) throw new Error("merging needs at least one task vector");
  for (const t of tasks.slice(1)) assertSameLayout(tasks[0], t);
}

/**
 * One streaming pass: for each tensor name (in the first task's order), reads that tensor from
 * every task (`readTaskVectors`), applies `transform` to each task's values, and
 * calls `visit`; reports progress as `phase`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { forEachTensor } from "./stream.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const t = new MemorySource("τ", { w: { shape: [2], data: new Float32Array([1, 2]) } });
 * let total = 0;
 * await forEachTensor([t, t], "sum", (_name, _shape, taus) => {
 *   for (const tau of taus) for (const v of tau) total += v;
 * });
 * equal(total, 6);
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
  // Where the sources allow it, the next tensor's task vectors are read while this one is
  // visited.
  const reads = readAhead(
    names.length,
    (k) => readTaskVectors(tasks, names[k]),
    readsOverlap(tasks),
  );
  let i = 0;
  for await (const taus of reads) {
    const name = names[i++];
    const shape = tasks[0].shape(name);
    if (transform) taus.forEach((tau, t) => transform(t, name, shape, tau));
    await visit(name, shape, taus);
    progress?.({ phase, done: i, total: names.length, tensor: name });
  }
}
