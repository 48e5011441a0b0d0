/**
 * Iso-CTS, isotropic merging with common and task-specific subspaces (Marczak et al., ICML
 * 2025; docs/METHODS.md, `iso_cts`), per matrix with common fraction f:
 * 1. budgets ({@linkcode isoCtsBudget}): k_c = ⌊f·r⌋, s = round((r − k_c)/T)·T with Python's
 *    round (half to even), then k_c = r − s and k_t = s/T;
 * 2. the top k_c singular components of S = Σ_t Δ_t are the common subspace (U_c, σ_c, V_c);
 * 3. per task, Δ_t − U_c U_cᵀ Δ_t (the common left subspace removed), its top k_t components;
 * 4. U_all = [U'_1 … U'_T | U_c], V_all likewise, both replaced by their polar factors;
 * 5. M = mean(σ_all) · U_all V_allᵀ (one mean over the common and task-specific values).
 * Other tensors are averaged; α scales everything. `svd=fast` (the default) computes only what
 * these steps keep (see `isoCtsFast` below); `svd=exact` takes every SVD in full, as the
 * reference code.
 *
 * @module
 */
import { matmul } from "../linalg/matmul.ts";
import { polarFactor, svd } from "../linalg/svd.ts";
import { gramSvd, polarFactorGram, projectedTopSvd, topSvd } from "../linalg/gram_svd.ts";
import { polarFactorBordered } from "../linalg/polar.ts";
import { scaleInPlace, sumOf } from "./elementwise.ts";
import { copyColumns, copyRows, meanValue } from "./matrix.ts";
import type { MergeMethod } from "./method.ts";
import { numberParam, scalingParam } from "./params.ts";
import {
  SPECTRAL_FUSION_BENCH,
  SPECTRAL_RULE,
  spectralMerger,
  spectralTreatment,
  SVD_PARAM,
  type SvdSolver,
  svdSolver,
  TEXT_PROJECTION_PARAM,
} from "./spectral.ts";
import { ISO_ALPHA_GRID } from "./iso_c.ts";

/**
 * Python's `round` of a double: to the nearest integer, halves to the even neighbour.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { roundHalfEven } from "./iso_cts.ts";
 * deepEqual([0.5, 1.5, 2.5, 2.6].map(roundHalfEven), [0, 2, 2, 3]);
 * ```
 */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * Iso-CTS's subspace budget for a matrix of rank r = min(m, n), T tasks and common fraction f:
 * the common size k_c and the per-task size k_t, with T·k_t + k_c = r (k_t is capped at ⌊r/T⌋,
 * which only matters for fractions far below the published 0.8).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { isoCtsBudget } from "./iso_cts.ts";
 * deepEqual(isoCtsBudget(768, 8, 0.8), { common: 616, perTask: 19 }); // round(768·0.2/8) = 19
 * deepEqual(isoCtsBudget(50, 20, 0.8), { common: 50, perTask: 0 }); // round(0.5) = 0
 * ```
 */
export function isoCtsBudget(
  rank: number,
  tasks: number,
  fraction: number,
): { common: number; perTask: number } {
  const common0 = Math.trunc(rank * fraction);
  // Rounding up can ask for more task-specific directions than the rank has when f is small
  // (the original would then slice with a negative index); cap at ⌊r/T⌋ per task.
  const perTask = Math.min(roundHalfEven((rank - common0) / tasks), Math.floor(rank / tasks));
  return { common: rank - perTask * tasks, perTask };
}

/**
 * The Iso-CTS merge of one matrix from its T task matrices, with common fraction `fraction`.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { isoCtsMergeMatrix } from "./iso_cts.ts";
 * const a = new Float32Array([3, 0, 0, 0]), b = new Float32Array([0, 0, 0, 1]);
 * const near = (x: ArrayLike<number>, y: number[]) => y.every((v, i) => Math.abs(x[i] - v) < 1e-5);
 * ok(near(isoCtsMergeMatrix([a, b], 2, 2, 0.5), [2, 0, 0, 2]));
 * ```
 */
