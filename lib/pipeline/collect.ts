/**
 * Results of many runs and seeds in one tidy table: one row per run × method × RI × task,
 * with the run's settings in every row, ready for a data frame, a spreadsheet or a plot.
 * `deno task collect` writes it as CSV and JSON lines; {@linkcode collectResults} returns the
 * rows. Any `results.json` is accepted (old snake_case row names included).
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { normaliseRow, type StudyData } from "./results.ts";

/** One tidy row: a run's setting, one merged model (or expert, θ0) and one task. */
export interface TidyRow {
  /** The run's name (its folder). */
  run: string;
  /** Task suite. */
  suite: string;
  /** Seed. */
  seed: number;
  /** Auxiliary source. */
  aux: string;
  /** RI steps per expert. */
  steps: number;
  /** RI learning rate (from the run's configuration; NaN when absent). */
  lr: number;
  /** Distance RI minimised. */
  distance: string;
  /** Merge method, or `expert` / `base` for the reference models. */
  method: string;
  /** Merged from RI-adapted task vectors. */
  ri: boolean;
  /** Merge + Distill_Aux. */
  distill: boolean;
  /** Task name. */
  task: string;
  /** Accuracy on the task, in [0, 1]. */
  accuracy: number;
  /** Accuracy divided by the task's expert's. */
  normalised: number;
  /** ξi on the task (NaN for the reference models). */
  xi: number;
}

/** The column order of the CSV (and the keys of every row). */
export const TIDY_COLUMNS: readonly (keyof TidyRow)[] = [
  "run",
  "suite",
  "seed",
  "aux",
  "steps",
  "lr",
  "distance",
  "method",
  "ri",
  "distill",
  "task",
  "accuracy",
  "normalised",
  "xi",
];

/**
 * The tidy rows of one run's results.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { tidyRows } from "./collect.ts";
 * const rows = tidyRows("r", {
 *   suite: "mf4", seed: 0, backend: "wasm", adapter: "", aux: "shapes", steps: 10, zoo: "",
 *   config: { lr: 3e-4, distance: "kl" }, experts: { a: 0.5 }, base: { a: 0.25 }, seconds: {},
 *   rows: [{ method: "ties", ri: true, avgAccuracy: 0.25, avgNormalised: 0.5, xi: 0.2,
 *     accuracyByTask: { a: 0.25 }, xiByTask: { a: 0.2 }, params: {} }],
 * });
 * equal(rows.length, 3); // expert, θ0, ties + RI
 * equal(rows[2].normalised, 0.5);
 * ```
 */
export function tidyRows(run: string, data: StudyData): TidyRow[] {
  const config = data.config ?? {};
  const common = {
    run,
    suite: data.suite,
    seed: data.seed,
    aux: data.aux,
    steps: data.steps,
    lr: Number(config.lr ?? NaN),
    distance: String(config.distance ?? ""),
  };
  const tasks = Object.keys(data.experts);
  const out: TidyRow[] = [];
  const reference = (method: string, byTask: Record<string, number>) => {
    for (const task of tasks) {
      const accuracy = byTask[task];
      out.push({
        ...common,
        method,
        ri: false,
        distill: false,
        task,
        accuracy,
        normalised: accuracy / data.experts[task],
        xi: method === "expert" ? 0 : NaN,
      });
    }
  };
  reference("expert", data.experts);
  reference("base", data.base);
  for (const raw of data.rows) {
    const row = normaliseRow(raw);
    for (const task of tasks) {
      const accuracy = row.accuracyByTask[task];
      out.push({
        ...common,
        method: row.method,
        ri: row.ri,
        distill: !!row.distill,
        task,
        accuracy,
        normalised: accuracy / data.experts[task],
        xi: row.xiByTask?.[task] ?? NaN,
      });
    }
  }
  return out;
}

/**
 * Reads every `results.json` among `paths` (files, run folders, or folders searched
 * recursively) and returns their tidy rows, runs in path order. Throws naming a file that is
 * not a study's results.
 *
 * @example
 * ```ts ignore
 * const rows = await collectResults(["runs"]);
 * ```
 */
export async function collectResults(paths: readonly string[]): Promise<TidyRow[]> {
  const files: string[] = [];
  for (const path of paths) files.push(...await resultFiles(path));
  if (files.length === 0) throw new Error(`no results.json under ${paths.join(", ")}`);
  const rows: TidyRow[] = [];
  for (const file of files) {
    let data: StudyData;
    try {
      data = JSON.parse(await Deno.readTextFile(file)) as StudyData;
    } catch (error) {
      throw new Error(`${file}: not readable JSON (${(error as Error).message})`);
    }
    if (!Array.isArray(data.rows) || typeof data.experts !== "object") {
      throw new Error(`${file}: not a study's results.json (no rows or experts)`);
    }
    // A run folder's results.json is named by its folder; another file by its own name.
    const run = basename(file) === "results.json"
      ? basename(dirname(file))
      : basename(file).replace(/\.json$/i, "");
    rows.push(...tidyRows(run, data));
  }
  return rows;
}

async function resultFiles(path: string): Promise<string[]> {
  const info = await Deno.stat(path);
  if (info.isFile) return [path];
  const found: string[] = [];
  const walk = async (dir: string) => {
    const entries = [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (e.isFile && e.name === "results.json") found.push(join(dir, e.name));
      else if (e.isDirectory) await walk(join(dir, e.name));
    }
  };
  await walk(path);
  return found;
}

/**
 * Tidy rows as CSV (header line, then one line per row; fields quoted when needed).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { toCsv } from "./collect.ts";
 * equal(toCsv([]).split("\n")[0].startsWith("run,suite,seed"), true);
 * ```
 */
export function toCsv(rows: readonly TidyRow[]): string {
  const field = (v: unknown) => {
    const s = typeof v === "number" && !Number.isFinite(v) ? "" : String(v);
    return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const lines = [TIDY_COLUMNS.join(",")];
  for (const row of rows) lines.push(TIDY_COLUMNS.map((c) => field(row[c])).join(","));
  return lines.join("\n") + "\n";
}

/**
 * Tidy rows as JSON lines (NaN written as null).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { toJsonLines } from "./collect.ts";
 * equal(toJsonLines([]), "");
 * ```
 */
export function toJsonLines(rows: readonly TidyRow[]): string {
  return rows.map((r) => JSON.stringify(r, (_, v) => (Number.isNaN(v) ? null : v)) + "\n").join("");
}
