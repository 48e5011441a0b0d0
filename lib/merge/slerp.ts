/**
 * SLERP, spherical linear interpolation between two models, tensor by tensor (Shoemake 1985;
 * the FusionBench and mergekit `slerp` merges). For vectors v0, v1 (flattened tensors) and
 * t ∈ [0, 1]: with the unit vectors v̂ = v/‖v‖ (left as they are when ‖v‖ ≤ ε) and
 * d = ⟨v̂0, v̂1⟩,
 * - |d| > the dot threshold (nearly collinear): the linear interpolation (1 − t)·v0 + t·v1;
 * - otherwise, with Ω = arccos d: sin((1 − t)Ω)/sin Ω · v0 + sin(tΩ)/sin Ω · v1.
 *
 * `space=weights` (FusionBench, mergekit) interpolates the models θ_1, θ_2 themselves, and
 * M = slerp(θ_1, θ_2) − θ0; `space=task_vectors` interpolates τ_1, τ_2. Exactly two task
 * vectors; θ = θ0 + α·M with α = 1.
 *
 * Fine-tuned models lie close to θ0, so in weight space most tensors' d exceeds 0.9995 and
 * SLERP is then the plain weighted average.
 *
 * @module
 */
import type { MergeMethod, Params, TensorMerger } from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";

/** SLERP's settings. */
export interface SlerpSettings {
  /** Interpolation factor: 0 gives v0, 1 gives v1. */
  t: number;
  /** Above this |cos| the vectors count as collinear and are interpolated linearly. */
  dotThreshold: number;
  /** Norms at or below it are not normalised. */
  epsilon: number;
}

/**
 * SLERP between two vectors (a fresh array; `v0` and `v1` are not modified).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { slerpVectors } from "./slerp.ts";
 * const r = slerpVectors(new Float32Array([1, 0]), new Float32Array([0, 1]), { t: 0.5, dotThreshold: 0.9995, epsilon: 1e-8 });
 * ok(r.every((v) => Math.abs(v - Math.SQRT1_2) < 1e-6)); // halfway along the quarter circle
 * ```
 */
export function slerpVectors(
  v0: Float32Array,
  v1: Float32Array,
  settings: SlerpSettings,
): Float32Array {
  const { t, dotThreshold, epsilon } = settings;
  const n0 = norm(v0), n1 = norm(v1);
  const s0 = n0 > epsilon ? 1 / n0 : 1, s1 = n1 > epsilon ? 1 / n1 : 1;
  let dot = 0;
  for (let i = 0; i < v0.length; i++) dot += v0[i] * s0 * (v1[i] * s1);
  let a: number, b: number;
  if (Math.abs(dot) > dotThreshold) {
    a = 1 - t;
    b = t;
  } else {
    const omega = Math.acos(dot);
    const sin = Math.sin(omega);
    a = Math.sin(omega - omega * t) / sin;
    b = Math.sin(omega * t) / sin;
  }
  const out = new Float32Array(v0.length);
  for (let i = 0; i < out.length; i++) out[i] = a * v0[i] + b * v1[i];
  return out;
}

function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

function slerpMerger(params: Params): TensorMerger {
  const settings: SlerpSettings = {
    t: numberParam(params, "t"),
    dotThreshold: numberParam(params, "dot_threshold"),
    epsilon: numberParam(params, "epsilon"),
  };
  const weights = stringParam(params, "space") === "weights";
  return {
    tensor: (name, _shape, taus, base) => {
      if (!weights) return slerpVectors(taus[0], taus[1], settings);
      if (!base) throw new Error(`slerp (space=weights): θ0's "${name}" was not given`);
      const theta = (tau: Float32Array) => tau.map((v, i) => base[i] + v);
      const merged = slerpVectors(theta(taus[0]), theta(taus[1]), settings);
      for (let i = 0; i < merged.length; i++) merged[i] -= base[i];
      return merged;
    },
  };
}

/**
 * The SLERP method (t = 0.5 between the two models, FusionBench's thresholds; α = 1).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { slerp } from "./slerp.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const w = (v: number[]) => new MemorySource("x", { w: { shape: [2], data: new Float32Array(v) } });
 * const baseModel = w([0, 0]); // θ0 = 0: the models θ_1, θ_2 equal their task vectors
 * const m = await merge(slerp, [w([1, 0]), w([0, 1])], { baseModel });
 * ok(m.get("w").data.every((v) => Math.abs(v - Math.SQRT1_2) < 1e-6));
 * ```
 */
export const slerp: MergeMethod = {
  name: "slerp",
  title: "SLERP (spherical linear interpolation of two models)",
  paper: "Shoemake, Animating rotation with quaternion curves, SIGGRAPH 1985; used for model " +
    "merging by mergekit (Goddard et al., EMNLP 2024 industry track)",
  code: "tanganke/fusion_bench fusion_bench/method/slerp/slerp_utils.py (slerp), slerp.py " +
    "(slerp_on_state_dicts); arcee-ai/mergekit slerp",
  summary: "Per tensor, spherical interpolation at t between the two models (linear when " +
    "they are nearly collinear).",
  tensorRule: "every tensor: its own angle",
  taskCount: { min: 2, max: 2 },
  needsBase: true,
  notInDefaultStudy: "merges exactly two models",
  params: [
    {
      name: "t",
      type: "number",
      default: 0.5,
      min: 0,
      max: 1,
      source: "tanganke/fusion_bench@54c9e8c config/method/slerp/slerp.yaml (t: 0.5)",
      meaning: "interpolation factor: 0 gives the first model, 1 the second",
    },
    {
      name: "dot_threshold",
      type: "number",
      default: 0.9995,
      min: 0,
      max: 1,
      source: "tanganke/fusion_bench@54c9e8c config/method/slerp/slerp.yaml (DOT_THRESHOLD)",
      meaning: "above this |cos| between the tensors, interpolate linearly",
    },
    {
      name: "epsilon",
      type: "number",
      default: 1e-8,
      min: 0,
      source: "tanganke/fusion_bench@54c9e8c config/method/slerp/slerp.yaml (epsilon)",
      meaning: "norms at or below it are not normalised",
    },
    {
      name: "space",
      type: "choice",
      default: "weights",
      choices: ["weights", "task_vectors"],
      source: "tanganke/fusion_bench@54c9e8c slerp.py and arcee-ai/mergekit interpolate the " +
        "models' weights",
      meaning: "interpolate the models θ_t (weights) or the task vectors τ_t",
    },
    scalingParam(1, "fixed: the interpolated model itself"),
  ],
  treatment: () => "elementwise",
  prepare: ({ params }) => Promise.resolve(slerpMerger(params)),
};
