/**
 * Numerical faults during training: NaN or ±Infinity is detected at the step it appears, the
 * run stops naming the step and the tensor, and the last good state stays on disk, finite.
 */
import { equal, ok as assert, rejects } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine/backend.ts";
import { VIT_TINY, type ViTConfig } from "../../lib/models/config.ts";
import { initHostParams } from "../../lib/models/params.ts";
import { disposeHead, makeHead } from "../../lib/models/head.ts";
import { Rng } from "../../lib/data/random.ts";
import { type TrainJob, type TrainSettings, trainTaskVector } from "../../lib/ri/trainer.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { firstNonFinite } from "../../lib/tensor/host.ts";
import { tempDir } from "../helpers/python.ts";

const CONFIG: ViTConfig = {
  ...VIT_TINY,
  width: 16,
  layers: 1,
  heads: 2,
  mlpDim: 32,
  projectionDim: 16,
};

/**
 * A small training job whose loss is cross-entropy to fixed targets until step `faultAt`, then
 * √(Σ (z − z)²): its value is 0, finite, but its gradient is ∞ · 0 = NaN, so the update of that
 * step makes every parameter NaN while the loss read at that step looks fine.
 */
function faultyJob(faultAt: number): TrainJob {
  const base = initHostParams(CONFIG, 1);
  const init = new Map(
    [...base].map(([n, t]) => [n, { shape: t.shape, data: new Float32Array(t.data.length) }]),
  );
  const heads = [makeHead("a", ["0", "1", "2"], tf.tensor2d(new Rng(4).normals(48), [3, 16]), 20)];
  const count = 32;
  const targets = [new Float32Array(count * 3).fill(1 / 3)];
  const pixels = new Rng(3).normals(count * 784, 0.3).map((v) => Math.min(1, Math.max(0, 0.5 + v)));
  let step = 0;
  return {
    title: "faulty",
    config: CONFIG,
    base,
    init,
    heads,
    targets,
    aux: { count, channels: 1, size: 28, pixels, labels: new Int32Array(0), classes: [] },
    loss: (logits, t) => {
      step++;
      const z = logits[0];
      const total = step < faultAt
        ? tf.losses.softmaxCrossEntropy(t[0], z) as tf.Scalar
        : tf.sqrt(tf.sum(tf.square(tf.sub(z, z)))) as tf.Scalar;
      return { total, parts: {} };
    },
    identity: { kind: "faulty" },
  };
}

const SETTINGS: TrainSettings = {
  steps: 10,
  batch: 8,
  lr: 1e-3,
  weightDecay: 0,
  seed: 0,
  checkpointEvery: 3,
};

Deno.test("a NaN update with a finite loss stops the run at its step; the last good state stays", async () => {
  await initEngine({ backend: "wasm" });
  await using dir = await tempDir();
  const statePath = `${dir.path}/state.safetensors`;
  const job = faultyJob(6); // steps 1–5 train normally; step 6's update is NaN
  await rejects(
    trainTaskVector(job, SETTINGS, { statePath, progress: "off" }),
    /^Error: faulty: step 6 made tensor "[^"]+" non-finite \(flat index \d+\); the last saved state is kept$/,
  );
  using state = await SafetensorsReader.open(statePath);
  equal(state.metadata.step, "3");
  for (const name of state.names()) {
    assert(firstNonFinite(await state.read(name, { allowNonFinite: true })) < 0, name);
  }
  job.heads.forEach(disposeHead);
});
