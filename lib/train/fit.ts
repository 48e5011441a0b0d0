/**
 * The benchmark's trainings, on one loop: pretraining θ0 (a 20-way objective through a
 * throw-away head, optionally on augmented images), making each task's head from θ0's features
 * (few-shot class prototypes, or a fitted linear probe; frozen either way), and fine-tuning an
 * expert's backbone with its task's head frozen.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ViTConfig } from "../models/config.ts";
import { type Head, headLogits, l2NormalizeRows, makeHead } from "../models/head.ts";
import {
  disposeParams,
  type HostParams,
  hostToParams,
  initHostParams,
  paramsToHost,
  toVariables,
} from "../models/weights.ts";
import type { Scalar, Tensor1D, Tensor2D, Tensor4D, Variable } from "../engine/tf_types.ts";
import { imageFeatures } from "../models/vit.ts";
import { batches, type PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { Rng } from "../tensor/random.ts";
import { AdamW } from "./adamw.ts";
import { crossEntropy } from "./losses.ts";
import { warmupCosine } from "./schedule.ts";
import { trainStep } from "./step.ts";
import { FiniteWatch } from "./finite.ts";
import { InterruptedError, watchInterrupt } from "./interrupt.ts";

const KEPT =
  "this run's weights are not kept (a zoo keeps every artefact it finished: run it again)";

/** Reports progress: steps done, steps in all, and the latest metrics. */
export type OnProgress = (done: number, total: number, metrics: Record<string, number>) => void;

/** Settings of a training run over an image set. */
export interface FitOptions {
  /** Passes over the data. */
  epochs: number;
  /** Images per step (a last, smaller batch is dropped). */
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** Fraction of the steps spent warming up linearly (default 0.1). */
  warmup?: number;
  /** AdamW's decoupled weight decay. */
  weightDecay: number;
  /** Global gradient-norm clip (default 1, as in the task-vector papers' fine-tuning). */
  clipNorm?: number;
  /** Seed of the batch order (and of anything else random in the run). */
  seed: number;
  /** Pixel normalisation of the model. */
  norm: PixelNorm;
  /** Progress callback, called after every step. */
  onProgress?: OnProgress;
  /** Steps between loss reads for the progress callback (default 10). */
  reportEvery?: number;
  /** What is trained, for error messages (default "training"). */
  title?: string;
  /**
   * Replaces each image as its batch is made (see `batches`): `index` is its position in the
   * set, `epoch` the pass (for example `domainAugmentation` of `lib/data/transforms.ts`). Default: none.
   */
  augment?: (image: Float32Array, index: number, epoch: number) => Float32Array;
}

/**
 * Trains `vars` on `set` with AdamW, a warm-up + cosine schedule and gradient clipping.
 * `loss(x, y)` maps a batch to a scalar (it may read `vars`). Returns the mean loss of the
 * last reported steps. Tensor count is the same before and after.
 *
 * A loss or parameter that becomes NaN or ±Infinity stops the run with a `NonFiniteError`
 * naming the step where it happened and the tensor (checked whenever the loss is read, every
 * `reportEvery` steps, so the device is not waited for at each step). In a notebook,
 * Interrupt stops it after the current step with an `InterruptedError` (its weights are not
 * kept).
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { fitLoop } from "./fit.ts";
 * import { crossEntropy } from "./losses.ts";
 * const set = { count: 8, channels: 1, size: 1, pixels: new Float32Array([0, 1, 0, 1, 0, 1, 0, 1]),
 *   labels: new Int32Array([0, 1, 0, 1, 0, 1, 0, 1]), classes: ["a", "b"] };
 * const w = tf.variable(tf.zeros([1, 2])), b = tf.variable(tf.zeros([2]));
 * const loss = (x: tf.Tensor4D, y: tf.Tensor1D) =>
 *   crossEntropy(x.reshape([-1, 1]).matMul(w).add(b) as tf.Tensor2D, y);
 * const tensors = tf.memory().numTensors;
 * const last = await fitLoop({ w, b }, set, loss, { epochs: 20, batchSize: 4, lr: 0.1,
 *   weightDecay: 0, seed: 0, norm: { mean: 0, std: 1 } });
 * ok(last < 0.3); // from ln 2 ≈ 0.69 at the start
 * const [[w0, w1]] = w.arraySync() as number[][];
 * ok(w1 > w0); // a lit pixel now votes for class "b"
 * equal(tf.memory().numTensors, tensors);
 * ```
 */
