/**
 * Runs the independent PyTorch reference (Debian's python3-torch through /usr/bin/python3;
 * the python3 first on PATH may lack it). Scripts can `import st` (tests/py/st.py) to read and
 * write safetensors files without this project's code.
 *
 * @module
 */

/** The interpreter that has Debian's python3-torch. */
export const PYTHON = "/usr/bin/python3";

const PY_DIR = new URL("../py/", import.meta.url).pathname;

/**
 * Runs `code` with `args` (available as sys.argv[1:]) and returns its stdout; throws with
 * stderr when it fails.
 *
 * @example
 * ```ts
 * import { runPython } from "./python.ts";
 * const out = await runPython("import torch; print(torch.ones(2).sum().item())");
 * ```
 */
export async function runPython(code: string, args: string[] = []): Promise<string> {
  const out = await new Deno.Command(PYTHON, {
    args: ["-c", code, ...args],
    env: { PYTHONPATH: PY_DIR, OMP_NUM_THREADS: "2", OPENBLAS_NUM_THREADS: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`python failed (exit ${out.code}):\n${new TextDecoder().decode(out.stderr)}`);
  }
  return stdout;
}
