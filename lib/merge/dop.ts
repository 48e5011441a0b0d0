/**
 * DOP, "Continual Model Merging without Data: Dual Projections for Balancing Stability and
 * Plasticity" (NeurIPS 2025), data-free, as FusionBench's `ContinualDOPForCLIP`
 * (`fusion_bench/method/dop/dop.py`, configured by `config/method/dop/dop.yaml`) runs it.
 *
 * The tasks are merged one after another, in the order given: M_1 = τ_1, and for t = 2..T the
 * merge of the previous merged model with expert t, every tensor from its own two values:
 *
 * - **Linear weights** (the blocks' q/k/v/out projections, fc1, fc2 and the image projection:
 *   the `nn.Linear` modules of a CLIP vision tower) are optimised. With X_1 = M_{t−1} (the
 *   previous merged model's task vector) and X_2 = τ_t, each X_i = U_i·diag(s_i)·V_iᵀ keeps its
 *   first k_i singular triplets, k_i the number of i with Σ_{j≤i} s_j / Σ_j s_j < ε (ε = 0.99999:
 *   `torch.searchsorted` of ε in the cumulative sum of the singular values, not their squares).
 *   The loss of X_i at M is the dual projection of D_i = M − X_i onto X_i's subspaces,
 *
 *     L_i(M) = ‖diag(s_i)·U_iᵀ·D_i‖_F² + ‖D_i·V_i·diag(s_i)‖_F²   (`svd_proj_space: uv`),
 *
 *   and M starts at (X_1 + X_2)/2 and takes 200 Adam steps (lr 1e-4, β = (0.9, 0.999),
 *   ε_Adam = 1e-8) on w_1·L_1 + w_2·L_2. With `mgda` (the default) the weights come from the
 *   two-task min-norm (MGDA) solution of the loss-normalised gradients g_i = ∇L_i / L_i:
 *   γ = 0.999 when ⟨g_1,g_2⟩ ≥ ‖g_1‖², 0.001 when ⟨g_1,g_2⟩ ≥ ‖g_2‖², else
 *   (‖g_2‖² − ⟨g_1,g_2⟩)/‖g_1 − g_2‖², and with `ema` (the default) they are its exponential
 *   moving average from (α, 1 − α) = (0.8, 0.2): w ← β_ema·w + (1 − β_ema)·(γ, 1 − γ),
 *   β_ema = 0.999. Without `mgda`, w = (α, 1 − α) throughout.
 * - **The class embedding**, a parameter of a module that has children, is not visited by
 *   FusionBench's walk over the leaf modules: the merged model keeps θ0's value (M = 0).
 * - **Every other tensor** (biases, LayerNorms, the patch and position embeddings) is the
 *   average of the two: M_t = (M_{t−1} + τ_t)/2, so task t's weight in M_T is 2^{−(T−t+1)}
 *   (the first task's 2^{−(T−1)}).
 *
 * The merged model is θ0 + M_T (α = 1). Each tensor's whole sequence of merges needs only its
 * own T values, so the merge streams tensor by tensor.
 *
 * Implementation: the gradient is formed in closed form, ∇L_i = 2·U_i·diag(s_i²)·U_iᵀ·D_i +
 * 2·D_i·V_i·diag(s_i²)·V_iᵀ, from the same products that give L_i (four k_i-wide products per
 * task and step, OpenBLAS sgemm); the weighted gradient is w_1·∇L_1 + w_2·∇L_2 (what
 * FusionBench's second backward pass computes), and Adam is PyTorch's update order. Where
 * FusionBench divides 0 by 0 (a task vector or loss that is exactly zero, e.g. a tensor an
 * expert did not change) and returns NaN, the term's normalised gradient is taken as 0.
 *
 * @module
 */
import { matmul } from "../linalg/matmul.ts";
import { svd } from "../linalg/svd.ts";
import { PROJECTION_NAME } from "../models/config.ts";
import type { MergeMethod, Params, TensorMerger, Treatment } from "./method.ts";
import { numberParam, scalingParam, stringParam } from "./params.ts";
import { isBlockLinearWeight } from "./rules.ts";