export async function fitLoop(
  vars: Record<string, Variable>,
  set: ImageSet,
  loss: (x: Tensor4D, y: Tensor1D) => Scalar,
  options: FitOptions,
): Promise<number> {
  const perEpoch = Math.floor(set.count / options.batchSize);
  const total = perEpoch * options.epochs;
  if (total === 0) {
    throw new Error(
      `training: ${set.count} images make no batch of ${options.batchSize} (×${options.epochs} epochs)`,
    );
  }
  const schedule = warmupCosine({
    peak: options.lr,
    totalSteps: total,
    warmupSteps: Math.round((options.warmup ?? 0.1) * total),
  });
  const optimizer = new AdamW(vars, { weightDecay: options.weightDecay });
  const watch = new FiniteWatch(vars);
  const every = options.reportEvery ?? 10;
  let step = 0, last = NaN;
  let pending: Scalar[] = [];
  // In a notebook, Interrupt stops between steps; in a terminal Ctrl-C ends the process.
  using interrupt = watchInterrupt({ terminal: false });
  try {
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const augment = options.augment;
      const feed = {
        batchSize: options.batchSize,
        seed: options.seed,
        epoch,
        norm: options.norm,
        augment: augment && ((image: Float32Array, i: number) => augment(image, i, epoch)),
      };
      for (const { x, y } of batches(set, { ...feed, dropLast: true })) {
        const lr = schedule(step);
        const value = trainStep(() => loss(x, y), optimizer, {
          lr,
          clipNorm: options.clipNorm ?? 1,
        });
        pending.push(value);
        step++;
        watch.record(step, value);
        if (pending.length >= every || step === total) {
          // One read for the finiteness flags and the mean loss of the steps since the last.
          const mean = tf.tidy(() => tf.stack(pending).mean());
          try {
            [[last]] = await watch.check(options.title ?? "training", total, [mean]);
          } finally {
            tf.dispose([mean, ...pending]);
            pending = [];
          }
          options.onProgress?.(step, total, { loss: last, lr });
        }
        if (await interrupt.requested()) {
          throw new InterruptedError(options.title ?? "training", step, total, undefined, KEPT);
        }
      }
    }
  } finally {
    tf.dispose(pending);
    optimizer.dispose();
    watch.dispose();
  }
  return last;
}

/** Settings of {@linkcode pretrainBase}. */
export interface PretrainOptions extends FitOptions {
  /** Logit scale of the throw-away cosine head (default 20). */
  logitScale?: number;
}

/**
 * Pretrains θ0 from a seeded initialisation on a labelled set through a cosine head that is
 * trained along and then thrown away (θ0 is the backbone only, as CLIP's image tower is).
 *
 * @example
 * ```ts ignore
 * import { pretrainSplits } from "../data/dataset.ts";
 * import { VIT_TINY } from "../models/config.ts";
 * import { pretrainBase } from "./fit.ts";
 * const { train } = await pretrainSplits(1000, 0, 0);
 * const base = await pretrainBase(VIT_TINY, train, { epochs: 1, batchSize: 64, lr: 2e-3,
 *   weightDecay: 0.05, seed: 0, norm: { mean: 0.5, std: 0.5 } });
 * ```
 */
export async function pretrainBase(
  config: ViTConfig,
  set: ImageSet,
  options: PretrainOptions,
): Promise<HostParams> {
  const init = hostToParams(initHostParams(config, options.seed));
  const vars = toVariables(init);
  disposeParams(init);
  const rng = new Rng(options.seed, "pretrain-head");
  const classes = set.classes.length;
  const headInit = tf.tensor2d(
    rng.normals(classes * config.projectionDim),
    [classes, config.projectionDim],
  );
  const headVar = tf.variable(headInit);
  headInit.dispose(); // the variable keeps its own reference
  const scale = options.logitScale ?? 20;
  try {
    await fitLoop({ ...vars, "pretrain_head.weight": headVar }, set, (x, y) => {
      const f = l2NormalizeRows(imageFeatures(vars, config, x));
      const logits = tf.matMul(f, l2NormalizeRows(headVar), false, true).mul(scale) as Tensor2D;
      return crossEntropy(logits, y);
    }, { ...options, title: options.title ?? "pretraining θ0" });
    return await paramsToHost(vars);
  } finally {
    disposeParams(vars);
    headVar.dispose();
  }
}

