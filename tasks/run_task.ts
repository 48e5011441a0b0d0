/**
 * The entry point the study commands share (`deno task merge`, `deno task ri`).
 *
 * @module
 */
import { InterruptedError } from "../lib/train/interrupt.ts";
import { ensureRunPackages } from "./system_packages.ts";

/**
 * Installs the run packages, runs `main` on the command line's arguments and exits with its
 * status. An error prints one `error:` line and exits 1; Ctrl-C during training (its state
 * saved, an {@linkcode InterruptedError}) is not an error: `stopped:` and 128 + SIGINT = 130.
 *
 * @example
 * ```ts ignore
 * import { runTask } from "./run_task.ts";
 * if (import.meta.main) await runTask(async (args) => (console.log(args), 0));
 * ```
 */
export async function runTask(main: (args: string[]) => Promise<number>): Promise<never> {
  try {
    await ensureRunPackages();
    Deno.exit(await main(Deno.args));
  } catch (err) {
    const stopped = err instanceof InterruptedError;
    console.error(`${stopped ? "stopped" : "error"}: ${(err as Error).message}`);
    Deno.exit(stopped ? 130 : 1);
  }
}
