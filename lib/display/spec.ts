/**
 * Figure specifications: plain, validated data describing a heatmap, bars, line curves, a table
 * or a vertical stack of them. Every renderer (Plotly, SVG, text, HTML) reads these.
 *
 * @module
 */
import { type ColorRange, type ColorScaleName, sharedColorRange } from "./colors.ts";

/** A matrix drawn as coloured cells, rows top to bottom. */
export interface HeatmapSpec {
  /** Discriminates the figure kinds. */
  kind: "heatmap";
  /** Title above the figure. */
  title?: string;
  /** Values, one array per row; NaN marks a missing cell. */
  z: number[][];
  /** One label per row. */
  rows: string[];
  /** One label per column. */
  columns: string[];
  /** Axis title under the columns. */
  xTitle?: string;
  /** Axis title beside the rows. */
  yTitle?: string;
  /** What a cell's value is (colour-bar title, hover text). */
  valueLabel: string;
  /** Colour scale. */
  scale: ColorScaleName;
  /** Values mapped to the scale's ends. */
  range: ColorRange;
  /** Whether each cell shows its value as text. */
  showValues: boolean;
  /** Significant digits of shown values. */
  digits: number;
}

/** Several matrices with one set of labels, drawn side by side on one colour scale. */
export interface HeatmapsSpec {
  /** Discriminates the figure kinds. */
  kind: "heatmaps";
  /** Title above the whole figure. */
  title?: string;
  /** The panels, left to right: a title and a matrix each. */
  panels: { title: string; z: number[][] }[];
  /** One label per row (shared). */
  rows: string[];
  /** One label per column (shared). */
  columns: string[];
  /** Axis title under the columns. */
  xTitle?: string;
  /** Axis title beside the rows. */
  yTitle?: string;
  /** What a cell's value is (the one colour bar's title, hover text). */
  valueLabel: string;
  /** Colour scale. */
  scale: ColorScaleName;
  /** Values mapped to the scale's ends (shared by every panel). */
  range: ColorRange;
  /** Whether each cell shows its value as text. */
  showValues: boolean;
  /** Significant digits of shown values. */
  digits: number;
}

/** One named series of bar heights, one per category. */
export interface BarSeries {
  /** Legend name. */
  name: string;
  /** One value per category (NaN: no bar). */
  values: number[];
}

/** Bars per category; several series are drawn as grouped bars. */
export interface BarsSpec {
  /** Discriminates the figure kinds. */
  kind: "bars";
  /** Title above the figure. */
  title?: string;
  /** Category labels along the x axis. */
  categories: string[];
  /** One or more series. */
  series: BarSeries[];
  /** Axis title under the categories. */
  xTitle?: string;
  /** Axis title of the values. */
  yTitle?: string;
  /** Fixed value-axis range, else from the data (always including 0). */
  range?: [number, number];
  /** Significant digits of shown values. */
  digits: number;
  /**
   * Other states of the same bars, chosen with a slider in the interactive figure (which needs
   * no kernel: plotly.js switches them in the page). `series` holds the state `activeStep`.
   */
  steps?: { label: string; values: number[][] }[];
  /** What the slider moves (its label, e.g. "α"). */
  stepName?: string;
  /** Index of the step shown first (and in the static picture). */
  activeStep?: number;
}

/** One named curve. */
export interface LineSeries {
  /** Legend name. */
  name: string;
  /** x positions (default 0, 1, 2, …). */
  x: number[];
  /** y values; NaN breaks the line. */
  y: number[];
}

/** Line curves over a shared x axis (loss curves, coefficient sweeps). */
export interface LinesSpec {
  /** Discriminates the figure kinds. */
  kind: "lines";
  /** Title above the figure. */
  title?: string;
  /** One or more curves. */
  series: LineSeries[];
  /** Axis title under the x axis. */
  xTitle?: string;
  /** Axis title of the y axis. */
  yTitle?: string;
  /** Logarithmic y axis. */
  logY: boolean;
  /** Draw a marker at each point. */
  markers: boolean;
  /** Vertical lines marking x positions (e.g. a method's default coefficient). */
  marks: { x: number; label: string }[];
  /** Significant digits of shown values. */
  digits: number;
}

/** A cell of a table: text, a number, or nothing. */
export type TableCell = string | number | null | undefined;

