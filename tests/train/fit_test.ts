import {
  deepStrictEqual,
  equal,
  notDeepStrictEqual,
  ok as assert,
  throws,
} from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine, type ViTConfig } from "../../mod.ts";
import { batches } from "../../lib/data/batches.ts";
import { pretrainSplits, taskSplits } from "../../lib/data/dataset.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { taskByName } from "../../lib/data/tasks.ts";
import { disposeHead, headLogits } from "../../lib/models/head.ts";
import { disposeParams, hostToParams, initParams, toVariables } from "../../lib/models/weights.ts";
import { imageFeatures } from "../../lib/models/vit.ts";
import { AdamW } from "../../lib/train/adamw.ts";
import { accuracy, extractFeatures } from "../../lib/train/evaluate.ts";
import {
  finetuneExpert,
  fitHead,
  pretrainBase,
  prototypeHead,
  prototypeShots,
} from "../../lib/train/fit.ts";
import { crossEntropy } from "../../lib/train/losses.ts";
import { trainStep } from "../../lib/train/step.ts";

const TINY: ViTConfig = {
  imageSize: 28,
  patchSize: 7,
  channels: 1,
  width: 32,
  layers: 2,
  heads: 2,
  mlpDim: 64,
  projectionDim: 32,
  activation: "quick_gelu",
  layerNormEps: 1e-5,
};
const NORM = { mean: 0.5, std: 0.5 };

Deno.test("the tensor count stays flat across training steps", async () => {
  await initEngine({ backend: "wasm" });
  const { train } = await pretrainSplits(64, 0, 0);
  const init = initParams(TINY, 0);
  const vars = toVariables(init);
  disposeParams(init);
  const headW = tf.variable(tf.randomNormal([20, TINY.projectionDim], 0, 1, "float32", 1));
  const opt = new AdamW({ ...vars, head: headW }, { weightDecay: 0.1 });
  const counts: number[] = [];
  for (let epoch = 0; epoch < 2; epoch++) {
    for (const { x, y } of batches(train, { batchSize: 16, seed: 0, epoch, norm: NORM })) {
      const head = {
        task: "t",
        classes: train.classes,
        weight: headW as tf.Tensor2D,
        logitScale: 10,
      };
      const loss = trainStep(
        () => crossEntropy(headLogits(head, imageFeatures(vars, TINY, x)), y),
        opt,
        { lr: 1e-3, clipNorm: 1 },
      );
      loss.dispose();
      counts.push(tf.memory().numTensors);
    }
  }
  equal(counts.length, 16);
  deepStrictEqual(new Set(counts.slice(1)).size, 1, `tensor counts ${counts}`);
  opt.dispose();
  disposeParams(vars);
  headW.dispose();
});

Deno.test("a probe head separates separable features; rows unit-norm; repeatable", async () => {
  await initEngine({ backend: "wasm" });
  const rng = new Rng(0);
  const centres = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  const labels = Int32Array.from({ length: 90 }, (_, i) => i % 3);
  const features = Float32Array.from({ length: 270 }, (_, k) => {
    const [i, d] = [Math.floor(k / 3), k % 3];
    return 3 * centres[labels[i]][d] + 0.3 * rng.normal();
  });
  const before = tf.memory().numTensors;
  const head = await fitHead("toy", ["a", "b", "c"], features, labels, { steps: 50 });
  const again = await fitHead("toy", ["a", "b", "c"], features, labels, { steps: 50 });
  equal(tf.memory().numTensors, before + 2);
  deepStrictEqual(await head.weight.data(), await again.weight.data());
  const logits = headLogits(head, tf.tensor2d(features, [90, 3]));
  const predicted = logits.argMax(1).dataSync();
  equal(predicted.filter((p, i) => p === labels[i]).length, 90);
  const w = head.weight.arraySync();
  for (const row of w) assert(Math.abs(Math.hypot(...row) - 1) < 1e-5);
  tf.dispose(logits);
  [head, again].forEach(disposeHead);
});

