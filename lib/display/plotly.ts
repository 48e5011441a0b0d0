/**
 * Figure specs as Plotly figures (`{data, layout, config}`), the content of an
 * `application/vnd.plotly.v1+json` output and of `Plotly.newPlot` calls.
 *
 * Every figure has a fixed width, so that its title can be wrapped to it: the title starts
 * below the mode bar's strip (the top 40 px, where Plotly draws its toolbar on the right), and
 * the top margin grows with the title's lines, so a title is never cut and never under the
 * toolbar.
 *
 * @module
 */
import { plotlyColorscale, seriesColor } from "./colors.ts";
import { formatWithStyle, numberStyle, plotlyFormat, wrapWords } from "./format.ts";
import type { BarsSpec, FigureSpec, HeatmapSpec, HeatmapsSpec, LinesSpec } from "./spec.ts";

/** A Plotly figure as JSON. */
export interface PlotlyFigure {
  /** Traces. */
  data: Record<string, unknown>[];
  /** Layout (titles, axes, size). */
  layout: Record<string, unknown>;
  /** Plot configuration (no logo). */
  config: Record<string, unknown>;
}

const FONT = { family: "Helvetica, Arial, sans-serif", size: 12 };
const CONFIG = { responsive: false, displaylogo: false };
/** Height of the strip at the top kept for Plotly's mode bar. */
const MODEBAR_STRIP = 40;
const TITLE_SIZE = 14;
const TITLE_LINE = 18;
/** Helvetica's mean character width at the title's size, slightly generous. */
const TITLE_CHAR = 0.6 * TITLE_SIZE;

/**
 * The Plotly figure of a heatmap(s), bars or lines spec; `undefined` for tables and stacks,
 * which are HTML.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { toPlotly } from "./plotly.ts";
 * import { heatmapSpec } from "./spec.ts";
 * const fig = toPlotly(heatmapSpec({ values: [[1, 2]], columnLabels: ["a", "b"] }));
 * equal(fig?.data[0].type, "heatmap");
 * ```
 */
export function toPlotly(spec: FigureSpec): PlotlyFigure | undefined {
  switch (spec.kind) {
    case "heatmap":
      return heatmapFigure(spec);
    case "heatmaps":
      return heatmapsFigure(spec);
    case "bars":
      return barsFigure(spec);
    case "lines":
      return linesFigure(spec);
    default:
      return undefined;
  }
}

/**
 * The pixel width a figure is drawn at.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { plotWidth } from "./plotly.ts";
 * import { barsSpec } from "./spec.ts";
 * equal(plotWidth(barsSpec({ categories: ["a"], series: [{ name: "s", values: [1] }] })), 640);
 * ```
 */
export function plotWidth(spec: FigureSpec): number {
  if (spec.kind === "heatmap") {
    return Math.max(460, rowLabelMargin(spec) + spec.columns.length * cellSize(spec) + 150);
  }
  if (spec.kind === "heatmaps") {
    const panel = spec.columns.length * cellSize(spec) + 24;
    return Math.max(560, rowLabelMargin(spec) + spec.panels.length * panel + 150);
  }
  if (spec.kind === "bars") {
    return Math.min(1100, Math.max(640, spec.categories.length * (spec.series.length * 26 + 24)));
  }
  return 640;
}

/**
 * The pixel height a figure is drawn at, its title's lines included.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { plotHeight } from "./plotly.ts";
 * import { barsSpec } from "./spec.ts";
 * equal(plotHeight(barsSpec({ categories: ["a"], series: [{ name: "s", values: [1] }] })), 380);
 * ```
 */
export function plotHeight(spec: FigureSpec): number {
  const extra = Math.max(0, titleLines(spec).length - 1) * TITLE_LINE;
  if (spec.kind === "heatmap" || spec.kind === "heatmaps") {
    const panelTitles = spec.kind === "heatmaps" ? panelTitleHeight(spec) : 0;
    return Math.max(260, spec.rows.length * cellSize(spec) + 160) + panelTitles + extra;
  }
  return 380 + extra + (spec.kind === "lines" && spec.marks.length ? 16 : 0);
}

