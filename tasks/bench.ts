/**
 * `deno task bench`: every workload in this project and in PyTorch CPU (Debian python3-torch
 * through /usr/bin/python3) on the same data with the same thread count, alternating sides
 * over several processes; prints medians, ratios ours/PyTorch and peak memory (bench/).
 *
 * ```sh
 * deno task bench                         # model workloads + merges on 2 of ViT-B/32's 12 blocks
 * deno task bench --full                  # merges on the whole ViT-B/32 vision tower (minutes)
 * deno task bench --quick                 # tiny sizes, one process per side: a smoke test
 * deno task bench --threads 2 --reps 5 --only vit_train,merge_ties --profile --report out.md
 * deno task bench --webgpu on             # model workloads on WebGPU even on a software adapter
 * ```
 *
 * This file only parses arguments and calls the harness.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BenchOptions, MERGE_METHODS, MODEL_WORKLOADS, runBench } from "../bench/harness.ts";
import { formatMarkdown, formatText } from "../bench/report.ts";
import { machineInfo } from "../bench/machine.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";

const USAGE = `usage: deno task bench [--quick] [--full] [--threads N] [--reps N] [--merge-reps N]
                       [--steps N] [--warmup N] [--merge-layers N] [--only W1,W2,...]
                       [--no-merges] [--data DIR] [--profile] [--report FILE.md]
                       [--webgpu auto|on|off] [--b32-batch N]

With a hardware WebGPU adapter (a GPU) the model workloads also run on WebGPU (--webgpu auto,
the default); --webgpu on runs them on a software adapter too, --webgpu off never.
--b32-batch N: batch of vit_train_b32 and ri_step_b32 (default 32, which overflows the wasm
backend's 4 GiB heap; 16 fits).

workloads: ${[...MODEL_WORKLOADS, ...MERGE_METHODS.map((m) => `merge_${m}`)].join(", ")}`;

const OPTIONS = {
  quick: { type: "boolean", default: false },
  full: { type: "boolean", default: false },
  threads: { type: "string", default: "1" },
  reps: { type: "string" },
  "merge-reps": { type: "string" },
  steps: { type: "string" },
  warmup: { type: "string" },
  "merge-layers": { type: "string" },
  only: { type: "string" },
  "no-merges": { type: "boolean", default: false },
  data: { type: "string" },
  profile: { type: "boolean", default: false },
  report: { type: "string" },
  webgpu: { type: "string", default: "auto" },
  "b32-batch": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function count(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} ${text}: expected an integer ≥ 1`);
  return n;
}

/**
 * Options from the command line (defaults depend on --quick and --full).
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import { benchOptions } from "./bench.ts";
 * equal(benchOptions(["--full"]).mergeLayers, 12);
 * equal(benchOptions([]).mergeLayers, 2);
 * equal(benchOptions(["--quick"]).reps, 1);
 * equal(benchOptions(["--b32-batch", "16"]).b32Batch, 16);
 * throws(() => benchOptions(["--reps", "0"]), /--reps 0: expected an integer ≥ 1/);
 * ```
 */
export function benchOptions(args: string[]): BenchOptions & { report?: string } {
  const { values } = parseArgs({ args, options: OPTIONS, strict: true });
  const quick = values.quick;
  const all = [...MODEL_WORKLOADS, ...MERGE_METHODS.map((m) => `merge_${m}`)] as string[];
  let workloads = values.only ? values.only.split(",").map((w) => w.trim()) : all;
  for (const w of workloads) {
    if (!all.includes(w)) {
      throw new Error(`--only: unknown workload "${w}" (valid: ${all.join(", ")})`);
    }
  }
  if (values["no-merges"]) workloads = workloads.filter((w) => !w.startsWith("merge_"));
  const webgpu = values.webgpu;
  if (webgpu !== "auto" && webgpu !== "on" && webgpu !== "off") {
    throw new Error(`--webgpu ${webgpu}: expected auto, on or off\n\n${USAGE}`);
  }
  return {
    quick,
    threads: count("threads", values.threads, 1),
    b32Batch: count("b32-batch", values["b32-batch"], 32),
    reps: count("reps", values.reps, quick ? 1 : 5),
    // five processes per side give each ratio a spread; --merge-reps 1 for a quick look
    mergeReps: count("merge-reps", values["merge-reps"], quick ? 1 : 5),
    steps: count("steps", values.steps, quick ? 2 : 10),
    warmup: count("warmup", values.warmup, quick ? 1 : 3),
    mergeLayers: count("merge-layers", values["merge-layers"], values.full ? 12 : 2),
    workloads,
    dataDir: values.data,
    profile: values.profile,
    report: values.report,
    webgpu,
  };
}

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  let options: ReturnType<typeof benchOptions>;
  try {
    options = benchOptions(Deno.args);
  } catch (err) {
    // a bad command line is one line, not a stack trace
    console.error(`deno task bench: ${err instanceof Error ? err.message : err}`);
    Deno.exit(2);
  }
  const result = await runBench(options);
  console.log(formatText(result));
  if (options.report) {
    const command = ["deno task bench", ...Deno.args].join(" ");
    await writeFileAtomic(options.report, formatMarkdown(result, await machineInfo(), command));
    console.log(`\nreport written to ${options.report}`);
  }
}
