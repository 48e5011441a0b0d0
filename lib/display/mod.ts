/**
 * Rich display for notebooks, terminals and reports: figures (heatmap, heatmaps, bars, lines,
 * table, stack) as Plotly specs with static SVG and text fallbacks (saved from code as SVG, PNG
 * or a standalone HTML page), MIME bundles for Deno's Jupyter kernel, progress bars and
 * standalone HTML documents. It loads no tfjs, so every room can import it; the notebook
 * display of tfjs tensors lives in `./tensor.ts` (installed by the root `mod.ts`).
 *
 * Every room attaches a display to its values with the one recipe, {@linkcode displayWith}:
 * `displayWith(MyClass.prototype, (v) => heatmap({...}))` after the class.
 *
 * @example
 * ```ts
 * import { deepEqual, ok } from "node:assert/strict";
 * import { heatmap, sharedColorRange } from "./mod.ts";
 * const before = [[0.02, 0.41], [0.35, 0.03]];
 * const after = [[0.01, 0.12], [0.09, 0.02]];
 * const range = sharedColorRange([before, after]);
 * deepEqual(range, { min: 0.01, max: 0.41 });
 * const fig = heatmap({ values: after, rowLabels: ["a", "b"], columnLabels: ["a", "b"], range });
 * ok(fig.toText().endsWith("spans 0.01 … 0.41")); // the shared range, not this matrix's own
 * ```
 *
 * @module
 */
export { type ColorRange, type ColorScaleName, PALETTE, sharedColorRange } from "./colors.ts";
export {
  bars,
  Figure,
  figureOf,
  heatmap,
  heatmaps,
  lines,
  specOf,
  stack,
  table,
} from "./figure.ts";
export { escapeXml, formatDuration, formatNumber } from "./format.ts";
export {
  type HtmlOptions,
  type LibraryMode,
  plotlyLibrary,
  plotlyVersion,
  resetPlotlyLibrary,
} from "./html.ts";
export {
  bundleOf,
  display,
  type Displayable,
  type DisplayOptions,
  type DisplaySource,
  displayWith,
  type DisplayWithOptions,
  inKernel,
  isDisplayable,
  JUPYTER_DISPLAY,
  type MimeBundle,
} from "./jupyter.ts";
export {
  flushOutputs,
  installOutputOrdering,
  type OutputOrdering,
  outputOrdering,
} from "./outputs.ts";
export type { PlotlyFigure } from "./plotly.ts";
export {
  type Metrics,
  Progress,
  progress,
  type ProgressMode,
  type ProgressOptions,
} from "./progress.ts";
export { type DocumentItem, htmlDocument, writeHtmlDocument } from "./report.ts";
export type {
  BarSeries,
  BarsOptions,
  BarsSpec,
  FigureSpec,
  HeatmapOptions,
  HeatmapsOptions,
  HeatmapSpec,
  HeatmapsSpec,
  LineSeries,
  LinesOptions,
  LinesSpec,
  StackSpec,
  TableCell,
  TableOptions,
  TableSpec,
} from "./spec.ts";
