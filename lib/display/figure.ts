/**
 * Figures people look at: heatmaps, bars, line curves, tables and stacks of them. A
 * {@linkcode Figure} shows itself in Deno's Jupyter kernel (Plotly, with a static SVG and text
 * alongside) and prints as text in a terminal.
 *
 * @module
 */
import { figureHtml, type HtmlOptions, plotlyLibraryScript } from "./html.ts";
import { escapeXml } from "./format.ts";
import { JUPYTER_DISPLAY, type MimeBundle } from "./jupyter.ts";
import { type PlotlyFigure, toPlotly } from "./plotly.ts";
import {
  type BarsOptions,
  barsSpec,
  type FigureSpec,
  type HeatmapOptions,
  type HeatmapsOptions,
  heatmapSpec,
  heatmapsSpec,
  type LinesOptions,
  linesSpec,
  type TableOptions,
  tableSpec,
} from "./spec.ts";
import { toSvg } from "./svg.ts";
import { svgToPng } from "./png.ts";
import { toText } from "./text.ts";

let wrap: (spec: FigureSpec) => Figure;
let unwrap: (figure: Figure) => FigureSpec;

/**
 * A figure and every way of showing it. Build one with {@linkcode heatmap},
 * {@linkcode heatmaps}, {@linkcode bars}, {@linkcode lines}, {@linkcode table} or
 * {@linkcode stack}.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { table } from "./figure.ts";
 * const fig = table({ columns: ["x"], rows: [[1]] });
 * equal(fig.toText(), "x\n─\n1");
 * // a table has no SVG or Plotly form
 * deepEqual(Object.keys(fig.toBundle()), ["text/plain", "text/html"]);
 * ```
 */
export class Figure {
  /** The validated description of the figure. */
  readonly #spec: FigureSpec;

  private constructor(spec: FigureSpec) {
    this.#spec = spec;
  }

  static {
    wrap = (spec) => new Figure(spec);
    unwrap = (figure) => figure.#spec;
  }

