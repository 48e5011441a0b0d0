/**
 * AdamW (Loshchilov & Hutter): Adam's update with weight decay decoupled from the gradient,
 * on a map of tf.Variables. tfjs has no AdamW, so the update is written out here, in PyTorch's
 * order: `w ← w − lr·wd·w`, then `w ← w − lr · m̂ / (√v̂ + ε)` with bias-corrected moments.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Tensor, Variable } from "../engine/tf_types.ts";
import { FUSED, fusedAdamW, fusedAdamWAt, fusedAvailable } from "../engine/fused.ts";
import type { AdamWConstants } from "../engine/fused_math.ts";

/** AdamW's state, in host memory: step count and both moments by variable name. */
export interface AdamWState {
  /** Steps taken. */
  t: number;
  /** First moments. */
  m: Map<string, Float32Array>;
  /** Second moments. */
  v: Map<string, Float32Array>;
}

/** AdamW's settings (PyTorch's defaults except the weight decay, which callers choose). */
export interface AdamWOptions {
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.999). */
  beta2?: number;
  /** Denominator epsilon (default 1e-8). */
  epsilon?: number;
  /** Decoupled weight decay coefficient (default 0.01, PyTorch's). */
  weightDecay?: number;
  /** Which parameters are decayed, by name (default: all, as PyTorch's AdamW does). */
  decays?: (name: string) => boolean;
}

/**
 * An AdamW optimiser over named variables. Call {@linkcode AdamW.step} with gradients keyed
 * by the same names; dispose it when done (it holds two moment tensors per variable).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import * as tf from "@tensorflow/tfjs";
 * import { AdamW } from "./adamw.ts";
 * const w = tf.variable(tf.tensor1d([1, -2]));
 * const opt = new AdamW({ w }, { weightDecay: 0.1 });
 * const grad = tf.tensor1d([0.5, 0.5]);
 * opt.step({ w: grad }, 1e-2);
 * // the first step moves each weight by lr·sign(g), and decays it by lr·λ·w
 * const [a, b] = w.dataSync();
 * ok(Math.abs(a - 0.989) < 1e-6 && Math.abs(b - -2.008) < 1e-6);
 * opt.dispose();
 * ```
 */
export class AdamW {
  readonly #m: Record<string, Variable> = {};
  readonly #v: Record<string, Variable> = {};
  #t = 0;
  /** First-moment decay. */
  readonly beta1: number;
  /** Second-moment decay. */
  readonly beta2: number;
  /** Denominator epsilon. */
  readonly epsilon: number;
  /** Decoupled weight decay coefficient. */
  readonly weightDecay: number;
  readonly #decays: (name: string) => boolean;

  /** Starts with zero moments for every variable of `vars`. */
  constructor(readonly vars: Readonly<Record<string, Variable>>, options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    this.#decays = options.decays ?? (() => true);
    for (const [name, v] of Object.entries(vars)) {
      const zeros = tf.zerosLike(v);
      this.#m[name] = tf.variable(zeros, false);
      this.#v[name] = tf.variable(zeros, false);
      zeros.dispose(); // each variable keeps its own reference
    }
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.#t;
  }

