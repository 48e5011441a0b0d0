/**
 * The results of a study run: per-task accuracies of the experts and θ0, and one row per
 * merge (method × with/without RI, and the distillation baseline) with its average and
 * normalised accuracy and interference ξ. Written as `results.json`; shown as a table and
 * figures in a notebook, a terminal and the HTML report.
 *
 * @module
 */
import { bars, displayWith, type Figure, lines, stack, table } from "../display/mod.ts";
import type { LossCurveData } from "../ri/curve.ts";
import type { DistanceName } from "../interference/distance.ts";
import type { DataUse } from "../merge/method.ts";
import { describeDataUse } from "../merge/data.ts";
import { compareMatrices, InterferenceMatrix } from "../interference/measure.ts";

/** One merged model's evaluation. */
export interface StudyRow {
  /** Registry name of the merge method. */
  method: string;
  /** Merged from RI-adapted task vectors. */
  ri: boolean;
  /** Merged, then distilled toward the experts on auxiliary data (Merge + Distill_Aux). */
  distill?: boolean;
  /** Mean top-1 accuracy over tasks, in [0, 1]. */
  avgAccuracy: number;
  /** Mean over tasks of accuracy / the expert's accuracy. */
  avgNormalised: number;
  /** Interference ξ = Σi E[x ~ Di] d(pi(θi), pi(θM)) on the test splits. */
  xi: number;
  /** Accuracy per task. */
  accuracyByTask: Record<string, number>;
  /** ξi per task. */
  xiByTask: Record<string, number>;
  /** Effective hyperparameters of the merge. */
  params: Record<string, unknown>;
  /**
   * The data a data-using merge method read (absent for data-free methods). RI's auxiliary
   * data (`aux`, `auxSize`) comes on top for rows with `ri`.
   */
  data?: DataUse;
  /**
   * `per-task` when the method built one model per task (EMR, TSV-C, TALL masks), each scored on
   * its own task: not one merged model, so not comparable with the others as a merge.
   */
  output?: "per-task";
}

/** One merged model scored on held-out tasks (no expert was trained on them). */
export interface UnseenRow {
  /** Registry name of the merge method. */
  method: string;
  /** Merged from RI-adapted task vectors. */
  ri: boolean;
  /** Merge + Distill_Aux. */
  distill?: boolean;
  /** Mean top-1 accuracy over the held-out tasks, in [0, 1]. */
  avgAccuracy: number;
  /** Accuracy per held-out task. */
  accuracyByTask: Record<string, number>;
}

/** The study's scores on held-out tasks, each under its own head. */
export interface UnseenData {
  /** The held-out tasks. */
  tasks: string[];
  /** θ0-with-heads accuracy per held-out task. */
  base: Record<string, number>;
  /**
   * One row per merged model (none for a method that builds one model per task: a held-out task
   * has no model of its own).
   */
  rows: UnseenRow[];
}

/** Everything `results.json` holds. */
export interface StudyData {
  /** Task suite. */
  suite: string;
  /** Seed. */
  seed: number;
  /** tfjs backend used. */
  backend: string;
  /** Device under the backend. */
  adapter: string;
  /** Auxiliary source. */
  aux: string;
  /** RI steps per expert. */
  steps: number;
  /** The whole configuration. */
  config: Record<string, unknown>;
  /** The zoo's directory. */
  zoo: string;
  /** Expert accuracy per task (each on its own task). */
  experts: Record<string, number>;
  /** θ0-with-heads accuracy per task. */
  base: Record<string, number>;
  /** One row per merged model. */
  rows: StudyRow[];
  /** RI loss curves per task (when RI ran). */
  riCurves?: Record<string, LossCurveData>;
  /** Pairwise interference on auxiliary data, before and after RI (when RI ran). */
  pairwise?: { tasks: string[]; distance: string; before: number[][]; after: number[][] };
  /** Every merged model on held-out tasks (when the study named some). */
  unseen?: UnseenData;
  /** Wall-clock seconds per stage. */
  seconds: Record<string, number>;
}

