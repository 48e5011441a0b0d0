/**
 * Trains a task vector τ' (model θ0 + τ') so that its class distributions under several
 * heads match fixed targets on a fixed auxiliary set: the engine under RI adaptation and the
 * Merge + Distill_Aux baseline, which differ only in their targets and loss.
 *
 * AdamW (decoupled weight decay applied to τ', pulling the model toward θ0) with a constant
 * learning rate. Each step's batch depends only on the seed and the step number, so a run
 * resumed from a saved state ends exactly where an uninterrupted run ends. The state (τ',
 * the AdamW moments, the loss curve) is checkpointed atomically every `checkpointEvery` steps
 * when a state path is given; NaN or ±Infinity stops the run naming the step and the tensor,
 * and the last good state stays on disk.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Scalar, Tensor2D, Variable } from "../engine/tf_types.ts";
import { headsLogits } from "../models/head.ts";
import { fusedAddPairs } from "../engine/fused.ts";
import { type HostParams, hostToParams, paramsToHost } from "../models/weights.ts";
import { imageFeatures } from "../models/vit.ts";
import { batchOrder, type PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { AdamW } from "../train/adamw.ts";
import { trainStep } from "../train/step.ts";
import { InterruptedError, watchInterrupt } from "../train/interrupt.ts";
import { LossCurve, type LossPoint } from "./curve.ts";
import { loadTrainState, saveTrainState } from "./state.ts";
import type { TrainJob, TrainSettings } from "./job.ts";
import { progress, type ProgressMode } from "../display/progress.ts";
import { firstNonFinite } from "../tensor/host.ts";
import { readTensors } from "../engine/read.ts";

/** Options of {@linkcode trainTaskVector}. */
export interface TrainOptions {
  /** Where to checkpoint the state (and resume from); none when absent. */
  statePath?: string;
  /** Progress display (default `auto`). */
  progress?: ProgressMode;
  /** Called after every step. */
  onStep?: (step: number, loss: LossPoint) => void;
}

/** The trained task vector and how training went. */
export interface TrainResult {
  /** τ' (host memory). */
  tau: HostParams;
  /** Loss per step. */
  curve: LossCurve;
  /** Step the run resumed from (0 for a fresh run). */
  resumedFrom: number;
}

/**
 * Runs the job; see the module documentation.
 *
 * @example
 * ```ts ignore
 * const { tau, curve } = await trainTaskVector(job, settings, { statePath: "state.safetensors" });
 * ```
 */
export async function trainTaskVector(
  job: TrainJob,
  settings: TrainSettings,
  options: TrainOptions = {},
): Promise<TrainResult> {
  checkJob(job, settings);
  const state = options.statePath ? await loadTrainState(options.statePath, job, settings) : null;
  const tau = variables(job, state?.tau);
  const optimizer = new AdamW(tau, { weightDecay: settings.weightDecay });
  if (state) optimizer.importState(state.adam);
  const curve = state?.curve ?? new LossCurve(job.title);
  const resumedFrom = state?.step ?? 0;
  const base = hostToParams(job.base);
  const bar = progress(job.title, settings.steps, { mode: options.progress });
  using interrupt = watchInterrupt();
  try {
    for (let step = resumedFrom + 1; step <= settings.steps; step++) {
      // A checkpoint step checks τ' in the step's one read (see runStep).
      const due = options.statePath !== undefined && step % settings.checkpointEvery === 0;
      const point = await runStep(job, settings, step, base, tau, optimizer, due);
      curve.push(step, point);
      options.onStep?.(step, point);
      bar.update(step, { loss: point.total });
      const stopping = await interrupt.requested();
      if (options.statePath && (due || stopping)) {
        if (!due) await checkFinite(job.title, step, tau); // interrupted between checkpoints
        await saveTrainState(options.statePath, job, settings, step, tau, optimizer, curve);
      }
      if (stopping) throw new InterruptedError(job.title, step, settings.steps, options.statePath);
    }
    await bar.done();
    return { tau: await paramsToHost(tau), curve, resumedFrom };
  } finally {
    tf.dispose([...Object.values(base), ...Object.values(tau)]);
    optimizer.dispose();
  }
}

/**
 * One step, and one read from the device: the loss, its parts and, when the state is about to
 * be saved, whether every τ' tensor is still finite (a finite loss can come with a non-finite
 * update, from NaN gradients: such a state is never saved).
 */
async function runStep(
  job: TrainJob,
  settings: TrainSettings,
  step: number,
  base: Record<string, tf.Tensor>,
  tau: Record<string, Variable>,
  optimizer: AdamW,
  checkTau: boolean,
): Promise<LossPoint> {
  const indices = stepIndices(job.aux.count, settings, step);
  const x = gatherImages(job.aux, indices, job.norm);
  const targets = job.targets.map((t, j) => gatherRows(t, job.heads[j].classes.length, indices));
  let kept: Record<string, Scalar> = {};
  let total: Scalar | undefined;
  let flags: tf.Tensor | undefined;
  try {
    total = trainStep(
      () => {
        const features = imageFeatures(sumParams(base, tau), job.config, x);
        const loss = job.loss(headsLogits(job.heads, features), targets);
        kept = Object.fromEntries(Object.entries(loss.parts).map(([k, v]) => [k, tf.keep(v)]));
        return loss.total;
      },
      optimizer,
      { lr: settings.lr },
    );
    const names = Object.keys(kept);
    flags = checkTau ? finiteFlags(tau) : undefined;
    const [value, ...rest] = await readTensors([
      total,
      ...names.map((k) => kept[k]),
      ...(flags ? [flags] : []),
    ]);
    if (!Number.isFinite(value[0])) await nonFinite(job.title, step, tau);
    if (flags && rest[names.length].some((f) => f !== 0)) await nonFinite(job.title, step, tau);
    const parts = Object.fromEntries(names.map((k, i) => [k, rest[i][0]]));
    return { total: value[0], parts };
  } finally {
    tf.dispose([x, ...targets, ...Object.values(kept)]);
    total?.dispose();
    flags?.dispose();
  }
}

