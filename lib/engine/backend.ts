/**
 * The one place that chooses and starts the TensorFlow.js backend.
 *
 * Backends: `wasm` (default on a CPU), `webgpu` (chosen by `auto` when a hardware GPU adapter
 * exists), `cpu` (tfjs's pure-JS kernels, slow, for debugging), `tensorflow` (tfjs-node-gpu or
 * tfjs-node, only when asked for). The choice comes from an explicit option, else the
 * `RI_BACKEND` environment variable, else `auto`. On wasm, matrix products run through OpenBLAS
 * (`lib/engine/kernels.ts`) where FFI is allowed, unless `RI_FAST_KERNELS=0`.
 *
 * On `webgpu` read results with `await t.data()` / `await t.array()`: tfjs-webgpu's synchronous
 * `dataSync()` goes through an OffscreenCanvas, which Deno lacks, and throws there.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fastKernelsFromEnv, registerFastKernels, unregisterFastKernels } from "./kernels.ts";
import { prepareWebGpu } from "./webgpu.ts";

/** A backend a user may ask for. */
export type BackendName = "auto" | "wasm" | "webgpu" | "cpu" | "tensorflow";

/** Names a user may pass to `--backend` or `RI_BACKEND`. */
export const BACKEND_NAMES: readonly BackendName[] = [
  "auto",
  "wasm",
  "webgpu",
  "cpu",
  "tensorflow",
];

/** What {@linkcode initEngine} started: reported by every run. */
export interface EngineInfo {
  /** What was asked for (`auto` included). */
  requested: BackendName;
  /** The tfjs backend now active (`wasm`, `webgpu`, `cpu`, `tensorflow`). */
  backend: string;
  /** The device underneath: the GPU adapter's description, or the CPU path. */
  adapter: string;
  /** Why `auto` chose what it chose, or other notes worth printing. */
  note: string;
}

let current: EngineInfo | undefined;

/**
 * Parses a backend name, with an error that lists the valid ones.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import { parseBackendName } from "./backend.ts";
 * equal(parseBackendName("wasm"), "wasm");
 * throws(() => parseBackendName("gpu"));
 * ```
 */