const pct = (v: number) => (100 * v).toFixed(1);

const LEGACY: Record<string, string> = {
  avg_acc: "avgAccuracy",
  norm_acc: "avgNormalised",
  per_task: "accuracyByTask",
  xi_per_task: "xiByTask",
  ri_curves: "riCurves",
};

function renamed<T>(value: T): T {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [LEGACY[k] ?? k, v]),
  ) as T;
}

/**
 * A results row as written now: rows written before the names were unified (`avg_acc`,
 * `norm_acc`, `per_task`, `xi_per_task`) are renamed; `null` stays `null`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { normaliseRow, type StudyRow } from "./results.ts";
 * const old = { method: "ties", ri: false, avg_acc: 0.5 } as unknown as StudyRow;
 * equal(normaliseRow(old).avgAccuracy, 0.5);
 * ```
 */
export function normaliseRow<T extends StudyRow | null>(row: T): T {
  return renamed(row);
}

/**
 * The columns of a study's main table, shared by one run's table and the aggregate over seeds:
 * the method, accuracy, RI's accuracy gain, normalised accuracy and ξ without and with RI, then
 * the Merge + Distill_Aux accuracy when the study ran that baseline.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { studyTableColumns } from "./results.ts";
 * deepEqual(studyTableColumns(false), [
 *   "method", "acc", "acc +RI", "gain", "norm", "norm +RI", "ξ", "ξ +RI",
 * ]);
 * equal(studyTableColumns(true).at(-1), "acc +distill");
 * ```
 */
export function studyTableColumns(distilled: boolean): string[] {
  return [
    "method",
    "acc",
    "acc +RI",
    "gain",
    "norm",
    "norm +RI",
    "ξ",
    "ξ +RI",
    ...(distilled ? ["acc +distill"] : []),
  ];
}

/**
 * A study's results as a value: `.data` is what `results.json` holds.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { StudyResults } from "./results.ts";
 * const r = new StudyResults({
 *   suite: "mf4", seed: 0, backend: "wasm", adapter: "CPU", aux: "shapes", steps: 10,
 *   config: {}, zoo: "", experts: { a: 0.9 }, base: { a: 0.5 }, seconds: {},
 *   rows: [{ method: "ta", ri: false, avgAccuracy: 0.7, avgNormalised: 0.78, xi: 0.3,
 *     accuracyByTask: { a: 0.7 }, xiByTask: { a: 0.3 }, params: {} }],
 * });
 * const text = r.table().toText();
 * ok(text.startsWith("mf4: experts 90.0%, θ0 50.0%"));
 * ok(text.includes("ta      70.0                 78.0            0.300"));
 * ```
 */
export class StudyResults {
  /** The results data (`results.json`; files with the old snake_case row names are renamed). */
  readonly data: StudyData;

  /** Wraps the results data. */
  constructor(data: StudyData) {
    const d = renamed(data);
    this.data = { ...d, rows: d.rows.map(normaliseRow) };
  }

  /** Task names in order. */
  get tasks(): string[] {
    return Object.keys(this.data.experts);
  }

  /** Label of a row: `ta`, `ta + RI`, `ta + distill`. */
  static rowLabel(row: StudyRow): string {
    return row.method + (row.ri ? " + RI" : "") + (row.distill ? " + distill" : "");
  }

