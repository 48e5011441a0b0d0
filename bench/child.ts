/**
 * One workload of this project's side of `deno task bench`, in its own process (so that its
 * peak memory is its own): prints one JSON line (see `SideResult` in workloads.ts).
 *
 *     RI_BLAS_THREADS=T deno run -A bench/child.ts --workload NAME --data DIR \
 *         [--steps N] [--warmup W] [--out PATH] [--profile] [--backend wasm|webgpu]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { initEngine } from "../mod.ts";
import { blasThreads } from "../lib/linalg/openblas.ts";
import type { ModelSpec } from "./data.ts";
import { peakMemoryMiB } from "./machine.ts";
import { evaluate, mergeWorkload, riStep, type SideResult, vitTrain } from "./workloads.ts";

/**
 * Runs workload `name` on the harness's data in `dir`.
 *
 * @example
 * ```ts ignore
 * const result = await runWorkload("eval", dir, { steps: 3, warmup: 1 });
 * ```
 */
export async function runWorkload(
  name: string,
  dir: string,
  options: {
    steps: number;
    warmup: number;
    out?: string;
    profile?: boolean;
    backend?: "wasm" | "webgpu";
  },
): Promise<SideResult> {
  if (name.startsWith("merge_")) {
    if (!options.out) throw new Error(`${name}: --out is required`);
    return await mergeWorkload(name.slice("merge_".length), dir, options.out);
  }
  await initEngine({ backend: options.backend ?? "wasm" });
  const spec = JSON.parse(await Deno.readTextFile(`${dir}/spec.json`)) as ModelSpec;
  const steps = {
    steps: options.steps,
    warmup: Math.max(1, options.warmup),
    profile: options.profile,
  };
  // ri_step_b32 is ri_step on the ViT-B/32-geometry data (the harness gives that directory)
  const run = { vit_train: vitTrain, ri_step: riStep, eval: evaluate }[name.replace(/_b32$/, "")];
  if (!run) throw new Error(`unknown workload "${name}"`);
  return { ...await run(spec, dir, steps), workload: name };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      workload: { type: "string" },
      data: { type: "string" },
      steps: { type: "string", default: "5" },
      warmup: { type: "string", default: "2" },
      out: { type: "string" },
      profile: { type: "boolean", default: false },
      backend: { type: "string", default: "wasm" },
    },
  });
  if (values.backend !== "wasm" && values.backend !== "webgpu") {
    throw new Error(`--backend ${values.backend}: expected wasm or webgpu`);
  }
  if (!values.workload || !values.data) throw new Error("--workload and --data are required");
  const result = await runWorkload(values.workload, values.data, {
    steps: Number(values.steps),
    warmup: Number(values.warmup),
    out: values.out,
    profile: values.profile,
    backend: values.backend,
  });
  console.log(JSON.stringify({ ...result, threads: blasThreads(), peak_mib: peakMemoryMiB() }));
}
