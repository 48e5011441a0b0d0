/**
 * The RI trainer's reads per step, on whichever backend is active (shared by the wasm and
 * WebGPU read-count tests).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { disposeHead, makeHead } from "../../lib/models/head.ts";
import { type HostParams, initHostParams } from "../../lib/models/weights.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { adaptExpert } from "../../lib/ri/adapt.ts";
import { ReadSpy } from "../helpers/reads.ts";
import { MICRO_VIT } from "../helpers/small_models.ts";

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
  const base = initHostParams(MICRO_VIT, 1);
  const noise = new Rng(2, "expert");
  const expert: HostParams = new Map(
    [...base].map((
      [n, t],
    ) => [n, { shape: t.shape, data: t.data.map((v) => v + noise.normal() * 0.05) }]),
  );
  const heads = ["a", "b", "c"].map((task, i) =>
    makeHead(task, ["0", "1", "2"], tf.tensor2d(new Rng(10 + i, "head").normals(48), [3, 16]), 20)
  );
  const count = 32, per = 28 * 28;
  const pixels = new Rng(3, "aux").normals(count * per, 0.3);
  const aux = { count, channels: 1, size: 28, pixels, labels: new Int32Array(0), classes: [] };
  using spy = new ReadSpy();
  const ends: number[] = [];
  try {
    await adaptExpert(
      { task: "b", config: MICRO_VIT, base, expert, heads, aux },
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
    heads.forEach(disposeHead);
  }
  return { reads: ends.slice(1).map((r, i) => r - ends[i]), syncReads: spy.syncReads.length };
}
