/**
 * `deno task notebooks [NAME…] [--fresh]`: runs the notebooks in `notebooks/` top to bottom
 * with the `deno` kernel (working directory: the repository) and stores each one with its
 * outputs, so that a shared notebook shows its tables and figures where nothing runs
 * (GitHub's static view shows the stored SVG images; nbconvert's HTML the same, interactive
 * once plotly.js is on the page).
 *
 * What is stored differs from a live session in two ways, both to keep the files small and
 * their diffs readable: the 1.5 MB plotly.js that the first cell puts on the page is left out
 * (a note says so; every figure carries its static SVG and becomes interactive when that cell
 * runs again), and nbclient's per-cell timing metadata is dropped.
 *
 * Runs go to the checkout's `runs/` (or `RI_RUNS`) as the notebooks say; `--fresh` deletes the
 * notebooks' own run folders first (`runs/notebook-*`), so nothing is reused from an earlier
 * execution: store notebooks with `--fresh`, since the tests compare a fresh execution's
 * outputs with the stored ones. Needs Python's nbclient and nbformat (`deno task jupyter`
 * installs them); says so, without a stack trace, when they are missing.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  assertKeptLikeStored,
  executeNotebook,
  nbconvertExecute,
  REPO_ROOT,
} from "./notebook_runner.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { jupyterStatus } from "./jupyter.ts";
import { resolveStudyConfig, runsRoot } from "../lib/pipeline/config.ts";

const USAGE = `usage: deno task notebooks [NAME…] [--fresh] [--stock-runs N]

Executes notebooks/NAME.ipynb (default: every notebook) and stores it with its outputs.
--fresh: delete runs/notebook-* first, so no earlier run is reused.
--stock-runs N: store nothing; execute every notebook N times in a row with stock
  jupyter nbconvert --execute (kernel in notebooks/) and count, against the stored copies, the
  cells that lost an output.`;

/** What replaces the stored plotly.js payload. */
export const LIBRARY_NOTE = `<div style="font-size:11px;color:#888">plotly.js (offline copy) ` +
  `was loaded here when this notebook ran; the saved file leaves it out to stay small. ` +
  `Figures show their static image until this cell runs again.</div>`;

/** An nbformat notebook, as far as this task reads it. */
interface NotebookJson {
  cells: {
    cell_type: string;
    metadata: Record<string, unknown>;
    outputs?: { data?: Record<string, unknown> }[];
    execution_count?: number | null;
  }[];
}

/**
 * An executed notebook made ready to store: the plotly.js payload replaced by a note,
 * nbclient's timing metadata removed, and `outputs` and `execution_count` kept on code cells
 * only (nbformat 4 allows them nowhere else: the classic Notebook reports a markdown cell that
 * has them as invalid JSON). Returns the JSON text (nbformat's one-space indent).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { LIBRARY_NOTE, storedNotebook } from "./notebooks.ts";
 * const plotly = { "text/html": '<script data-ri-plotly="4.1.1">…</script>' };
 * const nb = {
 *   cells: [
 *     { cell_type: "markdown", metadata: {}, source: "# Title", outputs: [] },
 *     { cell_type: "code", metadata: { execution: {} }, source: "", outputs: [{ data: plotly }] },
 *   ],
 * };
 * deepStrictEqual(JSON.parse(storedNotebook(JSON.stringify(nb))).cells, [
 *   { cell_type: "markdown", metadata: {}, source: "# Title" },
 *   { cell_type: "code", metadata: {}, source: "", outputs: [{ data: { "text/html": LIBRARY_NOTE } }] },
 * ]);
 * ```
 */
