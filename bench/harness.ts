/**
 * The harness of `deno task bench`: writes the data both sides read (bench/data.ts), then runs
 * every workload in this project (bench/child.ts) and in PyTorch (bench/py/peer.py), each run
 * in a fresh process with the same thread count, alternating the sides and their order over
 * several repetitions, and summarises medians, ratios ours/PyTorch and peak memory.
 *
 * The machine is shared, so wall times move with other processes' load: the summary carries
 * the CPU time per iteration and the load average seen during the run beside the wall times.
 *
 * Where a hardware WebGPU adapter exists (a GPU), the model workloads also run on WebGPU (a
 * third side, `webgpu`, checked against ours on wasm); otherwise the run says why it skipped
 * it. `webgpu: "on"` runs it on a software adapter too (Mesa's llvmpipe: slow, a check only).
 *
 * @module
 */
import {
  geometryOf,
  type MergeLayout,
  mergeSpec,
  modelSpec,
  writeMergeData,
  writeModelData,
} from "./data.ts";
import { loadAverage } from "./machine.ts";
import type { SideResult } from "./workloads.ts";
import { openCheckpoint } from "../mod.ts";
import { probeGpuAdapter } from "../lib/engine/backend.ts";

/** The model workloads, in run order. */
export const MODEL_WORKLOADS = [
  "vit_train",
  "ri_step",
  "eval",
  "vit_train_b32",
  "ri_step_b32",
] as const;

/**
 * Timed and warm-up iterations of a workload: ViT-B/32-geometry steps take seconds each, so
 * they run a third of `steps` (at least 2) after one warm-up.
 *
 * @example
 * ```ts
 * import { iterationsOf } from "./harness.ts";
 * iterationsOf("ri_step_b32", { steps: 10, warmup: 3 }); // { steps: 3, warmup: 1 }
 * ```
 */
export function iterationsOf(
  workload: string,
  options: { steps: number; warmup: number },
): { steps: number; warmup: number } {
  if (geometryOf(workload) === "tiny") return { steps: options.steps, warmup: options.warmup };
  return { steps: Math.max(2, Math.round(options.steps / 3)), warmup: 1 };
}

/** Where a model workload's data lies under the run's data directory. */
function dataDir(dir: string, workload: string): string {
  return geometryOf(workload) === "b32" ? `${dir}/b32` : dir;
}

/** The merge methods benchmarked (`read` is the I/O floor). */
export const MERGE_METHODS = ["task_arithmetic", "ties", "tsv_m", "iso_cts", "read"] as const;

/** Options of {@linkcode runBench}. */
export interface BenchOptions {
  /** Tiny sizes, one repetition: a smoke test of the harness. */
  quick: boolean;
  /** Threads for both sides (OpenBLAS, OpenMP, torch.set_num_threads). */
  threads: number;
  /** Batch of the ViT-B/32-geometry workloads (default 32). */
  b32Batch?: number;
  /** Repetitions of each model workload (processes per side). */
  reps: number;
  /** Repetitions of each merge. */
  mergeReps: number;
  /** Timed iterations per model-workload process. */
  steps: number;
  /** Untimed iterations first. */
  warmup: number;
  /** Blocks of the ViT-B/32 tower in the merge inputs (12 = the whole tower). */
  mergeLayers: number;
  /** Workloads to run (names from MODEL_WORKLOADS and `merge_<method>`). */
  workloads: string[];
  /** Where the data is written (kept); a temporary directory, removed at the end, when absent. */
  dataDir?: string;
  /** Profile kernels on our side. */
  profile: boolean;
  /** Progress lines go here (default: console.error). */
  log?: (line: string) => void;
  /**
   * The model workloads on WebGPU as well: `auto` (default) where a hardware adapter exists,
   * `on` on any adapter (software included), `off` never.
   */
  webgpu?: "auto" | "on" | "off";
}

/** Whether the WebGPU side ran, on what, or why not. */
export interface WebGpuSide {
  /** True when the model workloads ran on WebGPU too. */
  ran: boolean;
  /** The adapter, or why there is none. */
  adapter: string;
  /** Why it was skipped (when it was). */
  skipped?: string;
}

