/**
 * AdaMerging's optimisation (see `adamerging.ts` for the method): the coefficients λ as one
 * tfjs variable [T, L], the merged model θ0 + Σ_t λ_{t,ℓ} τ_{t,ℓ} rebuilt from them in each
 * forward pass, the entropy of every task's batch under its own head, and Adam on the summed
 * gradient. Loads TensorFlow.js (imported by `adamerging.ts` only inside `prepare`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { HostParams } from "../models/weights.ts";
import { headLogits } from "../models/head.ts";
import { imageFeatures, type ParamMap } from "../models/vit.ts";
import type { ImageSet } from "../data/dataset.ts";
import { AdamW } from "../train/adamw.ts";
import type { MergeModel, ProgressCallback } from "./method.ts";
import { adaMergingBatch, type AdaMergingSettings } from "./adamerging_schedule.ts";
import { entropyLoss, modelTensors, pixelBatch } from "./model_pass.ts";

/** One AdaMerging run: the model, the task vectors, the inputs and the settings. */
export interface AdaMergingJob {
  /** θ0, geometry, heads (one per task, in task order). */
  model: MergeModel;
  /** The task vectors, in task order. */
  taus: readonly HostParams[];
  /** The tensors that get coefficients, in order (layer-wise: column ℓ of λ). */
  names: readonly string[];
  /** Each task's unlabeled inputs. */
  sets: readonly ImageSet[];
  /** Settings. */
  settings: AdaMergingSettings;
  /** Reports the steps. */
  progress?: ProgressCallback;
  /**
   * Steps of the same batch streams read before this run (default 0): step s reads the batches
   * of step s + stepOffset, as a loader kept from an earlier run goes on (Frank-Wolfe soft).
   */
  stepOffset?: number;
  /** Called after every step with the coefficients λ (T × L, row-major) and Σ_t H_t. */
  onStep?: (step: number, lambda: Float32Array, loss: number) => void;
}

/** What AdaMerging learned. */
export interface AdaMergingFit {
  /** The final λ, T × L row-major (L = 1 task-wise). */
  lambda: Float32Array;
  /** The coefficients the model uses: clamp(λ, 0, 1) when clamping, else λ. */
  used: Float32Array;
  /** Σ_t H_t at each step (before its update). */
  losses: number[];
}

/**
 * Runs AdaMerging's test-time adaptation and returns the coefficients.
 *
 * θ(λ) is linear in λ, so ∂(Σ_t H_t)/∂λ_{t,ℓ} = ⟨g_ℓ, τ_{t,ℓ}⟩ with g = Σ_t ∂H_t/∂θ at θ(λ):
 * each step builds θ(λ) once, back-propagates every task's entropy to θ, sums the gradients and
 * projects them on the task vectors — the gradient autograd through λ gives (FusionBench's
 * `backward` per task accumulates the same sum), without rebuilding θ inside every tape.
 *
 * @example
 * ```ts ignore
 * const fit = await fitAdaMerging({ model, taus, names, sets, settings });
 * ```
 */
