/**
 * `deno task NAME` runs the command as a child of Deno's task runner, which forwards SIGINT,
 * SIGTERM and SIGHUP but cannot forward SIGKILL. The command watches its parent
 * (`followTaskRunner`, tasks/run_task.ts): `kill -9` of the runner must end the command too,
 * and a command not started by `deno task` must not watch at all.
 */
import { equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../helpers/temp.ts";

const CHILD = new URL("./task_child.ts", import.meta.url).pathname;

/** True while process `pid` exists and is not a zombie. */
async function alive(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => undefined);
  return stat !== undefined && !/^\d+ \(.*\) Z/.test(stat);
}

/** Polls `check` every 50 ms until it holds or `ms` pass (polling, not ordering). */
async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return await check();
}

Deno.test("kill -9 of `deno task` ends the command it started", async () => {
  await using dir = await tempDir();
  const marker = join(dir.path, "pid");
  await Deno.writeTextFile(
    join(dir.path, "deno.json"),
    JSON.stringify({ tasks: { child: `deno run -A ${CHILD} ${marker}` } }),
  );
  const runner = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "child"],
    cwd: dir.path,
    stdout: "null",
    stderr: "null",
  }).spawn();
  let pid = 0;
  try {
    const started = await until(async () => {
      pid = Number(await Deno.readTextFile(marker).catch(() => "0"));
      return pid > 0;
    }, 60_000);
    assert(started, "the command never started");
    assert(await alive(pid), `the command ${pid} is not running`);
    runner.kill("SIGKILL");
    equal((await runner.status).signal, "SIGKILL");
    // The command checks its parent every 250 ms; allow for a loaded machine.
    assert(await until(async () => !(await alive(pid)), 30_000), `the command ${pid} kept running`);
  } finally {
    if (pid > 0 && await alive(pid)) Deno.kill(pid, "SIGKILL");
  }
});
