/**
 * Figures as HTML that draws offline: plotly.js comes from the pinned npm bundle
 * (`plotly.js-cartesian-dist-min`, 1.5 MB), never from a CDN.
 *
 * How the library reaches a notebook (the trade-off): carrying 1.5 MB in every output would
 * make a notebook with twenty figures 30 MB. So, by default, only the first figure output of a
 * kernel session carries the library inline; later outputs carry a few hundred bytes that draw
 * with `window.Plotly` if it is there, and otherwise wait for the library to arrive (a
 * `ri-plotly-ready` event, sent whenever a library-carrying output runs). Every HTML output
 * also holds the static SVG of its figure, shown until Plotly has drawn: if the output that
 * carried the library was cleared and the notebook reopened, later figures still show their
 * static picture (with a note), and become interactive again as soon as any output carries
 * the library (re-run a figure cell after `resetPlotlyLibrary()`, or display
 * `plotlyLibrary()`, which notebooks do in their first cell). Within a live page,
 * clearing an output does not unload `window.Plotly`, so nothing changes there. Use
 * `library: "always"` for outputs that must stand alone, and standalone documents
 * (`htmlDocument`) carry the library once in their head.
 *
 * @module
 */
import PLOTLY_SOURCE from "plotly.js-cartesian-dist-min/plotly-cartesian.min.js" with {
  type: "text",
};
import { escapeXml, scriptJson } from "./format.ts";
import { JUPYTER_DISPLAY, type MimeBundle } from "./jupyter.ts";
import { plotWidth, toPlotly } from "./plotly.ts";
import type { FigureSpec, TableSpec } from "./spec.ts";
import { toSvg } from "./svg.ts";
import { tableCells } from "./text.ts";

/**
 * Whether an output carries plotly.js: `once` (the first output of this kernel session or
 * process), `always`, or `never` (the page provides it).
 */
export type LibraryMode = "once" | "always" | "never";

/** Options of HTML and bundle rendering. */
export interface HtmlOptions {
  /** Whether this output carries plotly.js (default `once`). */
  library?: LibraryMode;
}

let libraryCarried = false;

/**
 * The version of the bundled plotly.js.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { plotlyVersion } from "./html.ts";
 * equal(plotlyVersion(), "4.1.1"); // the version pinned in deno.json
 * ```
 */
export function plotlyVersion(): string {
  return PLOTLY_SOURCE.slice(0, 200).match(/v(\d+\.\d+\.\d+)/)?.[1] ?? "unknown";
}

/**
 * A `<script>` element defining `window.Plotly` from the bundled library, then announcing it
 * with a `ri-plotly-ready` event so that figures waiting for it draw.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { plotlyLibraryScript } from "./html.ts";
 * const script = plotlyLibraryScript();
 * ok(script.startsWith('<script data-ri-plotly="4.1.1">'));
 * ok(script.length > 1e6); // the whole library, inline
 * ok(!script.slice(8, -9).includes("</script")); // nothing inside closes the element
 * ```
 */
export function plotlyLibraryScript(): string {
  // `module`/`exports` are shadowed so the bundle's wrapper takes its browser branch even
  // where a page defines them; `</script` cannot occur unescaped inside the element.
  const source = PLOTLY_SOURCE.replace(/<\/script/gi, "<\\/script");
  return `<script data-ri-plotly="${plotlyVersion()}">` +
    `if(!window.Plotly){(function(module,exports,define){\n${source}\n}).call(window);}` +
    `window.dispatchEvent(new Event("ri-plotly-ready"));</script>`;
}

/**
 * Decides whether the next output carries the library, and records it for `once`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { resetPlotlyLibrary, takeLibrary } from "./html.ts";
 * resetPlotlyLibrary();
 * equal(takeLibrary("never"), false);
 * equal(takeLibrary("once"), true); // the first output carries it
 * equal(takeLibrary("once"), false); // later ones do not
 * equal(takeLibrary("always"), true);
 * ```
 */
export function takeLibrary(mode: LibraryMode): boolean {
  if (mode === "never") return false;
  if (mode === "always") return (libraryCarried = true);
  if (libraryCarried) return false;
  return (libraryCarried = true);
}

/**
 * Makes the next figure output (in `once` mode) carry plotly.js again, for example after the
 * output that carried it was cleared.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { resetPlotlyLibrary, takeLibrary } from "./html.ts";
 * takeLibrary("once");
 * equal(takeLibrary("once"), false);
 * resetPlotlyLibrary();
 * equal(takeLibrary("once"), true); // carried again
 * ```
 */
export function resetPlotlyLibrary(): void {
  libraryCarried = false;
}

/**
 * A value that, displayed in a notebook, loads plotly.js into the page and says so. Show it
 * in a notebook's first cell: every figure after it draws even when its own output carries no
 * library (and the saved notebook keeps the library in that one place).
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { plotlyLibrary, takeLibrary } from "./html.ts";
 * import { JUPYTER_DISPLAY } from "./jupyter.ts";
 * const bundle = plotlyLibrary()[JUPYTER_DISPLAY]();
 * equal(bundle["text/plain"], "plotly.js 4.1.1 (offline copy) loaded");
 * ok(String(bundle["text/html"]).startsWith("<script data-ri-plotly"));
 * equal(takeLibrary("once"), false); // figures after it need not carry the library
 * ```
 */
