/**
 * Singular Value Calibration, SVC ("When Shared Knowledge Hurts: Spectral Over-Accumulation in
 * Model Merging", arXiv 2602.05536; FusionBench `SingularValueCalibration`): a data-free
 * correction applied after a base merge. For every 2-D tensor, with the base merge's
 * ΔM = α_base·M_base = U diag(σ) Vᵀ (thin SVD, rank R = min(m, n)) and the task matrices Δ_i:
 *
 *   a_r = u_rᵀ ΔM,  a_r^i = u_rᵀ Δ_i              (responses along the shared directions)
 *   s_r^i = ⟨a_r, a_r^i⟩ / max(‖a_r^i‖², 1e-12)    (how much the merge over-counts task i)
 *   γ_r = T / Σ_i max(α_svc, s_r^i),  σ'_r = γ_r σ_r,  M = U diag(σ') Vᵀ.
 *
 * Other tensors keep the base merge's values; the final model is θ0 + α·M with α = 1. Each
 * registered `svc_<base>` runs SVC after one base method with FusionBench's configuration for
 * it (its config file per base).
 *
 * FusionBench also configures SVC after Iso-C and Iso-CTS. Both give every matrix one repeated
 * singular value (that is what "isotropic" means), so its singular vectors are any orthonormal
 * basis of the span and u_r, s_r^i and γ_r depend on the SVD routine's arbitrary choice: the
 * calibrated result is not determined by the task vectors. They are not registered.
 *
 * @module
 */
import { matmul } from "../linalg/matmul.ts";
import { svd } from "../linalg/svd.ts";
import { scaleInPlace } from "./elementwise.ts";
import { scaleColumns } from "./matrix.ts";
import type { MergeMethod, Params, ParamSpec, ParamValue, TensorMerger } from "./method.ts";
import { numberParam, scalingParam } from "./params.ts";
import { average } from "./average.ts";
import { dareTaskArithmetic } from "./dare.ts";
import { taskArithmetic } from "./task_arithmetic.ts";
import { ties } from "./ties.ts";
import { tsvM } from "./tsv_m.ts";
import { wudi } from "./wudi.ts";

/**
 * SVC's calibration of one merged matrix `merged` (rows×cols, the base merge's α_base·M_base)
 * against the task matrices; returns a fresh array.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { svcCalibrate } from "./svc.ts";
 * // two identical tasks summed: the merge counts their shared direction twice, SVC halves it
 * const tau = new Float32Array([1, 0, 0, 0]);
 * const x = svcCalibrate(new Float32Array([2, 0, 0, 0]), [tau, tau], 2, 2, 0.1);
 * ok([1, 0, 0, 0].every((v, i) => Math.abs(x[i] - v) < 1e-6));
 * ```
 */
export function svcCalibrate(
  merged: Float32Array,
  taus: readonly Float32Array[],
  rows: number,
  cols: number,
  alpha: number,
): Float32Array {
  const { u, s, vt, k } = svd(merged, rows, cols);
  // responses along u_r: Uᵀ·X (k×cols) for the merge and every task
  const response = (x: Float32Array) => matmul(u, x, k, rows, cols, { transA: true });
  const merge = response(merged);
  const totals = new Float64Array(k);
  for (const tau of taus) {
    const a = response(tau);
    for (let r = 0; r < k; r++) {
      let dot = 0, norm = 0;
      for (let j = 0; j < cols; j++) {
        const v = a[r * cols + j];
        dot += merge[r * cols + j] * v;
        norm += v * v;
      }
      totals[r] += Math.max(alpha, dot / Math.max(norm, 1e-12));
    }
  }
  const calibrated = new Float32Array(k);
  for (let r = 0; r < k; r++) calibrated[r] = s[r] * (taus.length / totals[r]);
  return matmul(scaleColumns(u, rows, k, calibrated), vt, rows, k, cols);
}

/** FusionBench's SVC configuration for one base method. */
interface SvcConfig {
  /** The base method. */
  base: MergeMethod;
  /** α_base: the base merge's scaling. */
  baseScaling: number;
  /** α_svc. */
  alpha: number;
  /** FusionBench's config file (under config/method/singular_value_calibration/). */
  file: string;
  /** Base parameters whose defaults FusionBench's config sets differently from ours. */
  baseDefaults?: Record<string, ParamValue>;
}

function svcMerger(params: Params, base: TensorMerger): TensorMerger {
  const baseScaling = numberParam(params, "base_scaling");
  const alpha = numberParam(params, "alpha");
  return {
    notes: base.notes,
    tensor: async (name, shape, taus, theta0) => {
      // Copies for the base: DARE drops in the arrays it is given, and SVC needs the originals.
      const copies = taus.map((t) => t.slice());
      const merged = scaleInPlace(await base.tensor(name, shape, copies, theta0), baseScaling);
      return shape.length === 2 ? svcCalibrate(merged, taus, shape[0], shape[1], alpha) : merged;
    },
  };
}

