/**
 * Run as a separate process by the engine tests, so that `RI_BACKEND` can differ per run
 * without touching the test process's environment: starts the engine with no explicit choice
 * and prints what it got (or the error) as one JSON line.
 *
 * @module
 */
import { describeEngine, initEngine } from "../../lib/engine/backend.ts";

/**
 * What a run with this process's environment chose.
 *
 * @example
 * ```ts
 * import { report } from "./engine_child.ts";
 * console.log(await report()); // {"ok":true,"requested":"auto",...}
 * ```
 */
export async function report(): Promise<string> {
  try {
    const info = await initEngine(); // no choice given: RI_BACKEND, else auto
    return JSON.stringify({ ok: true, ...info, line: describeEngine(info) });
  } catch (err) {
    return JSON.stringify({ ok: false, error: (err as Error).message });
  }
}

if (import.meta.main) console.log(await report());
