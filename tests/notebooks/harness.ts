/**
 * Assertions on notebooks executed headless (tasks/notebook_runner.ts runs them): the one cell
 * with a given source, its rich output or stream text, every output of a MIME type, and the
 * executed notebook as HTML (nbconvert) for rendering in Chromium (chromium.ts).
 *
 * @module
 */
import type { ExecutedCell, ExecutedNotebook } from "../../tasks/notebook_runner.ts";

// The runner (tasks/notebook_runner.ts), for tests that import everything from here.
export {
  assertClean,
  assertKeptLikeStored,
  type ExecutedCell,
  type ExecutedNotebook,
  executeNotebook,
  nbconvertExecute,
  type NotebookOutput,
  outputKinds,
  REPO_ROOT,
} from "../../tasks/notebook_runner.ts";

/**
 * The one code cell whose source contains `text`; throws if none or several do (so a test
 * cannot silently look at the wrong cell).
 *
 * @example
 * ```ts ignore
 * import { cellWith } from "./harness.ts";
 * const cell = cellWith(executed, "Interference before RI");
 * ```
 */
export function cellWith(nb: ExecutedNotebook, text: string): ExecutedCell {
  const found = nb.cells.filter((c) => c.type === "code" && c.source.includes(text));
  if (found.length !== 1) {
    throw new Error(`expected one code cell containing "${text}", found ${found.length}`);
  }
  return found[0];
}

/**
 * The data of the single rich output (display_data or execute_result) of a cell; throws when
 * the cell has none or several, which is how a dropped output shows up.
 *
 * @example
 * ```ts ignore
 * import { cellWith, richOutput } from "./harness.ts";
 * const data = richOutput(cellWith(executed, "heatmap("));
 * ```
 */
export function richOutput(cell: ExecutedCell): Record<string, unknown> {
  const rich = cell.outputs.filter((o) => o.data);
  if (rich.length !== 1) {
    const kinds = cell.outputs.map((o) => o.output_type).join(", ") || "none";
    throw new Error(
      `cell ${cell.index} has ${rich.length} rich outputs (outputs: ${kinds}):
` +
        cell.source,
    );
  }
  return rich[0].data!;
}

/**
 * All outputs of the executed notebook that carry `mime`, with their cell index.
 *
 * @example
 * ```ts ignore
 * import { outputsWith } from "./harness.ts";
 * const plots = outputsWith(executed, "application/vnd.plotly.v1+json");
 * ```
 */
export function outputsWith(
  nb: ExecutedNotebook,
  mime: string,
): { cell: number; data: Record<string, unknown> }[] {
  return nb.cells.flatMap((cell) =>
    cell.outputs.filter((o) => o.data && mime in o.data)
      .map((o) => ({ cell: cell.index, data: o.data! }))
  );
}

/**
 * The text a cell wrote to a stream (`stdout` by default), joined.
 *
 * @example
 * ```ts ignore
 * import { streamText } from "./harness.ts";
 * streamText(executed.cells[3]);
 * ```
 */
export function streamText(cell: ExecutedCell, name = "stdout"): string {
  return cell.outputs.filter((o) => o.output_type === "stream" && o.name === name)
    .map((o) => o.text as string).join("");
}

/**
 * Converts an executed notebook to HTML with nbconvert and returns the HTML file's path.
 *
 * @example
 * ```ts ignore
 * import { notebookToHtml } from "./harness.ts";
 * const html = await notebookToHtml(executed.path, "/tmp/out");
 * ```
 */
export async function notebookToHtml(executed: string, outDir: string): Promise<string> {
  const out = await new Deno.Command("jupyter", {
    args: ["nbconvert", "--to", "html", "--output-dir", outDir, executed],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `nbconvert --to html ${executed} failed:\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const name = executed.split("/").pop()!.replace(/\.ipynb$/, ".html");
  return `${outDir}/${name}`;
}