/** A table with a header row. */
export interface TableSpec {
  /** Discriminates the figure kinds. */
  kind: "table";
  /** Title above the table. */
  title?: string;
  /** Column headers. */
  columns: string[];
  /** Rows of cells, each as long as `columns`. */
  rows: TableCell[][];
  /** Significant digits of numbers. */
  digits: number;
}

/** Several figures shown one under another, as one output. */
export interface StackSpec {
  /** Discriminates the figure kinds. */
  kind: "stack";
  /** Title above the whole stack. */
  title?: string;
  /** The figures, top to bottom. */
  items: FigureSpec[];
}

/** Any figure. */
export type FigureSpec =
  | HeatmapSpec
  | HeatmapsSpec
  | BarsSpec
  | LinesSpec
  | TableSpec
  | StackSpec;

/** Options of {@linkcode heatmapSpec}. */
export interface HeatmapOptions {
  /** The matrix, one array per row (plain arrays or typed arrays); NaN marks a missing cell. */
  values: ArrayLike<number>[];
  /** Row labels (default "0", "1", …). */
  rowLabels?: string[];
  /** Column labels (default "0", "1", …). */
  columnLabels?: string[];
  /** Title above the figure. */
  title?: string;
  /** Axis title under the columns. */
  xTitle?: string;
  /** Axis title beside the rows. */
  yTitle?: string;
  /** What a value is, for the colour bar and hover text (default "value"). */
  valueLabel?: string;
  /** Colour scale (default `sequential`). */
  scale?: ColorScaleName;
  /**
   * Value range of the colour scale. Give two heatmaps the same range (see
   * `sharedColorRange`) to make them comparable. Default: the data's range, symmetric about 0
   * for a diverging scale.
   */
  range?: ColorRange;
  /** Write each value in its cell (default: when the matrix has at most 20 columns and 400 cells). */
  showValues?: boolean;
  /** Significant digits of shown values (default 3). */
  digits?: number;
}

/**
 * Validates heatmap options and fills in defaults.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { heatmapSpec } from "./spec.ts";
 * const spec = heatmapSpec({ values: [[1, 2], [3, 4]], rowLabels: ["a", "b"] });
 * deepEqual(spec.columns, ["0", "1"]); // default labels: the indices
 * deepEqual(spec.range, { min: 1, max: 4 });
 * ```
 */
export function heatmapSpec(options: HeatmapOptions): HeatmapSpec {
  const rowCount = options.values.length;
  if (rowCount === 0) throw new Error("heatmap: values has no rows");
  const colCount = options.values[0].length;
  if (colCount === 0) throw new Error("heatmap: values has no columns");
  const z = options.values.map((row, i) => {
    if (row.length !== colCount) {
      throw new Error(`heatmap: row ${i} has ${row.length} values, expected ${colCount}`);
    }
    return Array.from(row, Number);
  });
  const rows = labels("heatmap", "rowLabels", options.rowLabels, rowCount);
  const columns = labels("heatmap", "columnLabels", options.columnLabels, colCount);
  const scale = options.scale ?? "sequential";
  const range = options.range ?? sharedColorRange([z], { symmetric: scale === "diverging" });
  if (!(range.min < range.max)) {
    throw new Error(`heatmap: range must have min < max, got ${range.min} … ${range.max}`);
  }
  return {
    kind: "heatmap",
    title: options.title,
    z,
    rows,
    columns,
    xTitle: options.xTitle,
    yTitle: options.yTitle,
    valueLabel: options.valueLabel ?? "value",
    scale,
    range,
    showValues: options.showValues ?? (colCount <= 20 && rowCount * colCount <= 400),
    digits: options.digits ?? 3,
  };
}

/** Options of {@linkcode heatmapsSpec}. */
export interface HeatmapsOptions extends Omit<HeatmapOptions, "values" | "title"> {
  /** The panels, left to right: each a title and a matrix of the same shape. */
  panels: { title: string; values: ArrayLike<number>[] }[];
  /** Title above the whole figure. */
  title?: string;
}

/**
 * Validates side-by-side heatmaps: one shape, one label set and one colour range (the panels'
 * joint range unless given) for every panel.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { heatmapsSpec } from "./spec.ts";
 * const spec = heatmapsSpec({
 *   panels: [{ title: "before", values: [[1, 2]] }, { title: "after", values: [[0, 4]] }],
 * });
 * equal(spec.range.min, 0);
 * equal(spec.range.max, 4);
 * ```
 */
