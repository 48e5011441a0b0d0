/**
 * Frank-Wolfe merging's iterations (see `fw_merging.ts` and `fw_soft.ts` for the methods): the
 * gradient of the tasks' summed loss at the current merged model (TensorFlow.js), the
 * linear-minimisation oracle over the candidate models' parameters and the step, on the host;
 * and the soft variant's rounds of layer-wise AdaMerging re-anchored at the current model. Loads
 * TensorFlow.js (imported by the method files only inside `prepare`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { HostParams } from "../models/weights.ts";
import { headLogits } from "../models/head.ts";
import { imageFeatures, type ParamMap } from "../models/vit.ts";
import type { ImageSet } from "../data/dataset.ts";
import { crossEntropy } from "../train/losses.ts";
import type { MergeModel, ProgressCallback } from "./method.ts";
import {
  frankWolfeImages,
  type FrankWolfeSettings,
  frankWolfeStep,
} from "./fw_merging_schedule.ts";
import { entropyLoss, modelTensors, pixelBatch } from "./model_pass.ts";
import { fitAdaMerging } from "./adamerging_fit.ts";
import type { AdaMergingSettings } from "./adamerging_schedule.ts";

/** One Frank-Wolfe run: the model, the task vectors, the images and the settings. */
export interface FrankWolfeJob {
  /** θ0, geometry, heads (one per task, in task order). */
  readonly model: MergeModel;
  /** The task vectors, in task order. */
  readonly taus: readonly HostParams[];
  /** The tensors that are merged (and scored), in order. */
  readonly names: readonly string[];
  /** Each task's images (with labels for the cross-entropy). */
  readonly sets: readonly ImageSet[];
  /** Settings. */
  readonly settings: FrankWolfeSettings;
  /** Reports the iterations. */
  readonly progress?: ProgressCallback;
}

/** What Frank-Wolfe merging found. */
export interface FrankWolfeFit {
  /** M = θ^K − θ0 per tensor. */
  readonly merged: Map<string, Float32Array>;
  /**
   * The chosen candidate of every iteration (0..T−1 the experts, T the initial model): one
   * entry (granularity task) or one per tensor in `names` order (granularity layer).
   */
  readonly choices: number[][];
  /** The loss (1/(N·T)) Σ ℓ at each iterate whose gradient was taken. */
  readonly losses: number[];
  /** The oracle's scores of every iteration: [candidate][tensor] cosines. */
  readonly scores: Float64Array[][];
}

/**
 * Runs Frank-Wolfe merging (hard) and returns M = θ^K − θ0 with the choices made.
 *
 * @example
 * ```ts ignore
 * const fit = await fitFrankWolfe({ model, taus, names, sets, settings });
 * ```
 */
export async function fitFrankWolfe(job: FrankWolfeJob): Promise<FrankWolfeFit> {
  const { model, taus, names, sets, settings } = job;
  const T = taus.length;
  if (sets.length !== T || model.heads.length !== T) {
    throw new Error(
      `Frank-Wolfe merging: ${T} task vectors, ${sets.length} image sets, ` +
        `${model.heads.length} heads`,
    );
  }
  const tau = (t: number, name: string) => {
    const v = taus[t].get(name)?.data;
    const b = model.base.get(name);
    if (!v || !b || v.length !== b.data.length) {
      throw new Error(
        `Frank-Wolfe merging: task vector ${t} tensor "${name}" ` +
          (!b ? "is not a model parameter" : `has ${v?.length ?? 0} values, θ0 ${b.data.length}`),
      );
    }
    return v;
  };
  // m = θ − θ0; the initial model's m^0 is also the last candidate.
  const s0 = settings.init === "base" ? 0 : settings.initScaling;
  const initial = new Map(names.map((name) => {
    const out = new Float32Array(model.base.get(name)?.data.length ?? 0);
    for (let t = 0; t < T; t++) {
      const v = tau(t, name);
      for (let i = 0; i < out.length; i++) out[i] += v[i];
    }
    for (let i = 0; i < out.length; i++) out[i] = Math.fround(s0 * out[i]);
    return [name, out];
  }));
  const candidate = (c: number, name: string) => c === T ? initial.get(name)! : tau(c, name);
  const m = new Map([...initial].map(([n, v]) => [n, v.slice()]));
  const choices: number[][] = [], losses: number[] = [], scores: Float64Array[][] = [];
  for (let k = 0; k < settings.steps; k++) {
    const { grads, loss } = await gradient(job, m, k);
    losses.push(loss);
    const score = names.map((name) => {
      const g = grads.get(name)!, b = model.base.get(name)!.data;
      return Float64Array.from({ length: T + 1 }, (_, c) => cosine(g, b, candidate(c, name)));
    });
    scores.push(Array.from({ length: T + 1 }, (_, c) => Float64Array.from(score, (s) => s[c])));
    const chosen = settings.granularity === "task"
      ? [argmin(Float64Array.from({ length: T + 1 }, (_, c) => sum(score, c)))]
      : score.map((s) => argmin(s));
    choices.push(chosen);
    const gamma = frankWolfeStep(k, settings.stepSize, settings.initScaling);
    names.forEach((name, p) => {
      const c = settings.granularity === "task" ? chosen[0] : chosen[p];
      const target = candidate(c, name), cur = m.get(name)!;
      for (let i = 0; i < cur.length; i++) cur[i] += gamma * (target[i] - cur[i]);
    });
    job.progress?.({ phase: "Frank-Wolfe merging", done: k + 1, total: settings.steps });
  }
  return { merged: m, choices, losses, scores };
}