/**
 * The title's lines as drawn: wrapped to the figure's width.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { titleLines } from "./plotly.ts";
 * import { linesSpec } from "./spec.ts";
 * const spec = linesSpec({ series: [{ name: "a", y: [1] }], title: "word ".repeat(40) });
 * equal(titleLines(spec).length, 3);
 * ```
 */
export function titleLines(spec: FigureSpec): string[] {
  if (!spec.title) return [];
  return wrapWords(spec.title, (plotWidth(spec) - 24) / TITLE_CHAR);
}

/**
 * Category labels read across when they fit their slot, else upright (never at Plotly's
 * automatic slant, whose labels overlap their neighbours' boxes).
 */
function tickAngle(labels: readonly string[], slot: number): number {
  const widest = labels.reduce((m, l) => Math.max(m, l.length), 0) * 7;
  return widest <= slot - 6 ? 0 : -90;
}

function cellSize(spec: HeatmapSpec | HeatmapsSpec): number {
  const across = spec.kind === "heatmaps" ? spec.panels.length : 1;
  return Math.min(
    44,
    Math.max(14, Math.floor(Math.min(440 / spec.rows.length, 520 / across / spec.columns.length))),
  );
}

/** Average width of a character of a panel title (13 px Helvetica), in pixels. */
const PANEL_TITLE_CHAR = 7;

/**
 * A side-by-side panel's title as drawn: wrapped to the panel's width (its cells), so that
 * neighbouring panels' titles never run into each other.
 */
function panelTitleLines(spec: HeatmapsSpec, title: string): string[] {
  return wrapWords(title, (spec.columns.length * cellSize(spec)) / PANEL_TITLE_CHAR);
}

/** The room above the panels for their titles: 22 px for one line, 16 more per extra line. */
function panelTitleHeight(spec: HeatmapsSpec): number {
  const lines = Math.max(1, ...spec.panels.map((p) => panelTitleLines(spec, p.title).length));
  return 22 + 16 * (lines - 1);
}

function rowLabelMargin(spec: HeatmapSpec | HeatmapsSpec): number {
  const longest = spec.rows.reduce((m, l) => Math.max(m, l.length), 0);
  return Math.min(260, Math.max(40, longest * 7 + (spec.yTitle ? 36 : 12)));
}

function heatmapTrace(
  spec: HeatmapSpec | HeatmapsSpec,
  z: number[][],
  extra: Record<string, unknown>,
): Record<string, unknown> {
  const style = numberStyle(spec.kind === "heatmap" ? spec.z.flat() : z.flat(), spec.digits);
  const rowName = spec.yTitle ?? "row";
  const colName = spec.xTitle ?? "column";
  const trace: Record<string, unknown> = {
    type: "heatmap",
    z: z.map((row) => row.map(nullIfNaN)),
    x: spec.columns,
    y: spec.rows,
    xgap: 1,
    ygap: 1,
    hovertemplate:
      `${rowName}: %{y}<br>${colName}: %{x}<br>${spec.valueLabel}: %{z:.4g}<extra></extra>`,
    ...extra,
  };
  if (spec.showValues) trace.texttemplate = `%{z:${plotlyFormat(style)}}`;
  return trace;
}

function colorBar(spec: HeatmapSpec | HeatmapsSpec): Record<string, unknown> {
  const style = numberStyle([spec.range.min, spec.range.max], 3);
  return {
    title: { text: spec.valueLabel },
    nticks: 6,
    tickformat: plotlyFormat(style),
    outlinewidth: 0,
  };
}

function heatmapFigure(spec: HeatmapSpec): PlotlyFigure {
  const trace = heatmapTrace(spec, spec.z, {
    zmin: spec.range.min,
    zmax: spec.range.max,
    colorscale: plotlyColorscale(spec.scale),
    colorbar: colorBar(spec),
  });
  const layout = baseLayout(spec);
  return {
    data: [trace],
    layout: {
      ...layout,
      margin: { ...(layout.margin as object), l: rowLabelMargin(spec) },
      xaxis: {
        title: { text: spec.xTitle ?? "" },
        type: "category",
        automargin: true,
        tickangle: tickAngle(spec.columns, cellSize(spec)),
      },
      yaxis: {
        title: { text: spec.yTitle ?? "" },
        type: "category",
        autorange: "reversed",
        automargin: true,
      },
    },
    config: CONFIG,
  };
}

