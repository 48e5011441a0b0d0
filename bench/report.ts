/**
 * Text and Markdown renderings of a benchmark run: the table of medians and ratios, the
 * targets (ratio ≤ 1.5, streaming merge under 2 GB), the agreement between the sides, and our
 * side's kernel profile where one was taken.
 *
 * @module
 */
import type { BenchResult, WorkloadSummary } from "./harness.ts";
import { LOAD_LIMIT, median } from "./harness.ts";
import type { MachineInfo } from "./machine.ts";

/** Largest acceptable ratio ours/PyTorch (issue 9). */
export const RATIO_TARGET = 1.5;

/** Largest acceptable peak memory of a streaming merge of 8 ViT-B/32 experts, MiB (2 GB). */
export const MERGE_PEAK_TARGET_MIB = 2e9 / 2 ** 20;

const TITLES: Record<string, string> = {
  vit_train: "training step (fwd + bwd + clip + AdamW)",
  ri_step: "RI step (trainer + riLoss, 8 heads, cached targets)",
  eval: "evaluation (accuracy of a merged model)",
  vit_train_b32: "training step, ViT-B/32 geometry",
  ri_step_b32: "RI step, ViT-B/32 geometry (8 heads)",
  merge_task_arithmetic: "merge: Task Arithmetic",
  merge_ties: "merge: TIES",
  merge_tsv_m: "merge: TSV-M",
  merge_iso_cts: "merge: Iso-CTS",
  merge_read: "merge I/O floor (read all, write one)",
};

/**
 * A workload's title for tables.
 *
 * @example
 * ```ts
 * import { workloadTitle } from "./report.ts";
 * workloadTitle("merge_ties"); // "merge: TIES"
 * ```
 */
export function workloadTitle(workload: string): string {
  return TITLES[workload] ?? workload;
}

function mib(x: number): string {
  return x.toFixed(x < 10 ? 1 : 0);
}

function ms(x: number): string {
  return x >= 10000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(x >= 100 ? 0 : 1)} ms`;
}

/** Whether a workload meets its targets, in words. */
function verdict(w: WorkloadSummary, fullMerge: boolean): string {
  const notes: string[] = [];
  if (w.loaded) notes.push(`UNDER LOAD (others used ${w.othersCores!.toFixed(2)} cores)`);
  notes.push(w.ratio <= RATIO_TARGET ? "ratio ok" : `ratio > ${RATIO_TARGET}`);
  if (w.workload.startsWith("merge_") && w.workload !== "merge_read") {
    const peak = w.peakMiB.ours;
    const text = peak < MERGE_PEAK_TARGET_MIB ? "peak < 2 GB" : "peak ≥ 2 GB";
    notes.push(fullMerge ? text : `${text} (partial model)`);
  }
  return notes.join(", ");
}

function throughput(w: WorkloadSummary): string {
  if (!w.images) return "";
  const per = (msPerBatch: number) => (w.images! / (msPerBatch / 1000)).toFixed(0);
  return `${per(w.wallMs.ours)} vs ${per(w.wallMs.torch)} images/s`;
}

/** The smallest–largest process median, in the unit of the larger. */
function spreadText([low, high]: [number, number]): string {
  if (low === high) return "1 process";
  return high >= 10000
    ? `${(low / 1000).toFixed(1)}–${(high / 1000).toFixed(1)} s`
    : `${low.toFixed(high >= 100 ? 0 : 1)}–${high.toFixed(high >= 100 ? 0 : 1)}`;
}

/** The table's rows: one per workload. */
function rows(result: BenchResult): string[][] {
  const full = (result.mergeInputs?.layers ?? 0) === 12 && !result.options.quick;
  return result.workloads.map((w) => [
    workloadTitle(w.workload),
    w.unit,
    `${ms(w.wallMs.ours)} (${spreadText(w.spread.ours)})`,
    `${ms(w.wallMs.torch)} (${spreadText(w.spread.torch)})`,
    w.ratio.toFixed(2),
    ms(w.cpuMs.ours),
    ms(w.cpuMs.torch),
    w.cpuRatio.toFixed(2),
    `${mib(w.peakMiB.ours)} / ${mib(w.peakMiB.torch)}`,
    w.othersCores === undefined ? "?" : w.othersCores.toFixed(2),
    [throughput(w), verdict(w, full)].filter(Boolean).join("; "),
  ]);
}

const HEADER = [
  "workload",
  "per",
  "ours (wall, spread)",
  "PyTorch (wall, spread)",
  "ratio",
  "ours (CPU)",
  "PyTorch (CPU)",
  "CPU ratio",
  "peak MiB ours / PyTorch",
  "others' cores",
  "notes",
];

/** The WebGPU side: one line per model workload, or why it was skipped. */
function webGpuText(result: BenchResult): string[] {
  const gpu = result.webgpu;
  if (!gpu) return [];
  if (!gpu.ran) return [`WebGPU: skipped: ${gpu.skipped}`];
  return [
    `WebGPU on ${gpu.adapter} (ours, against ours on wasm):`,
    ...result.workloads.filter((w) => w.gpu).map((w) =>
      `  ${workloadTitle(w.workload)}: ${ms(w.gpu!.wallMs)} per ${w.unit}, ` +
      `${w.gpu!.speedup.toFixed(2)}× wasm's speed; ${w.gpu!.agreement}`
    ),
  ];
}

function loadText(load: readonly number[]): string {
  if (load.length === 0) return "unknown";
  return `min ${Math.min(...load).toFixed(2)}, median ${median(load).toFixed(2)}, max ${
    Math.max(...load).toFixed(2)
  } (1-minute load average, ${load.length} samples)`;
}