  /** Methods × (without RI, with RI) with average/normalised accuracy and ξ. */
  table(): Figure {
    const methods = [...new Set(this.data.rows.map((r) => r.method))];
    const find = (m: string, ri: boolean, distill = false) =>
      this.data.rows.find((r) => r.method === m && r.ri === ri && !!r.distill === distill);
    const cell = (r: StudyRow | undefined, key: "avgAccuracy" | "avgNormalised") =>
      r ? pct(r[key]) : "";
    // The Merge + Distill_Aux column only when the study ran that baseline.
    const distilled = this.data.rows.some((r) => r.distill);
    // Which data each merge read, when some method read any: no table mixes data assumptions
    // without saying so.
    const withData = this.data.rows.some((r) => r.data);
    const rows = methods.map((m) => {
      const off = find(m, false), on = find(m, true), dist = find(m, false, true);
      const gain = off && on ? (100 * (on.avgAccuracy - off.avgAccuracy)).toFixed(1) : "";
      const perTask = (off ?? on ?? dist)?.output === "per-task";
      return [
        perTask ? `${m} (one model per task)` : m,
        cell(off, "avgAccuracy"),
        cell(on, "avgAccuracy"),
        gain,
        cell(off, "avgNormalised"),
        cell(on, "avgNormalised"),
        off ? off.xi.toFixed(3) : "",
        on ? on.xi.toFixed(3) : "",
        ...(distilled ? [cell(dist, "avgAccuracy")] : []),
        ...(withData ? [describeDataUse((off ?? on ?? dist)?.data)] : []),
      ];
    });
    const mean = (r: Record<string, number>) =>
      pct(Object.values(r).reduce((a, b) => a + b, 0) / Object.keys(r).length);
    return table({
      title: `${this.data.suite}: experts ${mean(this.data.experts)}%, ` +
        `θ0 ${mean(this.data.base)}% (avg accuracy; RI ${this.data.steps} steps, aux ` +
        `${this.data.aux})`,
      columns: [
        ...studyTableColumns(distilled),
        ...(withData ? ["merge data (+RI: also aux)"] : []),
      ],
      rows,
    });
  }

  /**
   * Held-out tasks: each merge's mean accuracy without and with RI (and the gain), beside
   * θ0 + heads on the same tasks; `undefined` when the study named none.
   */
  unseenTable(): Figure | undefined {
    const u = this.data.unseen;
    if (!u) return undefined;
    const methods = [...new Set(u.rows.map((r) => r.method))];
    const find = (m: string, ri: boolean, distill = false) =>
      u.rows.find((r) => r.method === m && r.ri === ri && !!r.distill === distill);
    const base = Object.values(u.base).reduce((a, b) => a + b, 0) / u.tasks.length;
    const distilled = u.rows.some((r) => r.distill);
    const rows = methods.map((m) => {
      const off = find(m, false), on = find(m, true), dist = find(m, false, true);
      const diff = (r?: UnseenRow) => r ? (100 * (r.avgAccuracy - base)).toFixed(1) : "";
      return [
        m,
        off ? pct(off.avgAccuracy) : "",
        on ? pct(on.avgAccuracy) : "",
        off && on ? (100 * (on.avgAccuracy - off.avgAccuracy)).toFixed(1) : "",
        diff(off),
        diff(on),
        ...(distilled ? [dist ? pct(dist.avgAccuracy) : ""] : []),
      ];
    });
    return table({
      title: `Held-out tasks (${u.tasks.join(", ")}; no expert trained on them): θ0 + heads ` +
        `${pct(base)}% (avg accuracy, each task under its own head)`,
      columns: [
        "method",
        "acc",
        "acc +RI",
        "gain",
        "− θ0",
        "− θ0 +RI",
        ...(distilled ? ["acc +distill"] : []),
      ],
      rows,
    });
  }

  /** Average accuracy of every merge, grouped with and without RI. */
  accuracyFigure(): Figure {
    const methods = [...new Set(this.data.rows.map((r) => r.method))];
    const series = [false, true].map((ri) => ({
      name: ri ? "with RI" : "without RI",
      values: methods.map((m) =>
        100 *
        (this.data.rows.find((r) => r.method === m && r.ri === ri && !r.distill)?.avgAccuracy ??
          NaN)
      ),
    }));
    return bars({
      categories: methods,
      series,
      title: "Average accuracy (%) at default hyperparameters",
      yTitle: "accuracy (%)",
    });
  }

  /** ξ of every merge, grouped with and without RI. */
  xiFigure(): Figure {
    const methods = [...new Set(this.data.rows.map((r) => r.method))];
    const series = [false, true].map((ri) => ({
      name: ri ? "with RI" : "without RI",
      values: methods.map((m) =>
        this.data.rows.find((r) => r.method === m && r.ri === ri && !r.distill)?.xi ?? NaN
      ),
    }));
    return bars({ categories: methods, series, title: "Interference ξ (lower is better)" });
  }

