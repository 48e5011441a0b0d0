/**
 * EMR-Merging, Elect, Mask & Rescale (Huang et al., NeurIPS 2024). Data-free, and one model per
 * task:
 * 1. Elect: γ = sign(Σ_t τ_t) per entry, zeros counted as negative (γ ∈ {−1, +1}); the unified
 *    task vector is τ_uni = γ ⊙ max_t |τ_t ⊙ m_t|, with the mask m_t = 1[τ_t ⊙ γ > 0].
 * 2. Mask: task t keeps the entries of τ_uni where its own sign agrees, m_t ⊙ τ_uni.
 * 3. Rescale: λ_t = Σ_n mean|τ_t,n| / Σ_n mean|m_t,n ⊙ τ_uni,n|, the sums over the model's
 *    tensors n (each tensor's mean absolute value, as the reference code adds them).
 * Task t's model is θ0 + α·λ_t·(m_t ⊙ τ_uni), α = 1, evaluated on task t (task identity is
 * known at test time; EMR's modulators are selected per task).
 *
 * @module
 */
import { forEachTensor } from "./stream.ts";
import type { MergeMethod, TensorMerger } from "./method.ts";
import { scalingParam } from "./params.ts";

/**
 * EMR's elected sign (zeros negative) and unified vector of one tensor.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { emrUnified } from "./emr.ts";
 * const { sign, unified } = emrUnified([new Float32Array([1, -2, 0]), new Float32Array([3, 1, 0])]);
 * deepStrictEqual(sign, new Int8Array([1, -1, -1])); // a zero sum counts as negative
 * deepStrictEqual([...unified], [3, -2, -0]);
 * ```
 */
export function emrUnified(
  taus: readonly Float32Array[],
): { sign: Int8Array; unified: Float32Array } {
  const n = taus[0].length;
  const sum = new Float32Array(n);
  for (const tau of taus) for (let i = 0; i < n; i++) sum[i] += tau[i];
  const sign = new Int8Array(n);
  const unified = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = sum[i] > 0 ? 1 : -1;
    let largest = 0;
    for (const tau of taus) {
      const v = tau[i];
      if (v * g > 0) largest = Math.max(largest, Math.abs(v));
    }
    sign[i] = g;
    unified[i] = g * largest;
  }
  return { sign, unified };
}

/** Σ_n mean|τ_t,n| and Σ_n mean|m_t,n ⊙ τ_uni,n| for every task, accumulated tensor by tensor. */
class EmrScales {
  readonly own: number[];
  readonly masked: number[];

  constructor(tasks: number) {
    this.own = Array.from({ length: tasks }, () => 0);
    this.masked = Array.from({ length: tasks }, () => 0);
  }

  add(taus: readonly Float32Array[]): void {
    const { sign, unified } = emrUnified(taus);
    const n = unified.length;
    if (n === 0) return;
    taus.forEach((tau, t) => {
      let own = 0, masked = 0;
      for (let i = 0; i < n; i++) {
        own += Math.abs(tau[i]);
        if (tau[i] * sign[i] > 0) masked += Math.abs(unified[i]);
      }
      this.own[t] += own / n;
      this.masked[t] += masked / n;
    });
  }

  /** λ_t = own / masked (a task whose mask is empty everywhere gets 0). */
  rescalers(): number[] {
    return this.own.map((o, t) => this.masked[t] > 0 ? o / this.masked[t] : 0);
  }
}

/** The EMR merger: per-task masked and rescaled τ_uni (one whole-model pass for the λ_t). */
class EmrMerger implements TensorMerger {
  constructor(readonly rescalers: readonly number[]) {}

  get notes(): Record<string, unknown> {
    return { emrRescalers: [...this.rescalers] };
  }

  tensor(): Float32Array {
    throw new Error("emr builds one model per task: read each task's model");
  }

  taskTensor(
    task: number,
    _name: string,
    _shape: readonly number[],
    taus: readonly Float32Array[],
  ) {
    const { sign, unified } = emrUnified(taus);
    const tau = taus[task];
    const lambda = Math.fround(this.rescalers[task]);
    const out = new Float32Array(unified.length);
    for (let i = 0; i < out.length; i++) {
      if (tau[i] * sign[i] > 0) out[i] = unified[i] * lambda;
    }
    return out;
  }
}

/**
 * The EMR-Merging method: one model per task, θ0 + λ_t·(m_t ⊙ τ_uni) (no hyperparameters).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { emr } from "./emr.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2], data: new Float32Array(v) } });
 * const m = await merge(emr, [tau([1, -2]), tau([3, 1])]);
 * // τ_uni = [3, −2]; λ_0 = mean(1, 2) / mean(3, 2) = 0.6, λ_1 = mean(3, 1) / mean(3, 0) = 4/3
 * const near = (x: Float32Array, y: number[]) => y.every((v, i) => Math.abs(x[i] - v) < 1e-6);
 * ok(near(m.perTask![0].get("w").data, [1.8, -1.2]) && near(m.perTask![1].get("w").data, [4, 0]));
 * ```
 */
export const emr: MergeMethod = {
  name: "emr",
  title: "EMR-Merging (Elect, Mask & Rescale)",
  paper: "Huang et al., EMR-Merging: Tuning-Free High-Performance Model Merging, NeurIPS 2024",
  code: "harveyhuang18/EMR_Merging; tanganke/fusion_bench fusion_bench/method/emr_merging/" +
    "utils.py (emr_merge)",
  summary: "Elect τ_uni = sign(Σ τ_t) ⊙ max |agreeing τ_t|; task t's model adds λ_t·(m_t ⊙ " +
    "τ_uni), m_t = where τ_t agrees with the elected sign, λ_t matching mean |τ_t|.",
  tensorRule: "every tensor: elementwise (the rescalers sum each tensor's mean |τ| over the " +
    "model)",
  output: "per-task",
  params: [
    scalingParam(
      1,
      "fixed: EMR has no scaling (tanganke/fusion_bench@54c9e8c " +
        "config/method/emr_merging/emr_merging.yaml has no hyperparameters)",
    ),
  ],
  treatment: () => "elementwise",
  prepare: async ({ tasks, progress }) => {
    const scales = new EmrScales(tasks.length);
    await forEachTensor(tasks, "EMR rescalers", (_n, _s, taus) => scales.add(taus), progress);
    return new EmrMerger(scales.rescalers());
  },
};