/** DOP's settings (FusionBench's `dop.yaml` names in brackets). */
export interface DopSettings {
  /** Adam steps per layer and merge (`num_steps`). */
  iterations: number;
  /** Adam learning rate (`lr`). */
  lr: number;
  /** Weights from the min-norm (MGDA) solution (`mgda`); else fixed (α, 1 − α). */
  mgda: boolean;
  /** The weight of the previous merged model's loss (`alpha`): fixed, or the EMA's start. */
  alpha: number;
  /** Exponential moving average of the MGDA weights (`ema`). */
  ema: boolean;
  /** The EMA's decay (`ema_beta`). */
  emaBeta: number;
  /** The share of Σ s_j the kept singular values must stay below (`svd_epsilon`). */
  epsilon: number;
  /** Which projections the loss uses (`svd_proj_space`): U, V or both. */
  space: "uv" | "u" | "v";
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

/**
 * How many singular values DOP keeps: the number of leading i whose cumulative share
 * Σ_{j≤i} s_j / Σ_j s_j is below ε (0 for a zero matrix).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { dopRank } from "./dop.ts";
 * const s = new Float32Array([4, 3, 2, 1]); // shares 0.4, 0.7, 0.9, 1
 * equal(dopRank(s, 0.99999), 3); // the last value, which reaches 1, is dropped
 * equal(dopRank(s, 0.75), 2);
 * equal(dopRank(new Float32Array([2, 1, 1]), 0.5), 0); // a share equal to ε is not below it
 * equal(dopRank(new Float32Array(3), 0.9), 0);
 * ```
 */
export function dopRank(s: Float32Array, epsilon: number): number {
  let total = 0;
  for (const v of s) total += v;
  const sum = Math.fround(total);
  if (!(sum > 0)) return 0;
  let running = 0, k = 0;
  for (const v of s) {
    running += v;
    if (Math.fround(Math.fround(running) / sum) >= epsilon) break;
    k++;
  }
  return k;
}

/** One task's kept subspace: U_k (rows×k), s_k², V_kᵀ (k×cols). */
interface Projection {
  k: number;
  u: Float32Array;
  s2: Float32Array;
  vt: Float32Array;
}

function projection(x: Float32Array, rows: number, cols: number, epsilon: number): Projection {
  const f = svd(x, rows, cols);
  const k = dopRank(f.s, epsilon);
  const u = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) u[r * k + j] = f.u[r * f.k + j];
  }
  const s2 = new Float32Array(k);
  for (let j = 0; j < k; j++) s2[j] = f.s[j] * f.s[j];
  return { k, u, s2, vt: f.vt.slice(0, k * cols) };
}

/** L_i(M) and ∇L_i(M) for D = M − X_i. */
function lossAndGradient(
  m: Float32Array,
  x: Float32Array,
  p: Projection,
  rows: number,
  cols: number,
  space: DopSettings["space"],
): { loss: number; grad: Float32Array } {
  const grad = new Float32Array(m.length);
  if (p.k === 0) return { loss: 0, grad };
  const d = new Float32Array(m.length);
  for (let i = 0; i < d.length; i++) d[i] = m[i] - x[i];
  const { k, u, s2, vt } = p;
  let loss = 0;
  if (space !== "v") {
    const ud = matmul(u, d, k, rows, cols, { transA: true }); // Uᵀ·D, k×cols
    for (let j = 0; j < k; j++) {
      for (let c = j * cols; c < (j + 1) * cols; c++) {
        loss += s2[j] * ud[c] * ud[c];
        ud[c] *= s2[j];
      }
    }
    const g = matmul(u, ud, rows, k, cols); // U·diag(s²)·Uᵀ·D
    for (let i = 0; i < grad.length; i++) grad[i] += 2 * g[i];
  }
  if (space !== "u") {
    const dv = matmul(d, vt, rows, cols, k, { transB: true }); // D·V, rows×k
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < k; j++) {
        const c = r * k + j;
        loss += s2[j] * dv[c] * dv[c];
        dv[c] *= s2[j];
      }
    }
    const g = matmul(dv, vt, rows, k, cols); // D·V·diag(s²)·Vᵀ
    for (let i = 0; i < grad.length; i++) grad[i] += 2 * g[i];
  }
  return { loss, grad };
}

