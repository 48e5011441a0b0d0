/**
 * RI adaptation of one expert (RI.md): starting from τi' = τi, minimise
 *
 *     d( pi(x; θi), pi(x; θ0 + τi') ) + α/(N−1) Σ_{j≠i} d( pj(x; θ0), pj(x; θ0 + τi') )
 *
 * on unlabeled auxiliary inputs x, with AdamW; heads and the other experts are untouched.
 * The targets — the expert's own distribution and θ0's distribution under every other head —
 * are computed once for the fixed auxiliary set and cached; θ0's are shared by all experts.
 *
 * @module
 */
import type { ViTConfig } from "../models/config.ts";
import type { Head } from "../models/head.ts";
import { type HostParams, hostToParams } from "../models/weights.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { DistanceName } from "../interference/distance.ts";
import { type HeadLogits, predictLogits, softmaxRows } from "../interference/predict.ts";
import { subtractBase } from "../taskvec/host.ts";
import { riLoss } from "./loss.ts";
import { type TrainOptions, type TrainResult, trainTaskVector } from "./trainer.ts";
import type { TrainSettings } from "./job.ts";
import * as tf from "@tensorflow/tfjs";
import { ensureEngine } from "../engine/backend.ts";

/** RI's settings: the optimiser's plus the loss's. */
export interface RiSettings extends TrainSettings {
  /** Weight α of the other-tasks term (paper: 1). */
  alpha: number;
  /** Distance between predicted distributions (paper: KL). */
  distance: DistanceName;
}

/** What one expert's adaptation reads. */
export interface RiInputs {
  /** The expert's task (one of the heads' tasks). */
  task: string;
  /** Backbone geometry. */
  config: ViTConfig;
  /** θ0. */
  base: HostParams;
  /** θi. */
  expert: HostParams;
  /** Every task's head, in task order. */
  heads: readonly Head[];
  /** The fixed auxiliary set (unlabeled). */
  aux: ImageSet;
  /** The model's pixel normalisation. */
  norm?: PixelNorm;
  /** θ0's logits on `aux` under every head (see {@linkcode modelLogits}); computed when absent. */
  baseLogits?: readonly HeadLogits[];
}

/**
 * A model's logits on a set under each head, for parameters held in host memory.
 *
 * @example
 * ```ts ignore
 * const baseLogits = await modelLogits(config, zoo.base, zoo.heads, aux, norm);
 * ```
 */
export async function modelLogits(
  config: ViTConfig,
  params: HostParams,
  heads: readonly Head[],
  set: ImageSet,
  norm?: PixelNorm,
): Promise<HeadLogits[]> {
  await ensureEngine();
  const tensors = hostToParams(params);
  try {
    return await predictLogits({ config, params: tensors }, heads, set, { norm });
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/**
 * Adapts one expert with RI and returns τi' with its loss curve. With a state path it
 * checkpoints and resumes (see `trainTaskVector`).
 *
 * @example
 * ```ts ignore
 * const { tau, curve } = await adaptExpert({ task: "mnist", config, base, expert, heads, aux },
 *   { steps: 500, batch: 128, lr: 1e-4, weightDecay: 1e-4, alpha: 1, distance: "kl",
 *     seed: 0, checkpointEvery: 50 });
 * ```
 */
export async function adaptExpert(
  inputs: RiInputs,
  settings: RiSettings,
  options: TrainOptions = {},
): Promise<TrainResult> {
  await ensureEngine();
  const { task, config, heads, aux, norm } = inputs;
  const own = heads.findIndex((h) => h.task === task);
  if (own < 0) {
    throw new Error(`RI: no head for task "${task}" (heads: ${heads.map((h) => h.task)})`);
  }
  const base = inputs.baseLogits ?? await modelLogits(config, inputs.base, heads, aux, norm);
  if (base.length !== heads.length) {
    throw new Error(`RI: ${base.length} base logits for ${heads.length} heads`);
  }
  const [ownLogits] = await modelLogits(config, inputs.expert, [heads[own]], aux, norm);
  const targets = heads.map((h, j) =>
    softmaxRows(j === own ? ownLogits.logits : base[j].logits, h.classes.length)
  );
  const init = subtractBase(inputs.expert, inputs.base, `RI: expert ${task}`);
  const loss = (logits: tf.Tensor2D[], t: tf.Tensor2D[]) => riLoss(logits, t, own, settings);
  const { alpha, distance } = settings;
  return await trainTaskVector(
    {
      title: `RI ${task}`,
      config,
      base: inputs.base,
      init,
      heads,
      targets,
      aux,
      norm,
      loss,
      identity: { kind: "ri", task, alpha, distance, heads: heads.map((h) => h.task) },
    },
    settings,
    options,
  );
}