/** Settings of {@linkcode fitHead}. */
export interface HeadFitOptions {
  /** Logit scale of the head (default 20). */
  logitScale?: number;
  /** Full-batch AdamW steps on the cached features (default 200). */
  steps?: number;
  /** Learning rate (default 0.05). */
  lr?: number;
  /** Weight decay (default 0). */
  weightDecay?: number;
}

/**
 * Fits a task's head on fixed features (a linear probe): a cosine classifier
 * `scale · normalize(f) · normalize(W)ᵀ` started at the class means of the normalised features
 * (the analogue of CLIP's zero-shot class embeddings) and trained by full-batch AdamW on
 * cross-entropy. The returned head is frozen from then on.
 *
 * @example
 * ```ts
 * import { deepEqual, ok } from "node:assert/strict";
 * import { fitHead } from "./fit.ts";
 * const features = new Float32Array([1, 0, 0.9, 0.1, 0, 1, 0.1, 0.9]); // 4 × 2
 * const head = await fitHead("toy", ["x", "y"], features, new Int32Array([0, 0, 1, 1]));
 * const rows = head.weight.arraySync();
 * ok(rows.every(([a, b]) => Math.abs(Math.hypot(a, b) - 1) < 1e-5)); // unit rows
 * // every training feature is classified as labelled: row c scores class c's features highest
 * const top = [0, 1, 2, 3].map((i) => {
 *   const [f0, f1] = features.subarray(2 * i, 2 * i + 2);
 *   const scores = rows.map(([a, b]) => a * f0 + b * f1);
 *   return scores.indexOf(Math.max(...scores));
 * });
 * deepEqual(top, [0, 0, 1, 1]);
 * ```
 */
export async function fitHead(
  task: string,
  classes: readonly string[],
  features: Float32Array,
  labels: Int32Array,
  options: HeadFitOptions = {},
): Promise<Head> {
  const n = labels.length;
  const dim = features.length / n;
  if (!Number.isInteger(dim) || n === 0) {
    throw new Error(`fitHead "${task}": ${features.length} feature values for ${n} labels`);
  }
  const scale = options.logitScale ?? 20;
  const f = tf.tidy(() => l2NormalizeRows(tf.tensor2d(features, [n, dim])));
  const y = tf.tensor1d(labels, "int32");
  const means = tf.tidy(() => {
    const onehot = tf.oneHot(y, classes.length).toFloat();
    // Unit rows: Adam's steps are absolute, so the start must be on the scale they move.
    return l2NormalizeRows(tf.matMul(onehot, f, true, false).add(1e-6));
  });
  const w = tf.variable(means) as tf.Variable<tf.Rank.R2>;
  means.dispose(); // the variable holds its own reference to the values
  const optimizer = new AdamW({ w }, { weightDecay: options.weightDecay ?? 0 });
  const watch = new FiniteWatch({ weight: w });
  try {
    const steps = options.steps ?? 200;
    const schedule = warmupCosine({ peak: options.lr ?? 0.05, totalSteps: Math.max(1, steps) });
    for (let s = 0; s < steps; s++) {
      const loss = trainStep(
        () => {
          const logits = tf.matMul(f, l2NormalizeRows(w), false, true).mul(scale) as Tensor2D;
          return crossEntropy(logits, y);
        },
        optimizer,
        { lr: schedule(s) },
      );
      watch.record(s + 1, loss);
      loss.dispose();
      if ((s + 1) % 50 === 0) await watch.check(`fitting the head of ${task}`, steps);
    }
    await watch.check(`fitting the head of ${task}`, steps);
    return makeHead(task, classes, w, scale);
  } finally {
    optimizer.dispose();
    watch.dispose();
    tf.dispose([f, y, w]);
  }
}

/**
 * The images a few-shot head is made from: `shots` positions per class, drawn without
 * replacement by a seeded permutation of each class's images in `labels` (class 0's first,
 * then class 1's, …). An error names the class when it has fewer than `shots` images.
 *
 * @example
 * ```ts
 * import { deepEqual, throws } from "node:assert/strict";
 * import { prototypeShots } from "./fit.ts";
 * const labels = new Int32Array([0, 1, 0, 1, 0, 1]);
 * const picked = prototypeShots(labels, 2, 1, 7);
 * // one image of class 0, then one of class 1
 * deepEqual(Array.from(picked, (i) => labels[i]), [0, 1]);
 * deepEqual(prototypeShots(labels, 2, 1, 7), picked); // the seed fixes the draw
 * throws(() => prototypeShots(new Int32Array([0, 1, 0]), 2, 2, 7), /class 1 has 1 labelled image/);
 * ```
 */