/**
 * Cores other processes may use during a timed part before the workload counts as measured
 * under load (a quiet machine's daemons use a few hundredths of one).
 */
export const LOAD_LIMIT = 0.25;

/** Both sides' results for one workload. */
export interface WorkloadSummary {
  /** Workload name. */
  workload: string;
  /** Every process's result, per side. */
  ours: SideResult[];
  /** PyTorch's results. */
  torch: SideResult[];
  /** Ours on WebGPU (model workloads, when a hardware adapter exists). */
  webgpu?: SideResult[];
  /** Ours on WebGPU against ours on wasm: median wall times, speed-up, agreement. */
  gpu?: { wallMs: number; speedup: number; agreement: string; mismatch: number };
  /** Median over processes of each process's median iteration wall time, ms. */
  wallMs: { ours: number; torch: number };
  /** Median CPU time per iteration, ms. */
  cpuMs: { ours: number; torch: number };
  /** Largest peak resident memory over processes, MiB. */
  peakMiB: { ours: number; torch: number };
  /** Smallest and largest process median wall time per side, ms: the spread over processes. */
  spread: { ours: [number, number]; torch: [number, number] };
  /**
   * The most cores other processes used during any timed part of this workload (either side;
   * undefined where /proc/stat is unreadable).
   */
  othersCores?: number;
  /** True when other processes used more than {@linkcode LOAD_LIMIT} cores during the runs. */
  loaded: boolean;
  /** wallMs.ours / wallMs.torch. */
  ratio: number;
  /** cpuMs.ours / cpuMs.torch. */
  cpuRatio: number;
  /** What one iteration is ("step (batch 128)", "512 images", "merge"). */
  unit: string;
  /** Images per iteration (evaluation), for throughput. */
  images?: number;
  /** How the sides' results agree (first/last loss, or the merged checkpoints' difference). */
  agreement: string;
  /**
   * The sides' relative disagreement: the largest |ours − PyTorch| / max(1, |PyTorch|) over the
   * checked values (losses, checksums), or for a merge max |Δθ| / max |θ − θ0|.
   */
  mismatch: number;
}

/** The whole run. */
export interface BenchResult {
  /** The options used. */
  options: Omit<BenchOptions, "log">;
  /** One summary per workload. */
  workloads: WorkloadSummary[];
  /** 1-minute load average sampled before each process. */
  load: number[];
  /** Bytes of one merge-input checkpoint (and its geometry), when merges ran. */
  mergeInputs?: { modelBytes: number; layers: number; experts: number };
  /** Wall time of the whole run, s. */
  seconds: number;
  /** The WebGPU side: ran, or why not (absent when no model workload ran). */
  webgpu?: WebGpuSide;
}

/**
 * The median of `values` (the lower middle value for an even count; NaN when empty).
 *
 * @example
 * ```ts
 * import { median } from "./harness.ts";
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

const CHILD = new URL("./child.ts", import.meta.url).pathname;
const PEER = new URL("./py/peer.py", import.meta.url).pathname;

/** Environment that pins every thread pool of both sides to `threads`. */
function threadEnv(threads: number): Record<string, string> {
  const t = String(threads);
  return {
    RI_BLAS_THREADS: t,
    OPENBLAS_NUM_THREADS: t,
    OMP_NUM_THREADS: t,
    MKL_NUM_THREADS: t,
    RI_PROGRESS: "off",
    NO_COLOR: "1",
  };
}