function settingsText(result: BenchResult): string {
  const o = result.options;
  const merge = result.mergeInputs
    ? `; merge inputs: ${result.mergeInputs.experts} experts + base of ${
      mib(result.mergeInputs.modelBytes / 2 ** 20)
    } MiB each (${result.mergeInputs.layers} of ViT-B/32's 12 blocks), ${o.mergeReps} runs per side`
    : "";
  return `threads ${o.threads} per side; model workloads: ${o.reps} processes per side, ` +
    `${o.warmup} warm-up + ${o.steps} timed iterations each${merge}`;
}

/**
 * The run as a plain-text table, with the agreement between the sides and the load average.
 *
 * @example
 * ```ts ignore
 * console.log(formatText(await runBench(options)));
 * ```
 */
export function formatText(result: BenchResult): string {
  const table = [HEADER, ...rows(result)];
  const widths = HEADER.map((_, c) => Math.max(...table.map((r) => r[c].length)));
  const lines = table.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd());
  lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  const out = [
    `medians (spread: smallest–largest process median); ratio = ours / PyTorch (wall time); ` +
    `others' cores: the most cores other processes used during a timed part (over ` +
    `${LOAD_LIMIT}: UNDER LOAD); ${settingsText(result)}`,
    "",
    ...lines,
    "",
    "agreement between the sides (same data, same math):",
    ...result.workloads.map((w) => `  ${workloadTitle(w.workload)}: ${w.agreement}`),
    "",
    ...webGpuText(result),
    `load during the run: ${loadText(result.load)}; ${result.seconds.toFixed(0)} s in all`,
  ];
  const profiles = profileText(result);
  if (profiles) out.push("", profiles);
  return out.join("\n");
}

/** One side's profile: total, by kind, top kernels/operators. */
function profileLine(p: Record<string, number>): string {
  const kinds = Object.entries(p).filter(([k]) => !k.startsWith("kernel "));
  const total = kinds.reduce((s, [, v]) => s + v, 0);
  const top = Object.entries(p).filter(([k]) => k.startsWith("kernel "))
    .sort((a, b) => b[1] - a[1]).slice(0, 6);
  return `${total.toFixed(1)} ms: ` +
    kinds.sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ") +
    `; top: ${top.map(([k, v]) => `${k.slice(7)} ${v.toFixed(1)}`).join(", ")}`;
}

/** Both sides' profiles per workload (ms per iteration by kind) and the merges' passes. */
function profileText(result: BenchResult): string {
  const parts: string[] = [];
  for (const w of result.workloads) {
    const ours = w.ours.find((r) => r.profile)?.profile;
    const torch = w.torch.find((r) => r.profile)?.profile;
    if (!ours && !torch) continue;
    parts.push(`  ${workloadTitle(w.workload)}:`);
    if (ours) parts.push(`    ours (tf.profile kernel time) ${profileLine(ours)}`);
    if (torch) parts.push(`    PyTorch (profiler self CPU time) ${profileLine(torch)}`);
  }
  const phases: string[] = [];
  for (const w of result.workloads) {
    const o = w.ours[0]?.phases?.passes as Record<string, number> | undefined;
    const t = w.torch[0]?.phases as
      | { read?: number; write?: number; passes?: Record<string, number> }
      | undefined;
    if (!o || !t?.passes) continue;
    const list = (p: Record<string, number>) =>
      Object.entries(p).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
    phases.push(
      `  ${workloadTitle(w.workload)}: ours ${list(o)} | PyTorch ${list(t.passes)} ` +
        `(of which reading ${t.read?.toFixed(2)}, writing ${t.write?.toFixed(2)})`,
    );
  }
  const out: string[] = [];
  if (parts.length) out.push("profiles (ms per iteration, over 3 extra iterations):", ...parts);
  if (phases.length) out.push("merge passes (s, first run of each side):", ...phases);
  return out.join("\n");
}

/**
 * The run as a Markdown section: machine, command, table, agreement, load, profile.
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("results.md", formatMarkdown(result, await machineInfo(), "deno task bench"));
 * ```
 */
export function formatMarkdown(result: BenchResult, machine: MachineInfo, command: string): string {
  const table = [HEADER, HEADER.map(() => "---"), ...rows(result)]
    .map((r) => `| ${r.join(" | ")} |`);
  const profile = profileText(result);
  return [
    `Command: \`${command}\` (${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC)`,
    "",
    `Machine: ${machine.cpu}, ${machine.cpus} CPUs, ${machine.memoryGiB} GiB; ${machine.kernel}. ` +
    `${machine.deno}; ${machine.torch}; ${machine.openblas}.`,
    "",
    `Settings: ${settingsText(result)}. Load during the run: ${loadText(result.load)}. ` +
    `Wall times are medians over processes of each process's median, with the smallest–largest ` +
    `process median in brackets; "others' cores" is the most cores other processes used during ` +
    `a timed part (from /proc/stat); above ${LOAD_LIMIT} the ratio is marked UNDER LOAD.`,
    "",
    ...table,
    "",
    "Agreement between the sides:",
    "",
    ...result.workloads.map((w) => `- ${workloadTitle(w.workload)}: ${w.agreement}`),
    ...(result.webgpu
      ? ["", ...webGpuText(result).map((l) => l.startsWith("  ") ? `- ${l.trim()}` : l)]
      : []),
    ...(profile ? ["", "```text", profile, "```"] : []),
    "",
  ].join("\n");
}
