/**
 * `deno task merge`: without a method, runs the RI study on the built-in benchmark (every
 * registered method with and without RI; see lib/pipeline/study.ts); with `--method`, merges
 * expert checkpoints with a registered method.
 *
 * ```sh
 * deno task merge                                  # the study on mf8, defaults
 * deno task merge --suite mf4 --steps 50           # a quick study
 * deno task merge --seeds 0,1,2                    # the study per seed, then mean ± sd
 * deno task merge --method ties --param k=20 --param merge=mean --scaling 1 \
 *   --base base.safetensors --experts mnist.safetensors svhn.safetensors --out merged.safetensors
 * deno task merge --list                 # every method, its defaults and their sources
 * deno task merge --list --method ties   # one method
 * ```
 *
 * This file only parses arguments and dispatches to the library (`mergeCheckpoints`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseWritableDType } from "../lib/io/dtype.ts";
import { mergeCheckpoints } from "../lib/merge/files.ts";
import type { MergeProgress } from "../lib/merge/method.ts";
import { parseParamArgs } from "../lib/merge/params.ts";
import { describeMethod, describeRegistry, getMethod } from "../lib/merge/registry.ts";
import { linalgInfo } from "../lib/linalg/openblas.ts";
import { type Progress, progress } from "../lib/display/progress.ts";
import { runTask } from "./run_task.ts";
import { flagError, joinNegativeNumbers } from "../lib/pipeline/flags.ts";

const USAGE = `usage:
  deno task merge [STUDY FLAGS]      run the RI study (every method, with and without RI)
  deno task merge --seeds 0,1,2 [STUDY FLAGS]
                                     the study once per seed (finished runs reused), then
                                     mean ± sd over the seeds (aggregate.json)
  deno task merge --method NAME [--param k=v ...] [--scaling A] [--task-scales w1,w2,...]
                  --base PATH --experts PATH... --out PATH [--dtype F32|F16|BF16|F64]
                  [--max-shard-bytes N] [--skip-base-check]
  deno task merge --list [--method NAME]

STUDY FLAGS: (listed by --help)

--experts takes several paths (or repeat it), or one directory of expert checkpoints.
--skip-base-check merges experts that look unrelated to the base (‖θ − θ0‖ > 0.5·‖θ0‖).`;

const OPTIONS = {
  method: { type: "string" },
  param: { type: "string", multiple: true },
  scaling: { type: "string" },
  "task-scales": { type: "string" },
  base: { type: "string" },
  experts: { type: "string", multiple: true },
  out: { type: "string" },
  dtype: { type: "string" },
  "max-shard-bytes": { type: "string" },
  "skip-base-check": { type: "boolean" },
  list: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Where the usage is, for one-line errors. */
const HELP = "deno task merge --help";

/** parseArgs (negative numbers taken as values), failing in one line that lists the flags. */
function parseFlags(args: string[]) {
  try {
    return parseArgs({
      args: joinNegativeNumbers(args, OPTIONS),
      options: OPTIONS,
      allowPositionals: true,
    });
  } catch (err) {
    throw flagError(err, Object.keys(OPTIONS), HELP);
  }
}

function number(flag: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) {
    throw new Error(`--${flag} ${text}: expected a number`);
  }
  return n;
}

function bytes(flag: string, text: string): number {
  const n = number(flag, text);
  if (!(n > 0)) throw new Error(`--${flag} ${text}: expected a positive number of bytes`);
  return n;
}

function required(flag: string, value: string | undefined): string {
  if (!value) throw new Error(`--${flag} is required (usage: ${HELP})`);
  return value;
}

/** One progress bar per pass, replaced when the pass changes. */
function progressPrinter(): { report: (p: MergeProgress) => void; finish: () => Promise<void> } {
  let bar: Progress | undefined;
  let phase = "";
  return {
    report: (p) => {
      if (p.phase !== phase) {
        void bar?.done();
        phase = p.phase;
        bar = progress(p.phase, p.total);
      }
      bar?.update(p.done, { tensor: p.tensor ?? "" });
    },
    finish: async () => await bar?.done(),
  };
}

/** This process's peak resident memory (VmHWM) in MiB, where /proc reports it. */
async function peakMemoryMiB(): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile("/proc/self/status");
    const kib = status.match(/^VmHWM:\s+(\d+) kB/m)?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined;
  }
}

/** Flags that select the checkpoint mode; without any of them the study runs. */
const CHECKPOINT_FLAGS = ["--method", "--base", "--experts", "--list", "--param"];

