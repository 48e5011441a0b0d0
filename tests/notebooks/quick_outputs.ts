/**
 * A notebook of many quick cells that print, display and return figures in every order, with
 * the outputs each cell must keep: the probe for the race between Deno's kernel reporting a
 * cell finished and the cell's last outputs (lib/display/outputs.ts). Each cell is short, so
 * that the kernel's reply follows its outputs as closely as it can.
 *
 * @module
 */
import type { ExecutedCell } from "./harness.ts";

/** What one cell must show: its stdout text and its rich outputs' kinds and titles, in order. */
export interface Expected {
  /** The whole stdout text of the cell. */
  stdout: string;
  /** `display_data title` / `execute_result title`, in order. */
  rich: string[];
}

/** A notebook (nbformat 4) and, per code cell, what it must keep. */
export interface QuickNotebook {
  /** The notebook's JSON text. */
  json: string;
  /** Per code cell index (import cell first), its expected outputs. */
  expected: Expected[];
}

const IMPORT = `import { display, heatmap, table } from "@ri-merge/ri";`;

/**
 * Builds the probe notebook with `count` cells after the import cell, cycling through five
 * kinds: a line, a display then a line, a large returned heatmap, line + display + line +
 * returned table, and a burst of lines.
 *
 * @example
 * ```ts ignore
 * const { json, expected } = quickNotebook(40);
 * ```
 */
export function quickNotebook(count: number): QuickNotebook {
  const cells: string[] = [`${IMPORT}\nconsole.log("ready");`];
  const expected: Expected[] = [{ stdout: "ready\n", rich: [] }];
  const grid = (k: number) =>
    `Array.from({ length: 14 }, (_, i) => Array.from({ length: 14 }, (_, j) => (i * 14 + j + ${k}) / 196))`;
  for (let k = 1; k <= count; k++) {
    const title = `cell ${k}`;
    switch (k % 5) {
      case 0:
        cells.push(`console.log("${title}: one line");`);
        expected.push({ stdout: `${title}: one line\n`, rich: [] });
        break;
      case 1:
        cells.push(
          `await display(table({ title: "${title}", columns: ["k"], rows: [[${k}]] }));\n` +
            `console.log("${title}: after the display");`,
        );
        expected.push({ stdout: `${title}: after the display\n`, rich: [`display_data ${title}`] });
        break;
      case 2:
        cells.push(`heatmap({ values: ${grid(k)}, title: "${title}" })`);
        expected.push({ stdout: "", rich: [`execute_result ${title}`] });
        break;
      case 3:
        cells.push(
          `console.log("${title}: first");\n` +
            `await display(heatmap({ values: ${grid(k)}, title: "${title} shown" }));\n` +
            `console.log("${title}: second");\n` +
            `table({ title: "${title} returned", columns: ["k"], rows: [[${k}]] })`,
        );
        expected.push({
          stdout: `${title}: first\n${title}: second\n`,
          rich: [`display_data ${title} shown`, `execute_result ${title} returned`],
        });
        break;
      default:
        cells.push(`for (let i = 0; i < 20; i++) console.log("${title}: line " + i);`);
        expected.push({
          stdout: Array.from({ length: 20 }, (_, i) => `${title}: line ${i}\n`).join(""),
          rich: [],
        });
    }
  }
  const nb = {
    cells: cells.map((source, i) => ({
      cell_type: "code",
      execution_count: null,
      id: `quick-${i}`,
      metadata: {},
      outputs: [],
      source,
    })),
    metadata: {
      kernelspec: { display_name: "Deno", language: "typescript", name: "deno" },
      language_info: { name: "typescript" },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
  return { json: JSON.stringify(nb, null, 1), expected };
}

/**
 * What a cell kept, in the form of {@linkcode Expected}: the title of a rich output is the
 * first line of its text (figures' text starts with their title).
 *
 * @example
 * ```ts ignore
 * deepStrictEqual(kept(cell), expected[cell.index]);
 * ```
 */
export function kept(cell: ExecutedCell): Expected {
  const stdout = cell.outputs.filter((o) => o.output_type === "stream" && o.name === "stdout")
    .map((o) => o.text as string).join("");
  const rich = cell.outputs.filter((o) => o.data).map((o) =>
    `${o.output_type} ${String(o.data!["text/plain"] ?? "").split("\n")[0]}`
  );
  return { stdout, rich };
}