  /**
   * Accuracy per task of one method without and with RI, next to the experts and θ0.
   * Throws naming the methods run when `method` is not among them.
   */
  perTaskFigure(method: string): Figure {
    method = String(method).trim().toLowerCase();
    const row = (ri: boolean) =>
      this.data.rows.find((r) => r.method === method && r.ri === ri && !r.distill);
    if (!row(false) && !row(true)) {
      const methods = [...new Set(this.data.rows.map((r) => r.method))];
      throw new Error(`no merge "${method}" in these results (methods: ${methods.join(", ")})`);
    }
    const values = (byTask: Record<string, number> | undefined) =>
      this.tasks.map((t) => 100 * (byTask?.[t] ?? NaN));
    const series = [
      { name: "expert", values: values(this.data.experts) },
      { name: "θ0", values: values(this.data.base) },
      { name: method, values: values(row(false)?.accuracyByTask) },
      { name: `${method} + RI`, values: values(row(true)?.accuracyByTask) },
    ].filter((s) => s.values.some(Number.isFinite));
    return bars({
      categories: this.tasks,
      series,
      title: `Accuracy (%) per task: ${method} with and without RI`,
      yTitle: "accuracy (%)",
      range: [0, 100],
    });
  }

  /**
   * The pairwise interference matrices on auxiliary data before and after RI, on one colour
   * scale; `undefined` when the run did no RI.
   */
  pairwiseFigure(): Figure | undefined {
    if (!this.data.pairwise) return undefined;
    const { tasks, distance, before, after } = this.data.pairwise;
    const m = (values: number[][], label: string) =>
      new InterferenceMatrix(tasks, values, distance as DistanceName, "aux", label);
    return compareMatrices(m(before, "original experts"), m(after, "RI-adapted experts"));
  }

  /** The RI loss (total) of every expert against the step; `undefined` without RI. */
  curvesFigure(): Figure | undefined {
    const curves = this.data.riCurves;
    if (!curves || Object.keys(curves).length === 0) return undefined;
    return lines({
      series: Object.entries(curves).map(([task, c]) => ({ name: task, x: c.steps, y: c.total })),
      title: "RI loss per expert (own-task term + α × other-tasks term)",
      xTitle: "step",
      yTitle: "loss",
    });
  }

  /** Every setting of the run (the whole configuration), one row per key. */
  settingsTable(): Figure {
    const rows = Object.entries(this.data.config).map(([key, value]) => [
      key,
      Array.isArray(value) ? value.join(", ") : String(value),
    ]);
    return table({ title: "Settings of this run", columns: ["setting", "value"], rows });
  }

  /** Accuracy (%) per task of the experts, θ0 and every merged model, with the mean. */
  perTaskTable(): Figure {
    const tasks = this.tasks;
    const line = (label: string, byTask: Record<string, number>) => {
      const values = tasks.map((t) => 100 * (byTask[t] ?? NaN));
      return [label, ...values, values.reduce((a, b) => a + b, 0) / values.length];
    };
    return table({
      title: "Accuracy (%) per task",
      columns: ["model", ...tasks, "mean"],
      rows: [
        line("expert (own task)", this.data.experts),
        line("θ0 + heads", this.data.base),
        ...this.data.rows.map((r) => line(StudyResults.rowLabel(r), r.accuracyByTask)),
      ],
      digits: 3,
    });
  }

  /** Table and figures together: accuracies, ξ, and the pairwise matrices when RI ran. */
  figure(): Figure {
    const pairwise = this.pairwiseFigure();
    const unseen = this.unseenTable();
    return stack([
      this.table(),
      ...(unseen ? [unseen] : []),
      this.accuracyFigure(),
      this.xiFigure(),
      ...(pairwise ? [pairwise] : []),
    ]);
  }

  /** The JSON written to `results.json`. */
  toJSON(): StudyData {
    return this.data;
  }
}
displayWith(StudyResults.prototype, (r) => r.figure());
