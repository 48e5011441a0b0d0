/**
 * NaN and ±Infinity during training, caught at the step where they appear. Every step records
 * one small tensor on the device (0 for each finite value, NaN for each non-finite one: the
 * loss and every parameter times zero, summed); nothing is read until the caller checks, so
 * a GPU run does not wait for the device at every step, yet the check names the first bad
 * step and tensor exactly. A check reads every step recorded since the last one in one
 * asynchronous transfer, together with any other value the caller reads then.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor, Tensor1D, Variable } from "../engine/tf_types.ts";
import { readTensors } from "../engine/read.ts";

/** A training run stopped because a value became NaN or ±Infinity. */
export class NonFiniteError extends Error {
  /**
   * Names the step and the tensors in the message.
   *
   * @param what what was training ("pretraining θ0")
   * @param step the first step (1-based) that produced a non-finite value
   * @param total the steps the run had
   * @param tensors the parameters that step made non-finite (empty: only the loss was)
   */
  constructor(
    what: string,
    readonly step: number,
    total: number,
    readonly tensors: string[],
  ) {
    const others = tensors.length > 1 ? ` (and ${tensors.length - 1} more)` : "";
    super(
      `${what}: ` +
        (tensors.length
          ? `step ${step} of ${total} made tensor "${tensors[0]}"${others} non-finite`
          : `the loss became non-finite at step ${step} of ${total}`) +
        "; training stopped and nothing of this run was saved",
    );
    this.name = "NonFiniteError";
  }
}

/**
 * Records, step by step, whether the loss and each variable are still finite, and names the
 * first step that was not when checked.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { FiniteWatch } from "./finite.ts";
 * const w = tf.variable(tf.tensor1d([1, 2]));
 * const watch = new FiniteWatch({ w });
 * watch.record(1, tf.scalar(0.5));
 * w.assign(tf.tensor1d([1, NaN]));
 * watch.record(2, tf.scalar(0.4));
 * await rejects(watch.check("toy", 10), {
 *   name: "NonFiniteError",
 *   message: 'toy: step 2 of 10 made tensor "w" non-finite; training stopped and nothing of ' +
 *     "this run was saved",
 * });
 * watch.dispose();
 * ```
 */
export class FiniteWatch {
  readonly #names: string[];
  readonly #vars: Variable[];
  #pending: { step: number; flags: Tensor1D }[] = [];

  /**
   * Watches `vars`.
   *
   * @param vars the trained variables, by name
   */
  constructor(vars: Readonly<Record<string, Variable>>) {
    this.#names = Object.keys(vars);
    this.#vars = Object.values(vars);
  }

  /** Records step `step` (after its update): the loss it computed and the variables now. */
  record(step: number, loss: Scalar): void {
    const flags = tf.tidy(() =>
      tf.stack([loss.mul(0), ...this.#vars.map((v) => v.mul(0).sum())]) as Tensor1D
    );
    this.#pending.push({ step, flags });
  }

  /**
   * Reads the recorded steps; throws {@linkcode NonFiniteError} for the first bad one. The
   * values of `also` (say, the mean loss of those steps) come in the same transfer from the
   * device and are returned, flattened; they are not disposed.
   */
  async check(what: string, total: number, also: readonly Tensor[] = []): Promise<Float32Array[]> {
    const { steps, all } = this.#take();
    if (!all) return await readTensors(also);
    try {
      const [flags, ...values] = await readTensors([all, ...also]);
      this.#throwIfBad(steps, flags, what, total);
      return values;
    } finally {
      all.dispose();
    }
  }

  /** The recorded flags as one [steps × (1 + variables)] tensor, and their steps. */
  #take(): { steps: number[]; all?: tf.Tensor } {
    const pending = this.#pending;
    this.#pending = [];
    if (pending.length === 0) return { steps: [] };
    const all = tf.stack(pending.map((p) => p.flags));
    tf.dispose(pending.map((p) => p.flags));
    return { steps: pending.map((p) => p.step), all };
  }

  #throwIfBad(steps: number[], values: ArrayLike<number>, what: string, total: number): void {
    const width = this.#names.length + 1;
    for (const [k, step] of steps.entries()) {
      const row = Array.from({ length: width }, (_, i) => values[k * width + i]);
      if (row.every((v) => v === 0)) continue;
      const bad = this.#names.filter((_, i) => row[i + 1] !== 0);
      throw new NonFiniteError(what, step, total, bad);
    }
  }

  /** Frees what was recorded and not checked. */
  dispose(): void {
    tf.dispose(this.#pending.map((p) => p.flags));
    this.#pending = [];
  }
}