/** The two-task min-norm weight γ of g_1 (Sener & Koltun's analytic 2-D case, clamped). */
function minNormGamma(g1: Float32Array, l1: number, g2: Float32Array, l2: number): number {
  // g_i / L_i, with 0/0 taken as 0 (see the module doc)
  const a = l1 > 0 ? 1 / l1 : 0, b = l2 > 0 ? 1 / l2 : 0;
  let v11 = 0, v12 = 0, v22 = 0;
  for (let i = 0; i < g1.length; i++) {
    const x = Math.fround(g1[i] * a), y = Math.fround(g2[i] * b);
    v11 += x * x;
    v12 += x * y;
    v22 += y * y;
  }
  if (v12 >= v11) return 0.999;
  if (v12 >= v22) return 0.001;
  return (v22 - v12) / (v11 + v22 - 2 * v12);
}

/**
 * One DOP merge of a matrix: the previous merged task vector `previous` (X_1) with the new
 * expert's `next` (X_2), both rows×cols; returns M after `iterations` Adam steps from
 * (X_1 + X_2)/2.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { dopMergeMatrix } from "./dop.ts";
 * const settings = { iterations: 50, lr: 1e-4, mgda: false, alpha: 0.8, ema: true,
 *   emaBeta: 0.999, epsilon: 0.99999, space: "uv" as const };
 * // a rank-1 matrix keeps no singular value (its one value has share 1 ≥ ε): no loss, M stays
 * // at the average
 * const m = dopMergeMatrix(new Float32Array([1, 0, 0, 0]), new Float32Array([0, 0, 0, 1]), 2, 2, settings);
 * ok([0.5, 0, 0, 0.5].every((v, i) => m[i] === v));
 * // diag(2, 1) keeps its first direction, diag(1, 2) its second: from the average diag(1.5, 1.5)
 * // each entry moves towards its expert's 2 by lr per step (Adam on a constant-sign gradient;
 * // float32 rounding of 1.5 + 1e-4 costs a few 1e-7)
 * const n = dopMergeMatrix(new Float32Array([2, 0, 0, 1]), new Float32Array([1, 0, 0, 2]), 2, 2, settings);
 * ok(Math.abs(n[0] - 1.505) < 1e-5 && Math.abs(n[3] - 1.505) < 1e-5 && n[1] === 0 && n[2] === 0);
 * ```
 */
export function dopMergeMatrix(
  previous: Float32Array,
  next: Float32Array,
  rows: number,
  cols: number,
  settings: DopSettings,
): Float32Array {
  const p1 = projection(previous, rows, cols, settings.epsilon);
  const p2 = projection(next, rows, cols, settings.epsilon);
  const m = new Float32Array(previous.length);
  for (let i = 0; i < m.length; i++) m[i] = Math.fround(previous[i] + next[i]) / 2;
  const first = new Float32Array(m.length);
  const second = new Float32Array(m.length);
  let w1 = settings.alpha, w2 = 1 - settings.alpha;
  for (let step = 1; step <= settings.iterations; step++) {
    const a = lossAndGradient(m, previous, p1, rows, cols, settings.space);
    const b = lossAndGradient(m, next, p2, rows, cols, settings.space);
    if (settings.mgda) {
      const gamma = minNormGamma(a.grad, a.loss, b.grad, b.loss);
      if (settings.ema) {
        w1 = settings.emaBeta * w1 + (1 - settings.emaBeta) * gamma;
        w2 = settings.emaBeta * w2 + (1 - settings.emaBeta) * (1 - gamma);
      } else {
        w1 = gamma;
        w2 = 1 - gamma;
      }
    }
    const stepSize = settings.lr / (1 - BETA1 ** step);
    const correction2 = Math.sqrt(1 - BETA2 ** step);
    for (let i = 0; i < m.length; i++) {
      const g = Math.fround(w1 * a.grad[i] + w2 * b.grad[i]);
      first[i] = first[i] * BETA1 + (1 - BETA1) * g;
      second[i] = second[i] * BETA2 + (1 - BETA2) * g * g;
      const denom = Math.fround(Math.fround(Math.sqrt(second[i]) / correction2) + EPS);
      m[i] -= stepSize * (first[i] / denom);
    }
  }
  return m;
}

