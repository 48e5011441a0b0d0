/**
 * The entry point the long-running commands share (`deno task merge`, `deno task ri`, and the
 * parent watch of `deno task zoo` and `deno task reproduce`).
 *
 * `deno task NAME` runs the command as a child process of Deno's task runner. The runner
 * forwards SIGINT, SIGTERM and SIGHUP to it, but nothing can forward SIGKILL: `kill -9` of the
 * runner would leave the command running, unseen, to its end. So the command watches its
 * parent ({@linkcode followTaskRunner}): when the runner is gone it stops itself exactly as
 * Ctrl-C would (a training loop saves its state after its current step; anything else ends at
 * once), and every file it writes is atomic, so it leaves nothing partial.
 *
 * @module
 */
import { InterruptedError } from "../lib/train/interrupt.ts";
import { ensureRunPackages } from "./system_packages.ts";

/**
 * Installs the run packages, follows the task runner, runs `main` on the command line's
 * arguments and exits with its status. An error prints one `error:` line and exits 1; Ctrl-C
 * during training (its state saved, an {@linkcode InterruptedError}) is not an error:
 * `stopped:` and 128 + SIGINT = 130.
 *
 * @example
 * ```ts ignore
 * import { runTask } from "./run_task.ts";
 * if (import.meta.main) await runTask(async (args) => (console.log(args), 0));
 * ```
 */
export async function runTask(main: (args: string[]) => Promise<number>): Promise<never> {
  followTaskRunner();
  try {
    await ensureRunPackages();
    Deno.exit(await main(Deno.args));
  } catch (err) {
    const stopped = err instanceof InterruptedError;
    console.error(`${stopped ? "stopped" : "error"}: ${(err as Error).message}`);
    Deno.exit(stopped ? 130 : 1);
  }
}

/** How often the parent is checked, in milliseconds. */
const WATCH_MS = 250;

/**
 * When this process was started by `deno task` (its parent is Deno's task runner), checks the
 * parent every 250 ms and, once it is gone (killed, even by SIGKILL), sends this process SIGINT:
 * the same stop as Ctrl-C. Returns a function that stops watching, or undefined when the parent
 * is not a task runner (a plain `deno run`, a test, a notebook) or cannot be told (no `/proc`).
 * The check never keeps the process alive.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { followTaskRunner } from "./run_task.ts";
 * equal(followTaskRunner(), undefined); // under `deno test`, not `deno task`
 * ```
 */
export function followTaskRunner(): (() => void) | undefined {
  const parent = Deno.ppid;
  if (!isTaskRunner(parent)) return undefined;
  const timer = setInterval(() => {
    if (Deno.ppid === parent) return;
    clearInterval(timer);
    console.error(
      `stopping: the task runner (process ${parent}) that started this command is gone`,
    );
    Deno.kill(Deno.pid, "SIGINT");
  }, WATCH_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** True when process `pid` is Deno's task runner (`deno [flags] task …`), as /proc tells. */
function isTaskRunner(pid: number): boolean {
  let argv: string[];
  try {
    argv = new TextDecoder().decode(Deno.readFileSync(`/proc/${pid}/cmdline`)).split("\0");
  } catch {
    return false;
  }
  const command = argv.slice(1).find((a) => !a.startsWith("-"));
  return /(^|\/)deno$/.test(argv[0] ?? "") && command === "task";
}
