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

/** How a killed run ended. */
export interface KilledRun {
  /** True when the process finished before the kill. */
  finished: boolean;
  /** Exit code (null when killed). */
  code: number | null;
  /** Everything it printed. */
  output: string;
}

/**
 * Runs `deno run -A SCRIPT ARGS` and sends SIGKILL after `killAfterMs` (never when undefined).
 * The script is run directly, not through `deno task`, whose runner would die and leave the
 * child running.
 *
 * @example
 * ```ts ignore
 * const run = await runAndKill("tasks/ri.ts", ["--expert", "mnist"], {}, 3000);
 * ```
 */
export async function runAndKill(
  script: string,
  args: string[],
  env: Record<string, string>,
  killAfterMs?: number,
): Promise<KilledRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    env: { RI_PROGRESS: "off", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = killAfterMs === undefined
    ? undefined
    : setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  const [status, stdout, stderr] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  clearTimeout(timer);
  const killed = status.signal === "SIGKILL";
  return { finished: !killed, code: killed ? null : status.code, output: stdout + stderr };
}
