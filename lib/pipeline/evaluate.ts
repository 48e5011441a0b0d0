/**
 * Evaluation of one backbone on every task's test split under the task's own head: accuracy
 * per task and the logits behind it (kept so that ξ can compare a merged model with the
 * experts on the same images).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ensureEngine } from "../engine/backend.ts";
import type { ViTConfig } from "../models/config.ts";
import type { Head } from "../models/head.ts";
import { type HostParams, hostToParams } from "../models/weights.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { type HeadLogits, logitsAccuracy, predictLogits } from "../interference/predict.ts";

/** One task's evaluation. */
export interface TaskEvaluation {
  /** Task name. */
  task: string;
  /** Top-1 accuracy on the test split, in [0, 1]. */
  accuracy: number;
  /** The logits under the task's head, image after image. */
  logits: HeadLogits;
}

/** What a backbone is evaluated on: each task's head and labelled test images. */
export interface EvaluationSuite {
  /** Backbone geometry. */
  config: ViTConfig;
  /** Heads in task order. */
  heads: readonly Head[];
  /** Test images per task, in the same order. */
  tests: readonly ImageSet[];
  /** Pixel normalisation. */
  norm?: PixelNorm;
}

/**
 * Evaluates the backbone `params` on every task of `suite`, one task at a time; given one
 * backbone per task (a per-task merge), task i is evaluated with `params[i]`.
 *
 * @example
 * ```ts ignore
 * const evals = await evaluateOnTasks(suite, zoo.base);
 * console.log(evals.map((e) => `${e.task} ${e.accuracy}`));
 * ```
 */
export async function evaluateOnTasks(
  suite: EvaluationSuite,
  params: HostParams | readonly HostParams[],
): Promise<TaskEvaluation[]> {
  if (suite.heads.length !== suite.tests.length) {
    throw new Error(`evaluate: ${suite.heads.length} heads but ${suite.tests.length} test sets`);
  }
  await ensureEngine();
  if (Array.isArray(params)) {
    if (params.length !== suite.heads.length) {
      throw new Error(`evaluate: ${params.length} per-task models for ${suite.heads.length} tasks`);
    }
    const out: TaskEvaluation[] = [];
    for (let i = 0; i < params.length; i++) {
      const one = { ...suite, heads: [suite.heads[i]], tests: [suite.tests[i]] };
      out.push(...await evaluateOnTasks(one, params[i]));
    }
    return out;
  }
  const tensors = hostToParams(params as HostParams);
  try {
    const out: TaskEvaluation[] = [];
    for (let i = 0; i < suite.heads.length; i++) {
      const [logits] = await predictLogits(
        { config: suite.config, params: tensors },
        [suite.heads[i]],
        suite.tests[i],
        { norm: suite.norm },
      );
      const acc = logitsAccuracy(logits.logits, logits.classes, suite.tests[i].labels);
      out.push({ task: suite.heads[i].task, accuracy: acc, logits });
    }
    return out;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
