/**
 * Whether the WebGPU tests run here. They need a WebGPU adapter: on a machine without a GPU,
 * Mesa's software Vulkan driver (Debian `mesa-vulkan-drivers` with `libvulkan1`, which
 * `deno task test` installs). With those packages installed the tests run, and fail if no
 * adapter comes up; without them (a user's machine, no root) they are skipped, saying why.
 *
 * @module
 */
import { probeGpuAdapter } from "../../lib/engine/backend.ts";
import { missingPackages } from "../../tasks/system_packages.ts";

/** The Debian packages that give a CPU-only machine a WebGPU adapter. */
export const VULKAN_PACKAGES = ["mesa-vulkan-drivers", "libvulkan1"];

/**
 * True when the WebGPU tests should run: an adapter exists, or the software driver is
 * installed (so a missing adapter is a failure, not a skip).
 *
 * @example
 * ```ts ignore
 * Deno.test({ name: "…", ignore: !(await webGpuTestsRun()), fn: async () => {} });
 * ```
 */
export async function webGpuTestsRun(): Promise<boolean> {
  const probe = await probeGpuAdapter();
  if (!probe.description.startsWith("no ") && !probe.description.startsWith("requestAdapter")) {
    return true;
  }
  const missing = await missingPackages(VULKAN_PACKAGES);
  if (missing.length === 0) return true;
  console.warn(
    `WebGPU tests skipped: ${probe.description}; install ${missing.join(" ")} (deno task test ` +
      `does, as root) for Mesa's software adapter`,
  );
  return false;
}
