/**
 * `deno task zoo [--suite mf8] [--seed N] [--backend wasm|webgpu|…] [--cache DIR] [--check]`:
 * builds or reuses the built-in benchmark's model zoo (θ0, heads, experts) and prints its
 * validity properties: per task the expert, θ0 + head, Task Arithmetic and the best merge;
 * every merge method's mean; ‖τ‖/‖θ0‖ and the task vectors' mean pairwise cosine; and
 * BENCHMARK.md's four criteria. With `--check` it exits with status 2 when a criterion is
 * missed, naming it. A thin wrapper over `loadZoo`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { describeEngine, initEngine, parseBackendName } from "../lib/engine/backend.ts";
import { type SuiteName, SUITES } from "../lib/data/tasks.ts";
import { loadZoo } from "../lib/zoo/zoo.ts";
import { ensureRunPackages } from "./system_packages.ts";
import { followTaskRunner } from "./run_task.ts";

const USAGE = `usage: deno task zoo [--suite ${Object.keys(SUITES).join("|")}] [--seed N]
                     [--backend auto|wasm|webgpu|cpu|tensorflow] [--cache DIR] [--check]

Builds (or reuses, from RI_CACHE or .cache) θ0, one head and one expert per task, and prints
each expert's accuracy, θ0 with the heads, every registered merge at its defaults, ‖τ‖/‖θ0‖,
the task vectors' mean pairwise cosine and BENCHMARK.md's four criteria:
  experts − (θ0 + heads) ≥ 15, Task Arithmetic ≥ (θ0 + heads) + 5,
  best merge ≥ (θ0 + heads) + 10, best merge ≤ experts − 5 (mean top-1 points).
--check: exit with status 2 when a criterion is missed (the message names it).`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      suite: { type: "string", default: "mf8" },
      seed: { type: "string", default: "0" },
      backend: { type: "string" },
      cache: { type: "string" },
      check: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!(values.suite in SUITES)) throw new Error(`unknown suite "${values.suite}"\n${USAGE}`);
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const engine = await initEngine({
    backend: values.backend ? parseBackendName(values.backend) : undefined,
  });
  console.error(describeEngine(engine));
  const zoo = await loadZoo({ suite: values.suite as SuiteName, seed, root: values.cache });
  console.log(`zoo ${zoo.dir}`);
  console.log(zoo.toString());
  const t = zoo.times;
  console.log(
    `time: ${t.total.toFixed(1)} s (pretraining ${t.pretrain.toFixed(1)} s, heads ` +
      `${t.heads.toFixed(1)} s, experts ${t.experts.toFixed(1)} s, evaluation ` +
      `${t.evaluation.toFixed(1)} s; 0 = reused from the cache)`,
  );
  zoo.dispose();
  const missed = zoo.properties.missed;
  if (values.check && missed.length) {
    const what = missed.map((c) =>
      `${c.key} (${c.text} = ${c.value.toFixed(1)}, need ≥ ${c.threshold})`
    );
    console.error(`check failed: ${what.join("; ")}`);
    return 2;
  }
  if (values.check) console.log("check: all four criteria met");
  return 0;
}

// Guarded so that `deno test --doc` can load this file without building a zoo.
if (import.meta.main) {
  followTaskRunner();
  await ensureRunPackages();
  Deno.exit(await main(Deno.args));
}
