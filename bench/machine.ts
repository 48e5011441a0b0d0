/**
 * Facts about the machine and the process for benchmark reports: load average, peak resident
 * memory, CPU time, processor and memory description, software versions.
 *
 * @module
 */
import { cpuUsage } from "node:process";

/**
 * The 1-, 5- and 15-minute load averages from /proc/loadavg (undefined where unavailable).
 *
 * @example
 * ```ts
 * import { loadAverage } from "./machine.ts";
 * console.log(loadAverage()); // e.g. [3.1, 2.9, 2.5]
 * ```
 */
export function loadAverage(): number[] | undefined {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
  } catch {
    return undefined;
  }
}

/**
 * This process's peak resident memory (VmHWM) in MiB, where /proc reports it.
 *
 * @example
 * ```ts
 * import { peakMemoryMiB } from "./machine.ts";
 * console.log(peakMemoryMiB()); // e.g. 180.5
 * ```
 */
export function peakMemoryMiB(): number | undefined {
  try {
    const kib = Deno.readTextFileSync("/proc/self/status").match(/^VmHWM:\s+(\d+) kB/m)?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system, every thread) this process has used, in milliseconds.
 *
 * @example
 * ```ts
 * import { cpuMs } from "./machine.ts";
 * const t0 = cpuMs();
 * console.log(cpuMs() - t0 >= 0); // true
 * ```
 */
export function cpuMs(): number {
  const u = cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Machine-wide CPU time from /proc/stat's first line, in clock ticks: busy and total. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    // cpu user nice system idle iowait irq softirq steal …
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/)
      .slice(1, 9).map(Number);
    const busy = user + nice + system + irq + softirq + (steal || 0);
    return { busy, total: busy + idle + iowait };
  } catch {
    return undefined;
  }
}

/**
 * Starts measuring how busy the machine's other processes are; the returned function gives
 * the cores they used on average since (machine-wide busy cores from /proc/stat minus this
 * process's CPU time over the wall time), or undefined where /proc/stat is unreadable. A
 * benchmark measured while others used a noticeable fraction of a core is measured under load.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { othersMeter } from "./machine.ts";
 * const others = othersMeter();
 * await new Promise((r) => setTimeout(r, 50));
 * ok((others() ?? 0) >= 0); // e.g. 0.02 cores on a quiet machine
 * ```
 */
export function othersMeter(): () => number | undefined {
  const t0 = machineTicks(), cpu0 = cpuMs(), wall0 = performance.now();
  return () => {
    const t1 = machineTicks();
    if (!t0 || !t1 || t1.total <= t0.total) return undefined;
    const cores = navigator.hardwareConcurrency;
    const busy = (t1.busy - t0.busy) / (t1.total - t0.total) * cores;
    const own = (cpuMs() - cpu0) / Math.max(1e-9, performance.now() - wall0);
    return Math.max(0, busy - own);
  };
}

async function commandText(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

/** What a benchmark report says about the machine and the software. */
export interface MachineInfo {
  /** Processor model, from lscpu. */
  cpu: string;
  /** Online CPUs (nproc). */
  cpus: number;
  /** Total memory in GiB. */
  memoryGiB: number;
  /** Kernel and architecture (uname -sr). */
  kernel: string;
  /** Deno, V8 and TypeScript versions. */
  deno: string;
  /** PyTorch's version and the Python interpreter's. */
  torch: string;
  /** OpenBLAS package version (Debian). */
  openblas: string;
}

/**
 * Describes the machine: processor, cores, memory, kernel, and the versions of Deno, PyTorch
 * and OpenBLAS.
 *
 * @example
 * ```ts ignore
 * import { machineInfo } from "./machine.ts";
 * console.log(await machineInfo()); // starts Python to read torch's version
 * ```
 */
export async function machineInfo(python = "/usr/bin/python3"): Promise<MachineInfo> {
  const lscpu = await commandText("lscpu", []);
  const field = (name: string) => lscpu.match(new RegExp(`^${name}:\\s*(.+)$`, "m"))?.[1] ?? "";
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kib = Number(meminfo.match(/^MemTotal:\s+(\d+) kB/m)?.[1] ?? 0);
  const torch = await commandText(python, [
    "-c",
    "import sys, torch; print(f'PyTorch {torch.__version__}, Python {sys.version.split()[0]}')",
  ]);
  const openblas = await commandText("dpkg-query", ["-W", "-f=${Version}", "libopenblas0-pthread"]);
  return {
    cpu: `${field("Model name")} (${field("Vendor ID")}, ${field("Hypervisor vendor") || "bare"})`,
    cpus: navigator.hardwareConcurrency,
    memoryGiB: Math.round(kib / 1024 / 1024 * 10) / 10,
    kernel: await commandText("uname", ["-sr"]),
    deno: `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript}`,
    torch: torch || "PyTorch unavailable",
    openblas: openblas ? `OpenBLAS ${openblas} (Debian libopenblas0-pthread)` : "OpenBLAS unknown",
  };
}
