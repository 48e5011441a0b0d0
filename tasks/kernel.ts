/**
 * `deno task kernel`: installs the `deno` Jupyter kernelspec for this project's pinned Deno,
 * then sets what the kernel cannot take as flags: `NO_COLOR=1` in its environment (plain text
 * results without ANSI colour codes) and `"interrupt_mode": "signal"`: Interrupt sends SIGINT,
 * which this kit's training loops take as a request to stop after their step with their state
 * saved (`mod.ts` keeps a listener in the kernel so that SIGINT never ends it; see
 * lib/train/interrupt.ts). Deno's other mode, `message`, terminates V8's execution, which no
 * JavaScript can observe: an awaiting cell then never ends and nothing is saved. Idempotent: an
 * up-to-date kernelspec is left alone.
 *
 * Usage: `./deno task kernel [--name deno] [--data-home DIR]` (`--data-home` installs under
 * DIR/jupyter/kernels instead of the user's Jupyter data directory).
 *
 * @module
 */
import { parseArgs } from "node:util";

/** Options of {@linkcode installKernelspec}. */
export interface KernelspecOptions {
  /** Kernel name (default `deno`, the name the project's notebooks ask for). */
  name?: string;
  /** Install under `dataHome/jupyter/kernels` (an `XDG_DATA_HOME`); default: the user's. */
  dataHome?: string;
  /** The Deno binary the kernel runs (default: the one running this code). */
  deno?: string;
}

/** The fields of kernel.json this task reads and writes. */
export interface KernelJson {
  /** Command line Jupyter starts the kernel with. */
  argv: string[];
  /** Name shown in Jupyter's kernel menus. */
  display_name: string;
  /** Language of the kernel. */
  language: string;
  /** Environment variables for the kernel. */
  env?: Record<string, string>;
  /** How Jupyter interrupts the kernel. */
  interrupt_mode?: string;
  /** Anything else Deno wrote. */
  [key: string]: unknown;
}

/** Where the kernelspec is and whether this call changed it. */
export interface KernelspecResult {
  /** The kernelspec directory (holds kernel.json). */
  dir: string;
  /** False when it was already up to date. */
  changed: boolean;
  /** The kernel.json now in place. */
  spec: KernelJson;
}

/**
 * The directory `deno jupyter --install` uses for kernel `name`:
 * `$XDG_DATA_HOME/jupyter/kernels/NAME`, else `~/.local/share/jupyter/kernels/NAME`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { kernelspecDir } from "./kernel.ts";
 * equal(kernelspecDir("deno", "/tmp/data"), "/tmp/data/jupyter/kernels/deno");
 * ```
 */
export function kernelspecDir(name: string, dataHome?: string): string {
  const base = dataHome ?? envOr("XDG_DATA_HOME", `${envOr("HOME", "/root")}/.local/share`);
  return `${base}/jupyter/kernels/${name}`;
}

/**
 * The kernel.json Deno wrote, with `NO_COLOR=1` and signal interrupts added.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { withProjectSettings } from "./kernel.ts";
 * const spec = withProjectSettings({ argv: ["deno"], display_name: "Deno", language: "typescript" });
 * deepEqual(spec, {
 *   argv: ["deno"],
 *   display_name: "Deno",
 *   language: "typescript",
 *   env: { NO_COLOR: "1" },
 *   interrupt_mode: "signal",
 * });
 * ```
 */
export function withProjectSettings(spec: KernelJson): KernelJson {
  return { ...spec, env: { ...spec.env, NO_COLOR: "1" }, interrupt_mode: "signal" };
}

/**
 * True if `spec` starts `deno` as a kernel and carries the project's settings.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isUpToDate, withProjectSettings } from "./kernel.ts";
 * const argv = ["/x/deno", "jupyter", "--kernel"];
 * const spec = { argv, display_name: "Deno", language: "typescript" };
 * equal(isUpToDate(spec, "/x/deno"), false); // no NO_COLOR, no signal interrupts
 * equal(isUpToDate(withProjectSettings(spec), "/x/deno"), true);
 * equal(isUpToDate(withProjectSettings(spec), "/y/deno"), false); // another deno
 * ```
 */
export function isUpToDate(spec: KernelJson, deno: string): boolean {
  return spec.argv?.[0] === deno && spec.argv.includes("--kernel") &&
    spec.env?.NO_COLOR === "1" && spec.interrupt_mode === "signal";
}

/**
 * Installs (or refreshes) the kernelspec with `deno jupyter --install`, then rewrites its
 * kernel.json with the project's settings, atomically.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { installKernelspec } from "./kernel.ts";
 * const dataHome = await Deno.makeTempDir();
 * const { dir, spec, changed } = await installKernelspec({ dataHome });
 * equal(dir, `${dataHome}/jupyter/kernels/deno`);
 * equal(changed, true);
 * equal(spec.interrupt_mode, "signal");
 * deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/kernel.json`)), spec); // as returned
 * equal((await installKernelspec({ dataHome })).changed, false); // up to date: left alone
 * await Deno.remove(dataHome, { recursive: true });
 * ```
 */
export async function installKernelspec(
  options: KernelspecOptions = {},
): Promise<KernelspecResult> {
  const name = options.name ?? "deno";
  const deno = options.deno ?? Deno.execPath();
  const expected = kernelspecDir(name, options.dataHome);
  const current = await readSpec(expected);
  if (current && isUpToDate(current, deno)) return { dir: expected, changed: false, spec: current };
  const dir = await runInstall(deno, name, options.dataHome) ?? expected;
  const installed = await readSpec(dir);
  if (!installed) {
    throw new Error(`deno jupyter --install reported success but wrote no ${dir}/kernel.json`);
  }
  const spec = withProjectSettings(installed);
  await writeAtomic(`${dir}/kernel.json`, JSON.stringify(spec, null, 2) + "\n");
  return { dir, changed: true, spec };
}

async function runInstall(
  deno: string,
  name: string,
  dataHome?: string,
): Promise<string | undefined> {
  const env: Record<string, string> = dataHome ? { XDG_DATA_HOME: dataHome } : {};
  const out = await new Deno.Command(deno, {
    args: ["jupyter", "--install", "--force", "--name", name],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(`${deno} jupyter --install failed (exit ${out.code}):\n${text}`);
  }
  // "✅ Deno kernelspec installed successfully at /path/to/kernels/deno."
  return text.match(/installed successfully at (.+?)\.?\s*$/m)?.[1];
}

async function readSpec(dir: string): Promise<KernelJson | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${dir}/kernel.json`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as KernelJson;
  } catch (error) {
    throw new Error(`${dir}/kernel.json is not valid JSON: ${(error as Error).message}`);
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeTextFile(temp, text);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

function envOr(name: string, fallback: string): string {
  try {
    return Deno.env.get(name) || fallback;
  } catch {
    return fallback;
  }
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { name: { type: "string" }, "data-home": { type: "string" } },
  });
  const result = await installKernelspec({ name: values.name, dataHome: values["data-home"] });
  const what = result.changed ? "Installed" : "Already up to date:";
  console.log(`${what} Jupyter kernel "${values.name ?? "deno"}" at ${result.dir}`);
  console.log(`  runs ${result.spec.argv.join(" ")}`);
  console.log(
    `  env NO_COLOR=${result.spec.env?.NO_COLOR}, interrupt_mode ${result.spec.interrupt_mode}`,
  );
}

// Guarded so that `deno test --doc` can load this file without installing anything.
if (import.meta.main) await main(Deno.args);
