/**
 * Standalone HTML documents (reports) built from the same figures as the notebooks: one file
 * that carries plotly.js once in its head and draws offline in any browser.
 *
 * @module
 */
import { Figure, specOf } from "./figure.ts";
import { escapeXml } from "./format.ts";
import { plotlyLibraryScript } from "./html.ts";

/** A part of a document: a figure, a paragraph of plain text, a heading, or raw HTML. */
export type DocumentItem = Figure | string | { heading: string } | { html: string };

/**
 * A complete HTML page with the given title and items, top to bottom.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { htmlDocument } from "./report.ts";
 * import { table } from "./figure.ts";
 * const page = htmlDocument("Run", [{ heading: "Results" }, table({ columns: ["a"], rows: [[1]] })]);
 * ok(page.startsWith("<!DOCTYPE html>"));
 * ok(page.includes("<h1>Run</h1>") && page.includes("<h2>Results</h2>"));
 * ok(page.includes("<table"));
 * ok(!page.includes("data-ri-plotly")); // only tables: no plotly.js
 * ```
 */
export function htmlDocument(title: string, items: DocumentItem[]): string {
  const figures = items.filter((item): item is Figure => item instanceof Figure);
  const needsLibrary = figures.some((f) => specOf(f).kind !== "table");
  const body = items.map(itemHtml).join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; color: #222; max-width: 1000px;
  margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
</style>
${needsLibrary ? plotlyLibraryScript() : ""}
</head>
<body>
<h1>${escapeXml(title)}</h1>
${body}
</body>
</html>
`;
}

function itemHtml(item: DocumentItem): string {
  if (item instanceof Figure) return item.toHtml({ library: "never" });
  if (typeof item === "string") return `<p>${escapeXml(item)}</p>`;
  if ("heading" in item) return `<h2>${escapeXml(item.heading)}</h2>`;
  return item.html;
}

/**
 * Writes {@linkcode htmlDocument}'s page to `path` atomically (temporary file, then rename).
 *
 * @example
 * ```ts
 * import { deepEqual, ok } from "node:assert/strict";
 * import { writeHtmlDocument } from "./report.ts";
 * import { bars } from "./figure.ts";
 * const dir = await Deno.makeTempDir();
 * const fig = bars({ categories: ["a"], series: [{ name: "s", values: [1] }] });
 * await writeHtmlDocument(`${dir}/report.html`, "Report", [fig]);
 * const page = await Deno.readTextFile(`${dir}/report.html`);
 * ok(page.startsWith("<!DOCTYPE html>") && page.includes("<title>Report</title>"));
 * ok(page.includes("data-ri-plotly")); // a plot: the page carries plotly.js once, in its head
 * // no temporary file left
 * deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["report.html"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeHtmlDocument(
  path: string,
  title: string,
  items: DocumentItem[],
): Promise<void> {
  const temp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeTextFile(temp, htmlDocument(title, items));
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(`could not write HTML document ${path}: ${(error as Error).message}`);
  }
}
