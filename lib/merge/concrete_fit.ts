/**
 * Concrete Task Arithmetic's optimisation (see `concrete_ta.ts` for the method): one mask logit
 * per parameter entry as tfjs variables, the relaxed-Bernoulli (concrete) mask drawn from them
 * with the step's uniform noise, the model θ0 + λ Σ_t τ_t ⊙ m, every task's entropy under its
 * own head, and Adam on the logits. Loads TensorFlow.js (imported by `concrete_ta.ts` only
 * inside `prepare`).
 *
 * The mask of a tensor with logits z, temperature T and uniform noise u (PyTorch's
 * `RelaxedBernoulli(logits=z, temperature=T).rsample()`, both probabilities clamped to
 * [ε, 1 − ε] with ε = 2⁻²³, float32's machine epsilon, and the sigmoid's output to
 * [2⁻¹²⁶, 1 − ε]):
 *
 *   p = clamp(σ(z)),  u' = clamp(u),
 *   s = clamp(σ((log u' − log(1 − u') + log p − log(1 − p)) / T)),
 *   m = s / mean(s)                    (the mean over the tensor's entries)
 *
 * The noise is the only randomness: {@linkcode concreteNoise} gives step k's uniforms for a
 * tensor from the seed, so a test can hand the same draws to a reference implementation.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor, Variable } from "../engine/tf_types.ts";
import type { HostParams } from "../models/weights.ts";
import { headLogits } from "../models/head.ts";
import { imageFeatures, type ParamMap } from "../models/vit.ts";
import type { ImageSet } from "../data/dataset.ts";
import { Rng } from "../tensor/random.ts";
import { AdamW } from "../train/adamw.ts";
import type { MergeModel, ProgressCallback } from "./method.ts";
import { adaMergingBatch } from "./adamerging_schedule.ts";
import { entropyLoss, modelTensors, pixelBatch } from "./model_pass.ts";

/** float32's machine epsilon (`torch.finfo(torch.float32).eps`), the probability clamp. */
const EPS = 2 ** -23;
/** float32's smallest normal number (`torch.finfo(torch.float32).tiny`). */
const TINY = 2 ** -126;

/** Concrete Task Arithmetic's settings, read from its parameters. */
export interface ConcreteSettings {
  /** λ: every task vector's coefficient in the model (FusionBench's `scaling_factor`). */
  scaling: number;
  /** Relaxation temperature T of the concrete distribution. */
  temperature: number;
  /** Starting value of every mask logit. */
  init: number;
  /** Adam learning rate of the logits. */
  lr: number;
  /** Steps. */
  steps: number;
  /** Inputs per task and step. */
  batch: number;
  /** The final mask: a concrete sample (`continuous`) or a Bernoulli sample (`discrete`). */
  evalMask: "continuous" | "discrete";
  /** Seed of the noise and of the batch order. */
  seed: number;
}

/**
 * The uniform noise in [0, 1) (float32) of tensor `name`'s mask at step `step` (1 … steps for
 * the training samples, steps + 1 for the final mask): `size` draws of the stream seeded by
 * (`seed`, step, name).
 *
 * @example
 * ```ts
 * import { deepStrictEqual, ok } from "node:assert/strict";
 * import { concreteNoise } from "./concrete_fit.ts";
 * const u = concreteNoise(0, 1, "w", 4);
 * ok(u.every((v) => v >= 0 && v < 1));
 * deepStrictEqual(concreteNoise(0, 1, "w", 4), u); // the same seed, step and name: the same draws
 * ```
 */
export function concreteNoise(
  seed: number,
  step: number,
  name: string,
  size: number,
): Float32Array {
  const rng = new Rng(seed, `concrete/step-${step}/${name}`);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.uniform();
  return out;
}

/**
 * s = clamp(σ((log u' − log(1 − u') + log p − log(1 − p)) / T)) with u' = clamp(u) and
 * p = clamp(σ(z)): the concrete sample, in PyTorch's order of operations.
 */
function concreteSample(z: Tensor, u: Tensor, temperature: number): Tensor {
  return tf.tidy(() => {
    const p = tf.sigmoid(z).clipByValue(EPS, 1 - EPS);
    const c = u.clipByValue(EPS, 1 - EPS);
    const x = c.log().sub(c.neg().log1p()).add(p.log()).sub(p.neg().log1p()).div(temperature);
    return tf.sigmoid(x).clipByValue(TINY, 1 - EPS);
  });
}

