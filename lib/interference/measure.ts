/**
 * The interference measures (README, "Resolving Interference"), computed from logits that
 * `predictLogits` produced:
 *
 * - ξ(θM) = Σi E[x ~ Di] d(pi(x; θi), pi(x; θM)), with its per-task terms ξi;
 * - the pairwise matrix I[i][j] = E[x] d(pj(x; θ0), pj(x; θ0 + τi)): how far expert i moves
 *   task j's outputs from the pretrained model's (diagonal: its own useful change).
 *
 * @module
 */
import { type DistanceName, parseDistance } from "./distance.ts";
import type { HeadLogits } from "./predict.ts";
import { bars, displayWith, heatmap, heatmaps } from "../display/mod.ts";
import type { ColorRange, Figure } from "../display/mod.ts";

/**
 * Mean over examples of d(softmax(target), softmax(current)) for two logit arrays
 * [count × classes], computed on the host in double precision (the logits are already there:
 * measuring needs no device, and no read from one). The distances are those of
 * `./distance.ts`: `kl` Σ p (log p − log q) (terms with p = 0 count 0), `soft_ce` −Σ p log q,
 * `ce` −log q at the target's most likely class (the first, on ties), `mse` the mean over
 * classes of (q − p)².
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { meanDistance } from "./measure.ts";
 * const same = meanDistance("kl", new Float32Array([0, 0]), new Float32Array([0, 0]), 2);
 * ok(Math.abs(same) < 1e-7);
 * // two images: (1/2, 1/2) vs (3/4, 1/4) gives ((1/4)² + (1/4)²)/2 = 1/16; identical rows give 0
 * const ln3 = Math.log(3);
 * const mse = meanDistance("mse", new Float32Array([0, 0, 0, 0]), new Float32Array([ln3, 0, 0, 0]), 2);
 * equal(Math.round(mse * 1e7) / 1e7, 1 / 32);
 * ```
 */
export function meanDistance(
  name: DistanceName,
  target: Float32Array,
  current: Float32Array,
  classes: number,
): number {
  if (target.length !== current.length || target.length % classes !== 0) {
    throw new Error(
      `meanDistance: logits of ${target.length} and ${current.length} values ` +
        `do not form matching [count × ${classes}] matrices`,
    );
  }
  const rows = target.length / classes;
  if (rows === 0) throw new Error("meanDistance: no examples");
  const p = new Float64Array(classes), logQ = new Float64Array(classes);
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    logSoftmaxRow(target, r * classes, classes, p);
    for (let c = 0; c < classes; c++) p[c] = Math.exp(p[c]);
    logSoftmaxRow(current, r * classes, classes, logQ);
    sum += rowDistance(name, p, logQ);
  }
  return sum / rows;
}

/** log softmax of `classes` values of `logits` from `at`, into `out` (max subtracted first). */
function logSoftmaxRow(logits: Float32Array, at: number, classes: number, out: Float64Array) {
  let max = -Infinity;
  for (let c = 0; c < classes; c++) max = Math.max(max, logits[at + c]);
  let total = 0;
  for (let c = 0; c < classes; c++) total += Math.exp(logits[at + c] - max);
  const log = max + Math.log(total);
  for (let c = 0; c < classes; c++) out[c] = logits[at + c] - log;
}

/** d(p, q) of one example, from the target's probabilities and the model's log-probabilities. */
function rowDistance(name: DistanceName, p: Float64Array, logQ: Float64Array): number {
  let d = 0;
  switch (name) {
    case "kl":
      for (let c = 0; c < p.length; c++) if (p[c] > 0) d += p[c] * (Math.log(p[c]) - logQ[c]);
      return d;
    case "soft_ce":
      for (let c = 0; c < p.length; c++) d -= p[c] * logQ[c];
      return d;
    case "ce": {
      let label = 0;
      for (let c = 1; c < p.length; c++) if (p[c] > p[label]) label = c;
      return -logQ[label];
    }
    case "mse":
      for (let c = 0; c < p.length; c++) d += (Math.exp(logQ[c]) - p[c]) ** 2;
      return d / p.length;
  }
}

/** ξ of one model: per-task terms and their sum. */
export class Interference {
  /**
   * Wraps the values below.
   *
   * @param tasks task names
   * @param perTask ξi, one per task
   * @param distance the distance d
   */
  constructor(
    readonly tasks: readonly string[],
    readonly perTask: readonly number[],
    readonly distance: DistanceName,
  ) {}

  /** ξ = Σi ξi. */
  get total(): number {
    return this.perTask.reduce((a, b) => a + b, 0);
  }

  /** ξ per task as bars. */
  figure(title = `Interference ξ = ${this.total.toFixed(4)} (${this.distance})`): Figure {
    return bars({
      categories: [...this.tasks],
      series: [{ name: "ξi", values: [...this.perTask] }],
      title,
      yTitle: `ξi (${this.distance})`,
    });
  }
}
displayWith(Interference.prototype, (v) => v.figure());

/**
 * ξ of a model: `experts[i]` holds expert i's logits on task i's data under head i, and
 * `model[i]` the model's logits on the same images under the same head.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, ok } from "node:assert/strict";
 * import { interference } from "./measure.ts";
 * const expert = { task: "a", classes: 2, logits: new Float32Array([0, 0]) };
 * const merged = { task: "a", classes: 2, logits: new Float32Array([Math.log(3), 0]) };
 * const xi = interference([expert], [merged], "kl");
 * deepStrictEqual(xi.tasks, ["a"]);
 * ok(Math.abs(xi.total - Math.log(4 / 3) / 2) < 1e-6); // KL((1/2, 1/2) ‖ (3/4, 1/4))
 * ```
 */