export function heatmapsSpec(options: HeatmapsOptions): HeatmapsSpec {
  if (options.panels.length === 0) throw new Error("heatmaps: panels is empty");
  const specs = options.panels.map((p) =>
    heatmapSpec({
      ...options,
      values: p.values,
      title: p.title,
      range: options.range ?? { min: 0, max: 1 },
    })
  );
  const [first] = specs;
  specs.forEach((s, i) => {
    if (s.z.length !== first.z.length || s.z[0].length !== first.z[0].length) {
      throw new Error(
        `heatmaps: panel ${i} ("${options.panels[i].title}") is ${s.z.length}×${s.z[0].length}, ` +
          `expected ${first.z.length}×${first.z[0].length} like panel 0`,
      );
    }
  });
  const range = options.range ??
    sharedColorRange(specs.map((s) => s.z), { symmetric: first.scale === "diverging" });
  if (!(range.min < range.max)) {
    throw new Error(`heatmaps: range must have min < max, got ${range.min} … ${range.max}`);
  }
  return {
    kind: "heatmaps",
    title: options.title,
    panels: specs.map((s) => ({ title: s.title ?? "", z: s.z })),
    rows: first.rows,
    columns: first.columns,
    xTitle: first.xTitle,
    yTitle: first.yTitle,
    valueLabel: first.valueLabel,
    scale: first.scale,
    range,
    showValues: first.showValues,
    digits: first.digits,
  };
}

/** Options of {@linkcode barsSpec}. */
export interface BarsOptions {
  /** Category labels (tasks, methods). */
  categories: string[];
  /** One series (plain bars) or several (grouped bars), each with one value per category. */
  series: { name: string; values: ArrayLike<number> }[];
  /** Title above the figure. */
  title?: string;
  /** Axis title under the categories. */
  xTitle?: string;
  /** Axis title of the values. */
  yTitle?: string;
  /** Fixed value-axis range, e.g. [0, 1] for accuracies. */
  range?: [number, number];
  /** Significant digits of shown values (default 3). */
  digits?: number;
  /** States for a slider: each a label and one value array per series (see `BarsSpec`). */
  steps?: { label: string; values: ArrayLike<number>[] }[];
  /** What the slider moves (e.g. "α"). */
  stepName?: string;
  /** The step shown first (default 0). */
  activeStep?: number;
}

/**
 * Validates bar options.
 *
 * @example
 * ```ts
 * import { deepEqual, throws } from "node:assert/strict";
 * import { barsSpec } from "./spec.ts";
 * const spec = barsSpec({ categories: ["mnist"], series: [{ name: "acc", values: [0.9] }] });
 * deepEqual(spec.series, [{ name: "acc", values: [0.9] }]);
 * throws(
 *   () => barsSpec({ categories: ["mnist"], series: [{ name: "acc", values: [0.9, 0.1] }] }),
 *   /series 0 \("acc"\) has 2 values, expected 1/,
 * );
 * ```
 */
export function barsSpec(options: BarsOptions): BarsSpec {
  const n = options.categories.length;
  if (n === 0) throw new Error("bars: categories is empty");
  if (options.series.length === 0) throw new Error("bars: series is empty");
  unique("bars", "categories", options.categories);
  const series = options.series.map((s, i) => {
    if (s.values.length !== n) {
      throw new Error(
        `bars: series ${i} ("${s.name}") has ${s.values.length} values, expected ${n} (one per category)`,
      );
    }
    return { name: String(s.name), values: Array.from(s.values, Number) };
  });
  if (options.range && !(options.range[0] < options.range[1])) {
    throw new Error(`bars: range must be [low, high] with low < high, got ${options.range}`);
  }
  const steps = options.steps?.map((step, k) => {
    if (step.values.length !== series.length) {
      throw new Error(
        `bars: step ${k} has ${step.values.length} series, expected ${series.length}`,
      );
    }
    return {
      label: String(step.label),
      values: step.values.map((v, i) => {
        if (v.length !== n) {
          throw new Error(`bars: step ${k} series ${i} has ${v.length} values, expected ${n}`);
        }
        return Array.from(v, Number);
      }),
    };
  });
  const activeStep = options.activeStep ?? 0;
  if (steps && !(activeStep >= 0 && activeStep < steps.length)) {
    throw new Error(`bars: activeStep ${activeStep} is not one of the ${steps.length} steps`);
  }
  return {
    kind: "bars",
    title: options.title,
    categories: options.categories.map(String),
    ...(steps ? { steps, stepName: options.stepName ?? "step", activeStep } : {}),
    series: steps ? series.map((s, i) => ({ ...s, values: steps[activeStep].values[i] })) : series,
    xTitle: options.xTitle,
    yTitle: options.yTitle,
    range: options.range,
    digits: options.digits ?? 3,
  };
}

