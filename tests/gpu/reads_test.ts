/**
 * Reads from the device on the study's paths: at most one per training step, and never a
 * synchronous one (on WebGPU a synchronous read throws, and every read stalls the device).
 * Counted on wasm through the engine, which every backend's reads go through; the WebGPU
 * tests repeat the per-step counts on the GPU path.
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine/backend.ts";
import { pretrainSplits } from "../../lib/data/dataset.ts";
import { pretrainBase } from "../../lib/train/fit.ts";
import { tinyStudyConfig } from "../helpers/tiny_runs.ts";
import { runStudy } from "../../lib/pipeline/study.ts";
import { ReadSpy } from "../helpers/reads.ts";
import { tempDir } from "../helpers/temp.ts";
import { tinyZooConfig } from "../helpers/small_models.ts";
import { riReadsPerStep } from "./read_counts.ts";

Deno.test("fitLoop reads the device once per report (loss and finiteness together), never synchronously", async () => {
  await initEngine({ backend: "wasm" });
  const zoo = tinyZooConfig(0);
  const { train } = await pretrainSplits(32, 0, zoo.dataSeed); // 64 images: 4 steps of 16
  for (const reportEvery of [1, 3]) {
    using spy = new ReadSpy();
    const perReport: number[] = [];
    let last = 0;
    await pretrainBase(zoo.model, train, {
      ...zoo.pretrain,
      batchSize: 16,
      epochs: 2,
      seed: 0,
      norm: zoo.norm,
      reportEvery,
      onProgress: () => {
        perReport.push(spy.reads - last);
        last = spy.reads;
      },
    });
    // 8 steps: a report every `reportEvery` steps and at the last one, one read each (the
    // weights read back at the end come after the last report).
    const reports = Math.ceil(8 / reportEvery);
    deepStrictEqual(perReport, new Array(reports).fill(1), `reportEvery ${reportEvery}`);
    deepStrictEqual(spy.syncReads, []);
  }
});

Deno.test("the RI trainer reads the device once per step, never synchronously", async () => {
  await initEngine({ backend: "wasm" });
  const perStep = await riReadsPerStep(6);
  deepStrictEqual(perStep.reads, new Array(5).fill(1));
  equal(perStep.syncReads, 0);
});

Deno.test({
  name:
    "no stage of the study reads the device synchronously (zoo, RI, merges, distillation, ξ, pairwise)",
  sanitizeResources: false,
  async fn() {
    await initEngine({ backend: "wasm" });
    await using dir = await tempDir();
    const config = tinyStudyConfig(dir.path, "wasm");
    const before = tf.memory().numTensors;
    using spy = new ReadSpy({ forbidSync: true });
    const results = await runStudy(config, {
      progress: "off",
      log: () => {},
      zoo: { config: tinyZooConfig(0), root: `${dir.path}/cache` },
    });
    deepStrictEqual(spy.syncReads, []);
    assert(spy.reads > 0, "the study read nothing from the device");
    equal(results.data.rows.length, 5);
    equal(tf.memory().numTensors, before, "the study left tensors behind");
  },
});
