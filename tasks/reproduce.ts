/**
 * `deno task reproduce [--parts main,aux,distance,sweeps,distill,tasks,unseen] [study flags]`: runs
 * the experiments behind docs/REPRODUCTION.md (resumable: finished runs are reused) and
 * writes the report to `runs/REPRODUCTION.md` (or `--report PATH`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { reproduce, type ReproducePart } from "../lib/pipeline/reproduce.ts";
import { ensureRunPackages } from "./system_packages.ts";
import { followTaskRunner } from "./run_task.ts";

const PARTS = ["main", "aux", "distance", "sweeps", "distill", "tasks", "unseen"];

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      parts: { type: "string" },
      report: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      steps: { type: "string" },
      suite: { type: "string" },
    },
  });
  const parts = values.parts?.split(",").map((p) => p.trim());
  const bad = parts?.find((p) => !PARTS.includes(p));
  if (bad) throw new Error(`unknown part "${bad}": expected some of ${PARTS.join(", ")}`);
  const base: Record<string, unknown> = {};
  for (const key of ["seed", "steps", "suite"] as const) if (values[key]) base[key] = values[key];
  await reproduce({
    base,
    parts: parts as ReproducePart[],
    report: values.report,
    out: values.out,
  });
  return 0;
}

// Guarded so that `deno test --doc` can load this file without running it.
if (import.meta.main) {
  followTaskRunner();
  try {
    await ensureRunPackages();
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