export async function fitAdaMerging(job: AdaMergingJob): Promise<AdaMergingFit> {
  const { model, taus, names, sets, settings } = job;
  const T = taus.length, L = settings.layerWise ? names.length : 1;
  if (sets.length !== T || model.heads.length !== T) {
    throw new Error(
      `AdaMerging: ${T} task vectors, ${sets.length} input sets, ${model.heads.length} heads`,
    );
  }
  const base = modelTensors(model.base);
  const stacks = names.map((name) => taskStack(taus, name, base));
  const lambda = tf.variable(tf.fill([T, L], settings.init), true, "adamerging_lambda");
  const optimizer = new AdamW({ lambda }, { weightDecay: 0 });
  const losses: number[] = [];
  try {
    for (let step = 1; step <= settings.steps; step++) {
      const used = tf.tidy(() => settings.clamp ? tf.clipByValue(lambda, 0, 1) : lambda.clone());
      const params = mergedParams(base, stacks, names, used, settings.layerWise);
      used.dispose();
      const sums: tf.Tensor[] = names.map((n) => tf.zerosLike(params[n]));
      let loss = 0;
      try {
        for (let t = 0; t < T; t++) {
          const at = step + (job.stepOffset ?? 0);
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
        if (!Number.isFinite(loss)) {
          throw new Error(`AdaMerging: the entropy is ${loss} at step ${step}`);
        }
        losses.push(loss);
        const grad = lambdaGradient(stacks, sums, lambda, settings);
        optimizer.step({ lambda: grad }, settings.lr);
        grad.dispose();
      } finally {
        tf.dispose(sums);
        tf.dispose(names.map((n) => params[n]));
      }
      if (job.onStep) job.onStep(step, (await lambda.data()) as Float32Array, loss);
      job.progress?.({ phase: "AdaMerging", done: step, total: settings.steps });
    }
    const final = Float32Array.from((await lambda.data()) as Float32Array);
    const used = settings.clamp ? final.map((v) => Math.min(1, Math.max(0, v))) : final.slice();
    return { lambda: final, used, losses };
  } finally {
    optimizer.dispose();
    lambda.dispose();
    tf.dispose([...Object.values(base), ...stacks]);
  }
}

/** The T task vectors' values of tensor `name`, flattened and stacked: [T, size]. */
function taskStack(taus: readonly HostParams[], name: string, base: ParamMap): tf.Tensor2D {
  const b = base[name];
  const rows = taus.map((tau, t) => {
    const v = tau.get(name);
    if (!v || !b || v.data.length !== b.size) {
      throw new Error(
        `AdaMerging: task vector ${t} tensor "${name}" ` +
          (!b ? "is not a model parameter" : `has ${v?.data.length ?? 0} values, θ0 ${b.size}`),
      );
    }
    return v.data;
  });
  const flat = new Float32Array(taus.length * b.size);
  rows.forEach((r, t) => flat.set(r, t * b.size));
  return tf.tensor2d(flat, [taus.length, b.size]);
}

/**
 * θ(λ): θ0 + Σ_t λ_{t,ℓ(name)} τ_{t,name} for every tensor with task vectors (new tensors the
 * caller disposes), θ0's own tensors for the rest.
 */
function mergedParams(
  base: ParamMap,
  stacks: readonly tf.Tensor2D[],
  names: readonly string[],
  lambda: tf.Tensor,
  layerWise: boolean,
): ParamMap {
  return tf.tidy(() => {
    const out: ParamMap = { ...base };
    const T = lambda.shape[0];
    names.forEach((name, l) => {
      const w = (layerWise ? lambda.slice([0, l], [T, 1]) : lambda).reshape([1, T]);
      out[name] = base[name].add(tf.matMul(w, stacks[l]).reshape(base[name].shape));
    });
    return out;
  });
}

/**
 * ∂(Σ_t H_t)/∂λ from the summed gradients g_ℓ with respect to θ: ⟨g_ℓ, τ_{t,ℓ}⟩ per task and
 * tensor (layer-wise) or summed over tensors (task-wise); zero where clamping holds λ at a bound
 * (PyTorch's clamp passes the gradient only for 0 ≤ λ ≤ 1).
 */
function lambdaGradient(
  stacks: readonly tf.Tensor2D[],
  sums: readonly tf.Tensor[],
  lambda: tf.Tensor,
  settings: AdaMergingSettings,
): tf.Tensor {
  return tf.tidy(() => {
    const columns = stacks.map((s, l) => tf.matMul(s, sums[l].reshape([s.shape[1], 1])));
    const grad = settings.layerWise ? tf.concat(columns, 1) : tf.addN(columns);
    if (!settings.clamp) return grad;
    const inside = lambda.greaterEqual(0).logicalAnd(lambda.lessEqual(1));
    return grad.mul(inside.cast("float32"));
  });
}