  /**
   * One update with learning rate `lr`. Variables without a gradient in `grads` (unused by
   * the loss) are skipped, as PyTorch skips parameters whose gradient is None; the gradients
   * are not disposed (the caller owns them).
   */
  step(grads: Readonly<Record<string, Tensor>>, lr: number): void {
    this.#t++;
    const t = this.#t;
    const c1 = 1 - this.beta1 ** t;
    const c2 = 1 - this.beta2 ** t;
    for (const [name, w] of Object.entries(this.vars)) {
      const g = grads[name];
      if (!g) continue; // like PyTorch, a parameter without a gradient is left alone
      const constants = this.#constants(name, lr, c1, c2);
      // One kernel instead of the 15 ops below, where the backend has it (same float32 values).
      if (fusedAdamW(w, this.#m[name], this.#v[name], g, constants)) continue;
      // One scope per variable: a dozen temporaries of one tensor's size, not of the model's
      // (a ViT-B/32 would need ~5 GB more, past the wasm backend's 4 GB heap).
      tf.tidy(() => {
        const m = this.#m[name], v = this.#v[name];
        m.assign(m.mul(this.beta1).add(g.mul(1 - this.beta1)));
        v.assign(v.mul(this.beta2).add(g.square().mul(1 - this.beta2)));
        const decayed = this.weightDecay > 0 && this.#decays(name)
          ? w.mul(1 - lr * this.weightDecay)
          : w;
        const update = m.div(c1).div(v.div(c2).sqrt().add(this.epsilon)).mul(lr);
        w.assign(decayed.sub(update));
      });
    }
  }

  /**
   * One update from gradients packed in one flat tensor (`packed.flat`, the gradient of
   * `names[i]`'s variable at `packed.offsets[i]`, present where `packed.reached[i]`), each
   * multiplied by `gradScale` first (a clipping factor). Where the fused kernels run this is one
   * SIMD pass per variable, in place; elsewhere the gradients are sliced out and {@linkcode
   * AdamW.step} runs. The flat tensor is not disposed.
   */
  stepPacked(
    packed: { flat: Tensor; offsets: readonly number[]; reached: readonly boolean[] },
    names: readonly string[],
    lr: number,
    gradScale = 1,
  ): void {
    if (!fusedAvailable(FUSED.adamW)) {
      const grads: Record<string, Tensor> = {};
      names.forEach((name, i) => {
        if (!packed.reached[i]) return;
        const w = this.vars[name];
        grads[name] = tf.tidy(() =>
          packed.flat.slice(packed.offsets[i], w.size).reshape(w.shape).mul(gradScale)
        );
      });
      this.step(grads, lr);
      tf.dispose(Object.values(grads));
      return;
    }
    this.#t++;
    const c1 = 1 - this.beta1 ** this.#t, c2 = 1 - this.beta2 ** this.#t;
    names.forEach((name, i) => {
      if (!packed.reached[i]) return; // no gradient: left alone, as in step()
      const c = this.#constants(name, lr, c1, c2);
      const w = this.vars[name];
      fusedAdamWAt(w, this.#m[name], this.#v[name], packed.flat, packed.offsets[i], c, gradScale);
    });
  }

  #constants(name: string, lr: number, c1: number, c2: number): AdamWConstants {
    const decay = this.weightDecay > 0 && this.#decays(name) ? 1 - lr * this.weightDecay : 1;
    return { beta1: this.beta1, beta2: this.beta2, lr, decay, c1, c2, epsilon: this.epsilon };
  }

  /** Copies the step count and the moments to host memory (for checkpoints). */
  async exportState(): Promise<AdamWState> {
    const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
    for (const name of Object.keys(this.vars)) {
      m.set(name, Float32Array.from(await this.#m[name].data() as Float32Array));
      v.set(name, Float32Array.from(await this.#v[name].data() as Float32Array));
    }
    return { t: this.#t, m, v };
  }

  /** Restores a state from {@linkcode AdamW.exportState} (same variables, same sizes). */
  importState(state: AdamWState): void {
    for (const [name, variable] of Object.entries(this.vars)) {
      const m = state.m.get(name), v = state.v.get(name);
      if (!m || !v || m.length !== variable.size || v.length !== variable.size) {
        throw new Error(`AdamW: the saved state has no moments of the right size for "${name}"`);
      }
      tf.tidy(() => {
        this.#m[name].assign(tf.tensor(m, variable.shape));
        this.#v[name].assign(tf.tensor(v, variable.shape));
      });
    }
    this.#t = state.t;
  }

  /** Frees the moment tensors (the variables being trained are left alone). */
  dispose(): void {
    for (const t of [...Object.values(this.#m), ...Object.values(this.#v)]) t.dispose();
  }
}
