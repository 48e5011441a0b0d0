/**
 * The one error every checkpoint reader and writer throws: a problem with a file, naming the
 * file and, where known, the tensor, in the form `FILE: tensor "NAME": PROBLEM`.
 *
 * @module
 */

/**
 * An error about a checkpoint file, naming the file and, where known, the tensor.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { CheckpointError } from "./errors.ts";
 * const err = new CheckpointError("m.safetensors", "w", "value NaN at flat index 3");
 * equal(err.message, 'm.safetensors: tensor "w": value NaN at flat index 3');
 * ```
 */
export class CheckpointError extends Error {
  /**
   * Builds the error; the message reads `FILE: tensor "NAME": PROBLEM`.
   *
   * @param file path of the file at fault
   * @param tensor tensor name, or undefined for file-level problems
   * @param problem what is wrong and what was expected
   */
  constructor(readonly file: string, readonly tensor: string | undefined, problem: string) {
    super(`${file}${tensor === undefined ? "" : `: tensor "${tensor}"`}: ${problem}`);
    this.name = "CheckpointError";
  }
}
