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

/** Every tensor's uniform noise of step `step` as tfjs tensors in θ0's shapes. */
function noiseTensors(
  seed: number,
  step: number,
  names: readonly string[],
  base: ParamMap,
): Record<string, Tensor> {
  return Object.fromEntries(names.map((name) => {
    const b = base[name];
    return [name, tf.tensor(concreteNoise(seed, step, name, b.size), b.shape)];
  }));
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
  const noiseOf = (step: number) => noiseTensors(settings.seed, step, names, base);
  try {
    for (let step = 1; step <= settings.steps; step++) {
      const noise = noiseOf(step);
      const merged: ParamMap = {};
      const grads: tf.Tensor[] = [];
      let sampled = 0;
      try {
        for (const name of names) {
          merged[name] = tf.tidy(() => {
            const s = concreteSample(logits[name], noise[name], settings.temperature);
            sampled += s.sum().dataSync()[0];
            const w = rescaled(s).mul(settings.scaling);
            return base[name].add(sums[name].mul(w));
          });
        }
        maskMeans.push(sampled / entries);
        const params: ParamMap = { ...base, ...merged };
        const { sums: g, loss } = await entropyGradients(
          model,
          params,
          names,
          sets,
          settings,
          step,
        );
        grads.push(...g);
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
        tf.dispose(Object.values(merged));
      }
      if (job.onStep) job.onStep(step, await hostLogits(logits, names), losses[losses.length - 1]);
      job.progress?.({ phase: "Concrete TA", done: step, total: settings.steps });
    }
    const { mask, mean: finalMaskMean } = await finalMask(
      logits,
      names,
      settings,
      noiseOf(settings.steps + 1),
    );
    return {
      logits: await hostLogits(logits, names),
      mask,
      losses,
      maskMeans,
      finalMaskMean,
    };
  } finally {
    optimizer.dispose();
    tf.dispose([...Object.values(base), ...Object.values(sums), ...Object.values(logits)]);
  }
}

/**
 * The final mask from the logits and the noise of step steps + 1 (disposed here): a concrete
 * sample at T (`continuous`) or Bernoulli(σ(z)) (`discrete`), rescaled per tensor to mean 1,
 * and the mean of the sample before rescaling over every entry.
 */
