import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
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
import { finetuneExpert, fitHead, pretrainBase } from "../../lib/train/fit.ts";
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
  const head = fitHead("toy", ["a", "b", "c"], features, labels, { steps: 50 });
  const again = fitHead("toy", ["a", "b", "c"], features, labels, { steps: 50 });
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

Deno.test("pretraining, head fitting and expert fine-tuning learn, and repeat exactly", async () => {
  await initEngine({ backend: "wasm" });
  const before = tf.memory().numTensors;
  const { train } = await pretrainSplits(300, 0, 0);
  const fit = { epochs: 2, batchSize: 32, lr: 3e-3, weightDecay: 0.05, seed: 1, norm: NORM };
  const base = await pretrainBase(TINY, train, fit);
  const task = await taskSplits(taskByName("mnist_rot90"), { train: 256, val: 0, test: 0 }, 0);
  const baseParams = hostToParams(base);
  const features = await extractFeatures(baseParams, TINY, task.train, { norm: NORM });
  const head = fitHead("mnist_rot90", task.train.classes, features, task.train.labels);
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