export function isoCtsMergeMatrix(
  taus: readonly Float32Array[],
  rows: number,
  cols: number,
  fraction: number,
  solver: SvdSolver = "fast",
): Float32Array {
  if (solver === "fast") {
    const merged = isoCtsFast(taus, rows, cols, fraction);
    if (merged) return merged;
  }
  const r = Math.min(rows, cols);
  const T = taus.length;
  const { common, perTask } = isoCtsBudget(r, T, fraction);
  const total = svd(sumOf(taus), rows, cols);
  const uAll = { data: new Float32Array(rows * r), rows, cols: r };
  const vtAll = { data: new Float32Array(r * cols), rows: r, cols };
  const sigma = new Float32Array(r);
  const uc = { data: new Float32Array(rows * common), rows, cols: common };
  copyColumns({ data: total.u, rows, cols: total.k }, 0, uc, 0, common);
  if (perTask > 0) {
    taus.forEach((tau, t) => {
      const f = svd(withoutCommonSpace(tau, uc.data, rows, common, cols), rows, cols);
      copyColumns({ data: f.u, rows, cols: f.k }, 0, uAll, t * perTask, perTask);
      copyRows({ data: f.vt, rows: f.k, cols }, 0, vtAll, t * perTask, perTask);
      sigma.set(f.s.subarray(0, perTask), t * perTask);
    });
  }
  const at = T * perTask;
  copyColumns(uc, 0, uAll, at, common);
  copyRows({ data: total.vt, rows: total.k, cols }, 0, vtAll, at, common);
  sigma.set(total.s.subarray(0, common), at);
  const merged = matmul(
    polarFactor(uAll.data, rows, r),
    polarFactor(vtAll.data, r, cols),
    rows,
    r,
    cols,
  );
  return scaleInPlace(merged, meanValue(sigma));
}

/**
 * Iso-CTS computing only what it keeps, or undefined where the sum's common singular values
 * reach below the Gram path's range (lib/linalg/gram_svd.ts; the caller then runs the exact
 * steps):
 * - the sum S from the float64 eigendecomposition of its Gram matrix: U_c, V_c and σ_c, and
 *   when m ≤ n the whole left basis, whose last r − k_c vectors U_⊥ span the complement of
 *   U_c; Δ_t − U_c U_cᵀ Δ_t = U_⊥ (U_⊥ᵀ Δ_t), so each task's top k_t triplets come from the
 *   (r − k_c)×n matrix U_⊥ᵀ Δ_t (for a tall S, lib/linalg's projectedTopSvd from Gram
 *   matrices);
 * - the task directions are orthogonal to U_c, so polar([U' | U_c]) = [polar(U') | U_c]: only
 *   the m×(T·k_t) block needs a polar factor;
 * - V_all = [V' | V_c] with V_c's rows orthonormal: its Gram matrix differs from the identity
 *   on at most 2·T·k_t dimensions, so polar(V_all) comes from a float64 eigenproblem of that
 *   size (lib/linalg/polar.ts, polarFactorBordered), not from the SVD of the r×n V_all.
 */
function isoCtsFast(
  taus: readonly Float32Array[],
  rows: number,
  cols: number,
  fraction: number,
): Float32Array | undefined {
  const r = Math.min(rows, cols);
  const T = taus.length;
  const { common, perTask } = isoCtsBudget(r, T, fraction);
  const specific = T * perTask;
  const wide = rows <= cols;
  const sum = common > 0
    ? gramSvd(sumOf(taus), rows, cols, common, wide ? "left" : "right")
    : undefined;
  if (common > 0 && !sum) return undefined;
  const u = new Float32Array(rows * specific), vt = new Float32Array(specific * cols);
  const sigma = new Float32Array(r);
  const uAll = { data: u, rows, cols: specific };
  const vtAll = { data: vt, rows: specific, cols };
  if (perTask > 0) {
    // U_⊥: the left basis beyond the common vectors ((rows − common)×rows, one per row)
    const perp = wide && sum ? sum.basis.subarray(common * rows) : undefined;
    taus.forEach((tau, t) => {
      let f: { u: Float32Array; s: Float32Array; vt: Float32Array };
      if (perp) {
        const inside = rows - common;
        const g = topSvd(matmul(perp, tau, inside, rows, cols), inside, cols, perTask);
        f = { u: matmul(perp, g.u, rows, inside, perTask, { transA: true }), s: g.s, vt: g.vt };
      } else {
        f = sum
          ? projectedTopSvd(tau, rows, cols, sum.u, common, perTask)
          : topSvd(tau, rows, cols, perTask);
      }
      copyColumns({ data: f.u, rows, cols: perTask }, 0, uAll, t * perTask, perTask);
      copyRows({ data: f.vt, rows: perTask, cols }, 0, vtAll, t * perTask, perTask);
      sigma.set(f.s, t * perTask);
    });
  }
  const left = { data: new Float32Array(rows * r), rows, cols: r };
  const right = new Float32Array(r * cols);
  if (specific > 0) {
    copyColumns(
      { data: polarFactorGram(u, rows, specific), rows, cols: specific },
      0,
      left,
      0,
      specific,
    );
    right.set(vt);
  }
  if (sum) {
    copyColumns({ data: sum.u, rows, cols: common }, 0, left, specific, common);
    right.set(sum.vt, specific * cols);
    sigma.set(sum.s, specific);
  }
  // V_all = [task rows; common rows], the common rows orthonormal: polar(V_all) from an
  // eigenproblem of size ≤ 2·(T·k_t) (lib/linalg/polar.ts); a V_all at least twice as wide as
  // tall goes to polarFactorGram (its float32 Gram path is cheaper where V_all is
  // well-conditioned, as it is there on noise-like data), as does one the former rejects
  const bordered = specific > 0 && sum && cols < 2 * r
    ? polarFactorBordered(vt, specific, sum.vt, common, cols)
    : undefined;
  const merged = matmul(left.data, bordered ?? polarFactorGram(right, r, cols), rows, r, cols);
  return scaleInPlace(merged, meanValue(sigma));
}