/** Side by side: one subplot per panel, one shared colour axis (one colour bar). */
function heatmapsFigure(spec: HeatmapsSpec): PlotlyFigure {
  const n = spec.panels.length;
  const gap = 0.06;
  const width = (1 - gap * (n - 1)) / n;
  const layout: Record<string, unknown> = baseLayout(spec);
  const annotations: Record<string, unknown>[] = [];
  const data = spec.panels.map((panel, k) => {
    const suffix = k === 0 ? "" : String(k + 1);
    const x0 = k * (width + gap);
    layout[`xaxis${suffix}`] = {
      domain: [x0, x0 + width],
      type: "category",
      automargin: true,
      tickangle: tickAngle(spec.columns, cellSize(spec)),
      title: { text: spec.xTitle ?? "" },
      anchor: `y${suffix}`,
    };
    layout[`yaxis${suffix}`] = {
      type: "category",
      autorange: "reversed",
      automargin: true,
      anchor: `x${suffix}`,
      showticklabels: k === 0,
      title: { text: k === 0 ? spec.yTitle ?? "" : "" },
    };
    annotations.push({
      text: panelTitleLines(spec, panel.title).join("<br>"),
      xref: `x${suffix} domain`,
      yref: `y${suffix} domain`,
      x: 0.5,
      y: 1,
      yanchor: "bottom",
      yshift: 4,
      showarrow: false,
      font: { size: 13 },
    });
    return heatmapTrace(spec, panel.z, {
      coloraxis: "coloraxis",
      xaxis: `x${suffix}`,
      yaxis: `y${suffix}`,
    });
  });
  const margin = layout.margin as Record<string, number>;
  return {
    data,
    layout: {
      ...layout,
      margin: { ...margin, l: rowLabelMargin(spec), t: margin.t + panelTitleHeight(spec) },
      annotations,
      coloraxis: {
        cmin: spec.range.min,
        cmax: spec.range.max,
        colorscale: plotlyColorscale(spec.scale),
        colorbar: colorBar(spec),
      },
    },
    config: CONFIG,
  };
}

function barsFigure(spec: BarsSpec): PlotlyFigure {
  const style = numberStyle(spec.series.flatMap((s) => s.values), spec.digits);
  // Value labels where few enough bars to read them; uniformtext hides any that would not fit
  // at 8 px or more, so labels never overlap each other.
  const labelled = spec.categories.length * spec.series.length <= 48;
  const data = spec.series.map((s, i) => ({
    type: "bar",
    name: s.name,
    x: spec.categories,
    y: s.values.map(nullIfNaN),
    marker: { color: seriesColor(i) },
    hovertemplate: `%{x}<br>${s.name}: %{y:.4g}<extra></extra>`,
    ...(labelled
      ? {
        text: s.values.map((v) => (Number.isFinite(v) ? formatWithStyle(v, style) : "")),
        textposition: "outside",
        cliponaxis: false,
        textfont: { size: 10 },
      }
      : {}),
  }));
  const layout = baseLayout(spec);
  const sliders = spec.steps
    ? [{
      active: spec.activeStep ?? 0,
      currentvalue: { prefix: `${spec.stepName} = ` },
      pad: { t: 70 },
      steps: spec.steps.map((step) => ({
        label: step.label,
        method: "restyle",
        args: [{
          y: step.values.map((v) => v.map(nullIfNaN)),
          ...(labelled
            ? {
              text: step.values.map((v) =>
                v.map((x) => (Number.isFinite(x) ? formatWithStyle(x, style) : ""))
              ),
            }
            : {}),
        }],
      })),
    }]
    : undefined;
  return {
    data,
    layout: {
      ...layout,
      ...(sliders
        ? {
          sliders,
          height: (layout.height as number) + 90,
          margin: { ...(layout.margin as object), b: 150 },
        }
        : {}),
      barmode: "group",
      uniformtext: { minsize: 8, mode: "hide" },
      showlegend: spec.series.length > 1,
      xaxis: {
        title: { text: spec.xTitle ?? "" },
        type: "category",
        automargin: true,
        tickangle: tickAngle(spec.categories, (plotWidth(spec) - 120) / spec.categories.length),
      },
      yaxis: {
        title: { text: spec.yTitle ?? "" },
        automargin: true,
        ...(spec.range ? { range: spec.range } : {}),
      },
    },
    config: CONFIG,
  };
}

