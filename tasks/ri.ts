/**
 * `deno task ri --expert NAME [study flags]`: adapts one expert (or several, comma-separated)
 * with RI and writes its adapted task vector into the run folder. The unit of work for
 * running experts in parallel on many machines; `deno task merge` with the same flags then
 * finds them done and merges.
 *
 * ```sh
 * deno task ri --expert mnist --suite mf4 --steps 50
 * ```
 *
 * @module
 */
import { parseStudyArgs, studyFlags } from "../lib/pipeline/cli.ts";
import { adaptExperts, runPaths } from "../lib/pipeline/study.ts";
import { runTask } from "./run_task.ts";

const USAGE = `usage: deno task ri --expert NAME[,NAME...] [--config FILE] [flags]
flags: ${studyFlags().map((f) => `--${f}`).join(" ")}`;

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const { config, rest } = await parseStudyArgs(args, ["expert"]);
  if (!rest.expert) throw new Error("--expert is required (usage: deno task ri --help)");
  const tasks = rest.expert.split(",").map((s) => s.trim()).filter(Boolean);
  await adaptExperts(config, tasks);
  console.log(`run folder: ${runPaths(config).dir}`);
  return 0;
}

// Guarded so that `deno test --doc` can load this file without running it.
if (import.meta.main) await runTask(main);