/**
 * DOP's treatment of a tensor: the linear weights are optimised (`matrix`), the class embedding
 * stays at θ0 (`pretrained`), every other tensor is averaged pairwise in task order
 * (`elementwise`). Linear weights are the blocks' (either naming scheme) and the image
 * projection (`visual_projection.weight`, open_clip's `visual.proj`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { dopTreatment } from "./dop.ts";
 * equal(dopTreatment("vision_model.encoder.layers.0.mlp.fc1.weight", [64, 32]), "matrix");
 * equal(dopTreatment("visual_projection.weight", [16, 32]), "matrix");
 * equal(dopTreatment("vision_model.embeddings.class_embedding", [32]), "pretrained");
 * equal(dopTreatment("vision_model.embeddings.position_embedding.weight", [17, 32]), "elementwise");
 * ```
 */
export function dopTreatment(name: string, shape: readonly number[]): Treatment {
  if (shape.length === 2 && (isBlockLinearWeight(name, shape) || isProjection(name))) {
    return "matrix";
  }
  if (name === "class_embedding" || name.endsWith(".class_embedding")) return "pretrained";
  return "elementwise";
}

function isProjection(name: string): boolean {
  return name === PROJECTION_NAME || name === "visual.proj" || name.endsWith(".visual.proj");
}

/**
 * The settings a validated parameter set gives.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { dop, dopSettings } from "./dop.ts";
 * import { resolveParams } from "./params.ts";
 * const s = dopSettings(resolveParams(dop));
 * equal(s.iterations, 200);
 * equal(s.epsilon, 0.99999);
 * ```
 */
export function dopSettings(params: Params): DopSettings {
  return {
    iterations: numberParam(params, "iterations"),
    lr: numberParam(params, "lr"),
    mgda: params.mgda === true,
    alpha: numberParam(params, "alpha"),
    ema: params.ema === true,
    emaBeta: numberParam(params, "ema_beta"),
    epsilon: numberParam(params, "svd_epsilon"),
    space: stringParam(params, "svd_proj_space") as DopSettings["space"],
  };
}

function dopMerger(params: Params): TensorMerger {
  const settings = dopSettings(params);
  return {
    tensor: (name, shape, taus) => {
      const treatment = dopTreatment(name, shape);
      if (treatment === "pretrained") return new Float32Array(taus[0].length);
      let m: Float32Array = taus[0].slice();
      for (let t = 1; t < taus.length; t++) {
        if (treatment === "matrix") {
          m = dopMergeMatrix(m, taus[t], shape[0], shape[1], settings);
        } else {
          for (let i = 0; i < m.length; i++) m[i] = Math.fround(m[i] + taus[t][i]) / 2;
        }
      }
      return m;
    },
  };
}

const DOP_YAML = "tanganke/fusion_bench@54c9e8c config/method/dop/dop.yaml";

/**
 * The DOP method (FusionBench's `dop.yaml`: 200 Adam steps at lr 1e-4 per layer and merge,
 * MGDA weights with an EMA (β 0.999) from α = 0.8, ε = 0.99999, both projections).
 *
 * @example
 * ```ts
 * import { deepEqual, ok } from "node:assert/strict";
 * import { dop } from "./dop.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const w = "vision_model.encoder.layers.0.mlp.fc1.weight", b = "vision_model.encoder.layers.0.mlp.fc1.bias";
 * const tau = (v: number[], bias: number) => new MemorySource("τ", {
 *   [w]: { shape: [2, 2], data: new Float32Array(v) },
 *   [b]: { shape: [2], data: new Float32Array([bias, bias]) },
 * });
 * const m = await merge(dop, [tau([1, 0.5, 0, 0], 1), tau([0, 0.5, 0, 1], 2), tau([1, 0, 0, 1], 4)], {
 *   params: { iterations: 20 },
 * });
 * deepEqual(m.get(b).data, new Float32Array([2.75, 2.75])); // ((1 + 2)/2 + 4)/2
 * const weight = m.get(w).data; // near the pairwise averages, moved by at most 2 × 20 × 1e-4
 * ok([0.75, 0.25, 0, 0.75].every((v, i) => Math.abs(weight[i] - v) <= 4e-3));
 * ```
 */