function linesFigure(spec: LinesSpec): PlotlyFigure {
  const data = spec.series.map((s, i) => ({
    type: "scatter",
    mode: spec.markers ? "lines+markers" : "lines",
    name: s.name,
    x: s.x,
    y: s.y.map((v) => (spec.logY && v <= 0 ? null : nullIfNaN(v))),
    line: { color: seriesColor(i) },
    hovertemplate: `${s.name}<br>x: %{x:.4g}<br>y: %{y:.4g}<extra></extra>`,
  }));
  const layout = baseLayout(spec);
  const shapes = spec.marks.map((m) => ({
    type: "line",
    xref: "x",
    yref: "paper",
    x0: m.x,
    x1: m.x,
    y0: 0,
    y1: 1,
    line: { dash: "dash", color: "#555555", width: 1 },
  }));
  const annotations = spec.marks.map((m) => ({
    x: m.x,
    xref: "x",
    y: 1,
    yref: "paper",
    yanchor: "bottom",
    text: m.label,
    showarrow: false,
    font: { size: 11, color: "#333333" },
  }));
  const logRange = spec.logY ? logYRange(spec) : undefined;
  return {
    data,
    layout: {
      ...layout,
      showlegend: spec.series.length > 1,
      shapes,
      annotations,
      xaxis: { title: { text: spec.xTitle ?? "" }, automargin: true },
      yaxis: {
        title: { text: spec.yTitle ?? "" },
        type: spec.logY ? "log" : "linear",
        automargin: true,
        // Decades only: Plotly's default labels 2 and 5 between them on short log ranges.
        ...(logRange ? { dtick: 1, range: logRange } : {}),
      },
    },
    config: CONFIG,
  };
}

/**
 * A log axis spans at most four decades below the largest value: a term that starts at 0
 * (RI's own-task term at τ' = τ) would otherwise stretch it to 1e-9 and flatten the curves.
 */
function logYRange(spec: LinesSpec): [number, number] | undefined {
  const values = spec.series.flatMap((s) => s.y.filter((v) => v > 0 && Number.isFinite(v)));
  if (values.length === 0) return undefined;
  const hi = Math.log10(Math.max(...values));
  const lo = Math.max(Math.log10(Math.min(...values)), hi - 4);
  return [Math.floor(lo * 10) / 10 - 0.05, Math.ceil(hi * 10) / 10 + 0.05];
}

function baseLayout(spec: FigureSpec): Record<string, unknown> {
  const lines = titleLines(spec);
  const top = lines.length ? MODEBAR_STRIP + lines.length * TITLE_LINE + 10 : MODEBAR_STRIP + 4;
  const height = plotHeight(spec);
  const marks = spec.kind === "lines" && spec.marks.length ? 16 : 0;
  return {
    title: {
      text: lines.join("<br>"),
      font: { size: TITLE_SIZE },
      x: 0,
      xref: "container",
      xanchor: "left",
      // Below the mode bar's strip, so that the toolbar never covers it.
      y: 1 - MODEBAR_STRIP / height,
      yref: "container",
      yanchor: "top",
      pad: { l: 12 },
    },
    width: plotWidth(spec),
    height,
    autosize: false,
    font: FONT,
    margin: { l: 60, r: 30, t: top + marks, b: 60 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
  };
}

// JSON has no NaN: Plotly reads null as a gap.
function nullIfNaN(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
