/**
 * `deno task gpu-check`: is this machine's GPU usable, does it compute what the CPU computes,
 * and how much faster is it? Probes the WebGPU adapter, then runs three of `deno task bench`'s
 * workloads (bench/workloads.ts) — a training step, an RI step and an evaluation, through the
 * library's own code — on wasm and on WebGPU in this process, on the same data, and compares:
 *
 * - agreement: the first and last loss of the training and RI steps within a relative 1e-4
 *   (the study's tolerance for losses, docs/GPU.md), the evaluation's correct count within
 *   one image;
 * - throughput: images per second of each, and the speed-up of WebGPU over wasm (median
 *   iteration times; the first iterations, which compile WebGPU's shaders, are not timed).
 *
 * A software adapter (Mesa's llvmpipe: Vulkan on the CPU) is no GPU: the check refuses it,
 * saying so, unless asked with `software: true` (`--software`); then it proves the WebGPU code
 * path end to end, and the report says its speed means nothing.
 *
 * @module
 */
import { describeEngine, initEngine, probeGpuAdapter } from "../lib/engine/backend.ts";
import { modelSpec, writeModelData } from "./data.ts";
import { median } from "./harness.ts";
import { loadAverage } from "./machine.ts";
import { workloadTitle } from "./report.ts";
import { evaluate, riStep, type SideResult, vitTrain } from "./workloads.ts";

/** The workloads of the check, in run order. */
export const GPU_CHECK_WORKLOADS = ["vit_train", "ri_step", "eval"] as const;

/** Relative tolerance of the losses (as for a study's losses, docs/GPU.md). */
export const LOSS_TOLERANCE = 1e-4;

/** Options of {@linkcode runGpuCheck}. */
export interface GpuCheckOptions {
  /** Tiny sizes (batch 8): a smoke test. */
  quick: boolean;
  /** Timed iterations per workload and backend. */
  steps: number;
  /** Untimed iterations first (shader compilation happens there). */
  warmup: number;
  /** Run on a software adapter too (otherwise refused: it is no GPU). */
  software?: boolean;
  /** Progress lines (default: console.error). */
  log?: (line: string) => void;
}

/** One backend's measurement of one workload. */
export interface BackendRun {
  /** Median iteration wall time, ms. */
  medianMs: number;
  /** Images per second at that median. */
  imagesPerSecond: number;
  /** The values compared between the backends (first and last loss, or correct count). */
  check: Record<string, number>;
}

/** One workload on both backends. */
export interface WorkloadCheck {
  /** Workload name (bench/workloads.ts). */
  workload: string;
  /** What it is. */
  title: string;
  /** Images per iteration. */
  images: number;
  /** On wasm. */
  wasm: BackendRun;
  /** On WebGPU. */
  webgpu: BackendRun;
  /** wasm's median time / WebGPU's. */
  speedup: number;
  /** How the checked values compare, in words. */
  agreement: string;
  /** True when they agree within the tolerance. */
  agrees: boolean;
}

/** The whole check. */
export interface GpuCheckReport {
  /** When it ran (ISO 8601). */
  date: string;
  /** The WebGPU adapter found. */
  adapter: { description: string; hardware: boolean };
  /** The engines as they described themselves. */
  engines: { wasm: string; webgpu: string };
  /** Deno and its V8. */
  runtime: string;
  /** The options used. */
  options: Omit<GpuCheckOptions, "log">;
  /** One entry per workload. */
  workloads: WorkloadCheck[];
  /** 1-minute load average before and after (the machine's other work slows both sides). */
  load: number[];
  /** True when every workload agrees. */
  ok: boolean;
  /** What the numbers mean on this adapter. */
  note: string;
}

/**
 * Runs the check; see the module documentation. Throws when there is no WebGPU adapter at
 * all, or only a software one and `software` is not set, saying how to get a GPU seen.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { probeGpuAdapter } from "../lib/engine/backend.ts";
 * import { runGpuCheck } from "./gpu_check.ts";
 * if (!(await probeGpuAdapter()).hardware) {
 *   // No GPU (a software adapter, or none): refused before computing, saying why.
 *   await rejects(runGpuCheck({ quick: true, steps: 1, warmup: 1 }), /no (hardware )?WebGPU/);
 * }
 * ```
 */
