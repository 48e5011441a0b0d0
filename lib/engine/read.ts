/**
 * Reading results from the device: several tensors in one asynchronous transfer.
 *
 * Every read from a GPU waits for the device to finish the work queued before it, so a
 * training loop reads as rarely as it can: at most once per step, every value it needs
 * (the loss, its parts, the finiteness flags) in the same transfer. Reads are asynchronous
 * (`await t.data()`): tfjs-webgpu's synchronous `dataSync()` needs an OffscreenCanvas, which
 * Deno lacks, and throws there. After each read, an error the WebGPU device reported (a kernel
 * it rejected) is thrown (`./webgpu.ts`), so a wrong result is never returned.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { throwIfWebGpuFailed } from "./webgpu.ts";

/**
 * The values of `tensors` (flattened, as float32), read from the device in one transfer. The
 * tensors are not disposed.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { readTensors } from "./read.ts";
 * const a = tf.scalar(1.5), b = tf.tensor2d([[1, 2], [3, 4]]);
 * const [x, y] = await readTensors([a, b]);
 * deepStrictEqual([[...x], [...y]], [[1.5], [1, 2, 3, 4]]);
 * tf.dispose([a, b]);
 * ```
 */
export async function readTensors(tensors: readonly tf.Tensor[]): Promise<Float32Array[]> {
  if (tensors.length === 0) return [];
  const all = tf.tidy(() =>
    tensors.length === 1
      ? tensors[0].reshape([-1]).toFloat()
      : tf.concat(tensors.map((t) => t.reshape([-1]).toFloat()))
  );
  let values: Float32Array;
  try {
    values = await all.data() as Float32Array;
  } finally {
    all.dispose();
  }
  throwIfWebGpuFailed();
  const out: Float32Array[] = [];
  let at = 0;
  for (const t of tensors) {
    out.push(values.subarray(at, at + t.size));
    at += t.size;
  }
  return out;
}

/**
 * The values of scalars, read in one transfer (see {@linkcode readTensors}).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { readScalars } from "./read.ts";
 * const s = [tf.scalar(1), tf.scalar(2)];
 * deepStrictEqual(await readScalars(s), [1, 2]);
 * tf.dispose(s);
 * ```
 */
export async function readScalars(scalars: readonly tf.Tensor[]): Promise<number[]> {
  const values = await readTensors(scalars);
  return values.map((v, i) => {
    if (v.length !== 1) throw new Error(`readScalars: tensor ${i} has ${v.length} values`);
    return v[0];
  });
}