/** The parameters the base method receives: its own ones, with α = α_base. */
function baseParams(config: SvcConfig, params: Params): Params {
  const out: Record<string, ParamValue> = {};
  for (const p of config.base.params) out[p.name] = params[p.name] ?? p.default;
  out.scaling = 1;
  return out;
}

function svcMethod(config: SvcConfig): MergeMethod {
  const { base, file } = config;
  const source = `tanganke/fusion_bench@54c9e8c config/method/singular_value_calibration/${file}`;
  const inherited: ParamSpec[] = base.params.filter((p) => p.name !== "scaling").map((p) => {
    const value = config.baseDefaults?.[p.name];
    return value === undefined
      ? p
      : { ...p, default: value, source: `${source} (base_method ${p.name}: ${value})` };
  });
  return {
    name: `svc_${base.name}`,
    title: `SVC after ${base.title}`,
    paper: "When Shared Knowledge Hurts: Spectral Over-Accumulation in Model Merging, arXiv " +
      `2602.05536 (SVC), after ${base.paper}`,
    code: "tanganke/fusion_bench fusion_bench/method/singular_value_calibration/utils.py " +
      "(subspace_consistency_spectral_calibration_accelerated), svc.py, generic.py; base: " +
      base.code,
    summary: `${base.title} at α_base, then every 2-D tensor's singular values σ_r scaled by ` +
      "γ_r = T / Σ_i max(α_svc, s_r^i), s_r^i the merge's over-count of task i along u_r.",
    tensorRule: `every 2-D tensor: calibrated after the base merge; otherwise as ${base.name}: ` +
      base.tensorRule,
    usesLinalg: true,
    notInDefaultStudy: base.name === "task_arithmetic"
      ? undefined
      : "svc_task_arithmetic stands for the SVC family in the default set (it keeps the " +
        "study within its budget; each variant is its base merge plus one calibration)",
    params: [
      ...inherited,
      {
        name: "base_scaling",
        type: "number",
        default: config.baseScaling,
        min: 0,
        source: `${source} (base_method scaling: ${config.baseScaling})`,
        meaning: `α_base: the ${base.name} merge that SVC calibrates is α_base·M_${base.name}`,
      },
      {
        name: "alpha",
        type: "number",
        default: config.alpha,
        min: 0,
        source: `${source} (alpha: ${config.alpha})`,
        meaning: "α_svc: projection coefficients below it count as α_svc (calibration strength)",
      },
      scalingParam(1, "fixed: SVC returns the calibrated model itself"),
    ],
    treatment: (name, shape, params) =>
      shape.length === 2 ? "matrix" : base.treatment(name, shape, baseParams(config, params)),
    prepare: async (context) => {
      const merger = await base.prepare({ ...context, params: baseParams(config, context.params) });
      return svcMerger(context.params, merger);
    },
  };
}

/**
 * FusionBench's SVC configurations, one registered `svc_<base>` method each, in registry order
 * (FusionBench's other base settings: TIES k = 20 with dis-sum, DARE p = 0.5; WUDI 400 Adam
 * steps on every 2-D tensor, which differ from our WUDI defaults).
 */
const SVC_CONFIGS: readonly SvcConfig[] = [
  { base: taskArithmetic, baseScaling: 0.3, alpha: 0.1, file: "task_arithmetic.yaml" },
  { base: ties, baseScaling: 0.3, alpha: 0.1, file: "ties_merging.yaml" },
  { base: dareTaskArithmetic, baseScaling: 0.3, alpha: 0.1, file: "dare_task_arithmetic.yaml" },
  { base: average, baseScaling: 1, alpha: 0.1, file: "simple_average.yaml" },
  { base: tsvM, baseScaling: 1, alpha: 1, file: "task_singular_vector.yaml" },
  {
    base: wudi,
    baseScaling: 1,
    alpha: 1,
    file: "wudi.yaml",
    baseDefaults: { iterations: 400, tensors: "all2d" },
  },
];

/**
 * SVC after each of its base methods (Task Arithmetic, TIES, DARE + TA, weight averaging,
 * TSV-M, WUDI) with FusionBench's configuration for it, in that order.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { svcMethods } from "./svc.ts";
 * deepStrictEqual(svcMethods.map((m) => m.name), [
 *   "svc_task_arithmetic", "svc_ties", "svc_dare_ta", "svc_average", "svc_tsv_m", "svc_wudi",
 * ]);
 * ```
 */
export const svcMethods: readonly MergeMethod[] = SVC_CONFIGS.map(svcMethod);