async function finalMask(
  logits: Record<string, Variable>,
  names: readonly string[],
  settings: ConcreteSettings,
  noise: Record<string, Tensor>,
): Promise<{ mask: Map<string, Float32Array>; mean: number }> {
  const mask = new Map<string, Float32Array>();
  let kept = 0, entries = 0;
  try {
    for (const name of names) {
      const m = tf.tidy(() => {
        const s = settings.evalMask === "continuous"
          ? concreteSample(logits[name], noise[name], settings.temperature)
          : bernoulli(logits[name], noise[name]);
        kept += s.sum().dataSync()[0];
        entries += s.size;
        if (!(s.mean().dataSync()[0] > 0)) {
          throw new Error(
            `Concrete: the final ${settings.evalMask} mask of "${name}" is all zeros ` +
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
  return { mask, mean: kept / entries };
}

/**
 * g = Σ_t ∂H_t/∂θ for the tensors `names` at θ = `params` (one tensor per name, the caller
 * disposes them), with H_t the entropy of task t's batch of loader step `at` under its head,
 * and Σ_t H_t.
 */
async function entropyGradients(
  model: MergeModel,
  params: ParamMap,
  names: readonly string[],
  sets: readonly ImageSet[],
  settings: { batch: number; seed: number },
  at: number,
): Promise<{ sums: tf.Tensor[]; loss: number }> {
  const sums: tf.Tensor[] = names.map((n) => tf.zerosLike(params[n]));
  let loss = 0;
  try {
    for (let t = 0; t < sets.length; t++) {
      const idx = adaMergingBatch(sets[t].count, settings.batch, settings.seed, t, at);
      const x = pixelBatch(sets[t], idx, model.norm);
      const head = model.heads[t];
      const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
        const p: ParamMap = { ...params };
        names.forEach((n, i) => p[n] = xs[i]);
        return entropyLoss(headLogits(head, imageFeatures(p, model.config, x)));
      })(names.map((n) => params[n]));
      loss += (await value.data())[0];
      for (let i = 0; i < names.length; i++) {
        const next = sums[i].add(grads[i]);
        sums[i].dispose();
        sums[i] = next;
      }
      tf.dispose([value, x, ...grads]);
    }
  } catch (e) {
    tf.dispose(sums);
    throw e;
  }
  if (!Number.isFinite(loss)) {
    tf.dispose(sums);
    throw new Error(`Concrete: the entropy is ${loss} at loader step ${at}`);
  }
  return { sums, loss };
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

/** Concrete AdaMerging's settings: Concrete TA's for the mask, AdaMerging's for λ. */
export interface ConcreteAdaMergingSettings extends ConcreteSettings {
  /** One coefficient per task and tensor (true) or per task (false). */
  layerWise: boolean;
  /** λ's starting value (FusionBench's `scaling_factor`), restored before every inner step. */
  lambdaInit: number;
  /** Adam learning rate of the inner λ step while the mask is learned (`base_lr`). */
  baseLr: number;
  /** Adam learning rate of λ in the AdaMerging phase under the final mask (`adamerging_lr`). */
  adaLr: number;
  /** Steps of the AdaMerging phase (`max_adamerging_steps`). */
  adaSteps: number;
}

/** A Concrete AdaMerging run. */
export interface ConcreteAdaMergingJob extends Omit<ConcreteJob, "settings" | "onStep"> {
  /** Settings. */
  settings: ConcreteAdaMergingSettings;
  /**
   * Called after every mask step with the logits, λ after the step's inner update (T × L,
   * row-major) and Σ_t H_t of the mask's loss.
   */
  onStep?: (
    step: number,
    logits: ReadonlyMap<string, Float32Array>,
    lambda: Float32Array,
    loss: number,
  ) => void;
  /** Called after every AdaMerging-phase step with λ (T × L, row-major) and Σ_t H_t. */
  onAdaStep?: (step: number, lambda: Float32Array, loss: number) => void;
}

/** What Concrete AdaMerging learned. */
export interface ConcreteAdaMergingFit extends ConcreteFit {
  /** The final λ of the AdaMerging phase, T × L row-major (L = 1 task-wise). */
  lambda: Float32Array;
  /** Σ_t H_t at each AdaMerging-phase step (before its update). */
  adaLosses: number[];
}

/**
 * Runs Concrete AdaMerging (FusionBench's `ConcreteTaskWiseAdaMergingForCLIP` /
 * `ConcreteLayerWiseAdaMergingForCLIP`): the mask meta-learned against one inner Adam step of λ,
 * then AdaMerging of λ under the final mask.
 *
 * Mask step k (from 1), with m = s / mean(s) the concrete sample of the step's noise:
 * 1. θ_A = θ0 + Σ_t λ'_t τ_t ⊙ sg(m), λ' the λ left by step k − 1's inner update (λ0 at k = 1:
 *    FusionBench merges before it restores λ); g_A = ∇_θ Σ_t H_t on loader step 2k − 1;
 * 2. λ ← λ0, then one Adam step (lr `baseLr`, the moments kept across mask steps) on
 *    ∂/∂λ_{t,ℓ} = ⟨g_A, τ_{t,ℓ} ⊙ m⟩ (task-wise summed over tensors);
 * 3. θ_B = θ0 + Σ_t λ_t τ_t ⊙ m; one Adam step (lr `lr`) of the logits on ∇_z Σ_t H_t at θ_B on
 *    loader step 2k (λ held: the gradient does not pass through the inner step).
 * Then the final mask (noise of step steps + 1), λ ← λ0 and `adaSteps` steps of AdaMerging
 * (fresh Adam, lr `adaLr`) on the masked task vectors τ_t ⊙ m, on loader steps 2·steps + j.
 *
 * @example
 * ```ts ignore
 * const fit = await fitConcreteAdaMerging({ model, taus, names, sets, settings });
 * ```
 */
export async function fitConcreteAdaMerging(
  job: ConcreteAdaMergingJob,
): Promise<ConcreteAdaMergingFit> {
  const { model, taus, names, sets, settings } = job;
  const T = taus.length, L = settings.layerWise ? names.length : 1;
  if (sets.length !== T || model.heads.length !== T) {
    throw new Error(
      `Concrete AdaMerging: ${T} task vectors, ${sets.length} input sets, ` +
        `${model.heads.length} heads`,
    );
  }
  const base = modelTensors(model.base);
  const stacks: Record<string, tf.Tensor2D> = {};
  const logits: Record<string, Variable> = {};
  for (const name of names) {
    const b = base[name];
    if (!b) throw new Error(`Concrete AdaMerging: tensor "${name}" is not a model parameter`);
    const flat = new Float32Array(T * b.size);
    taus.forEach((tau, t) => {
      const v = tau.get(name);
      if (!v || v.data.length !== b.size) {
        throw new Error(
          `Concrete AdaMerging: task vector ${t} tensor "${name}" has ` +
            `${v?.data.length ?? 0} values, θ0 ${b.size}`,
        );
      }
      flat.set(v.data, t * b.size);
    });
    stacks[name] = tf.tensor2d(flat, [T, b.size]);
    const init = tf.fill(b.shape, settings.init);
    logits[name] = tf.variable(init, true);
    init.dispose();
  }
  const start = tf.fill([T, L], settings.lambdaInit);
  const lambda = tf.variable(start, true);
  const optimizer = new AdamW(logits, { weightDecay: 0 });
  const inner = new AdamW({ lambda }, { weightDecay: 0 });
  const losses: number[] = [], maskMeans: number[] = [];
  const entries = names.reduce((n, name) => n + base[name].size, 0);
  /** Σ_t λ_{t,ℓ} τ_{t,ℓ} for tensor `name` (column l), in θ0's shape. */
  const combo = (lam: Tensor, name: string, l: number) =>
    tf.tidy(() => {
      const w = (settings.layerWise ? lam.slice([0, l], [T, 1]) : lam).reshape([1, T]);
      return tf.matMul(w, stacks[name]).reshape(base[name].shape);
    });
  let previous: Tensor = start; // λ' of step 1: λ0
  try {
    for (let step = 1; step <= settings.steps; step++) {
      const noise = noiseTensors(settings.seed, step, names, base);
      const masks: ParamMap = {}, merged: ParamMap = {};
      const grads: tf.Tensor[] = [];
      try {
        let sampled = 0;
        for (const name of names) {
          masks[name] = tf.tidy(() => {
            const s = concreteSample(logits[name], noise[name], settings.temperature);
            sampled += s.sum().dataSync()[0];
            return rescaled(s);
          });
        }
        maskMeans.push(sampled / entries);
        // 1–2: the inner λ step from θ_A
        names.forEach((name, l) => {
          merged[name] = tf.tidy(() => base[name].add(combo(previous, name, l).mul(masks[name])));
        });
        const a = await entropyGradients(
          model,
          { ...base, ...merged },
          names,
          sets,
          settings,
          2 * step - 1,
        );
        tf.dispose(Object.values(merged));
        const lambdaGrad = tf.tidy(() => {
          const columns = names.map((name, l) =>
            tf.matMul(stacks[name], a.sums[l].mul(masks[name]).reshape([-1, 1]))
          );
          return settings.layerWise ? tf.concat(columns, 1) : tf.addN(columns);
        });
        tf.dispose(a.sums);
        const reset = tf.fill([T, L], settings.lambdaInit);
        lambda.assign(reset);
        reset.dispose();
        inner.step({ lambda: lambdaGrad }, settings.baseLr);
        lambdaGrad.dispose();
        // 3: the mask step at θ_B
        const combos = names.map((name, l) => combo(lambda, name, l));
        grads.push(...combos);
        names.forEach((name, l) => {
          merged[name] = tf.tidy(() => base[name].add(combos[l].mul(masks[name])));
        });
        const b = await entropyGradients(
          model,
          { ...base, ...merged },
          names,
          sets,
          settings,
          2 * step,
        );
        grads.push(...b.sums);
        losses.push(b.loss);
        const zGrads: Record<string, Tensor> = {};
        names.forEach((name, l) => {
          zGrads[name] = tf.tidy(() => {
            const c = b.sums[l].mul(combos[l]);
            return tf.grad((z: Tensor) =>
              rescaled(concreteSample(z, noise[name], settings.temperature)).mul(c).sum()
            )(logits[name]);
          });
        });
        optimizer.step(zGrads, settings.lr);
        tf.dispose(Object.values(zGrads));
        previous.dispose();
        previous = lambda.clone();
      } finally {
        tf.dispose(grads);
        tf.dispose(Object.values(noise));
        tf.dispose(Object.values(masks));
        tf.dispose(Object.values(merged).filter((t) => !t.isDisposed));
      }
      if (job.onStep) {
        job.onStep(
          step,
          await hostLogits(logits, names),
          Float32Array.from(await lambda.data() as Float32Array),
          losses[losses.length - 1],
        );
      }
      job.progress?.({ phase: "Concrete AdaMerging (mask)", done: step, total: settings.steps });
    }
    const { mask, mean: finalMaskMean } = await finalMask(
      logits,
      names,
      settings,
      noiseTensors(settings.seed, settings.steps + 1, names, base),
    );
    const masked: HostParams[] = taus.map((tau) =>
      new Map(names.map((name) => {
        const v = tau.get(name)!, m = mask.get(name)!;
        return [name, { shape: v.shape, data: v.data.map((x, i) => x * m[i]) }];
      }))
    );
    const { fitAdaMerging } = await import("./adamerging_fit.ts");
    const ada = await fitAdaMerging({
      model,
      taus: masked,
      names,
      sets,
      settings: {
        layerWise: settings.layerWise,
        init: settings.lambdaInit,
        lr: settings.adaLr,
        steps: settings.adaSteps,
        batch: settings.batch,
        clamp: false,
        seed: settings.seed,
      },
      stepOffset: 2 * settings.steps,
      progress: job.progress,
      onStep: job.onAdaStep,
    });
    return {
      logits: await hostLogits(logits, names),
      mask,
      losses,
      maskMeans,
      finalMaskMean,
      lambda: ada.lambda,
      adaLosses: ada.losses,
    };
  } finally {
    previous.dispose();
    optimizer.dispose();
    inner.dispose();
    lambda.dispose();
    tf.dispose([...Object.values(base), ...Object.values(stacks), ...Object.values(logits)]);
  }
}