  /** The Plotly figure (`undefined` for tables and stacks). */
  toPlotly(): PlotlyFigure | undefined {
    return toPlotly(this.#spec);
  }

  /** A standalone static SVG image. */
  toSvg(): string {
    return toSvg(this.#spec);
  }

  /** Plain text for terminals. */
  toText(): string {
    return toText(this.#spec);
  }

  /** An HTML fragment that draws with plotly.js and shows the SVG until then. */
  toHtml(options: HtmlOptions = {}): string {
    return figureHtml(this.#spec, options);
  }

  /**
   * The MIME bundle: `text/plain`, `text/html`, `image/svg+xml` (all but tables) and
   * `application/vnd.plotly.v1+json` (single plots).
   */
  toBundle(options: HtmlOptions = {}): MimeBundle {
    const bundle: MimeBundle = { "text/plain": this.toText(), "text/html": this.toHtml(options) };
    if (this.#spec.kind !== "table") bundle["image/svg+xml"] = this.toSvg();
    const plotly = this.toPlotly();
    if (plotly) bundle["application/vnd.plotly.v1+json"] = plotly;
    return bundle;
  }

  /**
   * Writes the static SVG to `path` (atomically): the picture a viewer without JavaScript
   * shows, titles and labels included.
   */
  async saveSvg(path: string): Promise<void> {
    const temp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await Deno.writeTextFile(temp, this.toSvg());
      await Deno.rename(temp, path);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw new Error(`could not write ${path}: ${(error as Error).message}`);
    }
  }

  /**
   * Writes the static SVG drawn as a PNG to `path`, at `scale` pixels per SVG pixel (default
   * 2), through a headless Chromium (see `lib/display/png.ts`).
   */
  async savePng(path: string, options: { scale?: number } = {}): Promise<void> {
    await svgToPng(this.toSvg(), path, options.scale ?? 2);
  }

  /**
   * A standalone HTML page of the interactive figure (plotly.js carried inline): opens
   * offline in any browser, sliders included, no kernel needed.
   */
  async saveHtml(path: string, title = this.#spec.title ?? "figure"): Promise<void> {
    const page = `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">` +
      `<title>${escapeXml(title)}</title>${plotlyLibraryScript()}</head>` +
      `<body style="font-family:Helvetica,Arial,sans-serif">` +
      `${this.toHtml({ library: "never" })}</body></html>\n`;
    const temp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await Deno.writeTextFile(temp, page);
      await Deno.rename(temp, path);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw new Error(`could not write ${path}: ${(error as Error).message}`);
    }
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
 * import { deepEqual, equal } from "node:assert/strict";
 * import { heatmap } from "./figure.ts";
 * const fig = heatmap({
 *   values: [[0.02, 0.4], [0.3, 0.01]],
 *   rowLabels: ["mnist", "fashion"],
 *   columnLabels: ["mnist", "fashion"],
 *   title: "Interference ξ",
 * });
 * deepEqual(fig.toText().split("\n").slice(0, 4), [
 *   "Interference ξ",
 *   "           mnist fashion",
 *   "mnist    0.020 · 0.400 █",
 *   "fashion  0.300 ▓ 0.010 ·",
 * ]);
 * equal(fig.toPlotly()?.data[0].type, "heatmap");
 * ```
 */
export function heatmap(options: HeatmapOptions): Figure {
  return figureOf(heatmapSpec(options));
}

/**
 * Several matrices side by side on one colour scale with one colour bar (e.g. interference
 * before and after RI): equal colours are equal values across the panels.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { heatmaps } from "./figure.ts";
 * const fig = heatmaps({
 *   panels: [
 *     { title: "before RI", values: [[0.5, 0.4], [0.3, 0.6]] },
 *     { title: "after RI", values: [[0.5, 0.1], [0.1, 0.6]] },
 *   ],
 *   rowLabels: ["mnist", "fashion"],
 *   columnLabels: ["mnist", "fashion"],
 * });
 * equal(fig.toPlotly()?.data.length, 2);
 * ```
 */
export function heatmaps(options: HeatmapsOptions): Figure {
  return figureOf(heatmapsSpec(options));
}

/**
 * Bars per category; several series make grouped bars (e.g. methods × with/without RI).
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { bars } from "./figure.ts";
 * const fig = bars({
 *   categories: ["TA", "TIES"],
 *   series: [{ name: "merged", values: [0.71, 0.74] }, { name: "+RI", values: [0.83, 0.85] }],
 *   yTitle: "accuracy",
 *   range: [0, 1],
 * });
 * equal(fig.toPlotly()?.data.length, 2); // one trace per series
 * const text = fig.toText().split("\n");
 * ok(text[0].startsWith("TA    merged") && text[0].endsWith("0.710"));
 * ok(text[3].startsWith("      +RI") && text[3].endsWith("0.850"));
 * ```
 */
export function bars(options: BarsOptions): Figure {
  return figureOf(barsSpec(options));
}

/**
 * Line curves (loss curves, coefficient sweeps).
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { lines } from "./figure.ts";
 * const fig = lines({ series: [{ name: "loss", y: [2.3, 1.1, 0.6, 0.4] }], xTitle: "step" });
 * equal(fig.toText(), "loss  █▄▂▁  2.3 → 0.4, min 0.4 at x=3 (4 points)\n(x: step)");
 * deepEqual(fig.toPlotly()?.data[0].x, [0, 1, 2, 3]);
 * ```
 */
export function lines(options: LinesOptions): Figure {
  return figureOf(linesSpec(options));
}

/**
 * A table.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { table } from "./figure.ts";
 * const fig = table({ columns: ["method", "acc"], rows: [["TA", 0.71], ["TA+RI", 0.83]] });
 * equal(fig.toText(), "method    acc\n──────  ─────\nTA      0.710\nTA+RI   0.830");
 * ```
 */
export function table(options: TableOptions): Figure {
  return figureOf(tableSpec(options));
}

/**
 * Several figures shown as one output, one under another.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { stack, table } from "./figure.ts";
 * const t = table({ columns: ["a"], rows: [[1]] });
 * equal(stack([t, t], { title: "Two tables" }).toText(), "Two tables\na\n─\n1\n\na\n─\n1");
 * ```
 */
export function stack(figures: Figure[], options: { title?: string } = {}): Figure {
  if (figures.length === 0) throw new Error("stack: no figures given");
  return figureOf({ kind: "stack", title: options.title, items: figures.map(specOf) });
}

/**
 * A figure drawing a validated spec (what the builders above return). Internal to
 * `lib/display`: the specs are not part of the kit's public surface.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { figureOf } from "./figure.ts";
 * import { tableSpec } from "./spec.ts";
 * equal(figureOf(tableSpec({ columns: ["x"], rows: [[1]] })).toText(), "x\n─\n1");
 * ```
 */
export function figureOf(spec: FigureSpec): Figure {
  return wrap(spec);
}

/**
 * The validated spec a figure draws (for `lib/display` and tests; not part of the kit's public
 * surface).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { specOf, table } from "./figure.ts";
 * equal(specOf(table({ columns: ["x"], rows: [[1]] })).kind, "table");
 * ```
 */
export function specOf(figure: Figure): FigureSpec {
  return unwrap(figure);
}
