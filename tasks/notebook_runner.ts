/**
 * Runs notebooks headless for `deno task notebooks` and the notebook tests: installs the `deno`
 * kernelspec into a private Jupyter path, executes a notebook with nbclient's stock client
 * (notebook_execute.py; kernel working directory: the repository root) or with the stock
 * `jupyter nbconvert --execute` command line, fails on any error output, and hands back every
 * cell's outputs.
 *
 * Nothing waits after a cell: the kit makes every cell end only once its outputs are published
 * (lib/display/outputs.ts). notebook_execute.py watches for an output that arrives after its cell ended
 * (`stray`, which any client that stops listening at idle would lose) and fails the run.
 *
 * @module
 */
import { installKernelspec } from "./kernel.ts";

/** Debian's python3, which has python3-nbclient (see system_packages.ts). */
const PYTHON = "/usr/bin/python3";

/** The repository root, the kernel's working directory. */
export const REPO_ROOT: string = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

const EXECUTE_PY = new URL("./notebook_execute.py", import.meta.url).pathname;

/** One output of a cell, as nbformat stores it. */
export interface NotebookOutput {
  /** `stream`, `display_data`, `execute_result` or `error`. */
  output_type: string;
  /** Stream name (`stdout`, `stderr`). */
  name?: string;
  /** Stream text (nbformat may store it as a list of lines). */
  text?: string | string[];
  /** MIME bundle of display_data / execute_result. */
  data?: Record<string, unknown>;
  /** Error name. */
  ename?: string;
  /** Error message. */
  evalue?: string;
  /** Error traceback lines. */
  traceback?: string[];
  /** Output metadata (the kit marks progress bars with `{ ri: "progress" }`). */
  metadata?: Record<string, unknown>;
}

/** A cell after execution. */
export interface ExecutedCell {
  /** Position in the notebook. */
  index: number;
  /** `code` or `markdown`. */
  type: string;
  /** The cell's source text. */
  source: string;
  /** Its outputs, in order. */
  outputs: NotebookOutput[];
}

/** The result of {@linkcode executeNotebook}. */
export interface ExecutedNotebook {
  /** Path of the executed .ipynb. */
  path: string;
  /** Every cell with its outputs. */
  cells: ExecutedCell[];
  /** Messages that arrived after their cell had ended (outputs a stock client loses). */
  stray: { cell: number; msg_type: string }[];
}

/** Options of {@linkcode executeNotebook}. */
export interface ExecuteOptions {
  /** Directory for the executed notebook and the private kernelspec. */
  outDir: string;
  /** Kernel working directory (default: the repository root). */
  cwd?: string;
  /** Seconds a cell may run (default 600). */
  timeoutS?: number;
  /** Leave error outputs for the caller instead of throwing (default false). */
  allowErrors?: boolean;
  /** Extra environment variables for the kernel (e.g. `RI_RUNS`). */
  env?: Record<string, string>;
  /** The Python with nbclient (default: Debian's /usr/bin/python3). */
  python?: string;
}

/**
 * Executes `notebook` with the `deno` kernel and returns its cells and outputs; throws if any
 * cell produced an error output or an output was lost.
 *
 * @example
 * ```ts ignore
 * import { executeNotebook } from "./notebook_runner.ts";
 * const nb = await executeNotebook("notebooks/display_demo.ipynb", { outDir: "/tmp/out" });
 * console.log(nb.cells.length);
 * ```
 */
