/**
 * The RI loss curve of one expert: total, own-task and other-tasks terms per step, with a
 * notebook display (loss curves) and a text summary.
 *
 * @module
 */
import { displayWith, type Figure, lines } from "../display/mod.ts";

/** The loss at one step: the total and its named parts (e.g. `own`, `others`). */
export interface LossPoint {
  /** The loss that was minimised. */
  total: number;
  /** Named terms of the loss. */
  parts?: Record<string, number>;
}

/**
 * Loss per step of one training run (an RI adaptation, a distillation).
 *
 * @example
 * ```ts
 * import { deepStrictEqual, ok } from "node:assert/strict";
 * import { LossCurve } from "./curve.ts";
 * const c = new LossCurve("RI mnist");
 * c.push(1, { total: 0.5, parts: { own: 0.1, others: 0.4 } });
 * ok(String(c).startsWith("Loss, RI mnist\ntotal"));
 * deepStrictEqual(LossCurve.fromJSON(c.toJSON()).toJSON(), c.toJSON());
 * ```
 */
export class LossCurve {
  /** Step numbers (1-based). */
  readonly steps: number[] = [];
  /** Total loss per step. */
  readonly total: number[] = [];
  /** Each named part per step. */
  readonly parts: Record<string, number[]> = {};

  /** An empty curve called `title`. */
  constructor(readonly title: string) {}

  /** Appends one step. */
  push(step: number, loss: LossPoint): void {
    this.steps.push(step);
    this.total.push(loss.total);
    for (const [name, value] of Object.entries(loss.parts ?? {})) {
      (this.parts[name] ??= []).push(value);
    }
  }

  /** Plain data (for JSON files). */
  toJSON(): LossCurveData {
    return { title: this.title, steps: this.steps, total: this.total, parts: this.parts };
  }

  /** Rebuilds a curve from {@linkcode LossCurve.toJSON}'s output. */
  static fromJSON(data: LossCurveData): LossCurve {
    const c = new LossCurve(data.title);
    data.steps.forEach((s, i) => {
      const parts = Object.fromEntries(Object.entries(data.parts).map(([k, v]) => [k, v[i]]));
      c.push(s, { total: data.total[i], parts });
    });
    return c;
  }

  /** Mean total loss over the first and the last `window` steps. */
  startEnd(window = 10): { start: number; end: number } {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    return { start: mean(this.total.slice(0, window)), end: mean(this.total.slice(-window)) };
  }

  /**
   * The curves on a linear axis: RI's own-task term starts at 0 (τ' = τ), where a log axis
   * would stretch down to its first, meaningless values.
   */
  figure(): Figure {
    const parts = Object.entries(this.parts).map(([name, y]) => ({ name, x: this.steps, y }));
    return lines({
      series: [{ name: "total", x: this.steps, y: this.total }, ...parts],
      title: `Loss, ${this.title}`,
      xTitle: "step",
      yTitle: "loss",
    });
  }
}
displayWith(LossCurve.prototype, (c) => c.figure());

/** {@linkcode LossCurve} as plain data. */
export interface LossCurveData {
  /** What was trained. */
  title: string;
  /** Step numbers. */
  steps: number[];
  /** Total loss per step. */
  total: number[];
  /** Named parts per step. */
  parts: Record<string, number[]>;
}
