/**
 * A command for the task-runner test: runs through `runTask` (as `deno task merge` does), writes
 * its process id to the file it is given, then waits ten minutes, so that only the parent watch
 * can end it early.
 *
 * @module
 */
import { runTask } from "../../tasks/run_task.ts";

if (import.meta.main) {
  await runTask(async ([marker]) => {
    await Deno.writeTextFile(marker, String(Deno.pid));
    await new Promise((resolve) => setTimeout(resolve, 600_000));
    return 0;
  });
}