/** θ0 + τ' for every parameter (one fused kernel where the backend has it). */
function sumParams(
  base: Record<string, tf.Tensor>,
  tau: Record<string, Variable>,
): Record<string, tf.Tensor> {
  const names = Object.keys(base);
  const sums = fusedAddPairs(names.map((n) => base[n]), names.map((n) => tau[n])) ??
    names.map((n) => tf.add(base[n], tau[n]));
  return Object.fromEntries(names.map((n, i) => [n, sums[i]]));
}

/** Throws naming the first non-finite τ' tensor, if any (one read of the flags). */
async function checkFinite(title: string, step: number, tau: Record<string, Variable>) {
  const flags = finiteFlags(tau);
  try {
    const [values] = await readTensors([flags]);
    if (values.some((f) => f !== 0)) await nonFinite(title, step, tau);
  } finally {
    flags.dispose();
  }
}

/** 0 per τ' tensor whose values are all finite, NaN for the others (computed on the device). */
function finiteFlags(tau: Record<string, Variable>): tf.Tensor1D {
  return tf.tidy(() => tf.stack(Object.values(tau).map((v) => v.mul(0).sum())) as tf.Tensor1D);
}

/** The auxiliary images of one step: a seeded permutation per epoch, whole batches only. */
function stepIndices(count: number, settings: TrainSettings, step: number): Int32Array {
  const perEpoch = Math.floor(count / settings.batch);
  const epoch = Math.floor((step - 1) / perEpoch);
  const k = (step - 1) % perEpoch;
  const order = batchOrder(count, { batchSize: settings.batch, seed: settings.seed, epoch });
  return order.slice(k * settings.batch, (k + 1) * settings.batch);
}

function gatherImages(set: ImageSet, indices: Int32Array, norm?: PixelNorm): tf.Tensor4D {
  const per = set.channels * set.size * set.size;
  const out = new Float32Array(indices.length * per);
  const mean = norm?.mean ?? 0, std = norm?.std ?? 1;
  indices.forEach((idx, i) => {
    const src = set.pixels.subarray(idx * per, (idx + 1) * per);
    for (let j = 0; j < per; j++) out[i * per + j] = (src[j] - mean) / std;
  });
  return tf.tensor4d(out, [indices.length, set.channels, set.size, set.size]);
}

function gatherRows(values: Float32Array, width: number, indices: Int32Array): Tensor2D {
  const out = new Float32Array(indices.length * width);
  indices.forEach((idx, i) => out.set(values.subarray(idx * width, (idx + 1) * width), i * width));
  return tf.tensor2d(out, [indices.length, width]);
}

function checkJob(job: TrainJob, s: TrainSettings): void {
  const where = `${job.title}:`;
  if (job.aux.count < s.batch) {
    const empty = job.aux.count === 0 ? " (it is empty)" : "";
    throw new Error(
      `${where} the auxiliary set has ${job.aux.count} images, fewer than one batch of ` +
        `${s.batch}${empty}`,
    );
  }
  for (const key of ["steps", "batch", "checkpointEvery"] as const) {
    if (!Number.isInteger(s[key]) || s[key] < (key === "steps" ? 0 : 1)) {
      throw new Error(`${where} ${key} must be a positive integer, got ${s[key]}`);
    }
  }
  if (!(s.lr > 0)) throw new Error(`${where} lr must be > 0, got ${s.lr}`);
  if (job.targets.length !== job.heads.length) {
    throw new Error(`${where} ${job.targets.length} targets for ${job.heads.length} heads`);
  }
  job.targets.forEach((t, j) => {
    if (t.length !== job.aux.count * job.heads[j].classes.length) {
      throw new Error(`${where} targets of head ${job.heads[j].task} do not cover the aux set`);
    }
  });
}

/** τ' as trainable variables, from a saved state or from the job's starting τ. */
function variables(job: TrainJob, saved?: Map<string, Float32Array>): Record<string, Variable> {
  const out: Record<string, Variable> = {};
  for (const [name, b] of job.base) {
    const start = saved?.get(name) ?? job.init.get(name)?.data;
    if (!start || start.length !== b.data.length) {
      throw new Error(`${job.title}: the starting task vector lacks "${name}" of θ0's shape`);
    }
    const initial = tf.tensor(start, [...b.shape]);
    out[name] = tf.variable(initial, true);
    initial.dispose(); // the variable keeps its own reference to the data
  }
  return out;
}

/** The first τ' tensor holding NaN or ±Infinity, and where (reads τ': for error messages). */
async function nonFiniteTensor(
  tau: Record<string, Variable>,
): Promise<[string, number] | undefined> {
  for (const [name, v] of Object.entries(tau)) {
    const [values] = await readTensors([v]);
    const at = firstNonFinite(values);
    if (at >= 0) return [name, at];
  }
  return undefined;
}

/** Names the first parameter that went non-finite at this step. */
async function nonFinite(
  title: string,
  step: number,
  tau: Record<string, Variable>,
): Promise<never> {
  const bad = await nonFiniteTensor(tau);
  if (bad) {
    throw new Error(
      `${title}: step ${step} made tensor "${bad[0]}" non-finite (flat index ${bad[1]}); ` +
        `the last saved state is kept`,
    );
  }
  throw new Error(
    `${title}: the loss became non-finite at step ${step}; the last saved state is kept`,
  );
}
