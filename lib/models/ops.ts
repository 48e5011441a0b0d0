/**
 * Small building blocks of the ViT shared by its forward pass and heads.
 *
 * Matrix products are plain `tf.matMul` calls with transpose flags: on the wasm backend
 * `initEngine` registers OpenBLAS sgemm kernels that take the flags for free (tfjs's own wasm
 * kernel ran a product with a transposed operand up to ten times slower; a custom-gradient
 * workaround used before those kernels measured no faster than this and cost copies).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor, Tensor2D } from "../engine/tf_types.ts";

/**
 * A PyTorch `Linear`: `x · Wᵀ + b` for rows `x` [n, in], weight [out, in] and bias [out]
 * (bias optional).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { linear } from "./ops.ts";
 * const y = linear(tf.tensor2d([[1, 1]]), tf.tensor2d([[1, 2], [3, 4]]), tf.tensor1d([0, 1]));
 * deepStrictEqual(y.arraySync(), [[3, 8]]); // x·Wᵀ + b
 * ```
 */
export function linear(x: Tensor2D, weight: Tensor, bias?: Tensor): Tensor2D {
  const y = tf.matMul(x, weight as Tensor2D, false, true);
  return (bias ? y.add(bias) : y) as Tensor2D;
}
