/**
 * Installs Debian packages that the tests and fast paths need, when they are missing.
 * Runs `apt-get` only if something is missing, and only as root; otherwise it says what to
 * install and carries on (tests that need a missing package then fail with that name).
 *
 * @module
 */

/** Packages the test suite uses, with the reason for each. */
export const TEST_PACKAGES: Record<string, string> = {
  "python3-torch": "PyTorch reference for numerical cross-checks (/usr/bin/python3)",
  "python3-pil": "PIL reference for CLIP's image preprocessing (bicubic resize, JPEG decoding)",
  "libopenblas0": "OpenBLAS sgemm and LAPACK SVD through Deno FFI",
  "mesa-vulkan-drivers": "software Vulkan driver for testing the WebGPU backend",
  "libvulkan1": "Vulkan loader for WebGPU",
  "jupyter-nbconvert": "headless execution of the notebooks",
  "python3-nbclient": "headless execution of the notebooks",
  "jupyter-client": "kernelspec handling for the deno kernel",
  "chromium": "rendering notebooks and reports to check that figures draw",
};

/** Packages a plain run (`deno task merge`) benefits from: the fast CPU kernels. */
export const RUN_PACKAGES: Record<string, string> = {
  "libopenblas0": TEST_PACKAGES["libopenblas0"],
};

async function run(cmd: string, args: string[], quiet = false): Promise<boolean> {
  try {
    const { code } = await new Deno.Command(cmd, {
      args,
      stdout: quiet ? "null" : "inherit",
      stderr: quiet ? "null" : "inherit",
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).output();
    return code === 0;
  } catch {
    return false;
  }
}

/**
 * Names of the given Debian packages that are not installed.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { missingPackages } from "./system_packages.ts";
 * deepEqual(await missingPackages(["libc6", "no-such-package-xyz"]), ["no-such-package-xyz"]);
 * ```
 */
export async function missingPackages(names: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const name of names) {
    const out = await new Deno.Command("dpkg-query", {
      args: ["-W", "-f=${Status}", name],
      stdout: "piped",
      stderr: "null",
    }).output().catch(() => undefined);
    const status = out ? new TextDecoder().decode(out.stdout) : "";
    if (!status.includes("install ok installed")) missing.push(name);
  }
  return missing;
}

/**
 * Installs whichever of `packages` are missing (apt-get, as root); returns those still missing.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { ensureSystemPackages } from "./system_packages.ts";
 * // installed already: nothing to do, nothing missing
 * deepEqual(await ensureSystemPackages({ libc6: "the C library" }), []);
 * ```
 */
export async function ensureSystemPackages(packages: Record<string, string>): Promise<string[]> {
  const missing = await missingPackages(Object.keys(packages));
  if (missing.length === 0) return [];
  const isRoot = Deno.uid?.() === 0;
  if (!isRoot) {
    console.warn(`Missing Debian packages (run as root to install): ${missing.join(" ")}`);
    for (const name of missing) console.warn(`  ${name}: ${packages[name]}`);
    return missing;
  }
  console.log(`Installing Debian packages: ${missing.join(" ")}`);
  await run("apt-get", ["update", "-qq"]);
  await run("apt-get", ["install", "-y", "-qq", ...missing]);
  const still = await missingPackages(missing);
  if (still.length) console.warn(`Could not install: ${still.join(" ")}`);
  return still;
}

/**
 * Before a run (`deno task merge`, `ri`, `zoo`, `reproduce`): installs the packages of
 * {@linkcode RUN_PACKAGES} that are missing, so that a fresh machine gets the fast CPU kernels
 * instead of tfjs's own (several times slower); only warns when not root.
 *
 * @example
 * ```ts ignore
 * import { ensureRunPackages } from "./system_packages.ts";
 * await ensureRunPackages();
 * ```
 */
export async function ensureRunPackages(): Promise<void> {
  await ensureSystemPackages(RUN_PACKAGES);
}
