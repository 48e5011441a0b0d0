/**
 * Figure specs as Plotly figures (`{data, layout, config}`), the content of an
 * `application/vnd.plotly.v1+json` output and of `Plotly.newPlot` calls.
 *
 * @module
 */
import { plotlyColorscale, seriesColor } from "./colors.ts";
import { numberStyle, plotlyFormat } from "./format.ts";
import type { BarsSpec, FigureSpec, HeatmapSpec, LinesSpec } from "./spec.ts";

/** A Plotly figure as JSON. */
export interface PlotlyFigure {
  /** Traces. */
  data: Record<string, unknown>[];
  /** Layout (titles, axes, size). */
  layout: Record<string, unknown>;
  /** Plot configuration (no logo, responsive). */
  config: Record<string, unknown>;
}

const FONT = { family: "Helvetica, Arial, sans-serif", size: 12 };
const CONFIG = { responsive: true, displaylogo: false };

/**
 * The Plotly figure of a heatmap, bars or lines spec; `undefined` for tables and stacks, which
 * are HTML.
 *
 * @example
 * ```ts
 * import { toPlotly } from "./plotly.ts";
 * import { heatmapSpec } from "./spec.ts";
 * const fig = toPlotly(heatmapSpec({ values: [[1, 2]], columnLabels: ["a", "b"] }));
 * fig?.data[0].type; // "heatmap"
 * ```
 */
export function toPlotly(spec: FigureSpec): PlotlyFigure | undefined {
  switch (spec.kind) {
    case "heatmap":
      return heatmapFigure(spec);
    case "bars":
      return barsFigure(spec);
    case "lines":
      return linesFigure(spec);
    default:
      return undefined;
  }
}

/**
 * The pixel height a figure is drawn at (also used for the static SVG's aspect).
 *
 * @example
 * ```ts
 * import { plotHeight } from "./plotly.ts";
 * import { barsSpec } from "./spec.ts";
 * plotHeight(barsSpec({ categories: ["a"], series: [{ name: "s", values: [1] }] })); // 380
 * ```
 */
export function plotHeight(spec: FigureSpec): number {
  if (spec.kind !== "heatmap") return 380;
  const cell = Math.min(44, Math.max(14, Math.floor(440 / spec.rows.length)));
  return Math.max(260, spec.rows.length * cell + 160);
}

function heatmapFigure(spec: HeatmapSpec): PlotlyFigure {
  const style = numberStyle(spec.z.flat(), spec.digits);
  const rowName = spec.yTitle ?? "row";
  const colName = spec.xTitle ?? "column";
  const trace: Record<string, unknown> = {
    type: "heatmap",
    z: spec.z.map((row) => row.map(nullIfNaN)),
    x: spec.columns,
    y: spec.rows,
    zmin: spec.range.min,
    zmax: spec.range.max,
    colorscale: plotlyColorscale(spec.scale),
    xgap: 1,
    ygap: 1,
    colorbar: { title: { text: spec.valueLabel } },
    hovertemplate:
      `${rowName}: %{y}<br>${colName}: %{x}<br>${spec.valueLabel}: %{z:.4g}<extra></extra>`,
  };
  if (spec.showValues) trace.texttemplate = `%{z:${plotlyFormat(style)}}`;
  const layout = baseLayout(spec.title, plotHeight(spec));
  // Room for the row labels and the y title: Plotly's automargin leaves the title on the labels.
  const longest = spec.rows.reduce((m, l) => Math.max(m, l.length), 0);
  const left = Math.min(260, Math.max(40, longest * 7 + (spec.yTitle ? 36 : 12)));
  return {
    data: [trace],
    layout: {
      ...layout,
      margin: { ...(layout.margin as object), l: left },
      xaxis: { title: { text: spec.xTitle ?? "" }, type: "category", automargin: true },
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

function barsFigure(spec: BarsSpec): PlotlyFigure {
  const data = spec.series.map((s, i) => ({
    type: "bar",
    name: s.name,
    x: spec.categories,
    y: s.values.map(nullIfNaN),
    marker: { color: seriesColor(i) },
    hovertemplate: `%{x}<br>${s.name}: %{y:.4g}<extra></extra>`,
  }));
  return {
    data,
    layout: {
      ...baseLayout(spec.title, plotHeight(spec)),
      barmode: "group",
      showlegend: spec.series.length > 1,
      xaxis: { title: { text: spec.xTitle ?? "" }, type: "category", automargin: true },
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
  return {
    data,
    layout: {
      ...baseLayout(spec.title, plotHeight(spec)),
      showlegend: spec.series.length > 1,
      xaxis: { title: { text: spec.xTitle ?? "" }, automargin: true },
      yaxis: {
        title: { text: spec.yTitle ?? "" },
        type: spec.logY ? "log" : "linear",
        automargin: true,
        // Decades only: Plotly's default labels 2 and 5 between them on short log ranges.
        ...(spec.logY ? { dtick: 1 } : {}),
      },
    },
    config: CONFIG,
  };
}

function baseLayout(title: string | undefined, height: number): Record<string, unknown> {
  return {
    // Left-aligned, so the mode bar (top right) never covers it.
    title: { text: title ?? "", x: 0, xanchor: "left", xref: "paper" },
    height,
    font: FONT,
    // Without a title the top margin still leaves room for the mode bar.
    margin: { l: 60, r: 30, t: title ? 50 : 36, b: 60 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
  };
}

// JSON has no NaN: Plotly reads null as a gap.
function nullIfNaN(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