async function main(args: string[]): Promise<number> {
  const checkpointMode = args.some((a) => CHECKPOINT_FLAGS.includes(a.split("=")[0]));
  if (!checkpointMode && !args.includes("--help") && !args.includes("-h")) {
    return await study(args);
  }
  const { values, positionals } = parseFlags(args);
  if (values.help) {
    const { studyFlags } = await import("../lib/pipeline/cli.ts");
    console.log(
      USAGE.replace(
        "(listed by --help)",
        `${studyFlags().map((f) => `--${f}`).join(" ")} --config FILE --seeds LIST`,
      ),
    );
    return 0;
  }
  if (values.list) {
    console.log(values.method ? describeMethod(values.method) : describeRegistry());
    return 0;
  }
  const method = getMethod(required("method", values.method));
  if (method.usesLinalg) {
    const { path, detail } = linalgInfo();
    console.log(`linear algebra: ${path} (${detail})`);
  }
  const experts = [...(values.experts ?? []), ...positionals];
  if (experts.length === 0) throw new Error(`--experts is required (usage: ${HELP})`);
  const printer = progressPrinter();
  const start = performance.now();
  const result = await mergeCheckpoints({
    method: method.name,
    params: parseParamArgs(values.param ?? []),
    scaling: values.scaling === undefined ? undefined : number("scaling", values.scaling),
    taskScales: values["task-scales"]?.split(",").map((w) => number("task-scales", w)),
    base: required("base", values.base),
    experts: experts.length === 1 ? experts[0] : experts,
    out: required("out", values.out),
    dtype: values.dtype === undefined ? undefined : parseWritableDType(values.dtype),
    maxShardBytes: values["max-shard-bytes"] === undefined
      ? undefined
      : bytes("max-shard-bytes", values["max-shard-bytes"]),
    checkBase: !values["skip-base-check"],
    progress: printer.report,
  });
  await printer.finish();
  for (const warning of result.warnings) console.error(`warning: ${warning}`);
  if (result.leftovers.length > 0) {
    console.error(
      `removed what an interrupted earlier write left: ${result.leftovers.join(", ")}`,
    );
  }
  const { summary } = result;
  const written = result.perTask
    ? `one model per task: ${result.perTask.map((t) => `${t.task} → ${t.path}`).join(", ")}`
    : result.path;
  console.log(
    `merged ${summary.tasks.length} experts with ${summary.method} ` +
      `${JSON.stringify(summary.params)} → ${written} (${result.dtype})`,
  );
  if (Object.keys(summary.notes).length > 0) console.log(`notes: ${JSON.stringify(summary.notes)}`);
  if (result.carried.length > 0) {
    console.log(`carried over from the base (not floating point): ${result.carried.join(", ")}`);
  }
  const peak = await peakMemoryMiB();
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  console.log(
    `time ${seconds} s` +
      (peak === undefined ? "" : `, peak memory (VmHWM) ${peak.toFixed(0)} MiB`),
  );
  return 0;
}

/** The RI study: every method with and without RI on a built-in zoo. */
async function study(args: string[]): Promise<number> {
  // Imported here: the study loads TensorFlow.js, which a checkpoint merge never needs (and
  // whose memory would count in the streaming merge's peak).
  const { parseStudyArgs } = await import("../lib/pipeline/cli.ts");
  const { runStudy } = await import("../lib/pipeline/study.ts");
  const { parseSeeds, runSeeds } = await import("../lib/pipeline/seeds.ts");
  const { config, rest } = await parseStudyArgs(args, ["seeds"]);
  const started = performance.now();
  if (rest.seeds !== undefined) {
    // One study per seed (finished ones reused), then mean ± sd over the seeds.
    const aggregate = await runSeeds(config, parseSeeds(rest.seeds));
    console.log(`\n${aggregate.table().toText()}`);
    const unseen = aggregate.unseenTable();
    if (unseen) console.log(`\n${unseen.toText()}`);
  } else {
    const results = await runStudy(config);
    console.log(`\n${results.table().toText()}`);
    const unseen = results.unseenTable();
    if (unseen) console.log(`\n${unseen.toText()}`);
  }
  console.log(`done in ${((performance.now() - started) / 60_000).toFixed(1)} min`);
  return 0;
}

// Guarded so that `deno test --doc` can load this file without running it.
if (import.meta.main) await runTask(main);