Deno.test("a prototype head's rows are its classes' mean normalised features, normalised", async () => {
  await initEngine({ backend: "wasm" });
  // Class 0: (3, 4) and (0, 2) → unit rows (0.6, 0.8), (0, 1) → mean (0.3, 0.9) → /√0.9.
  // Class 1: one image (−5, 0) → (−1, 0). Class 2: (1, 1) and (2, 2) → (1, 1)/√2.
  const features = new Float32Array([3, 4, -5, 0, 0, 2, 1, 1, 2, 2]);
  const labels = new Int32Array([0, 1, 0, 2, 2]);
  const before = tf.memory().numTensors;
  const head = prototypeHead("toy", ["a", "b", "c"], features, labels, 10);
  equal(tf.memory().numTensors, before + 1);
  const expected = [[0.3 / Math.sqrt(0.9), 0.9 / Math.sqrt(0.9)], [-1, 0], [
    Math.SQRT1_2,
    Math.SQRT1_2,
  ]];
  const w = head.weight.arraySync();
  w.forEach((row, c) => row.forEach((v, d) => assert(Math.abs(v - expected[c][d]) < 1e-6)));
  equal(head.logitScale, 10);
  deepStrictEqual(head.classes, ["a", "b", "c"]);
  // Logits are 10 · cos(f, row): 10 on class 1's own row, −10 · 0.316 on class 0's.
  const logits = headLogits(head, tf.tensor2d([[-2, 0]])).arraySync()[0];
  assert(Math.abs(logits[1] - 10) < 1e-5 && Math.abs(logits[0] + 10 * expected[0][0]) < 1e-5);
  disposeHead(head);
  throws(
    () => prototypeHead("toy", ["a", "b", "c"], features.slice(0, 4), labels.slice(0, 2), 10),
    /no labelled image of class "c"/,
  );
  throws(
    () => prototypeHead("toy", ["a"], new Float32Array([0, 0]), new Int32Array([0]), 10),
    /norm 0/,
  );
  throws(
    () => prototypeHead("toy", ["a"], new Float32Array(3), new Int32Array(2), 10),
    /3 feature values/,
  );
});

Deno.test("prototype shots: k images of each class, a seeded choice, classes in order", () => {
  const labels = Int32Array.from({ length: 60 }, (_, i) => (i * 7) % 3);
  const picked = prototypeShots(labels, 3, 2, 5);
  equal(picked.length, 6);
  deepStrictEqual([...picked].map((i) => labels[i]), [0, 0, 1, 1, 2, 2]);
  equal(new Set(picked).size, 6);
  deepStrictEqual(prototypeShots(labels, 3, 2, 5), picked);
  const draws = [6, 7, 8, 9].map((seed) => [...prototypeShots(labels, 3, 2, seed)].join());
  assert(new Set(draws).size > 1, "other seeds choose other images");
  notDeepStrictEqual(prototypeShots(labels, 3, 1, 5), prototypeShots(labels, 3, 1, 6));
  throws(() => prototypeShots(new Int32Array([0, 0, 1]), 2, 2, 0), /class 1 has 1 labelled image/);
  throws(() => prototypeShots(labels, 3, 0, 0), /shots must be a positive integer/);
});

Deno.test("pretraining, head fitting and expert fine-tuning learn, and repeat exactly", async () => {
  await initEngine({ backend: "wasm" });
  const before = tf.memory().numTensors;
  const { train } = await pretrainSplits(300, 0, 0);
  const fit = { epochs: 2, batchSize: 32, lr: 3e-3, weightDecay: 0.05, seed: 1, norm: NORM };
  const base = await pretrainBase(TINY, train, fit);
  const task = await taskSplits(taskByName("mnist_rot90"), { train: 256, val: 0, test: 0 }, 0);
  const baseParams = hostToParams(base);
  const features = await extractFeatures(baseParams, TINY, task.train, { norm: NORM });
  const head = await fitHead("mnist_rot90", task.train.classes, features, task.train.labels);
  const baseAcc = await accuracy(baseParams, TINY, head, task.train, { norm: NORM });
  const tune = { ...fit, epochs: 8, lr: 3e-3, seed: 2 };
  const expert = await finetuneExpert(TINY, base, head, task.train, tune);
  const expertParams = hostToParams(expert);
  const expertAcc = await accuracy(expertParams, TINY, head, task.train, { norm: NORM });
  assert(baseAcc > 0.2, `θ0 + probe head reaches only ${baseAcc}`);
  assert(expertAcc > baseAcc + 0.1, `expert ${expertAcc} vs θ0 ${baseAcc}`);
  // Same seeds, same numbers.
  const expert2 = await finetuneExpert(TINY, base, head, task.train, tune);
  for (const [name, t] of expert) deepStrictEqual(expert2.get(name)!.data, t.data, name);
  disposeParams(baseParams);
  disposeParams(expertParams);
  disposeHead(head);
  equal(tf.memory().numTensors, before);
});