/** Options of {@linkcode linesSpec}. */
export interface LinesOptions {
  /** Curves: y values, with x positions (default 0, 1, 2, …). */
  series: { name: string; x?: ArrayLike<number>; y: ArrayLike<number> }[];
  /** Title above the figure. */
  title?: string;
  /** Axis title under the x axis. */
  xTitle?: string;
  /** Axis title of the y axis. */
  yTitle?: string;
  /** Logarithmic y axis (non-positive values are left out). */
  logY?: boolean;
  /** Marker at each point (default: when every curve has at most 50 points). */
  markers?: boolean;
  /** Vertical lines marking x positions, each with a label (e.g. "default α = 0.3"). */
  marks?: { x: number; label: string }[];
  /** Significant digits of shown values (default 4). */
  digits?: number;
}

/**
 * Validates line options.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { linesSpec } from "./spec.ts";
 * deepEqual(linesSpec({ series: [{ name: "loss", y: [1, 0.5, 0.25] }] }).series[0].x, [0, 1, 2]);
 * ```
 */
export function linesSpec(options: LinesOptions): LinesSpec {
  if (options.series.length === 0) throw new Error("lines: series is empty");
  const series = options.series.map((s, i) => {
    const y = Array.from(s.y, Number);
    const x = s.x ? Array.from(s.x, Number) : y.map((_, k) => k);
    if (x.length !== y.length) {
      throw new Error(
        `lines: series ${i} ("${s.name}") has ${x.length} x values and ${y.length} y values`,
      );
    }
    return { name: String(s.name), x, y };
  });
  return {
    kind: "lines",
    title: options.title,
    series,
    xTitle: options.xTitle,
    yTitle: options.yTitle,
    logY: options.logY ?? false,
    markers: options.markers ?? series.every((s) => s.y.length <= 50),
    marks: (options.marks ?? []).map((m) => {
      if (!Number.isFinite(m.x)) throw new Error(`lines: mark "${m.label}" has x = ${m.x}`);
      return { x: m.x, label: String(m.label) };
    }),
    digits: options.digits ?? 4,
  };
}

/** Options of {@linkcode tableSpec}. */
export interface TableOptions {
  /** Column headers. */
  columns: string[];
  /** Rows, each as long as `columns`. */
  rows: TableCell[][];
  /** Title above the table. */
  title?: string;
  /** Significant digits of numbers (default 3). */
  digits?: number;
}

/**
 * Validates table options.
 *
 * @example
 * ```ts
 * import { deepEqual, throws } from "node:assert/strict";
 * import { tableSpec } from "./spec.ts";
 * deepEqual(tableSpec({ columns: ["method", "acc"], rows: [["TA", 0.81]] }).rows, [["TA", 0.81]]);
 * throws(() => tableSpec({ columns: ["method", "acc"], rows: [["TA"]] }), /row 0 has 1 cells/);
 * ```
 */
export function tableSpec(options: TableOptions): TableSpec {
  if (options.columns.length === 0) throw new Error("table: columns is empty");
  options.rows.forEach((row, i) => {
    if (row.length !== options.columns.length) {
      throw new Error(
        `table: row ${i} has ${row.length} cells, expected ${options.columns.length} (one per column)`,
      );
    }
  });
  return {
    kind: "table",
    title: options.title,
    columns: options.columns.map(String),
    rows: options.rows.map((row) => [...row]),
    digits: options.digits ?? 3,
  };
}

function labels(
  figure: string,
  name: string,
  given: string[] | undefined,
  count: number,
): string[] {
  if (!given) return Array.from({ length: count }, (_, i) => String(i));
  if (given.length !== count) {
    throw new Error(`${figure}: ${name} has ${given.length} labels, expected ${count}`);
  }
  const out = given.map(String);
  unique(figure, name, out);
  return out;
}

// Plotly merges equal category labels into one, which would silently mix two rows.
function unique(figure: string, name: string, values: string[]): void {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) throw new Error(`${figure}: ${name} has the label "${v}" twice`);
    seen.add(v);
  }
}
