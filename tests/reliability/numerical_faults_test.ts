/**
 * Numerical faults during training: NaN or ±Infinity is detected at the step it appears, the
 * run stops naming the step and the tensor, and the last good state (RI) or the artefacts
 * already built (the zoo) stay on disk, finite.
 */
import { deepStrictEqual, equal, ok as assert, rejects } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine/backend.ts";
import { MICRO_VIT } from "../helpers/small_models.ts";
import { initHostParams } from "../../lib/models/weights.ts";
import { disposeHead, makeHead } from "../../lib/models/head.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { trainTaskVector } from "../../lib/ri/trainer.ts";
import type { TrainJob, TrainSettings } from "../../lib/ri/job.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { firstNonFinite } from "../../lib/tensor/host.ts";
import { tempDir } from "../helpers/temp.ts";
import { fitLoop } from "../../lib/train/fit.ts";
import { crossEntropy } from "../../lib/train/losses.ts";
import { FiniteWatch, NonFiniteError } from "../../lib/train/finite.ts";
import { defaultZooConfig, type ZooConfig, zooDirectory } from "../../lib/zoo/config.ts";
import { loadZoo } from "../../lib/zoo/zoo.ts";
import { checkRunFolder } from "./run_folder.ts";

const CONFIG = MICRO_VIT;

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

// ---- Training the zoo (lib/train): pretraining, head fitting, expert fine-tuning ----

/** A linear model on 1-pixel images, as in fitLoop's example: 40 images, 4 steps per epoch. */
function linearProblem() {
  const n = 40;
  const set = {
    count: n,
    channels: 1,
    size: 1,
    pixels: Float32Array.from({ length: n }, (_, i) => i % 2),
    labels: Int32Array.from({ length: n }, (_, i) => i % 2),
    classes: ["a", "b"],
  };
  const w = tf.variable(tf.zeros([1, 2]));
  const b = tf.variable(tf.zeros([2]));
  const logits = (x: tf.Tensor4D) => x.reshape([-1, 1]).matMul(w).add(b) as tf.Tensor2D;
  const options = {
    epochs: 5,
    batchSize: 10,
    lr: 0.1,
    weightDecay: 0,
    seed: 0,
    norm: { mean: 0, std: 1 },
    title: "toy",
  };
  return { set, vars: { w, b }, logits, options, dispose: () => tf.dispose([w, b]) };
}

Deno.test("fitLoop: a NaN update with a finite loss is named at its step, between two loss reads", async () => {
  await initEngine({ backend: "wasm" });
  const p = linearProblem();
  const before = tf.memory().numTensors;
  let step = 0;
  // Step 7 returns √(Σ (z − z)²) = 0, finite, whose gradient is ∞ · 0 = NaN: the update of
  // step 7 turns w and b into NaN. Losses are read every 10 steps, yet step 7 is named.
  const loss = (x: tf.Tensor4D, y: tf.Tensor1D) => {
    const z = p.logits(x);
    return ++step === 7
      ? tf.sqrt(tf.sum(tf.square(tf.sub(z, z)))) as tf.Scalar
      : crossEntropy(z, y);
  };
  await rejects(fitLoop(p.vars, p.set, loss, p.options), (err: Error) => {
    equal(err.name, "NonFiniteError");
    equal(
      err.message,
      'toy: step 7 of 20 made tensor "w" (and 1 more) non-finite; training stopped and ' +
        "nothing of this run was saved",
    );
    deepStrictEqual((err as NonFiniteError).tensors, ["w", "b"]);
    return true;
  });
  equal(tf.memory().numTensors, before);
  p.dispose();
});

Deno.test("fitLoop: a non-finite loss with finite parameters is named at its step", async () => {
  await initEngine({ backend: "wasm" });
  const p = linearProblem();
  let step = 0;
  // A NaN constant added to the loss: its gradient is 0, so only the loss is non-finite.
  const loss = (x: tf.Tensor4D, y: tf.Tensor1D) =>
    crossEntropy(p.logits(x), y).add(++step === 13 ? NaN : 0) as tf.Scalar;
  await rejects(
    fitLoop(p.vars, p.set, loss, { ...p.options, reportEvery: 4 }),
    /^NonFiniteError: toy: the loss became non-finite at step 13 of 20; training stopped/,
  );
  p.dispose();
});

Deno.test("FiniteWatch: ±Infinity counts as non-finite, and every bad tensor is listed", async () => {
  await initEngine({ backend: "wasm" });
  const a = tf.variable(tf.tensor1d([1, 2])), b = tf.variable(tf.tensor1d([3]));
  const watch = new FiniteWatch({ a, b });
  watch.record(1, tf.scalar(0.5));
  b.assign(tf.tensor1d([-Infinity]));
  watch.record(2, tf.scalar(0.5));
  a.assign(tf.tensor1d([Infinity, 0]));
  watch.record(3, tf.scalar(0.5));
  await rejects(watch.check("t", 3), (err: NonFiniteError) => {
    equal(err.step, 2);
    deepStrictEqual(err.tensors, ["b"]);
    return true;
  });
  watch.record(4, tf.scalar(Infinity)); // the watch is usable again after a check
  await rejects(watch.check("t", 4), /step 4 of 4 made tensor "a" \(and 1 more\)/);
  watch.dispose();
  tf.dispose([a, b]);
});

/** mf4 cut down to seconds, with expert fine-tuning that diverges (lr 1e38). */
function divergingZoo(): ZooConfig {
  const c = defaultZooConfig("mf4", 7);
  return {
    ...c,
    model: { ...c.model, width: 16, layers: 1, heads: 2, mlpDim: 32, projectionDim: 16 },
    splits: { train: 64, val: 16, test: 32 },
    pretrain: { ...c.pretrain, perSource: 128, epochs: 1, batchSize: 64 },
    experts: { ...c.experts, epochs: 1, batchSize: 16, lr: 1e38 },
  };
}

Deno.test("a diverging zoo build stops naming stage, step and tensor; what was built stays", async () => {
  await initEngine({ backend: "wasm" });
  await using dir = await tempDir();
  const config = divergingZoo();
  await rejects(
    loadZoo({ config, root: dir.path, progress: "off" }),
    /^NonFiniteError: fine-tuning expert mnist: step \d of 4 made tensor "[^"]+"( \(and \d+ more\))? non-finite;/,
  );
  const zooDir = await zooDirectory(config, dir.path);
  const found = await checkRunFolder(zooDir);
  deepStrictEqual(found.problems, []);
  deepStrictEqual(found.temporary, []);
  deepStrictEqual(found.complete, [
    "base.safetensors",
    "config.json",
    "heads/fashion.safetensors",
    "heads/fashion_inv.safetensors",
    "heads/mnist.safetensors",
    "heads/mnist_rot90.safetensors",
  ]);
});