/** Σ over tensors of the scores of candidate c (in tensor order). */
function sum(score: readonly Float64Array[], c: number): number {
  let s = 0;
  for (const row of score) s += row[c];
  return s;
}

/** The first index of the smallest value (NaN never wins). */
function argmin(values: Float64Array): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) {
    if (best < 0 || values[i] < values[best]) best = i;
  }
  return best;
}

/**
 * cos(g, θ0 + σ) = ⟨g, θ0 + σ⟩ / (‖g‖ ‖θ0 + σ‖) in float64, 0 when either norm is 0.
 */
function cosine(g: Float32Array, base: Float32Array, sigma: Float32Array): number {
  let dot = 0, gg = 0, pp = 0;
  for (let i = 0; i < g.length; i++) {
    const p = Math.fround(base[i] + sigma[i]);
    dot += g[i] * p;
    gg += g[i] * g[i];
    pp += p * p;
  }
  return gg === 0 || pp === 0 ? 0 : dot / Math.sqrt(gg * pp);
}

/**
 * ∇_θ (1/(N·T)) Σ_t Σ_n ℓ_t(x_{t,n}) at θ = θ0 + m, with iteration k's images, and the loss.
 */
async function gradient(job: FrankWolfeJob, m: Map<string, Float32Array>, k: number) {
  const { model, names, sets, settings } = job;
  const T = sets.length, N = settings.examples;
  const host: HostParams = new Map(
    [...m].map(([n, v]) => [n, { shape: model.base.get(n)!.shape, data: v }]),
  );
  const params = modelTensors(model.base, host);
  const sums: tf.Tensor[] = names.map((n) => tf.zerosLike(params[n]));
  let loss = 0;
  try {
    for (let t = 0; t < T; t++) {
      const idx = frankWolfeImages(sets[t].count, N, settings.seed, t, k);
      for (let start = 0; start < N; start += settings.batch) {
        const part = idx.subarray(start, Math.min(N, start + settings.batch));
        const x = pixelBatch(sets[t], part, model.norm);
        const y = settings.loss === "cross_entropy"
          ? tf.tensor1d(Int32Array.from(part, (i) => sets[t].labels[i]), "int32")
          : undefined;
        const weight = part.length / (N * T);
        const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
          const p: ParamMap = { ...params };
          names.forEach((n, i) => p[n] = xs[i]);
          const logits = headLogits(model.heads[t], imageFeatures(p, model.config, x));
          const l = y ? crossEntropy(logits, y) : entropyLoss(logits);
          return l.mul(weight) as tf.Scalar;
        })(names.map((n) => params[n]));
        loss += (await value.data())[0];
        for (let i = 0; i < names.length; i++) {
          const next = sums[i].add(grads[i]);
          sums[i].dispose();
          sums[i] = next;
        }
        tf.dispose([value, x, ...grads, ...(y ? [y] : [])]);
      }
    }
    if (!Number.isFinite(loss)) {
      throw new Error(`Frank-Wolfe merging: the loss is ${loss} at iteration ${k}`);
    }
    const grads = new Map<string, Float32Array>();
    for (let i = 0; i < names.length; i++) {
      grads.set(names[i], (await sums[i].data()) as Float32Array);
    }
    return { grads, loss };
  } finally {
    tf.dispose(sums);
    tf.dispose(Object.values(params));
  }
}

