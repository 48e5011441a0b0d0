/**
 * Figures people look at: heatmaps, bars, line curves, tables and stacks of them. A
 * {@linkcode Figure} shows itself in Deno's Jupyter kernel (Plotly, with a static SVG and text
 * alongside) and prints as text in a terminal.
 *
 * @module
 */
import { figureHtml, type HtmlOptions } from "./html.ts";
import { JUPYTER_DISPLAY, type MimeBundle } from "./jupyter.ts";
import { type PlotlyFigure, toPlotly } from "./plotly.ts";
import {
  type BarsOptions,
  barsSpec,
  type FigureSpec,
  type HeatmapOptions,
  heatmapSpec,
  type LinesOptions,
  linesSpec,
  type TableOptions,
  tableSpec,
} from "./spec.ts";
import { toSvg } from "./svg.ts";
import { toText } from "./text.ts";

/**
 * A figure: its spec and every way of showing it.
 *
 * @example
 * ```ts
 * import { Figure } from "./figure.ts";
 * import { tableSpec } from "./spec.ts";
 * const fig = new Figure(tableSpec({ columns: ["x"], rows: [[1]] }));
 * console.log(fig.toText());
 * ```
 */
export class Figure {
  /** The validated description of the figure. */
  readonly spec: FigureSpec;

  /** Wraps a spec (see `heatmap`, `bars`, `lines`, `table`, `stack` to build one). */
  constructor(spec: FigureSpec) {
    this.spec = spec;
  }

  /** The Plotly figure (`undefined` for tables and stacks). */
  toPlotly(): PlotlyFigure | undefined {
    return toPlotly(this.spec);
  }

  /** A standalone static SVG image. */
  toSvg(): string {
    return toSvg(this.spec);
  }

  /** Plain text for terminals. */
  toText(): string {
    return toText(this.spec);
  }

  /** An HTML fragment that draws with plotly.js and shows the SVG until then. */
  toHtml(options: HtmlOptions = {}): string {
    return figureHtml(this.spec, options);
  }

  /**
   * The MIME bundle: `text/plain`, `text/html`, `image/svg+xml` (all but tables) and
   * `application/vnd.plotly.v1+json` (single plots).
   */
  toBundle(options: HtmlOptions = {}): MimeBundle {
    const bundle: MimeBundle = { "text/plain": this.toText(), "text/html": this.toHtml(options) };
    if (this.spec.kind !== "table") bundle["image/svg+xml"] = this.toSvg();
    const plotly = this.toPlotly();
    if (plotly) bundle["application/vnd.plotly.v1+json"] = plotly;
    return bundle;
  }

  /** What Deno's Jupyter kernel shows. */
  [JUPYTER_DISPLAY](): MimeBundle {
    return this.toBundle();
  }

  /** The text form. */
  toString(): string {
    return this.toText();
  }

  /** The text form, for `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toText();
  }
}

/**
 * A heatmap of a matrix with row and column labels; values show on hover and, for small
 * matrices, in the cells. Pass the same `range` to two heatmaps to compare them.
 *
 * @example
 * ```ts
 * import { heatmap } from "./figure.ts";
 * const fig = heatmap({
 *   values: [[0.02, 0.4], [0.3, 0.01]],
 *   rowLabels: ["mnist", "fashion"],
 *   columnLabels: ["mnist", "fashion"],
 *   title: "Interference ξ",
 * });
 * console.log(fig.toText());
 * ```
 */
export function heatmap(options: HeatmapOptions): Figure {
  return new Figure(heatmapSpec(options));
}

/**
 * Bars per category; several series make grouped bars (e.g. methods × with/without RI).
 *
 * @example
 * ```ts
 * import { bars } from "./figure.ts";
 * const fig = bars({
 *   categories: ["TA", "TIES"],
 *   series: [{ name: "merged", values: [0.71, 0.74] }, { name: "+RI", values: [0.83, 0.85] }],
 *   yTitle: "accuracy",
 *   range: [0, 1],
 * });
 * console.log(fig.toText());
 * ```
 */
export function bars(options: BarsOptions): Figure {
  return new Figure(barsSpec(options));
}

/**
 * Line curves (loss curves, coefficient sweeps).
 *
 * @example
 * ```ts
 * import { lines } from "./figure.ts";
 * const fig = lines({ series: [{ name: "loss", y: [2.3, 1.1, 0.6, 0.4] }], xTitle: "step" });
 * console.log(fig.toText());
 * ```
 */
export function lines(options: LinesOptions): Figure {
  return new Figure(linesSpec(options));
}

/**
 * A table.
 *
 * @example
 * ```ts
 * import { table } from "./figure.ts";
 * const fig = table({ columns: ["method", "acc"], rows: [["TA", 0.71], ["TA+RI", 0.83]] });
 * console.log(fig.toText());
 * ```
 */
export function table(options: TableOptions): Figure {
  return new Figure(tableSpec(options));
}

/**
 * Several figures shown as one output, one under another.
 *
 * @example
 * ```ts
 * import { stack, table } from "./figure.ts";
 * const t = table({ columns: ["a"], rows: [[1]] });
 * console.log(stack([t, t], { title: "Two tables" }).toText());
 * ```
 */
export function stack(figures: Figure[], options: { title?: string } = {}): Figure {
  if (figures.length === 0) throw new Error("stack: no figures given");
  return new Figure({ kind: "stack", title: options.title, items: figures.map((f) => f.spec) });
}
