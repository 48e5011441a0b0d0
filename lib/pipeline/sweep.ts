/**
 * Sensitivity of a merge method to its coefficient α (θ0 + α·M): accuracy, normalised
 * accuracy and ξ over a grid of α, for original and RI-adapted task vectors alike. The
 * paper's claims "averaging under-uses the adapted vectors at its default coefficient" and
 * "adapted experts are less sensitive to merge hyperparameters" are read off these curves.
 *
 * @module
 */
import type { HostParams } from "../models/weights.ts";
import { bars, displayWith, type Figure, lines } from "../display/mod.ts";
import type { MergeBench } from "./merge_bench.ts";

/** Scores of one method over a grid of α. */
export class ScalingSweep {
  /**
   * Wraps the values below.
   *
   * @param method merge method
   * @param label which task vectors (e.g. "original", "RI")
   * @param scalings the α grid
   * @param avgAccuracy mean accuracy per α
   * @param avgNormalised mean normalised accuracy per α
   * @param xi ξ per α
   * @param defaultScaling the method's default α
   * @param defaultAccuracy mean accuracy at the default α
   */
  constructor(
    readonly method: string,
    readonly label: string,
    readonly scalings: readonly number[],
    readonly avgAccuracy: readonly number[],
    readonly avgNormalised: readonly number[],
    readonly xi: readonly number[],
    readonly defaultScaling: number,
    readonly defaultAccuracy: number,
    /** Accuracy per task at each α (one array per α, in the tasks' order), when recorded. */
    readonly accuracyByScaling: readonly (readonly number[])[] = [],
    /** The tasks of `accuracyByScaling`. */
    readonly tasks: readonly string[] = [],
  ) {}

  /** Best mean accuracy over the grid and the α that gives it. */
  get best(): { scaling: number; accuracy: number } {
    let k = 0;
    this.avgAccuracy.forEach((a, i) => a > this.avgAccuracy[k] && (k = i));
    return { scaling: this.scalings[k], accuracy: this.avgAccuracy[k] };
  }

  /** Plain data: the fields above (per-task accuracies aside) and the best coefficient. */
  toJSON(): Pick<
    ScalingSweep,
    | "method"
    | "label"
    | "scalings"
    | "avgAccuracy"
    | "avgNormalised"
    | "xi"
    | "defaultScaling"
    | "defaultAccuracy"
    | "best"
  > {
    const { method, label, scalings, avgAccuracy, avgNormalised, xi } = this;
    const { defaultScaling, defaultAccuracy } = this;
    return {
      method,
      label,
      scalings,
      avgAccuracy,
      avgNormalised,
      xi,
      defaultScaling,
      defaultAccuracy,
      best: this.best,
    };
  }
}
displayWith(ScalingSweep.prototype, (s) => sweepFigure([s]));

/**
 * Accuracy against α for several sweeps on one plot (e.g. with and without RI).
 *
 * @example
 * ```ts
 * import { deepStrictEqual, match } from "node:assert/strict";
 * import { ScalingSweep, sweepFigure } from "./sweep.ts";
 * const s = new ScalingSweep("ta", "original", [0.1, 0.3], [0.6, 0.7], [0.7, 0.8], [1, 0.8], 0.3, 0.7);
 * deepStrictEqual(s.best, { scaling: 0.3, accuracy: 0.7 });
 * match(sweepFigure([s]).toText(), /^ta: average accuracy[^]*marked: default α = 0\.3/);
 * ```
 */
export function sweepFigure(sweeps: readonly ScalingSweep[]): Figure {
  const methods = [...new Set(sweeps.map((s) => s.method))];
  const defaults = [...new Set(sweeps.map((s) => s.defaultScaling))];
  return lines({
    series: sweeps.map((s) => ({
      name: methods.length > 1 ? `${s.method} (${s.label})` : s.label,
      x: [...s.scalings],
      y: s.avgAccuracy.map((a) => 100 * a),
    })),
    title: `${methods.join(", ")}: average accuracy (%) against the merge coefficient α`,
    xTitle: "α",
    yTitle: "accuracy (%)",
    marks: defaults.map((x) => ({ x, label: `default α = ${x}` })),
  });
}

/**
 * Merges `taus` with `method` at every α of `grid` (and at the method's default) and scores
 * each merged model.
 *
 * @example
 * ```ts ignore
 * const sweep = await scalingSweep(bench, "average", bench.taus, [0.125, 0.25, 0.5, 1], "original");
 * ```
 */
export async function scalingSweep(
  bench: MergeBench,
  method: string,
  taus: readonly HostParams[],
  grid: readonly number[],
  label: string,
  params: Record<string, unknown> = {},
): Promise<ScalingSweep> {
  const acc: number[] = [], norm: number[] = [], xi: number[] = [];
  const perTask: number[][] = [];
  for (const scaling of grid) {
    const merged = await bench.merge(method, taus, { params, scaling });
    const e = await bench.evaluate(merged);
    acc.push(e.avgAccuracy);
    norm.push(e.avgNormalised);
    xi.push(e.xi.total);
    perTask.push([...e.accuracy]);
  }
  const atDefault = await bench.merge(method, taus, { params });
  const defaultScaling = Number(atDefault.summary.params.scaling);
  const k = grid.indexOf(defaultScaling);
  const defaultAccuracy = k >= 0 ? acc[k] : (await bench.evaluate(atDefault)).avgAccuracy;
  return new ScalingSweep(
    method,
    label,
    grid,
    acc,
    norm,
    xi,
    defaultScaling,
    defaultAccuracy,
    perTask,
    bench.tasks,
  );
}

/**
 * Per-task accuracy of one method's sweeps (e.g. original and RI task vectors, same grid) as
 * grouped bars with a slider over α: explorable in a shared HTML file or a notebook without a
 * kernel. Starts at the method's default α when it is on the grid.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { ScalingSweep, sweepSlider } from "./sweep.ts";
 * const s = new ScalingSweep("ta", "original", [0.1, 0.3], [0.6, 0.7], [0.7, 0.8], [1, 0.8],
 *   0.3, 0.7, [[0.5, 0.7], [0.6, 0.8]], ["mnist", "fashion"]);
 * const fig = sweepSlider([s]);
 * equal((fig.toPlotly()!.layout.sliders as unknown[]).length, 1);
 * ```
 */
export function sweepSlider(sweeps: readonly ScalingSweep[]): Figure {
  if (sweeps.length === 0) throw new Error("sweepSlider: no sweeps");
  const [first] = sweeps;
  for (const s of sweeps) {
    if (s.accuracyByScaling.length !== s.scalings.length) {
      throw new Error(`sweepSlider: sweep ${s.method} (${s.label}) has no per-task accuracies`);
    }
    if (s.scalings.join() !== first.scalings.join()) {
      throw new Error(
        `sweepSlider: sweeps on different α grids (${first.scalings} vs ${s.scalings})`,
      );
    }
  }
  const at = first.scalings.indexOf(first.defaultScaling);
  const pct = (xs: readonly number[]) => xs.map((a) => 100 * a);
  return bars({
    categories: [...first.tasks],
    series: sweeps.map((s) => ({ name: s.label, values: pct(s.accuracyByScaling[0]) })),
    steps: first.scalings.map((alpha, k) => ({
      label: String(alpha),
      values: sweeps.map((s) => pct(s.accuracyByScaling[k])),
    })),
    stepName: "α",
    activeStep: at >= 0 ? at : 0,
    title: `${first.method}: accuracy (%) per task as the merge coefficient α moves ` +
      `(default α = ${first.defaultScaling})`,
    yTitle: "accuracy (%)",
    range: [0, 100],
  });
}