export async function runGpuCheck(options: GpuCheckOptions): Promise<GpuCheckReport> {
  const log = options.log ?? ((line: string) => console.error(line));
  const probe = await probeGpuAdapter();
  if (probe.description.startsWith("no ") || probe.description.startsWith("requestAdapter")) {
    throw new Error(
      `no WebGPU adapter: ${probe.description}. See docs/GPU.md: on Linux a Vulkan driver ` +
        `(NVIDIA, AMD, Intel; in a container the NVIDIA runtime needs ` +
        `NVIDIA_DRIVER_CAPABILITIES to include graphics), on macOS Metal, on Windows Direct3D 12`,
    );
  }
  if (!probe.hardware && !options.software) {
    throw new Error(
      `no hardware WebGPU adapter: the adapter found is ${probe.description}, a software one ` +
        `(the CPU emulating a GPU), so WebGPU sees no GPU on this machine. ` +
        `See docs/GPU.md to make a GPU visible; \`--software\` runs the check on the software ` +
        `adapter anyway (it proves the code path, its speed means nothing)`,
    );
  }
  log(`adapter: ${probe.description} (${probe.hardware ? "hardware" : "software"})`);
  const load: number[] = [];
  load.push(loadAverage()?.[0] ?? NaN);
  const dir = await Deno.makeTempDir({ prefix: "ri-gpu-check-" });
  try {
    const spec = modelSpec(options.quick, options.warmup + options.steps);
    await writeModelData(dir, spec);
    const steps = { steps: options.steps, warmup: Math.max(1, options.warmup) };
    const run = async (name: string): Promise<SideResult> => {
      if (name === "vit_train") return await vitTrain(spec, dir, steps);
      if (name === "ri_step") return await riStep(spec, dir, steps);
      return await evaluate(spec, dir, steps);
    };
    const results: Record<string, Record<string, SideResult>> = {};
    const engines = { wasm: "", webgpu: "" };
    for (const backend of ["wasm", "webgpu"] as const) {
      engines[backend] = describeEngine(await initEngine({ backend }));
      log(`engine: ${engines[backend]}`);
      for (const name of GPU_CHECK_WORKLOADS) {
        const r = await run(name);
        (results[name] ??= {})[backend] = r;
        log(`  ${name} on ${backend}: median ${median(r.times_ms).toFixed(1)} ms`);
      }
    }
    await initEngine({ backend: "wasm" });
    load.push(loadAverage()?.[0] ?? NaN);
    const imagesOf = (name: string) =>
      name === "eval" ? spec.eval.count : name === "ri_step" ? spec.ri.batch : spec.train.batch;
    const workloads = GPU_CHECK_WORKLOADS.map((name) => {
      const images = imagesOf(name);
      const side = (r: SideResult): BackendRun => {
        const ms = median(r.times_ms);
        return { medianMs: ms, imagesPerSecond: (images * 1000) / ms, check: r.check ?? {} };
      };
      const wasm = side(results[name].wasm), webgpu = side(results[name].webgpu);
      const { text, agrees } = compareChecks(name, wasm.check, webgpu.check);
      return {
        workload: name,
        title: workloadTitle(name),
        images,
        wasm,
        webgpu,
        speedup: wasm.medianMs / webgpu.medianMs,
        agreement: text,
        agrees,
      };
    });
    return {
      date: new Date().toISOString(),
      adapter: probe,
      engines,
      runtime: `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}`,
      options: {
        quick: options.quick,
        steps: options.steps,
        warmup: options.warmup,
        software: options.software ?? false,
      },
      workloads,
      load,
      ok: workloads.every((w) => w.agrees),
      note: probe.hardware
        ? "hardware adapter: the speed-ups are this GPU's over this CPU's wasm backend"
        : "software adapter (no GPU): the WebGPU code path is checked end to end, but its " +
          "speed is a CPU emulating a GPU and says nothing about a real one",
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Losses within {@linkcode LOSS_TOLERANCE} relative; a correct count within one image. */
function compareChecks(
  workload: string,
  a: Record<string, number>,
  b: Record<string, number>,
): { text: string; agrees: boolean } {
  let agrees = Object.keys(a).length > 0;
  const parts = Object.keys(a).map((k) => {
    const gap = Math.abs(a[k] - b[k]);
    const ok = workload === "eval"
      ? gap <= 1
      : gap <= LOSS_TOLERANCE * Math.max(Math.abs(a[k]), Math.abs(b[k]));
    agrees &&= ok;
    const rel = gap / Math.max(1e-30, Math.abs(a[k]));
    const shown = workload === "eval" ? `Δ ${gap}` : `relative Δ ${rel.toExponential(1)}`;
    return `${k} ${fmt(a[k])} vs ${fmt(b[k])} (${shown})`;
  });
  return { text: parts.join("; "), agrees };
}

function fmt(x: number | undefined): string {
  return x === undefined ? "?" : Number.isInteger(x) ? String(x) : x.toPrecision(7);
}

/**
 * The report as text: adapter, engines, one line per workload, the verdict.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { gpuCheckText } from "./gpu_check.ts";
 * const run = (ms: number, loss: number) => ({
 *   medianMs: ms,
 *   imagesPerSecond: 8000 / ms,
 *   check: { first: 4, last: loss },
 * });
 * const text = gpuCheckText({
 *   date: "2026-12-07T00:00:00.000Z",
 *   adapter: { description: "Some GPU", hardware: true },
 *   engines: { wasm: "backend wasm", webgpu: "backend webgpu on GPU: Some GPU" },
 *   runtime: "Deno",
 *   options: { quick: true, steps: 1, warmup: 1 },
 *   workloads: [{
 *     workload: "vit_train",
 *     title: "training step",
 *     images: 8,
 *     wasm: run(100, 1.25),
 *     webgpu: run(25, 1.25),
 *     speedup: 4,
 *     agreement: "last 1.25 vs 1.25",
 *     agrees: true,
 *   }],
 *   load: [1, 1],
 *   ok: true,
 *   note: "hardware adapter",
 * });
 * ok(text.includes("adapter: Some GPU (hardware)"));
 * ok(/training step \(8 images\) +80 img\/s +320 img\/s +4\.00×/.test(text));
 * ok(text.includes("WebGPU and wasm agree."));
 * ```
 */
export function gpuCheckText(r: GpuCheckReport): string {
  const label = (w: WorkloadCheck) => `${w.title} (${w.images} images)`;
  const width = Math.max("workload".length, ...r.workloads.map((w) => label(w).length));
  const lines = [
    `GPU check, ${r.date}`,
    `adapter: ${r.adapter.description} (${r.adapter.hardware ? "hardware" : "software"})`,
    `wasm:    ${r.engines.wasm}`,
    `webgpu:  ${r.engines.webgpu}`,
    `runtime: ${r.runtime}; load average ${r.load.map((l) => l.toFixed(1)).join(" → ")}`,
    "",
    `${"workload".padEnd(width)} ${"wasm".padStart(18)} ${"webgpu".padStart(18)} ${
      "speed-up".padStart(9)
    }`,
  ];
  for (const w of r.workloads) {
    const side = (b: BackendRun) => `${b.imagesPerSecond.toFixed(0)} img/s`.padStart(18);
    lines.push(
      `${label(w).padEnd(width)} ${side(w.wasm)} ${side(w.webgpu)} ${
        `${w.speedup.toFixed(2)}×`.padStart(9)
      }`,
      `    ${w.agrees ? "agree" : "DISAGREE"}: ${w.agreement}`,
    );
  }
  lines.push(
    "",
    r.ok ? "WebGPU and wasm agree." : "WebGPU and wasm DISAGREE: see the workloads above.",
    `Note: ${r.note}.`,
  );
  return lines.join("\n");
}