export function prototypeShots(
  labels: Int32Array,
  classes: number,
  shots: number,
  seed: number,
): Int32Array {
  if (!Number.isSafeInteger(shots) || shots < 1) {
    throw new Error(`prototype heads: shots must be a positive integer, got ${shots}`);
  }
  const out = new Int32Array(classes * shots);
  for (let c = 0; c < classes; c++) {
    const members: number[] = [];
    labels.forEach((y, i) => {
      if (y === c) members.push(i);
    });
    if (members.length < shots) {
      throw new Error(
        `prototype heads: class ${c} has ${members.length} labelled image(s), fewer than ` +
          `${shots} shot(s)`,
      );
    }
    const order = new Rng(seed, `prototype-shots/class-${c}`).permutation(members.length);
    for (let k = 0; k < shots; k++) out[c * shots + k] = members[order[k]];
  }
  return out;
}

/**
 * A few-shot prototype head, the analogue of CLIP's zero-shot text heads: each class's row is
 * the mean of the L2-normalised features of its labelled images (a few per class), itself
 * normalised; nothing is fitted. `features` is [n × dim] row-major, one row per label.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { prototypeHead } from "./fit.ts";
 * const features = new Float32Array([2, 0, 0, 3, 1, 1]); // 3 × 2
 * const head = prototypeHead("toy", ["x", "y"], features, new Int32Array([0, 1, 1]), 20);
 * // class y: the mean of (0, 1) and (0.707, 0.707), normalised: (sin 22.5°, cos 22.5°)
 * const expected = [1, 0, Math.sin(Math.PI / 8), Math.cos(Math.PI / 8)];
 * ok(head.weight.dataSync().every((v, i) => Math.abs(v - expected[i]) < 1e-6));
 * ```
 */
export function prototypeHead(
  task: string,
  classes: readonly string[],
  features: Float32Array,
  labels: Int32Array,
  logitScale: number,
): Head {
  const n = labels.length;
  const dim = features.length / n;
  if (!Number.isInteger(dim) || n === 0) {
    throw new Error(`prototypeHead "${task}": ${features.length} feature values for ${n} labels`);
  }
  const sums = new Float32Array(classes.length * dim);
  const counts = new Int32Array(classes.length);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!(y >= 0 && y < classes.length)) {
      throw new Error(`prototypeHead "${task}": label ${y} outside 0–${classes.length - 1}`);
    }
    const row = features.subarray(i * dim, (i + 1) * dim);
    const norm = Math.hypot(...row);
    if (!(norm > 0) || !Number.isFinite(norm)) {
      throw new Error(`prototypeHead "${task}": image ${i}'s feature has norm ${norm}`);
    }
    for (let d = 0; d < dim; d++) sums[y * dim + d] += row[d] / norm;
    counts[y]++;
  }
  const empty = classes.findIndex((_, c) => counts[c] === 0);
  if (empty >= 0) {
    throw new Error(`prototypeHead "${task}": no labelled image of class "${classes[empty]}"`);
  }
  const weight = tf.tensor2d(sums, [classes.length, dim]);
  try {
    return makeHead(task, classes, weight, logitScale); // normalises the rows
  } finally {
    weight.dispose();
  }
}

/**
 * Fine-tunes an expert from θ0: every backbone parameter trains, the task's head stays
 * frozen, the loss is cross-entropy of the head's logits. Returns the expert's parameters.
 *
 * @example
 * ```ts ignore
 * const expert = await finetuneExpert(VIT_TINY, base, head, splits.train, options);
 * ```
 */
export async function finetuneExpert(
  config: ViTConfig,
  base: HostParams,
  head: Head,
  set: ImageSet,
  options: FitOptions,
): Promise<HostParams> {
  const init = hostToParams(base);
  const vars = toVariables(init);
  disposeParams(init);
  try {
    await fitLoop(
      vars,
      set,
      (x, y) => crossEntropy(headLogits(head, imageFeatures(vars, config, x)), y),
      { ...options, title: options.title ?? `fine-tuning expert ${head.task}` },
    );
    return await paramsToHost(vars);
  } finally {
    disposeParams(vars);
  }
}