export async function executeNotebook(
  notebook: string,
  options: ExecuteOptions,
): Promise<ExecutedNotebook> {
  const dataHome = `${options.outDir}/jupyter-data`;
  await installKernelspec({ dataHome });
  const name = notebook.split("/").pop()!.replace(/\.ipynb$/, "");
  const path = `${options.outDir}/${name}.executed.ipynb`;
  const out = await new Deno.Command(options.python ?? PYTHON, {
    args: [
      EXECUTE_PY,
      notebook,
      path,
      "--cwd",
      options.cwd ?? REPO_ROOT,
      "--timeout",
      String(options.timeoutS ?? 600),
    ],
    // A private kernel search path: the kernelspec just installed wins over any user one.
    env: {
      ...options.env,
      JUPYTER_PATH: `${dataHome}/jupyter`,
      PYDEVD_DISABLE_FILE_VALIDATION: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr);
  const summaryLine = stdout.split("\n").pop() ?? "";
  if (!out.success || !summaryLine.startsWith("{")) {
    throw new Error(`executing ${notebook} failed (exit ${out.code}):\n${stderr}\n${stdout}`);
  }
  const summary = JSON.parse(summaryLine) as Pick<ExecutedNotebook, "stray">;
  const result = { path, cells: readCells(await Deno.readTextFile(path)), ...summary };
  if (!options.allowErrors) assertClean(notebook, result);
  return result;
}

/**
 * Executes `notebook` with the stock command line, `jupyter nbconvert --to notebook --execute`
 * (the kernel starts in the notebook's folder, as it does for a user), and returns its cells;
 * throws if a cell raised. Nothing here can see a lost output: compare the cells' outputs with
 * what they must hold.
 *
 * @example
 * ```ts ignore
 * import { nbconvertExecute } from "./notebook_runner.ts";
 * const nb = await nbconvertExecute("notebooks/quickstart.ipynb", { outDir: "/tmp/out" });
 * ```
 */
export async function nbconvertExecute(
  notebook: string,
  options: Omit<ExecuteOptions, "cwd">,
): Promise<ExecutedNotebook> {
  const dataHome = `${options.outDir}/jupyter-data`;
  await installKernelspec({ dataHome });
  const name = notebook.split("/").pop()!.replace(/\.ipynb$/, "");
  const output = `${name}.nbconvert-${crypto.randomUUID().slice(0, 8)}`;
  const out = await new Deno.Command("jupyter", {
    args: [
      "nbconvert",
      "--to",
      "notebook",
      "--execute",
      "--ExecutePreprocessor.kernel_name=deno",
      `--ExecutePreprocessor.timeout=${options.timeoutS ?? 600}`,
      ...(options.allowErrors ? ["--allow-errors"] : []),
      "--output-dir",
      options.outDir,
      "--output",
      output,
      notebook,
    ],
    env: { ...options.env, JUPYTER_PATH: `${dataHome}/jupyter` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    throw new Error(
      `jupyter nbconvert --execute ${notebook} failed (exit ${out.code}):\n${stderr}`,
    );
  }
  const path = `${options.outDir}/${output}.ipynb`;
  const result = { path, cells: readCells(await Deno.readTextFile(path)), stray: [] };
  if (!options.allowErrors) assertClean(notebook, result);
  return result;
}

/**
 * The kinds of a cell's outputs, for comparing two executions of one notebook: output types
 * (streams with their name) in order, progress bars left out (their count depends on timing
 * and on what was cached) and consecutive streams of one name taken as one.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { outputKinds } from "./notebook_runner.ts";
 * const cell = {
 *   index: 0,
 *   type: "code",
 *   source: "…",
 *   outputs: [
 *     { output_type: "stream", name: "stdout", text: "a" },
 *     { output_type: "display_data", metadata: { ri: "progress" } },
 *     { output_type: "stream", name: "stdout", text: "b" },
 *     { output_type: "execute_result", data: { "text/plain": "1" } },
 *   ],
 * };
 * deepEqual(outputKinds(cell), ["stream stdout", "execute_result"]);
 * ```
 */
export function outputKinds(cell: ExecutedCell): string[] {
  const kinds: string[] = [];
  for (const o of cell.outputs) {
    if ((o.metadata as { ri?: string } | undefined)?.ri === "progress") continue;
    const kind = o.output_type === "stream" ? `stream ${o.name}` : o.output_type;
    if (kind.startsWith("stream") && kinds[kinds.length - 1] === kind) continue;
    kinds.push(kind);
  }
  return kinds;
}

/**
 * Throws, naming the cells, unless every code cell of `executed` kept the kinds of outputs the
 * stored copy of the notebook holds (stored with `deno task notebooks --fresh`).
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { assertKeptLikeStored } from "./notebook_runner.ts";
 * const outputs = [{ output_type: "execute_result" }];
 * const stored = await Deno.makeTempFile({ suffix: ".ipynb" });
 * const storedCell = { cell_type: "code", source: "1", outputs };
 * await Deno.writeTextFile(stored, JSON.stringify({ cells: [storedCell] }));
 * const cell = { index: 0, type: "code", source: "1", outputs };
 * await assertKeptLikeStored({ path: "x.ipynb", cells: [cell], stray: [] }, stored); // kept
 * const lost = { ...cell, outputs: [] };
 * await rejects(
 *   assertKeptLikeStored({ path: "x.ipynb", cells: [lost], stray: [] }, stored),
 *   /cell 0 kept \[\], the stored notebook holds \[execute_result\]/,
 * );
 * await Deno.remove(stored);
 * ```
 */
export async function assertKeptLikeStored(
  executed: ExecutedNotebook,
  stored: string,
): Promise<void> {
  const reference = readCells(await Deno.readTextFile(stored));
  const problems: string[] = [];
  if (reference.length !== executed.cells.length) {
    problems.push(`${executed.cells.length} cells executed, ${reference.length} stored`);
  }
  for (const cell of executed.cells) {
    const want = reference[cell.index];
    if (cell.type !== "code" || !want) continue;
    const [got, expected] = [outputKinds(cell), outputKinds(want)];
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      problems.push(`cell ${cell.index} kept [${got}], the stored notebook holds [${expected}]`);
    }
  }
  if (problems.length) {
    throw new Error(
      `${stored}: outputs differ from the stored copy (lost, or the stored copy is stale: ` +
        `store it with deno task notebooks --fresh):\n${problems.join("\n")}`,
    );
  }
}

function readCells(json: string): ExecutedCell[] {
  const nb = JSON.parse(json) as {
    cells: { cell_type: string; source: string | string[]; outputs?: NotebookOutput[] }[];
  };
  return nb.cells.map((cell, index) => ({
    index,
    type: cell.cell_type,
    source: joined(cell.source),
    outputs: (cell.outputs ?? []).map((o) => ({
      ...o,
      text: o.text && joined(o.text),
      data: o.data && joinedData(o.data),
    })),
  }));
}

// nbformat stores text-like MIME values as lists of lines; JSON types stay objects.
function joinedData(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(data).map(([mime, value]) => [
      mime,
      Array.isArray(value) && value.every((v) => typeof v === "string") && !mime.endsWith("json")
        ? value.join("")
        : value,
    ]),
  );
}

/**
 * Throws, naming the cells, if the executed notebook holds error outputs or lost outputs.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { assertClean } from "./notebook_runner.ts";
 * const error = { output_type: "error", ename: "TypeError", evalue: "x is undefined" };
 * const cell = { index: 2, type: "code", source: "x.y", outputs: [error] };
 * assertClean("demo.ipynb", { path: "demo.ipynb", cells: [{ ...cell, outputs: [] }], stray: [] });
 * throws(
 *   () => assertClean("demo.ipynb", { path: "demo.ipynb", cells: [cell], stray: [] }),
 *   /demo.ipynb:\ncell 2 raised TypeError: x is undefined/,
 * );
 * ```
 */
export function assertClean(notebook: string, nb: ExecutedNotebook): void {
  const problems: string[] = [];
  for (const cell of nb.cells) {
    for (const o of cell.outputs) {
      if (o.output_type !== "error") continue;
      const trace = (o.traceback ?? []).join("\n");
      problems.push(
        `cell ${cell.index} raised ${o.ename}: ${o.evalue}\n${trace}\n` +
          `source:\n${cell.source}`,
      );
    }
  }
  for (const s of nb.stray) {
    problems.push(`a ${s.msg_type} message of cell ${s.cell} arrived after the cell ended`);
  }
  if (problems.length) throw new Error(`${notebook}:\n${problems.join("\n\n")}`);
}

function joined(text: string | string[]): string {
  return Array.isArray(text) ? text.join("") : text;
}
