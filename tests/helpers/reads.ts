/**
 * Counts the reads from the device that tfjs makes: every `data()`, `array()` or `bytes()`
 * goes through the engine's `read`, every `dataSync()`, `arraySync()`, `bufferSync()` or
 * `print()` through its `readSync`, whatever the backend. The spy replaces both on the engine
 * and puts them back when disposed.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

type ReadFn = (dataId: object) => unknown;

/**
 * Counts asynchronous reads and records synchronous ones (each with the stack that made it);
 * with `forbidSync`, a synchronous read throws instead of reading.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { ReadSpy } from "./reads.ts";
 * const t = tf.scalar(1);
 * {
 *   using spy = new ReadSpy();
 *   await t.data();
 *   t.dataSync();
 *   deepStrictEqual([spy.reads, spy.syncReads.length], [1, 1]);
 * }
 * t.dispose();
 * ```
 */
export class ReadSpy {
  /** Asynchronous reads so far. */
  reads = 0;
  /** The stacks of the synchronous reads so far. */
  readonly syncReads: string[] = [];
  readonly #engine = tf.engine() as unknown as { read: ReadFn; readSync: ReadFn };
  readonly #read: ReadFn;
  readonly #readSync: ReadFn;

  /** Starts counting. */
  constructor(options: { forbidSync?: boolean } = {}) {
    const engine = this.#engine;
    this.#read = engine.read;
    this.#readSync = engine.readSync;
    engine.read = (dataId) => {
      this.reads++;
      return this.#read.call(engine, dataId);
    };
    engine.readSync = (dataId) => {
      const stack = new Error("synchronous read from the device").stack ?? "";
      this.syncReads.push(stack);
      if (options.forbidSync) throw new Error(`a synchronous read on a study path:\n${stack}`);
      return this.#readSync.call(engine, dataId);
    };
  }

  /** Stops counting. */
  [Symbol.dispose](): void {
    this.#engine.read = this.#read;
    this.#engine.readSync = this.#readSync;
  }
}