/** Runs one side of one workload in a child process and parses its JSON line. */
async function runSide(
  side: "ours" | "torch" | "webgpu",
  workload: string,
  dir: string,
  options: BenchOptions,
  out: string,
): Promise<SideResult> {
  const common = [
    "--workload",
    workload,
    "--data",
    workload.startsWith("merge_") ? dir : dataDir(dir, workload),
    "--steps",
    String(iterationsOf(workload, options).steps),
    "--warmup",
    String(iterationsOf(workload, options).warmup),
    "--out",
    out,
  ];
  const ours = [
    "run",
    "-A",
    CHILD,
    ...common,
    ...(options.profile ? ["--profile"] : []),
    ...(side === "webgpu" ? ["--backend", "webgpu"] : []),
  ];
  const [cmd, args] = side !== "torch" ? [Deno.execPath(), ours] : ["/usr/bin/python3", [
    PEER,
    ...common,
    "--threads",
    String(options.threads),
    ...(options.profile ? ["--profile"] : []),
  ]];
  const result = await new Deno.Command(cmd, {
    args,
    env: threadEnv(options.threads),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(result.stdout);
  if (!result.success) {
    const stderr = new TextDecoder().decode(result.stderr);
    throw new Error(`${side} ${workload} failed (exit ${result.code}):\n${stderr}${stdout}`);
  }
  const line = stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as SideResult;
  } catch {
    throw new Error(`${side} ${workload}: expected a JSON line, got:\n${stdout}`);
  }
}

/** Largest |a − b| over every tensor, and the largest |a − base| (the size of the change). */
async function checkpointDifference(
  a: string,
  b: string,
  basePath: string,
): Promise<{ diff: number; change: number }> {
  using x = await openCheckpoint(a);
  using y = await openCheckpoint(b);
  using base = await openCheckpoint(basePath);
  let diff = 0, change = 0;
  for (const name of x.names()) {
    const u = await x.read(name), v = await y.read(name), w = await base.read(name);
    for (let i = 0; i < u.length; i++) {
      diff = Math.max(diff, Math.abs(u[i] - v[i]));
      change = Math.max(change, Math.abs(u[i] - w[i]));
    }
  }
  return { diff, change };
}

function summarise(
  workload: string,
  ours: SideResult[],
  torch: SideResult[],
  agreement: Agreement,
  images?: number,
  batch?: number,
): WorkloadSummary {
  const wall = (rs: SideResult[]) => median(rs.map((r) => median(r.times_ms)));
  const cpu = (rs: SideResult[]) => median(rs.map((r) => r.cpu_ms));
  const peak = (rs: SideResult[]) => Math.max(...rs.map((r) => r.peak_mib ?? NaN));
  const wallMs = { ours: wall(ours), torch: wall(torch) };
  const range = (rs: SideResult[]): [number, number] => {
    const medians = rs.map((r) => median(r.times_ms));
    return [Math.min(...medians), Math.max(...medians)];
  };
  const others = [...ours, ...torch].map((r) => r.others_cores)
    .filter((x): x is number => typeof x === "number");
  const othersCores = others.length ? Math.max(...others) : undefined;
  const cpuMs = { ours: cpu(ours), torch: cpu(torch) };
  const unit = workload.startsWith("merge_")
    ? "merge"
    : workload === "eval"
    ? `${images} images`
    : `step (batch ${batch})`;
  return {
    workload,
    ours,
    torch,
    wallMs,
    cpuMs,
    peakMiB: { ours: peak(ours), torch: peak(torch) },
    spread: { ours: range(ours), torch: range(torch) },
    othersCores,
    loaded: othersCores !== undefined && othersCores > LOAD_LIMIT,
    ratio: wallMs.ours / wallMs.torch,
    cpuRatio: cpuMs.ours / cpuMs.torch,
    unit,
    images,
    agreement: agreement.text,
    mismatch: agreement.mismatch,
  };
}

/** How far the sides' results are apart, in words and as one relative number. */
interface Agreement {
  text: string;
  mismatch: number;
}

/** Compares the first and last losses (or checksums) of the two sides' first processes. */
function lossAgreement(ours: SideResult, torch: SideResult): Agreement {
  const a = ours.check ?? {}, b = torch.check ?? {};
  let mismatch = Object.keys(a).length === 0 ? NaN : 0;
  const parts = Object.keys(a).map((k) => {
    const gap = Math.abs(a[k] - b[k]);
    mismatch = Math.max(mismatch, gap / Math.max(1, Math.abs(b[k])));
    return `${k} ${fmt(a[k])} vs ${fmt(b[k])} (Δ ${gap.toExponential(1)})`;
  });
  return { text: parts.join("; "), mismatch: Number.isNaN(mismatch) ? NaN : mismatch };
}

function fmt(x: number | undefined): string {
  return x === undefined ? "?" : Number.isInteger(x) ? String(x) : x.toPrecision(7);
}

/**
 * Runs the benchmark; see the module documentation.
 *
 * @example
 * ```ts ignore
 * import { runBench } from "./harness.ts";
 * const result = await runBench({ quick: true, threads: 1, reps: 1, mergeReps: 1, steps: 2,
 *   warmup: 1, mergeLayers: 1, workloads: ["eval"], profile: false });
 * console.log(result.workloads[0].ratio);
 * ```
 */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const log = options.log ?? ((line: string) => console.error(line));
  const started = performance.now();
  const dir = options.dataDir ?? await Deno.makeTempDir({ prefix: "ri-bench-" });
  const load: number[] = [];
  const sample = () => {
    const l = loadAverage();
    if (l) load.push(l[0]);
  };
  try {
    sample();
    const models = options.workloads.filter((w) => !w.startsWith("merge_"));
    const merges = options.workloads.filter((w) => w.startsWith("merge_"));
    let layout: MergeLayout | undefined;
    const gpu = models.length > 0 ? await webGpuSide(options.webgpu ?? "auto") : undefined;
    if (gpu && !gpu.ran) log(`WebGPU skipped: ${gpu.skipped}`);
    if (gpu?.ran) log(`WebGPU: the model workloads also run on ${gpu.adapter}`);
    if (models.length > 0) {
      log(`writing the model workloads' data to ${dir}`);
      // the batch orders cover every RI step either side runs (3 more when profiling)
      const steps = options.warmup + options.steps + 3;
      if (models.some((w) => geometryOf(w) === "tiny")) {
        await writeModelData(dir, modelSpec(options.quick, steps));
      }
      if (models.some((w) => geometryOf(w) === "b32")) {
        log(`writing the ViT-B/32-geometry data to ${dir}/b32`);
        await writeModelData(
          `${dir}/b32`,
          modelSpec(options.quick, steps, "b32", options.b32Batch),
        );
      }
    }
    if (merges.length > 0) {
      log(`writing the merge inputs (${options.mergeLayers} ViT-B/32 blocks, 8 experts) to ${dir}`);
      layout = await writeMergeData(dir, mergeSpec(options.quick, options.mergeLayers));
      await warmPageCache(dir, layout);
    }
    const results = new Map<
      string,
      { ours: SideResult[]; torch: SideResult[]; webgpu: SideResult[] }
    >();
    const agreement = new Map<string, Agreement>();
    const reps = Math.max(options.reps, options.mergeReps);
    for (let rep = 0; rep < reps; rep++) {
      for (const workload of options.workloads) {
        const merge = workload.startsWith("merge_");
        if (rep >= (merge ? options.mergeReps : options.reps)) continue;
        const entry = results.get(workload) ?? { ours: [], torch: [], webgpu: [] };
        results.set(workload, entry);
        // Alternate which side goes first, so drifting load favours neither.
        const order: ("ours" | "torch" | "webgpu")[] = rep % 2 === 0
          ? ["ours", "torch"]
          : ["torch", "ours"];
        if (gpu?.ran && !merge) order.push("webgpu");
        for (const side of order) {
          sample();
          const out = `${dir}/out_${side}_${workload}.safetensors`;
          const r = await runSide(side, workload, dir, options, out);
          entry[side].push(r);
          const others = r.others_cores === undefined
            ? ""
            : `, others ${r.others_cores.toFixed(2)} cores`;
          log(
            `  ${workload} rep ${rep + 1} ${side.padEnd(5)}: median ${
              median(r.times_ms).toFixed(1)
            } ms, CPU ${r.cpu_ms.toFixed(1)} ms, peak ${r.peak_mib?.toFixed(0)} MiB${others}`,
          );
        }
        if (rep === 0) {
          agreement.set(
            workload,
            merge
              ? await mergeAgreement(dir, workload)
              : lossAgreement(entry.ours[0], entry.torch[0]),
          );
        }
        if (merge) {
          for (const side of ["ours", "torch"]) {
            await Deno.remove(`${dir}/out_${side}_${workload}.safetensors`).catch(() => {});
          }
        }
      }
    }
    sample();
    const specOf = (w: string) => modelSpec(options.quick, 16, geometryOf(w), options.b32Batch);
    const workloads = options.workloads.map((w) => {
      const r = results.get(w)!;
      const summary = summarise(
        w,
        r.ours,
        r.torch,
        agreement.get(w) ?? { text: "", mismatch: NaN },
        w === "eval" ? specOf(w).eval.count : undefined,
        w.startsWith("ri_step") ? specOf(w).ri.batch : specOf(w).train.batch,
      );
      if (r.webgpu.length === 0) return summary;
      const wallMs = median(r.webgpu.map((s) => median(s.times_ms)));
      const vsWasm = lossAgreement(r.webgpu[0], r.ours[0]);
      return {
        ...summary,
        webgpu: r.webgpu,
        gpu: {
          wallMs,
          speedup: summary.wallMs.ours / wallMs,
          agreement: vsWasm.text.replaceAll(" vs ", " (WebGPU) vs ") + " (wasm)",
          mismatch: vsWasm.mismatch,
        },
      };
    });
    const { log: _, ...kept } = options;
    return {
      options: kept,
      workloads,
      load,
      mergeInputs: layout
        ? {
          modelBytes: layout.modelBytes,
          layers: layout.spec.config.layers,
          experts: layout.spec.experts,
        }
        : undefined,
      seconds: (performance.now() - started) / 1000,
      webgpu: gpu,
    };
  } finally {
    if (!options.dataDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Reads every merge input once, untimed, so that the first merge process does not pay for
 * pages the second finds cached: with one run per side (--full) the same side always goes
 * first (measured once: Task Arithmetic's first process took 9.4 s, the next two 5.6 s and
 * 6.2 s).
 */
async function warmPageCache(dir: string, layout: MergeLayout): Promise<void> {
  const buffer = new Uint8Array(1 << 22);
  for (const name of [layout.base, ...layout.experts]) {
    using file = await Deno.open(`${dir}/merge/${name}`);
    while (await file.read(buffer) !== null) {
      // discard: the point is the page cache
    }
  }
}

async function mergeAgreement(dir: string, workload: string): Promise<Agreement> {
  const layout = JSON.parse(await Deno.readTextFile(`${dir}/merge/layout.json`)) as MergeLayout;
  const { diff, change } = await checkpointDifference(
    `${dir}/out_ours_${workload}.safetensors`,
    `${dir}/out_torch_${workload}.safetensors`,
    `${dir}/merge/${layout.base}`,
  );
  return {
    text: `max |ours − PyTorch| ${diff.toExponential(1)}, max |θ − θ0| ${change.toExponential(1)}`,
    mismatch: change > 0 ? diff / change : diff,
  };
}

/** Whether the WebGPU side runs: `auto` needs a hardware adapter, `on` any adapter. */
async function webGpuSide(mode: "auto" | "on" | "off"): Promise<WebGpuSide> {
  if (mode === "off") return { ran: false, adapter: "", skipped: "turned off (--webgpu off)" };
  const probe = await probeGpuAdapter();
  const none = probe.description.startsWith("no ") ||
    probe.description.startsWith("requestAdapter");
  if (none) return { ran: false, adapter: probe.description, skipped: probe.description };
  if (!probe.hardware && mode === "auto") {
    return {
      ran: false,
      adapter: probe.description,
      skipped: `no hardware adapter, only the software ${probe.description} (--webgpu on ` +
        `runs it anyway; deno task gpu-check checks it)`,
    };
  }
  return { ran: true, adapter: probe.description };
}