export function plotlyLibrary(): { [JUPYTER_DISPLAY](): MimeBundle; toString(): string } {
  const note = `plotly.js ${plotlyVersion()} (offline copy) loaded`;
  return {
    [JUPYTER_DISPLAY]() {
      libraryCarried = true;
      return {
        "text/plain": note,
        "text/html": `${plotlyLibraryScript()}<div style="font-size:11px;color:#888">` +
          `${note}</div>`,
      };
    },
    toString: () => note,
  };
}

/**
 * The figure as an HTML fragment: a static SVG that Plotly replaces with the interactive
 * figure when plotly.js is on the page (tables are plain HTML tables).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { figureHtml } from "./html.ts";
 * import { barsSpec } from "./spec.ts";
 * const spec = barsSpec({ categories: ["a", "b"], series: [{ name: "acc", values: [0.5, 0.75] }] });
 * const html = figureHtml(spec, { library: "never" });
 * ok(html.includes("Plotly.newPlot"));
 * ok(html.includes("<svg ")); // the static picture shown until Plotly draws
 * ok(!html.includes("data-ri-plotly")); // the library is not carried
 * ```
 */
export function figureHtml(spec: FigureSpec, options: HtmlOptions = {}): string {
  const mode = options.library ?? "once";
  const carry = hasPlots(spec) && takeLibrary(mode);
  // The note explains a static picture; with "never" the page itself provides the library.
  return `<div class="ri-output">${carry ? plotlyLibraryScript() : ""}` +
    `${bodyHtml(spec, !carry && mode === "once")}</div>`;
}

function hasPlots(spec: FigureSpec): boolean {
  if (spec.kind === "table") return false;
  if (spec.kind === "stack") return spec.items.some(hasPlots);
  return true;
}

function bodyHtml(spec: FigureSpec, note: boolean): string {
  if (spec.kind === "table") return tableHtml(spec);
  if (spec.kind === "stack") {
    const title = spec.title
      ? `<div style="font-weight:bold;font-size:15px;margin:8px 0">${escapeXml(spec.title)}</div>`
      : "";
    return title + spec.items.map((item) => bodyHtml(item, note)).join("");
  }
  return plotHtml(spec, note);
}

const STATIC_NOTE = `<div class="ri-note" style="font-size:11px;color:#888">static image: ` +
  `the interactive figure draws when plotly.js is on the page (see plotlyLibrary)</div>`;

function plotHtml(spec: FigureSpec, note: boolean): string {
  const figure = toPlotly(spec);
  const svg = toSvg(spec).replace("<svg ", `<svg style="max-width:100%;height:auto" `);
  const id = `ri-plot-${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  // Plotly draws at a fixed width (plotWidth), to which the title is wrapped.
  const maxWidth = Math.max(plotWidth(spec), Number(svg.match(/width="(\d+)"/)?.[1] ?? 0));
  return `<div id="${id}" class="ri-plot" style="max-width:${maxWidth}px;margin:8px 0">` +
    `<div class="ri-static">${svg}${note ? STATIC_NOTE : ""}</div></div>` +
    `<script>${drawScript(id, figure)}</script>`;
}

// Draws once Plotly is there (now, or on the ready event); keeps the SVG if drawing fails.
function drawScript(id: string, figure: unknown): string {
  return `(function(){var box=document.getElementById("${id}");if(!box)return;` +
    `var fig=${scriptJson(figure)};` +
    `function draw(){if(!window.Plotly||box.getAttribute("data-ri-drawn"))return;` +
    `box.setAttribute("data-ri-drawn","1");var plot=document.createElement("div");` +
    `box.appendChild(plot);window.Plotly.newPlot(plot,fig.data,fig.layout,fig.config)` +
    `.then(function(){var s=box.querySelector(".ri-static");if(s)s.style.display="none";},` +
    `function(e){plot.remove();box.removeAttribute("data-ri-drawn");` +
    `console.error("plotly failed",e);});}` +
    `if(window.Plotly)draw();else window.addEventListener("ri-plotly-ready",draw);})();`;
}

/**
 * A table as an HTML `<table>` with inline styles (numbers right-aligned).
 *
 * @example
 * ```ts
 * import { match, ok } from "node:assert/strict";
 * import { tableHtml } from "./html.ts";
 * import { tableSpec } from "./spec.ts";
 * const html = tableHtml(tableSpec({ columns: ["a"], rows: [[1]] }));
 * ok(html.startsWith("<table"));
 * match(html, /<td[^>]*text-align:right[^>]*>1<\/td>/); // numbers right-aligned
 * ```
 */
export function tableHtml(spec: TableSpec): string {
  const cells = tableCells(spec);
  const numeric = spec.columns.map((_, j) => spec.rows.some((row) => typeof row[j] === "number"));
  const cellStyle = (j: number) =>
    `padding:3px 10px;border-bottom:1px solid #e6e6e6;text-align:${numeric[j] ? "right" : "left"}`;
  const head = spec.columns.map((c, j) =>
    `<th style="${cellStyle(j)};border-bottom:1px solid #444">${escapeXml(c)}</th>`
  ).join("");
  const body = cells.map((row) =>
    `<tr>${row.map((c, j) => `<td style="${cellStyle(j)}">${escapeXml(c)}</td>`).join("")}</tr>`
  ).join("");
  const caption = spec.title
    ? `<caption style="caption-side:top;text-align:left;font-weight:bold;padding:4px 0">` +
      `${escapeXml(spec.title)}</caption>`
    : "";
  return `<table class="ri-table" style="border-collapse:collapse;margin:8px 0;` +
    `font-variant-numeric:tabular-nums">${caption}<thead><tr>${head}</tr></thead>` +
    `<tbody>${body}</tbody></table>`;
}