export const dop: MergeMethod = {
  name: "dop",
  title: "DOP (dual projections, continual data-free merging)",
  paper: "Continual Model Merging without Data: Dual Projections for Balancing Stability and " +
    "Plasticity, NeurIPS 2025",
  code: "tanganke/fusion_bench fusion_bench/method/dop/dop.py (ContinualDOPForCLIP)",
  summary: "Tasks merged one after another: each linear weight M minimises the previous merged " +
    "model's and the new expert's dual projection losses ‖diag(s)Uᵀ(M − X)‖² + ‖(M − X)V diag(s)‖² " +
    "by 200 Adam steps from their average, weighted by an EMA of the MGDA min-norm solution; " +
    "other tensors averaged pairwise.",
  tensorRule: "linear weights (blocks' q/k/v/out_proj, fc1, fc2 or open_clip in_proj, " +
    "out_proj, c_fc, c_proj; the image projection): optimised per merge; the class embedding " +
    "stays at θ0 (FusionBench visits leaf modules only); every other tensor: the pairwise " +
    "average in task order, M_t = (M_{t−1} + τ_t)/2",
  usesLinalg: true,
  taskCount: { min: 2 },
  notInDefaultStudy: "an optimisation per linear weight and merge (200 Adam steps × (T − 1) " +
    "merges, hours for a ViT-B/32 on a CPU) whose result depends on the task order; run it " +
    "with --methods dop",
  fusionBench: {
    params: {},
    note: "dop.yaml shuffles the task order with a time-based seed (shuffle_order: true, " +
      "seed: null), so its runs are not reproducible; here the tasks are merged in the order " +
      "given (list them in another order to change it). Zero task vectors or losses give 0 " +
      "where FusionBench gives NaN. Linear weights are found by role in both naming schemes " +
      "(FusionBench: nn.Linear modules of a HF model)",
  },
  params: [
    {
      name: "iterations",
      type: "integer",
      default: 200,
      min: 0,
      source: `${DOP_YAML} (num_steps: 200)`,
      meaning: "Adam steps per linear weight and merge",
    },
    {
      name: "lr",
      type: "number",
      default: 1e-4,
      min: 0,
      minExclusive: true,
      source: `${DOP_YAML} (lr: 1e-4)`,
      meaning: "Adam learning rate",
    },
    {
      name: "mgda",
      type: "boolean",
      default: true,
      source: `${DOP_YAML} (mgda: true)`,
      meaning: "weight the two losses by the min-norm (MGDA) solution; false: fixed (α, 1 − α)",
    },
    {
      name: "alpha",
      type: "number",
      default: 0.8,
      min: 0,
      max: 1,
      source: `${DOP_YAML} (alpha: 0.8)`,
      meaning: "weight of the previous merged model's loss: fixed, or where the EMA starts",
    },
    {
      name: "ema",
      type: "boolean",
      default: true,
      source: `${DOP_YAML} (ema: true)`,
      meaning: "with mgda, use an exponential moving average of the MGDA weights",
    },
    {
      name: "ema_beta",
      type: "number",
      default: 0.999,
      min: 0,
      max: 1,
      source: `${DOP_YAML} (ema_beta: 0.999)`,
      meaning: "decay of the EMA of the weights",
    },
    {
      name: "svd_epsilon",
      type: "number",
      default: 0.99999,
      min: 0,
      max: 1,
      source: `${DOP_YAML} (svd_epsilon: 0.99999)`,
      meaning: "keep the singular values whose cumulative share of Σ s is below this",
    },
    {
      name: "svd_proj_space",
      type: "choice",
      default: "uv",
      choices: ["uv", "u", "v"],
      source: `${DOP_YAML} (svd_proj_space: uv)`,
      meaning: "the loss projects onto the left (u), right (v) or both (uv) singular subspaces",
    },
    scalingParam(1, "fixed: FusionBench's DOP returns the merged model itself"),
  ],
  treatment: (name, shape) => dopTreatment(name, shape),
  prepare: ({ params }) => Promise.resolve(dopMerger(params)),
};