export function parseBackendName(value: string): BackendName {
  const name = value.trim().toLowerCase();
  if ((BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName;
  throw new Error(`unknown backend "${value}": expected one of ${BACKEND_NAMES.join(", ")}`);
}

/**
 * The backend to use when the caller gives none: `RI_BACKEND` if set, else `auto`.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { BACKEND_NAMES, backendFromEnv } from "./backend.ts";
 * const name = backendFromEnv(); // "auto" unless RI_BACKEND is set
 * ok(BACKEND_NAMES.includes(name));
 * ```
 */
export function backendFromEnv(): BackendName {
  let value: string | undefined;
  try {
    value = Deno.env.get("RI_BACKEND");
  } catch {
    value = undefined; // no --allow-env: behave as if unset
  }
  return value ? parseBackendName(value) : "auto";
}

/** A GPU adapter as WebGPU describes it, reduced to what the choice needs. */
export interface AdapterProbe {
  /** True when a usable hardware adapter was found. */
  hardware: boolean;
  /** Human-readable description ("llvmpipe (LLVM 15…)", "NVIDIA H100 …", or why none). */
  description: string;
}

const SOFTWARE_ADAPTERS = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

/**
 * Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not set" on stderr when
 * probed without that variable (a headless shell, CI): harmless, but it reads as a failure of
 * ours. A private directory is given to them when none is set.
 */
function quietVulkanLoader(): void {
  try {
    if (Deno.env.get("XDG_RUNTIME_DIR")) return;
    // One per user, reused by every process (0700, as the XDG specification asks).
    const dir = `${Deno.env.get("TMPDIR") || "/tmp"}/ri-runtime-${Deno.uid() ?? "user"}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // no --allow-env or --allow-write: the message stays, nothing else changes
  }
}

/**
 * Looks for a WebGPU adapter and says whether it is real hardware (not a software or
 * fallback adapter such as Mesa's llvmpipe).
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { probeGpuAdapter } from "./backend.ts";
 * const probe = await probeGpuAdapter();
 * equal(typeof probe.hardware, "boolean");
 * ok(probe.description.length > 0);
 * ```
 */
export async function probeGpuAdapter(): Promise<AdapterProbe> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return { hardware: false, description: "no navigator.gpu in this runtime" };
  quietVulkanLoader();
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (err) {
    return { hardware: false, description: `requestAdapter failed: ${errorText(err)}` };
  }
  if (!adapter) return { hardware: false, description: "no WebGPU adapter (no Vulkan driver?)" };
  const info = adapter.info;
  const description = [info.description, info.vendor && `vendor ${info.vendor}`]
    .filter(Boolean).join(", ") || "unnamed adapter";
  const software = info.isFallbackAdapter || SOFTWARE_ADAPTERS.test(info.description ?? "");
  return { hardware: !software, description };
}

/**
 * Starts the chosen backend (once per process; a second call with another choice switches).
 * `auto` takes WebGPU on a hardware adapter and wasm otherwise.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { engineInfo, initEngine } from "./backend.ts";
 * const info = await initEngine({ backend: "wasm" });
 * equal(info.backend, "wasm");
 * equal(engineInfo(), info);
 * ```
 */
export async function initEngine(options: { backend?: BackendName } = {}): Promise<EngineInfo> {
  // Checked even when typed: a notebook passes any string ("WASM" is fine, "gpu" lists the valid).
  const requested = options.backend ? parseBackendName(options.backend) : backendFromEnv();
  if (current && (current.requested === requested || current.backend === requested)) {
    return current;
  }
  let info: EngineInfo;
  if (requested === "auto") {
    const probe = await probeGpuAdapter();
    info = probe.hardware
      ? await startWebGpu("auto", `hardware GPU adapter found: ${probe.description}`)
      : await startWasm("auto", `no hardware GPU adapter (${probe.description}); using wasm`);
  } else if (requested === "wasm") info = await startWasm("wasm", "");
  else if (requested === "webgpu") info = await startWebGpu("webgpu", "");
  else if (requested === "cpu") info = await startCpu();
  else info = await startTensorflow();
  current = info;
  return info;
}

let starting: Promise<EngineInfo> | undefined;

/**
 * The running engine; when none was started, starts the default one (`RI_BACKEND`, else
 * `auto`: WebGPU on a hardware GPU, else wasm with the OpenBLAS kernels) and says which on
 * `log` (default stdout), once. Every entry point that computes calls it, so that a notebook or
 * script that never calls {@linkcode initEngine} still runs at the command line's speed instead
 * of on tfjs's plain JavaScript kernels.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { ensureEngine, initEngine } from "./backend.ts";
 * const started = await initEngine({ backend: "wasm" });
 * equal(await ensureEngine(), started); // an engine is running: nothing changes
 * ```
 */
export async function ensureEngine(
  log: (line: string) => void = (line) => console.log(line),
): Promise<EngineInfo> {
  if (current) return current;
  if (!starting) {
    starting = initEngine().then((info) => {
      log(`engine: ${describeEngine(info)} (started by default; initEngine({ backend }) chooses)`);
      return info;
    }).finally(() => (starting = undefined));
  }
  return await starting;
}

/**
 * The engine started so far, or undefined before {@linkcode initEngine}.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { engineInfo, initEngine } from "./backend.ts";
 * const info = await initEngine({ backend: "cpu" });
 * equal(engineInfo()?.backend, "cpu");
 * equal(engineInfo(), info);
 * ```
 */
export function engineInfo(): EngineInfo | undefined {
  return current;
}

/**
 * A one-line description of the running engine for logs and reports.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { describeEngine, initEngine } from "./backend.ts";
 * ok(describeEngine(await initEngine({ backend: "cpu" })).startsWith("backend cpu"));
 * ```
 */
export function describeEngine(info: EngineInfo): string {
  const note = info.note ? ` (${info.note})` : "";
  return `backend ${info.backend} on ${info.adapter}${note}`;
}

async function startWasm(requested: BackendName, note: string): Promise<EngineInfo> {
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  // tfjs-backend-wasm looks for its .wasm files next to a path we give it; they live in the
  // package's dist/ folder, wherever the npm resolver put the package.
  const entry = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
  wasm.setWasmPaths(new URL("./", entry).href);
  await activate("wasm");
  // Matrix products through OpenBLAS where FFI allows (lib/engine/kernels.ts).
  const fast = fastKernelsFromEnv()
    ? registerFastKernels()
    : (unregisterFastKernels(), { active: false, detail: "" });
  // Say why the fast kernels are off when they were asked for: runs are several times slower.
  const adapter = fast.active
    ? `CPU (wasm SIMD + ${fast.detail})`
    : `CPU (WebAssembly SIMD, 1 thread${fast.detail ? `; fast kernels off: ${fast.detail}` : ""})`;
  return { requested, backend: "wasm", adapter, note };
}

async function startCpu(): Promise<EngineInfo> {
  await activate("cpu");
  return { requested: "cpu", backend: "cpu", adapter: "CPU (pure JavaScript kernels)", note: "" };
}

async function startWebGpu(requested: BackendName, note: string): Promise<EngineInfo> {
  const probe = await probeGpuAdapter();
  if (probe.description.startsWith("no ") || probe.description.startsWith("requestAdapter")) {
    throw new Error(
      `backend webgpu: ${probe.description}. On Linux WebGPU needs a Vulkan driver ` +
        `(for a software test: apt-get install mesa-vulkan-drivers libvulkan1).`,
    );
  }
  await import("@tensorflow/tfjs-backend-webgpu");
  await activate("webgpu");
  prepareWebGpu(); // AddN within the device's limits, device errors thrown (./webgpu.ts)
  const kind = probe.hardware ? "GPU" : "software GPU";
  return { requested, backend: "webgpu", adapter: `${kind}: ${probe.description}`, note };
}

async function startTensorflow(): Promise<EngineInfo> {
  const failures: string[] = [];
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    const missing = await missingNativeBinding(pkg);
    if (missing) {
      failures.push(`${pkg}: ${missing}`);
      continue;
    }
    try {
      await import(pkg);
      await activate("tensorflow");
      const adapter = pkg.endsWith("gpu") ? "libtensorflow (CUDA)" : "libtensorflow (CPU)";
      return { requested: "tensorflow", backend: "tensorflow", adapter, note: `via ${pkg}` };
    } catch (err) {
      failures.push(`${pkg}: ${firstLine(errorText(err))}`);
    }
  }
  throw new Error(
    "backend tensorflow is not available. It needs @tensorflow/tfjs-node-gpu (or tfjs-node), " +
      "whose install script downloads libtensorflow 2.9.1 from Google's storage (impossible " +
      "without network; run `deno approve-scripts` where it is allowed), and whose GPU build " +
      "needs the CUDA 11.2 and cuDNN 8.1 runtime libraries (machines with CUDA 13 lack them). " +
      "Use --backend webgpu on a GPU or wasm on a CPU instead.\n  " + failures.join("\n  "),
  );
}

/** Why the package's native addon cannot load, or "" when its file is there. */
async function missingNativeBinding(pkg: string): Promise<string> {
  let entry: URL;
  try {
    entry = new URL(import.meta.resolve(pkg));
  } catch {
    return "package not installed";
  }
  if (entry.protocol !== "file:") return "";
  // The install script puts the addon at <package>/lib/napi-v8/tfjs_binding.node.
  const binding = new URL("../lib/napi-v8/tfjs_binding.node", entry);
  try {
    await Deno.stat(binding);
    return "";
  } catch {
    return `native addon missing (${binding.pathname}): its install script never ran`;
  }
}

async function activate(name: string): Promise<void> {
  tf.env().set("PROD", true); // silences tfjs's "install the node backend" banner
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`backend ${name} failed to initialise`);
  await tf.ready();
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(text: string): string {
  return text.split("\n")[0];
}
