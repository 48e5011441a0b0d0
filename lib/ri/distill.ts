/**
 * The Merge + Distill_Aux baseline of the RI paper: merge first, then distil the single
 * merged model toward every expert, each under its own head, on the same auxiliary data and
 * step budget as RI. The distilled parameters are θ0 + τM' with τM' starting at the merged
 * task vector.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { ViTConfig } from "../models/config.ts";
import type { Head } from "../models/head.ts";
import type { HostParams } from "../models/weights.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { DistanceName } from "../interference/distance.ts";
import { softmaxRows } from "../interference/predict.ts";
import { distillLoss } from "./loss.ts";
import { type TrainOptions, type TrainResult, trainTaskVector } from "./trainer.ts";
import type { TrainSettings } from "./job.ts";
import { modelLogits } from "./adapt.ts";

/** What the distillation reads. */
export interface DistillInputs {
  /** Name of the merge (for titles and state matching), e.g. `ta`. */
  method: string;
  /** Backbone geometry. */
  config: ViTConfig;
  /** θ0. */
  base: HostParams;
  /** The merged task vector α·M (θM = θ0 + α·M). */
  merged: HostParams;
  /** The experts θi, in head order. */
  experts: readonly HostParams[];
  /** Every task's head, in task order. */
  heads: readonly Head[];
  /** The fixed auxiliary set. */
  aux: ImageSet;
  /** The model's pixel normalisation. */
  norm?: PixelNorm;
}

/**
 * Distils θ0 + α·M toward every expert under its own head; returns the distilled task vector.
 *
 * @example
 * ```ts ignore
 * const { tau } = await distillMerged({ method: "ta", config, base, merged, experts, heads, aux },
 *   settings, "kl");
 * ```
 */
export async function distillMerged(
  inputs: DistillInputs,
  settings: TrainSettings,
  distance: DistanceName,
  options: TrainOptions = {},
): Promise<TrainResult> {
  const { config, heads, aux, norm } = inputs;
  if (inputs.experts.length !== heads.length) {
    throw new Error(`distill: ${inputs.experts.length} experts for ${heads.length} heads`);
  }
  const targets: Float32Array[] = [];
  for (let i = 0; i < heads.length; i++) {
    const [own] = await modelLogits(config, inputs.experts[i], [heads[i]], aux, norm);
    targets.push(softmaxRows(own.logits, heads[i].classes.length));
  }
  return await trainTaskVector(
    {
      title: `distill ${inputs.method}`,
      config,
      base: inputs.base,
      init: inputs.merged,
      heads,
      targets,
      aux,
      norm,
      loss: (logits: tf.Tensor2D[], t: tf.Tensor2D[]) => distillLoss(logits, t, distance),
      identity: {
        kind: "distill",
        method: inputs.method,
        distance,
        heads: heads.map((h) => h.task),
      },
    },
    settings,
    options,
  );
}
