/**
 * The RI trainer's reads per step, on whichever backend is active (shared by the wasm and
 * WebGPU read-count tests).
 *
 * @module
 */
import { disposeHead } from "../../lib/models/head.ts";
import { adaptExpert } from "../../lib/ri/adapt.ts";
import { ReadSpy } from "../helpers/reads.ts";
import { microRiInputs } from "../helpers/tiny_runs.ts";

/**
 * Runs `steps` RI steps of a micro ViT and returns the device reads made between consecutive
 * steps' ends (steps 2…`steps`; step 1's interval holds the targets' computation) and the
 * number of synchronous reads.
 *
 * @example
 * ```ts ignore
 * const { reads } = await riReadsPerStep(4); // [1, 1, 1]
 * ```
 */
export async function riReadsPerStep(
  steps: number,
): Promise<{ reads: number[]; syncReads: number }> {
  const inputs = microRiInputs(32);
  using spy = new ReadSpy();
  const ends: number[] = [];
  try {
    await adaptExpert(
      inputs,
      {
        steps,
        batch: 16,
        lr: 1e-3,
        weightDecay: 1e-4,
        alpha: 1,
        distance: "kl",
        seed: 5,
        checkpointEvery: steps,
      },
      { progress: "off", onStep: () => ends.push(spy.reads) },
    );
  } finally {
    inputs.heads.forEach(disposeHead);
  }
  return { reads: ends.slice(1).map((r, i) => r - ends[i]), syncReads: spy.syncReads.length };
}
