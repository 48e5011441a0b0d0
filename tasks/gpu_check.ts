/**
 * `deno task gpu-check`: probes the WebGPU adapter, runs a training step, an RI step and an
 * evaluation on WebGPU and on wasm, checks that they agree, prints the throughput of each and
 * the speed-up, and writes the report as `gpu-check.json` and `gpu-check.txt` (bench/gpu_check.ts).
 * Exits 0 when they agree, 1 when they do not or no hardware adapter exists (docs/GPU.md says
 * how to get one seen): a software adapter (Mesa's llvmpipe) is refused unless `--software`.
 *
 * ```sh
 * deno task gpu-check                   # batch 128, 3 untimed + 10 timed iterations each
 * deno task gpu-check --quick           # batch 8, a smoke test (seconds, even on llvmpipe)
 * deno task gpu-check --steps 20 --out runs/gpu-check
 * deno task gpu-check --quick --software # no GPU: check the code path on a software adapter
 * ```
 *
 * This file only parses arguments and writes the report.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { gpuCheckText, runGpuCheck } from "../bench/gpu_check.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";

const USAGE =
  "usage: deno task gpu-check [--quick] [--software] [--steps N] [--warmup N] [--out DIR]";

function count(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} ${text}: expected an integer ≥ 1`);
  return n;
}

/**
 * The check's settings from the command line.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { gpuCheckOptions } from "./gpu_check.ts";
 * equal(gpuCheckOptions(["--quick"]).steps, 3);
 * ```
 */
export function gpuCheckOptions(args: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        quick: { type: "boolean", default: false },
        software: { type: "boolean", default: false },
        steps: { type: "string" },
        warmup: { type: "string" },
        out: { type: "string", default: join("runs", "gpu-check") },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
  const quick = values.quick;
  return {
    help: values.help ?? false,
    quick,
    software: values.software,
    steps: count("steps", values.steps, quick ? 3 : 10),
    warmup: count("warmup", values.warmup, quick ? 1 : 3),
    out: values.out,
  };
}

if (import.meta.main) {
  try {
    const options = gpuCheckOptions(Deno.args);
    if (options.help) {
      console.log(USAGE);
      Deno.exit(0);
    }
    const report = await runGpuCheck(options);
    const text = gpuCheckText(report);
    await Deno.mkdir(options.out, { recursive: true });
    await writeFileAtomic(join(options.out, "gpu-check.json"), JSON.stringify(report, null, 2));
    await writeFileAtomic(join(options.out, "gpu-check.txt"), text + "\n");
    console.log(text);
    console.log(`\nwrote ${join(options.out, "gpu-check.json")} and gpu-check.txt`);
    Deno.exit(report.ok ? 0 : 1);
  } catch (err) {
    console.error(`gpu-check: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
