/**
 * What a training run of lib/ri is (RI's adaptation of one expert, or the distillation
 * baseline): the job (model, starting task vector, heads, data, targets, loss) and the
 * optimisation settings. The trainer runs it; the state file records and checks it.
 *
 * @module
 */
import type { Tensor2D } from "../engine/tf_types.ts";
import type { ViTConfig } from "../models/config.ts";
import type { Head } from "../models/head.ts";
import type { HostParams } from "../models/weights.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { LossParts } from "./loss.ts";

/** Optimisation settings shared by RI and the distillation baseline. */
export interface TrainSettings {
  /** Optimisation steps. */
  steps: number;
  /** Auxiliary images per step. */
  batch: number;
  /** AdamW learning rate (constant). */
  lr: number;
  /** AdamW decoupled weight decay on τ'. */
  weightDecay: number;
  /** Seed of the batch order. */
  seed: number;
  /** Steps between state checkpoints (when a state path is given). */
  checkpointEvery: number;
}

/** One training job: the model, the starting τ, the heads, the data, targets and loss. */
export interface TrainJob {
  /** What is trained, for progress and the loss curve ("RI mnist"). */
  title: string;
  /** Backbone geometry. */
  config: ViTConfig;
  /** θ0. */
  base: HostParams;
  /** The starting task vector (same names and shapes as θ0). */
  init: HostParams;
  /** The heads whose outputs the loss reads, in the order of `targets`. */
  heads: readonly Head[];
  /** Target probabilities per head on the auxiliary set, [count × classes] each. */
  targets: readonly Float32Array[];
  /** The fixed auxiliary set. */
  aux: ImageSet;
  /** The model's pixel normalisation. */
  norm?: PixelNorm;
  /** The loss from the current logits and the batch's targets, head by head. */
  loss: (logits: Tensor2D[], targets: Tensor2D[]) => LossParts;
  /** What must match for a saved state to be resumed (besides the settings). */
  identity: Record<string, unknown>;
}
