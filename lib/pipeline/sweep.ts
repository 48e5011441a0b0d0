/**
 * Sensitivity of a merge method to its coefficient α (θ0 + α·M): accuracy, normalised
 * accuracy and ξ over a grid of α, for original and RI-adapted task vectors alike. The
 * paper's claims "averaging under-uses the adapted vectors at its default coefficient" and
 * "adapted experts are less sensitive to merge hyperparameters" are read off these curves.
 *
 * @module
 */
import type { HostParams } from "../models/weights.ts";
import { displayWith, type Figure, lines } from "../display/mod.ts";
import type { MergeBench } from "./merge_bench.ts";

/** A {@linkcode ScalingSweep} as plain data. */
export interface ScalingSweepData {
  /** Merge method. */
  method: string;
  /** What was merged. */
  label: string;
  /** The coefficients tried. */
  scalings: readonly number[];
  /** Mean accuracy at each. */
  avgAccuracy: readonly number[];
  /** Mean normalised accuracy at each. */
  avgNormalised: readonly number[];
  /** ξ at each. */
  xi: readonly number[];
  /** The method's default coefficient. */
  defaultScaling: number;
  /** Mean accuracy at the default. */
  defaultAccuracy: number;
  /** The best coefficient and its accuracy. */
  best: { scaling: number; accuracy: number };
}

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
  ) {}

  /** Best mean accuracy over the grid and the α that gives it. */
  get best(): { scaling: number; accuracy: number } {
    let k = 0;
    this.avgAccuracy.forEach((a, i) => a > this.avgAccuracy[k] && (k = i));
    return { scaling: this.scalings[k], accuracy: this.avgAccuracy[k] };
  }

  /** Plain data. */
  toJSON(): ScalingSweepData {
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
 * import { deepStrictEqual, ok } from "node:assert/strict";
 * import { ScalingSweep, sweepFigure } from "./sweep.ts";
 * const s = new ScalingSweep("ta", "original", [0.1, 0.3], [0.6, 0.7], [0.7, 0.8], [1, 0.8], 0.3, 0.7);
 * deepStrictEqual(s.best, { scaling: 0.3, accuracy: 0.7 });
 * ok(sweepFigure([s]).toText().includes("ta (original)"));
 * ```
 */
export function sweepFigure(sweeps: readonly ScalingSweep[]): Figure {
  return lines({
    series: sweeps.map((s) => ({
      name: `${s.method} (${s.label})`,
      x: [...s.scalings],
      y: s.avgAccuracy.map((a) => 100 * a),
    })),
    title: "Average accuracy (%) against the merge coefficient α",
    xTitle: "α",
    yTitle: "accuracy (%)",
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
  for (const scaling of grid) {
    const merged = await bench.merge(method, taus, { params, scaling });
    const e = await bench.evaluate(merged);
    acc.push(e.avgAccuracy);
    norm.push(e.avgNormalised);
    xi.push(e.xi.total);
  }
  const atDefault = await bench.merge(method, taus, { params });
  const defaultScaling = Number(atDefault.summary.params.scaling);
  const k = grid.indexOf(defaultScaling);
  const defaultAccuracy = k >= 0 ? acc[k] : (await bench.evaluate(atDefault)).avgAccuracy;
  return new ScalingSweep(method, label, grid, acc, norm, xi, defaultScaling, defaultAccuracy);
}
