/**
 * Names for the tfjs tensor types that appear in this library's public signatures. They are
 * plain aliases of tfjs's own types (any tfjs tensor fits), declared here so the documented
 * API refers to exported names.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** A tfjs tensor of any rank. */
export type Tensor = tf.Tensor;
/** A tfjs scalar (rank 0). */
export type Scalar = tf.Scalar;
/** A rank-1 tfjs tensor. */
export type Tensor1D = tf.Tensor1D;
/** A rank-2 tfjs tensor: rows × columns. */
export type Tensor2D = tf.Tensor2D;
/** A rank-4 tfjs tensor, e.g. images [batch, channels, height, width]. */
export type Tensor4D = tf.Tensor4D;
/** A trainable tfjs variable. */
export type Variable = tf.Variable;