export function interference(
  experts: readonly HeadLogits[],
  model: readonly HeadLogits[],
  distance: DistanceName,
): Interference {
  distance = parseDistance(distance); // case-insensitive; an unknown name lists the valid ones
  if (experts.length !== model.length) {
    throw new Error(`interference: ${experts.length} experts but ${model.length} model outputs`);
  }
  const perTask = experts.map((e, i) => {
    if (model[i].task !== e.task) {
      throw new Error(`interference: entry ${i} is task "${model[i].task}", expected "${e.task}"`);
    }
    return meanDistance(distance, e.logits, model[i].logits, e.classes);
  });
  return new Interference(experts.map((e) => e.task), perTask, distance);
}

/** Where a pairwise matrix was measured. */
export type MeasuredOn = "aux" | "task";

/** The pairwise interference matrix I[i][j] (rows: experts i, columns: tasks j). */
export class InterferenceMatrix {
  /**
   * Wraps the values below.
   *
   * @param tasks task names (rows and columns)
   * @param values I[i][j]
   * @param distance the distance d
   * @param on auxiliary or task data
   * @param label what the experts are (e.g. "original", "RI-adapted")
   */
  constructor(
    readonly tasks: readonly string[],
    readonly values: readonly (readonly number[])[],
    readonly distance: DistanceName,
    readonly on: MeasuredOn,
    readonly label = "experts",
  ) {}

  /** Mean of the off-diagonal entries: the interference RI drives toward 0. */
  get offDiagonalMean(): number {
    let sum = 0, n = 0;
    this.values.forEach((row, i) => row.forEach((v, j) => i !== j && (sum += v, n++)));
    return n ? sum / n : 0;
  }

  /** The heatmap; pass a shared `range` to compare two matrices. */
  figure(range?: ColorRange): Figure {
    return heatmap({
      values: this.values.map((r) => [...r]),
      rowLabels: [...this.tasks],
      columnLabels: [...this.tasks],
      title: `${this.label} (${this.on} data; off-diagonal mean ` +
        `${this.offDiagonalMean.toPrecision(3)})`,
      yTitle: "expert i",
      xTitle: "task j",
      valueLabel: `${this.distance}(pj(θ0), pj(θ0+τi))`,
      range,
    });
  }
}
displayWith(InterferenceMatrix.prototype, (v) => v.figure());

/**
 * I[i][j] from θ0's logits under each head (`base[j]`) and each expert's logits under each
 * head on the same images (`experts[i][j]`).
 *
 * @example
 * ```ts
 * import { deepStrictEqual, ok } from "node:assert/strict";
 * import { pairwiseInterference } from "./measure.ts";
 * const l = (v: number[]) => ({ task: "a", classes: 2, logits: new Float32Array(v) });
 * const m = pairwiseInterference([l([0, 0])], [[l([Math.log(3), 0])]], "kl", "aux");
 * deepStrictEqual([m.tasks, m.on, m.values.length], [["a"], "aux", 1]);
 * ok(Math.abs(m.values[0][0] - Math.log(4 / 3) / 2) < 1e-6);
 * ```
 */
export function pairwiseInterference(
  base: readonly HeadLogits[],
  experts: readonly (readonly HeadLogits[])[],
  distance: DistanceName,
  on: MeasuredOn,
  label?: string,
): InterferenceMatrix {
  distance = parseDistance(distance);
  const values = experts.map((row, i) => {
    if (row.length !== base.length) {
      throw new Error(`pairwiseInterference: expert ${i} has ${row.length} heads' logits`);
    }
    return row.map((out, j) => meanDistance(distance, base[j].logits, out.logits, out.classes));
  });
  return new InterferenceMatrix(base.map((b) => b.task), values, distance, on, label);
}

/**
 * Two matrices side by side on one colour scale (e.g. before and after RI).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { compareMatrices, InterferenceMatrix } from "./measure.ts";
 * const a = new InterferenceMatrix(["x", "y"], [[0.5, 0.2], [0.3, 0.4]], "kl", "aux", "before");
 * const b = new InterferenceMatrix(["x", "y"], [[0.5, 0.1], [0.1, 0.4]], "kl", "aux", "after");
 * const text = compareMatrices(a, b).toText();
 * ok(text.includes("Pairwise interference before and after RI (kl, aux data)"));
 * ok(text.includes("before (off-diagonal mean 0.250)"));
 * ok(text.includes("after (off-diagonal mean 0.100)"));
 * ```
 */
export function compareMatrices(before: InterferenceMatrix, after: InterferenceMatrix): Figure {
  const panel = (m: InterferenceMatrix) => ({
    title: `${m.label} (off-diagonal mean ${m.offDiagonalMean.toPrecision(3)})`,
    values: m.values.map((r) => [...r]),
  });
  return heatmaps({
    panels: [panel(before), panel(after)],
    rowLabels: [...before.tasks],
    columnLabels: [...before.tasks],
    title: `Pairwise interference before and after RI (${before.distance}, ${before.on} data)`,
    yTitle: "expert i",
    xTitle: "task j",
    valueLabel: `${before.distance}(pj(θ0), pj(θ0+τi))`,
  });
}
