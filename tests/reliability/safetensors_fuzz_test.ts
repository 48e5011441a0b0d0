/**
 * Seeded mutation fuzzing of the safetensors reader (see safetensors_fuzz.ts): thousands of
 * mutated files, each ending in a CheckpointError naming the file (and tensor) or in a read
 * that matches the specification, with no typed array larger than the file allocated, run in
 * a worker that a watchdog terminates if a case stops making progress.
 *
 * RI_FUZZ_SEED and RI_FUZZ_CASES run other or more cases locally.
 */
import { deepStrictEqual, ok as assert } from "node:assert/strict";
import { tempDir } from "../helpers/python.ts";
import type { FuzzRequest } from "./fuzz_worker.ts";
import type { FuzzSummary } from "./safetensors_fuzz.ts";

const SEED = Number(Deno.env.get("RI_FUZZ_SEED") ?? 20260314);
const CASES = Number(Deno.env.get("RI_FUZZ_CASES") ?? 5000);
/** A case that has not finished after this long is taken to hang (they take about 1 ms). */
const STUCK_MS = 20_000;

/** Runs the cases in a worker; rejects naming the case when one stops making progress. */
async function fuzzInWorker(request: Omit<FuzzRequest, "progress">): Promise<FuzzSummary> {
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

Deno.test(`safetensors fuzz: ${CASES} mutated files, seed ${SEED}`, async () => {
  await using dir = await tempDir();
  const summary = await fuzzInWorker({ seed: SEED, from: 0, to: CASES, dir: dir.path });
  console.log(JSON.stringify({ ...summary, failures: summary.failures.length }));
  deepStrictEqual(
    summary.failures,
    [],
    "disagreements with the specification (case, mutation, problem)",
  );
  assert(summary.cases === CASES);
  // Every kind of ending must occur, or the mutations have stopped exercising the reader.
  const { outcomes } = summary;
  assert(
    outcomes.read > CASES / 20 && outcomes["read error"] > CASES / 100,
    JSON.stringify(outcomes),
  );
  assert(
    outcomes["open error"] > CASES / 2 && summary.intact > CASES / 10,
    JSON.stringify(summary),
  );
  assert(
    summary.largestAllocationRatio <= 1,
    `allocated ${summary.largestAllocationRatio}× the file`,
  );
});
