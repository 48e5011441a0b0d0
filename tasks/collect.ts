/**
 * `deno task collect [PATH…] [--out FILE]`: one tidy table of the results of many runs and
 * seeds (one row per run × method × RI × task, with the run's settings), from every
 * `results.json` under the paths (default: the checkout's runs folder). Writes CSV, or JSON
 * lines when FILE ends in `.jsonl`; without `--out`, CSV on standard output.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { collectResults, toCsv, toJsonLines } from "../lib/pipeline/collect.ts";
import { resolveStudyConfig, runsRoot } from "../lib/pipeline/config.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("usage: deno task collect [PATH…] [--out table.csv|table.jsonl]");
    return 0;
  }
  const paths = positionals.length ? positionals : [runsRoot(resolveStudyConfig({}).out)];
  const rows = await collectResults(paths);
  const text = values.out?.endsWith(".jsonl") ? toJsonLines(rows) : toCsv(rows);
  if (!values.out) {
    await Deno.stdout.write(new TextEncoder().encode(text));
    return 0;
  }
  await writeFileAtomic(values.out, text);
  const runs = new Set(rows.map((r) => r.run)).size;
  console.error(`${values.out}: ${rows.length} rows from ${runs} runs`);
  return 0;
}

// Guarded so that `deno test --doc` can load this file without running it.
if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`deno task collect: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
