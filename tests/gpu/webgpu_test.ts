/**
 * The WebGPU backend computes what wasm computes, on Mesa's software Vulkan adapter (llvmpipe)
 * where no GPU exists: the same WebGPU code path a hardware GPU takes.
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine/backend.ts";
import { readTensors } from "../../lib/engine/read.ts";
import { throwIfWebGpuFailed } from "../../lib/engine/webgpu.ts";
import { pretrainSplits } from "../../lib/data/dataset.ts";
import { pretrainBase } from "../../lib/train/fit.ts";
import { tinyZooConfig } from "../helpers/small_models.ts";
import { bundleOf } from "../../lib/display/jupyter.ts";
import "../../lib/display/tensor.ts";
import { riReadsPerStep } from "./read_counts.ts";
import { webGpuTestsRun } from "./webgpu.ts";

const ignore = !(await webGpuTestsRun());

Deno.test({
  name: "WebGPU: addN of 2 to 100 tensors sums right (beyond the 8 storage buffers of a shader)",
  ignore,
  async fn() {
    await initEngine({ backend: "webgpu" });
    for (const n of [2, 7, 8, 9, 40, 100]) {
      const made = tf.tidy(() => {
        // + 0 puts each value on the device (a fresh tensor's values stay on the host)
        const scalars = Array.from({ length: n }, (_, i) => tf.scalar(i + 1).add(0));
        const rows = Array.from({ length: n }, (_, i) => tf.fill([5], i + 1).add(0));
        return [tf.addN(scalars), tf.addN(rows)];
      });
      const [s, rows] = await readTensors(made);
      tf.dispose(made);
      const want = (n * (n + 1)) / 2;
      equal(s[0], want, `addN of ${n} scalars`);
      deepStrictEqual([...rows], new Array(5).fill(want), `addN of ${n} vectors`);
    }
  },
});

Deno.test({
  name: "WebGPU: work the device rejects is thrown at the next read, not returned as zeros",
  ignore,
  async fn() {
    await initEngine({ backend: "webgpu" });
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    device.createBuffer({ size: 4, usage: 0 }); // no usage: a validation error, reported as an event
    const t = tf.scalar(2).mul(3);
    let message = "";
    try {
      await readTensors([t]);
      await new Promise((resolve) => setTimeout(resolve, 50)); // the event may come late
      throwIfWebGpuFailed();
    } catch (err) {
      message = (err as Error).message;
    }
    t.dispose();
    assert(message.includes("the WebGPU device rejected work"), message);
    assert(message.includes("GPUValidationError"), message);
    throwIfWebGpuFailed(); // reported once, then forgotten
  },
});

/** The tiny zoo's pretraining for 8 steps; the loss at every report. */
async function pretrainingCurve(reportEvery: number): Promise<number[]> {
  const zoo = tinyZooConfig(0);
  const { train } = await pretrainSplits(32, 0, zoo.dataSeed);
  const losses: number[] = [];
  await pretrainBase(zoo.model, train, {
    ...zoo.pretrain,
    batchSize: 16,
    epochs: 2,
    seed: 0,
    norm: zoo.norm,
    reportEvery,
    onProgress: (_done, _total, m) => losses.push(m.loss),
  });
  return losses;
}

Deno.test({
  name: "WebGPU: pretraining's loss curve equals wasm's (the loss no longer reads 0)",
  ignore,
  async fn() {
    for (const reportEvery of [1, 4]) {
      await initEngine({ backend: "wasm" });
      const cpu = await pretrainingCurve(reportEvery);
      await initEngine({ backend: "webgpu" });
      const gpu = await pretrainingCurve(reportEvery);
      equal(gpu.length, cpu.length);
      assert(cpu.every((l) => l > 1), `wasm's losses ${cpu}`); // 20 classes: ln 20 ≈ 3
      // Same float32 arithmetic in another summation order: a few ulps per kernel, and eight
      // steps of AdamW keep the curves within 1e-5 of each other (measured: ~3e-7).
      cpu.forEach((l, i) => {
        const gap = Math.abs(gpu[i] - l) / l;
        assert(gap < 1e-5, `report ${i}: webgpu ${gpu[i]}, wasm ${l} (every ${reportEvery})`);
      });
    }
    await initEngine({ backend: "wasm" });
  },
});

Deno.test({
  name: "WebGPU: the RI trainer reads the device once per step, never synchronously",
  ignore,
  async fn() {
    await initEngine({ backend: "webgpu" });
    const { reads, syncReads } = await riReadsPerStep(5);
    deepStrictEqual(reads, [1, 1, 1, 1]);
    equal(syncReads, 0);
    await initEngine({ backend: "wasm" });
  },
});

Deno.test({
  name: "WebGPU: a tensor on the device shows in a notebook (its display reads asynchronously)",
  ignore,
  async fn() {
    await initEngine({ backend: "webgpu" });
    const t = tf.tidy(() => tf.tensor2d([[1, -2], [3, 4]]).mul(2)); // computed: on the device
    try {
      const bundle = await bundleOf(t);
      equal(
        bundle["text/plain"],
        "Tensor float32 [2, 2] · min -4 · max 8 · mean 3 · std 4.583 · values [2, -4, 6, 8]",
      );
    } finally {
      t.dispose();
      await initEngine({ backend: "wasm" });
    }
  },
});
