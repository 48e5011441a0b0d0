/**
 * Where the time of a ViT-tiny forward + backward (batch 128) goes, by kernel and by kind of
 * kernel, with tfjs's wasm kernels and with the OpenBLAS ones; optionally beside PyTorch's time
 * for the same computation (bench/py/vit_step.py).
 *
 *     ./deno run -A bench/profile_step.ts [--steps 10] [--batch 128] [--torch] [--top 15]
 *
 * Times are per step: the median and minimum wall time, the process's CPU time (every thread;
 * with `RI_BLAS_THREADS=1` it is the work done, and barely moved by other processes' load), and
 * the median over the profiled steps of each kernel's time from `tf.profile` (wall time of each
 * synchronous wasm/FFI kernel). The machine is shared with other work: compare numbers from the
 * same run.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import { initEngine } from "../mod.ts";
import { registerFastKernels, unregisterFastKernels } from "../lib/engine/kernels.ts";
import { vitStep } from "./vit_step.ts";

/** Kinds of kernels, for the summary. */
const KINDS: Record<string, string[]> = {
  "matrix products": ["BatchMatMul", "_FusedMatMul"],
  "reductions": ["Sum", "Mean", "Max", "Min", "Prod", "ArgMax"],
  "softmax": ["Softmax"],
  "elementwise": [
    "Add",
    "Sub",
    "Multiply",
    "RealDiv",
    "Sigmoid",
    "Erf",
    "Rsqrt",
    "Sqrt",
    "Square",
    "Pow",
    "Neg",
    "Exp",
    "Log",
    "Maximum",
    "Relu",
    "AddN",
    "SquaredDifference",
  ],
  "layout (transpose, copy)": [
    "Transpose",
    "Identity",
    "Reshape",
    "Concat",
    "Slice",
    "PadV2",
    "Cast",
    "SplitV",
    "Tile",
    "BroadcastTo",
    "Fill",
    "ZerosLike",
    "OnesLike",
  ],
};

/** Kernel name → kind ("other" when unlisted). */
export function kindOf(kernel: string): string {
  for (const [kind, names] of Object.entries(KINDS)) if (names.includes(kernel)) return kind;
  return "other";
}

/** Milliseconds per kernel name for one profiled step (wrapper scopes left out: they overlap). */
async function profileOnce(run: () => void): Promise<Map<string, number>> {
  const info = await tf.profile(run);
  const byName = new Map<string, number>();
  for (const k of info.kernels) {
    if (k.name === "unnamed scope") continue; // customGrad wrappers: their kernels are listed too
    byName.set(k.name, (byName.get(k.name) ?? 0) + Number(k.kernelTimeMs));
  }
  return byName;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}

async function measure(fast: boolean, steps: number, batch: number, top: number): Promise<void> {
  if (fast) registerFastKernels();
  else unregisterFastKernels();
  const step = vitStep(batch);
  for (let i = 0; i < 2; i++) step.run();
  const walls: number[] = [];
  const cpu0 = cpuUsage();
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step.run();
    walls.push(performance.now() - t0);
  }
  const cpu = cpuUsage(cpu0);
  const cpuPerStep = (cpu.user + cpu.system) / 1000 / steps;
  const profiles: Map<string, number>[] = [];
  for (let i = 0; i < steps; i++) profiles.push(await profileOnce(step.run));
  step.dispose();
  const names = new Set(profiles.flatMap((p) => [...p.keys()]));
  const perName = [...names].map((n) => [n, median(profiles.map((p) => p.get(n) ?? 0))] as const);
  const total = perName.reduce((s, [, t]) => s + t, 0);
  console.log(
    `\n${fast ? "wasm + OpenBLAS sgemm" : "wasm (tfjs kernels)"}: step median ` +
      `${median(walls).toFixed(1)} ms (min ${Math.min(...walls).toFixed(1)}), CPU time ` +
      `${cpuPerStep.toFixed(1)} ms/step (all threads), kernels ${total.toFixed(1)} ms`,
  );
  const byKind = new Map<string, number>();
  for (const [n, t] of perName) byKind.set(kindOf(n), (byKind.get(kindOf(n)) ?? 0) + t);
  for (const [kind, t] of [...byKind].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${kind.padEnd(26)} ${t.toFixed(1).padStart(7)} ms ${pct(t, total)}`);
  }
  console.log("  top kernels:");
  for (const [n, t] of [...perName].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`    ${n.padEnd(24)} ${t.toFixed(1).padStart(7)} ms ${pct(t, total)}`);
  }
}

function pct(part: number, total: number): string {
  return `${(100 * part / total).toFixed(1).padStart(5)}%`;
}

async function torchTime(steps: number, batch: number): Promise<string> {
  const script = new URL("./py/vit_step.py", import.meta.url).pathname;
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [script, "--threads", "2", "--steps", String(steps), "--batch", String(batch)],
    env: { OPENBLAS_NUM_THREADS: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      steps: { type: "string", default: "10" },
      batch: { type: "string", default: "128" },
      top: { type: "string", default: "15" },
      torch: { type: "boolean", default: false },
    },
  });
  const [steps, batch, top] = [values.steps, values.batch, values.top].map(Number);
  const info = await initEngine({ backend: "wasm" });
  console.log(`ViT-tiny forward + backward, batch ${batch}; ${info.adapter}; load ${loadText()}`);
  await measure(false, steps, batch, top);
  await measure(true, steps, batch, top);
  if (values.torch) console.log(`\n${await torchTime(steps, batch)}`);
  console.log(`\nload average at the end: ${loadText()}`);
}

function loadText(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}
