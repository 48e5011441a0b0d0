/**
 * Rich display for notebooks, terminals and reports: figures (heatmap, bars, lines, table,
 * stack) as Plotly specs with static SVG and text fallbacks, MIME bundles for Deno's Jupyter
 * kernel, progress bars, standalone HTML documents, and the notebook display of tfjs tensors
 * (installed when this module is imported).
 *
 * Other rooms attach a display to their values with one line, e.g.
 * `[JUPYTER_DISPLAY]() { return heatmap({...}).toBundle(); }` in a class, or
 * `displayWith(MyClass.prototype, (v) => heatmap({...}))`.
 *
 * @example
 * ```ts
 * import { heatmap, sharedColorRange } from "./mod.ts";
 * const before = [[0.02, 0.41], [0.35, 0.03]];
 * const after = [[0.01, 0.12], [0.09, 0.02]];
 * const range = sharedColorRange([before, after]);
 * const fig = heatmap({ values: after, rowLabels: ["a", "b"], columnLabels: ["a", "b"], range });
 * console.log(fig.toText());
 * ```
 *
 * @module
 */
export { type ColorRange, type ColorScaleName, PALETTE, sharedColorRange } from "./colors.ts";
export { bars, Figure, heatmap, lines, stack, table } from "./figure.ts";
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
  inKernel,
  isDisplayable,
  JUPYTER_DISPLAY,
  type MimeBundle,
  settle,
} from "./jupyter.ts";
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
  HeatmapSpec,
  LineSeries,
  LinesOptions,
  LinesSpec,
  StackSpec,
  TableCell,
  TableOptions,
  TableSpec,
} from "./spec.ts";
export {
  installTensorDisplay,
  tensorBundle,
  tensorFigure,
  type TensorLike,
  type TensorSummary,
  tensorSummary,
  tensorText,
} from "./tensor.ts";
