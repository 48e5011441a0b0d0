/**
 * Seeded mutation fuzzing of the safetensors reader (see safetensors_fuzz.ts): thousands of
 * mutated files, each ending in a CheckpointError naming the file (and tensor) or in a read
 * that matches the specification, with no typed array larger than the file allocated, run in
 * a worker that a watchdog terminates if a case stops making progress.
 *
 * RI_FUZZ_SEED and RI_FUZZ_CASES run other or more cases locally.
 */
import { deepStrictEqual, ok as assert } from "node:assert/strict";
import { tempDir } from "../helpers/temp.ts";
import { fuzzInWorker } from "./fuzz_runner.ts";

const SEED = Number(Deno.env.get("RI_FUZZ_SEED") ?? 20260314);
const CASES = Number(Deno.env.get("RI_FUZZ_CASES") ?? 5000);
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