export function storedNotebook(executedJson: string): string {
  const nb = JSON.parse(executedJson) as NotebookJson;
  for (const cell of nb.cells) {
    delete cell.metadata.execution;
    if (cell.cell_type !== "code") {
      delete cell.outputs;
      delete cell.execution_count;
      continue;
    }
    for (const output of cell.outputs ?? []) {
      const html = output.data?.["text/html"];
      const text = Array.isArray(html) ? html.join("") : html;
      if (typeof text === "string" && text.includes("data-ri-plotly=")) {
        output.data!["text/html"] = LIBRARY_NOTE;
      }
    }
  }
  return JSON.stringify(nb, null, 1) + "\n";
}

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      fresh: { type: "boolean" },
      "stock-runs": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const dir = `${REPO_ROOT}/notebooks`;
  const all = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".ipynb"))
    .map((n) => n.replace(/\.ipynb$/, "")).sort();
  const names = positionals.length ? positionals : all;
  for (const name of names) {
    if (!all.includes(name)) throw new Error(`no notebook ${name}; notebooks: ${all.join(", ")}`);
  }
  const status = await jupyterStatus(REPO_ROOT);
  if (!status.headlessPython) {
    console.error(
      `deno task notebooks needs Python's nbclient and nbformat to run notebooks headless:\n` +
        `  ${status.missing.filter((m) => m.startsWith("nbclient")).join("\n  ")}`,
    );
    return 1;
  }
  if (values["stock-runs"]) return await stockRuns(names, Number(values["stock-runs"]));
  if (values.fresh) await removeNotebookRuns();
  const outDir = await Deno.makeTempDir({ prefix: "ri-notebooks-" });
  try {
    for (const name of names) {
      const started = performance.now();
      const executed = await executeNotebook(`${dir}/${name}.ipynb`, {
        outDir,
        python: status.headlessPython,
      });
      await writeFileAtomic(
        `${dir}/${name}.ipynb`,
        storedNotebook(await Deno.readTextFile(executed.path)),
      );
      const seconds = ((performance.now() - started) / 1000).toFixed(0);
      console.log(`notebooks/${name}.ipynb: executed in ${seconds} s and stored with its outputs`);
    }
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
  return 0;
}

/**
 * Executes every notebook `runs` times in a row with stock `jupyter nbconvert --execute` and
 * prints, per execution, whether every cell kept the outputs of the stored copy; returns 1 if
 * any lost one. Runs go to a scratch runs folder, reused from one execution to the next.
 */
async function stockRuns(names: string[], runs: number): Promise<number> {
  if (!(Number.isInteger(runs) && runs > 0)) {
    throw new Error(`--stock-runs must be ≥ 1, got ${runs}`);
  }
  const scratch = await Deno.makeTempDir({ prefix: "ri-stock-runs-" });
  let lost = 0, executions = 0;
  try {
    for (let run = 1; run <= runs; run++) {
      for (const name of names) {
        const path = `${REPO_ROOT}/notebooks/${name}.ipynb`;
        const started = performance.now();
        const nb = await nbconvertExecute(path, {
          outDir: scratch,
          env: { RI_RUNS: `${scratch}/runs` },
          timeoutS: 1800,
        });
        executions++;
        let verdict = "every output kept";
        try {
          await assertKeptLikeStored(nb, path);
        } catch (error) {
          lost++;
          verdict = (error as Error).message;
        }
        const seconds = ((performance.now() - started) / 1000).toFixed(0);
        console.log(`run ${run} ${name} (${seconds} s): ${verdict}`);
      }
    }
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
  console.log(`${executions} stock executions, ${lost} with a lost output`);
  return lost ? 1 : 0;
}

async function removeNotebookRuns(): Promise<void> {
  const runs = runsRoot(resolveStudyConfig({}).out);
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(runs)];
  } catch {
    return; // no runs yet
  }
  for (const e of entries.filter((e) => e.isDirectory && e.name.startsWith("notebook-"))) {
    await Deno.remove(`${runs}/${e.name}`, { recursive: true });
  }
}

// Guarded so that `deno test --doc` can load this file without running notebooks.
if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    // One line, no stack trace: the errors here name the notebook and the failing cell.
    console.error(`deno task notebooks: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