/** m = s / mean(s). */
function rescaled(s: Tensor): Tensor {
  return tf.tidy(() => s.div(s.mean()));
}

/** One Concrete Task Arithmetic run: the model, the task vectors, the inputs and the settings. */
export interface ConcreteJob {
  /** θ0, geometry, heads (one per task, in task order). */
  model: MergeModel;
  /** The task vectors, in task order. */
  taus: readonly HostParams[];
  /** The masked tensors, in order (every tensor the task vectors hold). */
  names: readonly string[];
  /** Each task's unlabeled inputs. */
  sets: readonly ImageSet[];
  /** Settings. */
  settings: ConcreteSettings;
  /** Reports the steps. */
  progress?: ProgressCallback;
  /** Called after every step with the logits (by tensor) and Σ_t H_t before the step. */
  onStep?: (step: number, logits: ReadonlyMap<string, Float32Array>, loss: number) => void;
}

/** What Concrete Task Arithmetic learned. */
export interface ConcreteFit {
  /** The final mask logits z, by tensor. */
  logits: Map<string, Float32Array>;
  /** The final mask m (rescaled to mean 1 per tensor), by tensor. */
  mask: Map<string, Float32Array>;
  /** Σ_t H_t at each step (before its update). */
  losses: number[];
  /** The mean of the sampled mask s (before rescaling) over every entry, at each step. */
  maskMeans: number[];
  /** The same mean for the final mask. */
  finalMaskMean: number;
}

/**
 * Runs Concrete Task Arithmetic's test-time adaptation and returns the logits and the final
 * mask.
 *
 * θ = θ0 + λ (Σ_t τ_t) ⊙ m is linear in each tensor's mask m, so ∂(Σ_t H_t)/∂m = λ g ⊙ Σ_t τ_t
 * with g = Σ_t ∂H_t/∂θ at θ: each step builds θ once, back-propagates every task's entropy to
 * θ, sums the gradients, and back-propagates c = λ g ⊙ Σ_t τ_t through the mask's own map
 * z ↦ m (∂⟨c, m(z)⟩/∂z, the step's noise held fixed) — the gradient autograd through the whole
 * model gives (FusionBench's one `backward` of the summed loss), without rebuilding θ inside
 * every tape.
 *
 * @example
 * ```ts ignore
 * const fit = await fitConcrete({ model, taus, names, sets, settings });
 * ```
 */
