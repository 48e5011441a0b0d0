/**
 * Checks a run folder after a command was killed: every safetensors file (single or sharded)
 * must open and read in full, every JSON file must parse, nothing may be empty. Temporary files
 * of atomic writes (`*.tmp`, never read by anything) are listed apart: a killed write leaves
 * one behind, which is not a partial output.
 *
 * @module
 */
import { join } from "node:path";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { filesUnder } from "./files.ts";

/** What {@linkcode checkRunFolder} found. */
export interface RunFolderCheck {
  /** Output files that opened and read in full. */
  complete: string[];
  /** Temporary files left by writes that never committed. */
  temporary: string[];
  /** Files that are partial or unreadable, with the reason. */
  problems: string[];
}

/**
 * Opens and reads every output file under `dir`.
 *
 * @example
 * ```ts
 * import { checkRunFolder } from "./run_folder.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/results.json`, "{");
 * console.log((await checkRunFolder(dir)).problems); // ["results.json: …"]
 * ```
 */
export async function checkRunFolder(dir: string): Promise<RunFolderCheck> {
  const out: RunFolderCheck = { complete: [], temporary: [], problems: [] };
  for (const file of await filesUnder(dir)) {
    if (file.endsWith(".tmp")) {
      out.temporary.push(file);
      continue;
    }
    try {
      await checkFile(join(dir, file));
      out.complete.push(file);
    } catch (err) {
      out.problems.push(`${file}: ${(err as Error).message}`);
    }
  }
  return out;
}

async function checkFile(path: string): Promise<void> {
  if (path.endsWith(".safetensors")) {
    using file = await SafetensorsReader.open(path);
    for (const name of file.names()) await file.read(name);
    return;
  }
  const bytes = await Deno.readFile(path);
  if (bytes.length === 0) throw new Error("empty");
  if (path.endsWith(".json")) JSON.parse(new TextDecoder().decode(bytes));
}

/** How a run that may have been stopped ended. */
export interface StoppedRun {
  /** True when the process exited by itself (no signal ended it). */
  finished: boolean;
  /** Exit code (null when a signal ended it). */
  code: number | null;
  /** Whether the stop signal was sent. */
  signalled: boolean;
  /** Milliseconds from start to exit. */
  ms: number;
  /** Everything it printed (standard output, then standard error). */
  output: string;
}

/** When and how {@linkcode runScript} stops the process. */
export interface StopAt {
  /** Signal to send (default SIGKILL). */
  signal?: Deno.Signal;
  /** Send it this many milliseconds after the start ... */
  afterMs?: number;
  /** ... or as soon as this returns true (polled every 50 ms). */
  when?: () => Promise<boolean>;
}

/**
 * Runs `deno run -A SCRIPT ARGS` with progress printed as lines, and stops it as `stop` says
 * (never when absent). The script is run directly, not through `deno task`, whose runner
 * would take the signal and leave the child running.
 *
 * @example
 * ```ts ignore
 * const run = await runScript("tasks/ri.ts", ["--expert", "mnist"], { afterMs: 3000 });
 * ```
 */
export async function runScript(
  script: string,
  args: string[],
  stop?: StopAt,
  env: Record<string, string> = {},
): Promise<StoppedRun> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    env: { RI_PROGRESS: "lines", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let signalled = false, exited = false;
  const send = () => {
    if (exited || signalled) return;
    signalled = true;
    child.kill(stop?.signal ?? "SIGKILL");
  };
  const timer = stop?.afterMs === undefined ? undefined : setTimeout(send, stop.afterMs);
  const poll = async () => {
    while (stop?.when && !exited && !signalled) {
      if (await stop.when()) send();
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const [status, stdout, stderr] = await Promise.all([
    child.status.finally(() => exited = true),
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    poll(),
  ]);
  clearTimeout(timer);
  return {
    finished: status.signal === null,
    code: status.signal === null ? status.code : null,
    signalled,
    ms: performance.now() - started,
    output: stdout + stderr,
  };
}

/**
 * The step saved in a training state file (`step` in its metadata), or 0 when there is none.
 *
 * @example
 * ```ts
 * import { stateStep } from "./run_folder.ts";
 * console.log(await stateStep("/nonexistent/state.safetensors")); // 0
 * ```
 */
export async function stateStep(path: string): Promise<number> {
  try {
    await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
  using file = await SafetensorsReader.open(path);
  return Number(file.metadata.step);
}

/**
 * The first step each progress bar reported in a run's output, by label: `RI mnist  25%
 * 7/24 …` gives `{ "RI mnist": 7 }`. A run resumed from a state saved after step k reports
 * k + 1 first (`lines` progress shows its first update at once).
 *
 * @example
 * ```ts
 * import { firstSteps } from "./run_folder.ts";
 * firstSteps("RI mnist  25%  7/24  loss 0.3\nRI mnist  50%  12/24", ["RI mnist"]);
 * // { "RI mnist": 7 }
 * ```
 */
export function firstSteps(output: string, labels: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const label of labels) {
    const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const match = output.match(new RegExp(`^${escaped}\\s+\\d+%\\s+(\\d+)/\\d+`, "m"));
    if (match) out[label] = Number(match[1]);
  }
  return out;
}

/**
 * The step saved in each task's RI state in a run folder (`state/ri-TASK.safetensors`; 0 when
 * there is none).
 *
 * @example
 * ```ts
 * import { savedSteps } from "./run_folder.ts";
 * console.log(await savedSteps("/nonexistent/run", ["mnist"])); // { mnist: 0 }
 * ```
 */
export async function savedSteps(runDir: string, tasks: string[]): Promise<Record<string, number>> {
  const steps: Record<string, number> = {};
  for (const task of tasks) {
    steps[task] = await stateStep(join(runDir, "state", `ri-${task}.safetensors`));
  }
  return steps;
}

/**
 * Checks that a run resumed every task whose RI state was saved before it started: its first
 * progress line (`RI TASK … k/STEPS`) must be the saved step + 1, or the last step for a state
 * of the last step (nothing left to do). Tasks the run never reached are skipped. Returns how
 * many tasks resumed from a saved step.
 *
 * @example
 * ```ts
 * import { assertResumed } from "./run_folder.ts";
 * assertResumed("RI mnist  50%  9/16", { mnist: 8 }, 16); // 1
 * ```
 */
export function assertResumed(
  output: string,
  saved: Record<string, number>,
  steps: number,
): number {
  const tasks = Object.keys(saved);
  const first = firstSteps(output, tasks.map((t) => `RI ${t}`));
  let resumed = 0;
  for (const task of tasks) {
    const seen = first[`RI ${task}`];
    if (seen === undefined) continue;
    const expected = Math.min(saved[task] + 1, steps);
    if (seen !== expected) {
      throw new Error(`RI ${task} started at step ${seen}, but step ${saved[task]} was saved`);
    }
    if (saved[task] > 0) resumed++;
  }
  return resumed;
}
