/**
 * The parent side of the fuzz tests: runs cases in a worker with a watchdog.
 *
 * @module
 */
import type { FuzzRequest } from "./fuzz_worker.ts";
import type { FuzzSummary } from "./safetensors_fuzz.ts";

/** A case that has not finished after this long is taken to hang (they take about 1 ms). */
const STUCK_MS = 20_000;

/**
 * Runs fuzz cases in a worker (fuzz_worker.ts); rejects naming the case when one stops making
 * progress, which is how a hang shows.
 *
 * @example
 * ```ts ignore
 * const summary = await fuzzInWorker({ seed: 1, from: 0, to: 100, dir: "/tmp/fuzz" });
 * ```
 */
export async function fuzzInWorker(request: Omit<FuzzRequest, "progress">): Promise<FuzzSummary> {
  const progress = new SharedArrayBuffer(4);
  const cell = new Int32Array(progress);
  const worker = new Worker(new URL("./fuzz_worker.ts", import.meta.url).href, { type: "module" });
  let watchdog: ReturnType<typeof setInterval> | undefined;
  try {
    return await new Promise<FuzzSummary>((resolve, reject) => {
      worker.onmessage = (e) =>
        e.data.error ? reject(new Error(e.data.error)) : resolve(e.data.summary);
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`worker failed: ${e.message}`));
      };
      let last = -1, since = Date.now();
      watchdog = setInterval(() => {
        const now = Atomics.load(cell, 0);
        if (now !== last) [last, since] = [now, Date.now()];
        else if (Date.now() - since > STUCK_MS) {
          reject(
            new Error(`case ${now} of seed ${request.seed} hangs (no progress for ${STUCK_MS} ms)`),
          );
        }
      }, 500);
      worker.postMessage({ ...request, progress });
    });
  } finally {
    clearInterval(watchdog);
    worker.terminate();
  }
}
