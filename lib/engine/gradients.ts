/**
 * Gradients of a loss with respect to many variables, returned packed in one flat tensor.
 *
 * `tf.variableGrads(f, vars)` spends time in proportion to (operations on the tape) × (number
 * of variables): tfjs's tape filter loops over every variable for each operation input that
 * does not come from one (tfjs-core 4.22 `getFilteredNodesXToY`). A ViT has 72 parameter
 * tensors, and that loop alone took about a sixth of an RI step. Here the tape gets one extra
 * node first, "the variables are slices of one flat vector", and the gradient is taken with
 * respect to that vector: the filter loops once per input, and the gradients come back as one
 * flat tensor (the node's gradient packs them, in `vars` order) that a fused optimiser reads in
 * place.
 *
 * The node is added to tfjs's tape directly (tfjs-core's internal tape node format, pinned at
 * 4.22): where that internal state is missing, or the fused kernels are not registered, the
 * function returns undefined and the caller takes `tf.variableGrads`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { FUSED, fusedAvailable } from "./fused.ts";

/** What {@linkcode packedGradients} returns; the caller disposes `value` and `flat`. */
export interface PackedGradients {
  /** The loss. */
  value: tf.Scalar;
  /** Every variable's gradient, flattened, one after the other in `vars` order. */
  flat: tf.Tensor1D;
  /** Where each variable's gradient starts in `flat`. */
  offsets: number[];
  /** Whether the loss depends on each variable (false: no gradient, zeros in `flat`). */
  reached: boolean[];
}

/** The parts of tfjs's engine this module uses. */
interface EngineInternals {
  state: { activeTape: unknown[] | null; nextTapeNodeId: number };
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy: tf.Tensor | null,
    allowNoGradients: boolean,
  ): { value: tf.Tensor; grads: (tf.Tensor | undefined)[] };
  makeTensorFromTensorInfo(info: tf.TensorInfo): tf.Tensor;
}

/**
 * The loss `f()` and its gradients with respect to `vars`, packed; undefined where the packed
 * path is not available (see the module documentation).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { deepEqual } from "node:assert/strict";
 * import { initEngine } from "./backend.ts";
 * import { packedGradients } from "./gradients.ts";
 * await initEngine({ backend: "wasm" });
 * const a = tf.variable(tf.tensor1d([1, 2])), b = tf.variable(tf.scalar(3));
 * const g = packedGradients(() => a.square().sum().mul(b) as tf.Scalar, [a, b])!;
 * deepEqual([...g.flat.dataSync()], [6, 12, 5]); // ∂/∂a = 2a·b, ∂/∂b = Σa²
 * ```
 */
export function packedGradients(
  f: () => tf.Scalar,
  vars: readonly tf.Variable[],
): PackedGradients | undefined {
  const engine = tf.engine() as unknown as EngineInternals;
  const trainable = vars.filter((v) => v.trainable && v.dtype === "float32");
  if (
    !fusedAvailable(FUSED.pack) || trainable.length === 0 ||
    typeof engine.gradients !== "function" || typeof engine.state?.nextTapeNodeId !== "number"
  ) {
    return undefined;
  }
  const offsets: number[] = [];
  let total = 0;
  for (const v of vars) {
    offsets.push(total);
    total += v.size;
  }
  const reached = vars.map(() => false);
  // The vector x of the gradient: only its id and shape matter (no kernel reads it), so it
  // borrows a variable's data instead of allocating `total` values.
  const backend = tf.backend() as unknown as { incRef(id: tf.DataId): void };
  backend.incRef(trainable[0].dataId);
  const x = engine.makeTensorFromTensorInfo({
    dataId: trainable[0].dataId,
    shape: [total],
    dtype: "float32",
  });
  const outputs = vars.filter((v) => v.trainable && v.dtype === "float32");
  const outputOffsets = outputs.map((v) => offsets[vars.indexOf(v)]);
  const gradient = (dys: (tf.Tensor | null)[]) => ({
    flat: () => {
      const inputs: tf.NamedTensorMap = {};
      const at: number[] = [];
      dys.forEach((dy, i) => {
        if (!dy) return;
        reached[vars.indexOf(outputs[i])] = true;
        inputs[`x${at.length}`] = dy;
        at.push(outputOffsets[i]);
      });
      return tf.engine().runKernel(FUSED.pack, inputs, { offsets: at, total }) as tf.Tensor;
    },
  });
  try {
    const { value, grads } = engine.gradients(
      () => {
        engine.state.activeTape?.push({
          id: engine.state.nextTapeNodeId++,
          kernelName: "RiPackedVariables",
          inputs: { flat: x },
          outputs,
          saved: [],
          gradient,
        });
        return f();
      },
      [x],
      null,
      true,
    );
    if (value.rank !== 0) {
      tf.dispose([value, ...grads.filter((g) => g !== undefined)]);
      throw new Error(`the loss must be a scalar, got shape [${value.shape}]`);
    }
    const flat = (grads[0] ?? tf.zeros([total])) as tf.Tensor1D;
    return { value: value as tf.Scalar, flat, offsets, reached };
  } finally {
    x.dispose();
  }
}