/** One Frank-Wolfe soft run: AdaMerging's job without the settings, and the rounds. */
export interface FrankWolfeSoftJob {
  /** θ0, geometry, heads (one per task, in task order). */
  readonly model: MergeModel;
  /** The task vectors, in task order. */
  readonly taus: readonly HostParams[];
  /** The tensors that are merged (and get coefficients), in order. */
  readonly names: readonly string[];
  /** Each task's unlabeled inputs. */
  readonly sets: readonly ImageSet[];
  /** Rounds K. */
  readonly rounds: number;
  /** Each round's layer-wise AdaMerging (its `init`: the first round's coefficients). */
  readonly settings: AdaMergingSettings;
  /** The starting coefficients of every round after the first (FusionBench `ada_coeff`). */
  readonly laterInit: number;
  /** Reports the steps. */
  readonly progress?: ProgressCallback;
  /** Called after every AdaMerging step of round `round` with λ (T × L) and Σ_t H_t. */
  readonly onStep?: (round: number, step: number, lambda: Float32Array, loss: number) => void;
}

/**
 * Runs Frank-Wolfe merging (soft) and returns M = θ^K − θ0: round k fits layer-wise AdaMerging
 * anchored at θ^k, θ^k + Σ_t λ_{t,ℓ} (θ_t − θ^k), and takes its result as θ^{k+1}.
 *
 * @example
 * ```ts ignore
 * const m = await fitFrankWolfeSoft({ model, taus, names, sets, rounds, settings, laterInit });
 * ```
 */
export async function fitFrankWolfeSoft(
  job: FrankWolfeSoftJob,
): Promise<{ merged: Map<string, Float32Array>; losses: number[] }> {
  const { model, taus, names, sets, settings } = job;
  const T = taus.length, L = names.length;
  const m = new Map(names.map((n) => [n, new Float32Array(model.base.get(n)?.data.length ?? 0)]));
  const losses: number[] = [];
  for (let k = 0; k < job.rounds; k++) {
    // θ^k and the experts' differences from it, θ_t − θ^k = τ_t − m.
    const base: HostParams = new Map(model.base);
    for (const name of names) {
      const b = model.base.get(name)!, cur = m.get(name)!;
      base.set(name, { shape: b.shape, data: b.data.map((v, i) => v + cur[i]) });
    }
    const diffs: HostParams[] = taus.map((tau, t) =>
      new Map(names.map((name) => {
        const v = tau.get(name)?.data, cur = m.get(name)!;
        if (!v || v.length !== cur.length) {
          throw new Error(
            `Frank-Wolfe merging (soft): task vector ${t} tensor "${name}" has ` +
              `${v?.length ?? 0} values, θ0 ${cur.length}`,
          );
        }
        return [name, { shape: model.base.get(name)!.shape, data: v.map((x, i) => x - cur[i]) }];
      }))
    );
    const fit = await fitAdaMerging({
      model: { ...model, base },
      taus: diffs,
      names,
      sets,
      settings: { ...settings, layerWise: true, init: k === 0 ? settings.init : job.laterInit },
      stepOffset: k * settings.steps,
      onStep: job.onStep ? (s, lambda, loss) => job.onStep!(k, s, lambda, loss) : undefined,
    });
    losses.push(...fit.losses);
    names.forEach((name, l) => {
      const cur = m.get(name)!, step = new Float32Array(cur.length);
      for (let t = 0; t < T; t++) {
        const w = fit.used[t * L + l], d = diffs[t].get(name)!.data;
        for (let i = 0; i < step.length; i++) step[i] += w * d[i];
      }
      for (let i = 0; i < cur.length; i++) cur[i] += step[i];
    });
    job.progress?.({ phase: "Frank-Wolfe merging (soft)", done: k + 1, total: job.rounds });
  }
  return { merged: m, losses };
}
