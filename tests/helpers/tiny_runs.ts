/**
 * Inputs of the smallest real RI and study runs the tests share: a micro ViT's θ0, an expert
 * nearby, three random heads and random auxiliary images; and the reduced study (mf4 names, two
 * merges, three RI steps) that the read-count and WebGPU tests run on the tiny zoo.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { makeHead } from "../../lib/models/head.ts";
import { type HostParams, initHostParams } from "../../lib/models/weights.ts";
import { Rng } from "../../lib/tensor/random.ts";
import type { RiInputs } from "../../lib/ri/adapt.ts";
import { resolveStudyConfig, type StudyConfig } from "../../lib/pipeline/config.ts";
import type { BackendName } from "../../lib/engine/backend.ts";
import { MICRO_VIT } from "./small_models.ts";

/**
 * RI's inputs on {@linkcode MICRO_VIT}: θ0 from seed 1, an expert at θ0 + N(0, 0.05²), heads for
 * tasks a, b, c (the expert's task is b) and `auxCount` auxiliary 28 × 28 images in [0, 1].
 * The caller disposes the heads (`disposeHead`).
 *
 * @example
 * ```ts ignore
 * const inputs = microRiInputs(32);
 * inputs.aux.count; // 32
 * ```
 */
export function microRiInputs(auxCount: number): RiInputs {
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
  const per = 28 * 28;
  const pixels = new Rng(3, "aux").normals(auxCount * per, 0.3).map((v) =>
    Math.min(1, Math.max(0, 0.5 + v))
  );
  return {
    task: "b",
    config: MICRO_VIT,
    base,
    expert,
    heads,
    aux: { count: auxCount, channels: 1, size: 28, pixels, labels: new Int32Array(0), classes: [] },
  };
}

/**
 * The reduced study on mf4's task names: 3 RI steps on 64 auxiliary images in batches of 16
 * (a checkpoint every 2), Task Arithmetic and TSV-M, distillation of Task Arithmetic, run `study`
 * under `out`. Pair it with `tinyZooConfig` as the zoo.
 *
 * @example
 * ```ts ignore
 * const config = tinyStudyConfig("/tmp/x", "wasm");
 * config.methods; // ["task_arithmetic", "tsv_m"]
 * ```
 */
export function tinyStudyConfig(out: string, backend: BackendName): StudyConfig {
  return resolveStudyConfig({
    suite: "mf4",
    steps: 3,
    auxSize: 64,
    batch: 16,
    checkpointEvery: 2,
    methods: ["task_arithmetic", "tsv_m"],
    distill: ["task_arithmetic"],
    out,
    name: "study",
    backend,
  });
}
