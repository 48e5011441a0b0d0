/**
 * Streaming passes over task vectors: each tensor is read from every task, handed to a
 * visitor, and dropped before the next tensor is read, so a pass holds T tensors at a time.
 *
 * @module
 */
import { assertSameLayout, type TensorSource } from "../tensor/source.ts";
import type { ProgressCallback } from "./method.ts";

/** Visits one tensor's values in every task. */
export type TensorVisitor = (
  name: string,
  shape: readonly number[],
  taus: readonly Float32Array[],
) => void | Promise<void>;

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
 * every task and calls `visit`; reports progress as `phase`.
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
): Promise<void> {
  const names = tasks[0].names();
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const taus: Float32Array[] = [];
    for (const task of tasks) taus.push(await task.read(name));
    await visit(name, tasks[0].shape(name), taus);
    progress?.({ phase, done: i + 1, total: names.length, tensor: name });
  }
}