/** Δ − U_c (U_cᵀ Δ): Δ with its component in the common left subspace removed. */
function withoutCommonSpace(
  tau: Float32Array,
  uc: Float32Array,
  rows: number,
  common: number,
  cols: number,
): Float32Array {
  if (common === 0) return tau.slice();
  const coefficients = matmul(uc, tau, common, rows, cols, { transA: true });
  const projection = matmul(uc, coefficients, rows, common, cols);
  const out = new Float32Array(tau.length);
  for (let i = 0; i < out.length; i++) out[i] = tau[i] - projection[i];
  return out;
}

/**
 * The Iso-CTS method (common fraction 0.8, α = 1 by default).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { isoCts } from "./iso_cts.ts";
 * import { merge } from "./merge.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const tau = (v: number[]) => new MemorySource("τ", { w: { shape: [2, 2], data: new Float32Array(v) } });
 * const params = { common_fraction: 0.5 };
 * const m = await merge(isoCts, [tau([3, 0, 0, 0]), tau([0, 0, 0, 1])], { params });
 * const near = (x: ArrayLike<number>, y: number[]) => y.every((v, i) => Math.abs(x[i] - v) < 1e-5);
 * ok(near(m.get("w").data, [2, 0, 0, 2]));
 * ```
 */
export const isoCts: MergeMethod = {
  name: "iso_cts",
  title: "Iso-CTS (isotropic merging with common and task-specific subspaces)",
  paper: "Marczak et al., No Task Left Behind: Isotropic Model Merging with Common and " +
    "Task-Specific Subspaces, ICML 2025",
  code: "danielm1405/iso-merging src/utils/iso.py (iso_cts)",
  summary: "Per matrix: the top singular directions of the TA sum as a common subspace, each " +
    "task's top directions outside it, all orthogonalised, one flat spectrum at the mean.",
  tensorRule: SPECTRAL_RULE,
  usesLinalg: true,
  fusionBench: SPECTRAL_FUSION_BENCH,
  params: [
    TEXT_PROJECTION_PARAM,
    {
      name: "common_fraction",
      type: "number",
      default: 0.8,
      min: 0,
      max: 1,
      source: "danielm1405/iso-merging config/method/iso_cts.yaml (common_space_fraction: 0.8); " +
        "tanganke/fusion_bench@54c9e8c config/method/isotropic_merging/iso_cts.yaml",
      meaning: "fraction f of each matrix's rank given to the common subspace (before rounding)",
    },
    scalingParam(
      1,
      "tanganke/fusion_bench@54c9e8c config/method/isotropic_merging/iso_cts.yaml " +
        "(scaling_factor: 1.0); the Iso repo searches α in {0.1, …, 3.0}",
    ),
    SVD_PARAM,
  ],
  scalingSearch: {
    grid: ISO_ALPHA_GRID,
    source: "danielm1405/iso-merging (early stopping after 3 non-improving steps)",
  },
  treatment: (name, shape, params) => spectralTreatment(name, shape, params),
  prepare: ({ params }) => {
    const fraction = numberParam(params, "common_fraction");
    const solver = svdSolver(params);
    return Promise.resolve(
      spectralMerger(
        (taus, rows, cols) => isoCtsMergeMatrix(taus, rows, cols, fraction, solver),
        params,
      ),
    );
  },
};