export async function fitConcrete(job: ConcreteJob): Promise<ConcreteFit> {
  const { model, taus, names, sets, settings } = job;
  const T = taus.length;
  if (sets.length !== T || model.heads.length !== T) {
    throw new Error(
      `Concrete TA: ${T} task vectors, ${sets.length} input sets, ${model.heads.length} heads`,
    );
  }
  if (!(settings.temperature > 0)) {
    throw new Error(`Concrete TA: temperature is ${settings.temperature}, expected > 0`);
  }
  const base = modelTensors(model.base);
  const sums: Record<string, Tensor> = {};
  const logits: Record<string, Variable> = {};
  for (const name of names) {
    const b = base[name];
    if (!b) throw new Error(`Concrete TA: task vector tensor "${name}" is not a model parameter`);
    const sum = new Float32Array(b.size);
    taus.forEach((tau, t) => {
      const v = tau.get(name);
      if (!v || v.data.length !== b.size) {
        throw new Error(
          `Concrete TA: task vector ${t} tensor "${name}" has ${v?.data.length ?? 0} values, ` +
            `θ0 ${b.size}`,
        );
      }
      for (let i = 0; i < sum.length; i++) sum[i] += v.data[i];
    });
    sums[name] = tf.tensor(sum, b.shape, "float32");
    const init = tf.fill(b.shape, settings.init);
    logits[name] = tf.variable(init, true);
    init.dispose(); // the variable keeps its own reference
  }
  const optimizer = new AdamW(logits, { weightDecay: 0 });
  const losses: number[] = [], maskMeans: number[] = [];
  const entries = names.reduce((n, name) => n + base[name].size, 0);
  const noiseOf = (step: number) =>
    Object.fromEntries(names.map((name) => {
      const b = base[name];
      return [name, tf.tensor(concreteNoise(settings.seed, step, name, b.size), b.shape)];
    }));
  try {
    for (let step = 1; step <= settings.steps; step++) {
      const noise = noiseOf(step);
      const params: ParamMap = { ...base };
      const grads: tf.Tensor[] = [];
      let sampled = 0;
      try {
        for (const name of names) {
          params[name] = tf.tidy(() => {
            const s = concreteSample(logits[name], noise[name], settings.temperature);
            sampled += s.sum().dataSync()[0];
            const w = rescaled(s).mul(settings.scaling);
            return base[name].add(sums[name].mul(w));
          });
        }
        maskMeans.push(sampled / entries);
        const g: tf.Tensor[] = names.map((n) => tf.zerosLike(params[n]));
        grads.push(...g);
        let loss = 0;
        for (let t = 0; t < T; t++) {
          const idx = adaMergingBatch(sets[t].count, settings.batch, settings.seed, t, step);
          const x = pixelBatch(sets[t], idx, model.norm);
          const head = model.heads[t];
          const { value, grads: gt } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
            const p: ParamMap = { ...params };
            names.forEach((n, i) => p[n] = xs[i]);
            return entropyLoss(headLogits(head, imageFeatures(p, model.config, x)));
          })(names.map((n) => params[n]));
          loss += (await value.data())[0];
          for (let i = 0; i < names.length; i++) {
            const next = grads[i].add(gt[i]);
            grads[i].dispose();
            grads[i] = next;
          }
          tf.dispose([value, x, ...gt]);
        }
        if (!Number.isFinite(loss)) {
          throw new Error(`Concrete TA: the entropy is ${loss} at step ${step}`);
        }
        losses.push(loss);
        const zGrads: Record<string, Tensor> = {};
        names.forEach((name, i) => {
          zGrads[name] = tf.tidy(() => {
            const c = grads[i].mul(sums[name]).mul(settings.scaling);
            return tf.grad((z: Tensor) =>
              rescaled(concreteSample(z, noise[name], settings.temperature)).mul(c).sum()
            )(logits[name]);
          });
        });
        optimizer.step(zGrads, settings.lr);
        tf.dispose(Object.values(zGrads));
      } finally {
        tf.dispose(grads);
        tf.dispose(Object.values(noise));
        tf.dispose(names.map((n) => params[n]).filter((p) => p !== undefined));
      }
      if (job.onStep) job.onStep(step, await hostLogits(logits, names), losses[losses.length - 1]);
      job.progress?.({ phase: "Concrete TA", done: step, total: settings.steps });
    }
    const mask = new Map<string, Float32Array>();
    let kept = 0;
    const noise = noiseOf(settings.steps + 1);
    try {
      for (const name of names) {
        const m = tf.tidy(() => {
          const s = settings.evalMask === "continuous"
            ? concreteSample(logits[name], noise[name], settings.temperature)
            : bernoulli(logits[name], noise[name]);
          kept += s.sum().dataSync()[0];
          if (!(s.mean().dataSync()[0] > 0)) {
            throw new Error(
              `Concrete TA: the final ${settings.evalMask} mask of "${name}" is all zeros ` +
                "(its mean, the rescaling's divisor, is 0)",
            );
          }
          return rescaled(s);
        });
        mask.set(name, Float32Array.from(await m.data() as Float32Array));
        m.dispose();
      }
    } finally {
      tf.dispose(Object.values(noise));
    }
    return {
      logits: await hostLogits(logits, names),
      mask,
      losses,
      maskMeans,
      finalMaskMean: kept / entries,
    };
  } finally {
    optimizer.dispose();
    tf.dispose([...Object.values(base), ...Object.values(sums), ...Object.values(logits)]);
  }
}

/** A Bernoulli(σ(z)) sample: 1 where u < σ(z) (as `torch.bernoulli` draws it), else 0. */
function bernoulli(z: Tensor, u: Tensor): Tensor {
  return tf.tidy(() => u.less(tf.sigmoid(z)).cast("float32"));
}

async function hostLogits(
  logits: Record<string, Variable>,
  names: readonly string[],
): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const name of names) {
    out.set(name, Float32Array.from(await logits[name].data() as Float32Array));
  }
  return out;
}
