/**
 * Runs notebooks headless (`deno task notebooks` and the notebook tests): installs the `deno`
 * kernelspec into a private Jupyter path, executes a notebook with nbclient (kernel working
 * directory: the repository root; notebook_execute.py), fails on any error output, and hands
 * back every cell's outputs.
 *
 * Outputs that arrive after the kernel said a cell was idle (Deno's kernel does that, see
 * notebook_execute.py) are still collected and counted in `late`; anything that arrives for no
 * cell being run is reported in `stray` and fails the run, so a lost output cannot pass
 * silently.
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
  /** Per cell index, how many messages arrived after the kernel reported the cell idle. */
  late: Record<string, number>;
  /** Messages that belonged to no cell being run (lost outputs). */
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
  /** Seconds to keep listening after a cell's idle status (default 0.5). */
  graceS?: number;
  /** Leave error outputs for the caller instead of throwing (default false). */
  allowErrors?: boolean;
  /** Extra environment variables for the kernel (e.g. `RI_RUNS`). */
  env?: Record<string, string>;
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
  const out = await new Deno.Command(PYTHON, {
    args: [
      EXECUTE_PY,
      notebook,
      path,
      "--cwd",
      options.cwd ?? REPO_ROOT,
      "--timeout",
      String(options.timeoutS ?? 600),
      "--grace",
      String(options.graceS ?? 0.5),
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
  const summary = JSON.parse(summaryLine) as Pick<ExecutedNotebook, "late" | "stray">;
  const result = { path, cells: readCells(await Deno.readTextFile(path)), ...summary };
  if (!options.allowErrors) assertClean(notebook, result);
  return result;
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
 * ```ts ignore
 * import { assertClean } from "./notebook_runner.ts";
 * assertClean("demo.ipynb", executed);
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
  for (const s of nb.stray) problems.push(`a ${s.msg_type} message was lost (cell ${s.cell})`);
  if (problems.length) throw new Error(`${notebook}:\n${problems.join("\n\n")}`);
}

function joined(text: string | string[]): string {
  return Array.isArray(text) ? text.join("") : text;
}
