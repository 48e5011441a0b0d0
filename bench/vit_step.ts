/**
 * The workload the kernel benchmarks and the profile share: forward + backward of the built-in
 * benchmark's ViT (VIT_TINY: 17 tokens, width 64, 4 heads, MLP 256, 4 layers) on a batch of
 * random images, loss = Σ features·probe (gradients of every parameter, no optimizer update).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { VIT_TINY } from "../lib/models/config.ts";
import { disposeParams, initParams } from "../lib/models/weights.ts";
import { imageFeatures } from "../lib/models/vit.ts";

/** A prepared training step; `dispose` frees its tensors. */
export interface VitStep {
  /** Runs one forward + backward pass and waits for the loss. */
  run(): void;
  /** Frees the parameters and inputs. */
  dispose(): void;
}

/**
 * Prepares the VIT_TINY forward + backward at the given batch size (seeded parameters).
 *
 * @example
 * ```ts
 * import { initEngine } from "../mod.ts";
 * import { vitStep } from "./vit_step.ts";
 * await initEngine({ backend: "wasm" });
 * const step = vitStep(2);
 * step.run();
 * step.dispose();
 * ```
 */
export function vitStep(batch: number): VitStep {
  const params = initParams(VIT_TINY, 0);
  const names = Object.keys(params);
  const pixels = tf.randomNormal([batch, 1, 28, 28], 0, 1, "float32", 1);
  const probe = tf.randomNormal([batch, VIT_TINY.projectionDim], 0, 1, "float32", 2);
  const loss = (...values: tf.Tensor[]) => {
    const p = Object.fromEntries(names.map((n, i) => [n, values[i]]));
    return imageFeatures(p, VIT_TINY, pixels).mul(probe).sum() as tf.Scalar;
  };
  const gradient = tf.valueAndGrads(loss);
  return {
    run() {
      const { value, grads } = gradient(names.map((n) => params[n]));
      value.dataSync();
      tf.dispose([value, ...grads]);
    },
    dispose() {
      disposeParams(params);
      tf.dispose([pixels, probe]);
    },
  };
}
