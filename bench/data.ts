/**
 * The data both sides of `deno task bench` read, written once by the harness so that this
 * project and PyTorch compute on the same values: the ViT's parameters, batches, heads,
 * cached targets and the RI trainer's batch order (`spec.json` plus small safetensors files),
 * and the merge inputs (a base and experts of the CLIP ViT-B/32 vision tower's layout, random,
 * as safetensors checkpoints).
 *
 * @module
 */
import { mergeCheckpoints, type TensorSource, type ViTConfig, writeCheckpoint } from "../mod.ts";
import { batchOrder } from "../lib/data/batches.ts";
import { Rng } from "../lib/tensor/random.ts";
import { CLIP_VIT_B32, parameterShapes, VIT_TINY } from "../lib/models/config.ts";
import { initHostParams } from "../lib/models/weights.ts";
import { numel } from "../lib/tensor/host.ts";

/** Sizes of the model workloads (shared with the PyTorch side through `spec.json`). */
export interface ModelSpec {
  /** The benchmark ViT. */
  config: ViTConfig;
  /**
   * Training step (lib/train's `trainStep`: cross-entropy through a frozen cosine head,
   * global-norm clipping, AdamW): batch, AdamW settings, clip norm, classes of the head.
   */
  train: {
    batch: number;
    lr: number;
    weightDecay: number;
    clipNorm: number;
    classes: number;
    logitScale: number;
  };
  /**
   * RI step (lib/ri's trainer and `riLoss`): batch, heads' class counts, own head, α, AdamW
   * settings, auxiliary images, the seed of the batch order and the orders of the first
   * `orderEpochs` epochs (written to ri.safetensors for the PyTorch side).
   */
  ri: {
    batch: number;
    classes: number[];
    own: number;
    alpha: number;
    lr: number;
    weightDecay: number;
    auxCount: number;
    logitScale: number;
    seed: number;
    orderEpochs: number;
  };
  /** Evaluation (lib/train's `accuracy`): labelled images, images per pass, head classes. */
  eval: { count: number; batch: number; classes: number; logitScale: number };
}

/** Sizes of the merge workloads. */
export interface MergeSpec {
  /** Model geometry whose parameter layout the checkpoints have. */
  config: ViTConfig;
  /** Number of experts. */
  experts: number;
}

/**
 * The model workloads' sizes: the (batch 128 for training and RI with the 8-task
 * suite's heads, evaluation over 512 images in passes of 256), or tiny ones for a smoke test.
 * `steps` is the most RI steps either side runs in one process (the batch orders cover them);
 * `b32Batch` is the ViT-B/32-geometry workloads' batch (32; 16 fits the wasm backend's 4 GiB
 * heap, where 32 aborts).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { modelSpec } from "./data.ts";
 * equal(modelSpec(false).train.batch, 128);
 * equal(modelSpec(false, 16, "b32").ri.batch, 32);
 * equal(modelSpec(false, 16, "b32", 16).ri.batch, 16); // what fits wasm's 4 GiB heap
 * ```
 */
export function modelSpec(
  quick: boolean,
  steps = 16,
  geometry: Geometry = "tiny",
  b32Batch = 32,
): ModelSpec {
  const b32 = geometry === "b32";
  const batch = b32 ? (quick ? 2 : b32Batch) : quick ? 8 : 128;
  const auxCount = 2 * batch;
  const logitScale = b32 ? 100 : 20; // CLIP's exp(logit_scale); the benchmark ViT's heads
  return {
    config: b32 ? { ...CLIP_VIT_B32, layers: quick ? 1 : 12 } : { ...VIT_TINY },
    // CLIP is fine-tuned at lr 1e-5; the benchmark ViT trains at 1e-3
    train: {
      batch,
      lr: b32 ? 1e-5 : 1e-3,
      weightDecay: 0.01,
      clipNorm: 1,
      classes: 10,
      logitScale,
    },
    ri: {
      batch,
      // mf8: six 10-class tasks, parity (2), coarse garments (4)
      classes: [10, 10, 10, 10, 10, 10, 2, 4],
      own: 0,
      // the study's defaults (lib/pipeline/config.ts): α = 1, AdamW lr 1e-4, wd 1e-4
      alpha: 1,
      lr: 1e-4,
      weightDecay: 1e-4,
      auxCount,
      logitScale,
      seed: 0,
      orderEpochs: Math.ceil(steps / (auxCount / batch)),
    },
    // no evaluation workload at ViT-B/32's geometry (its 8 experts would be 2.8 GB of files)
    eval: b32
      ? { count: 0, batch: 1, classes: 10, logitScale }
      : { count: quick ? 32 : 512, batch: quick ? 16 : 256, classes: 10, logitScale },
  };
}

/** The model workloads' geometries: the benchmark ViT, or CLIP ViT-B/32's (batch 32). */
export type Geometry = "tiny" | "b32";

/**
 * The geometry a workload runs at (`ri_step_b32` and `vit_train_b32`: ViT-B/32's).
 *
 * @example
 * ```ts
 * import { geometryOf } from "./data.ts";
 * geometryOf("ri_step_b32"); // "b32"
 * ```
 */
export function geometryOf(workload: string): Geometry {
  return workload.endsWith("_b32") ? "b32" : "tiny";
}

/**
 * The merge inputs' geometry: the CLIP ViT-B/32 vision tower (with `layers` of its 12
 * blocks), or a tiny tower for a smoke test; 8 experts.
 *
 * @example
 * ```ts
 * import { mergeSpec } from "./data.ts";
 * mergeSpec(false, 12).config.width; // 768
 * ```
 */
export function mergeSpec(quick: boolean, layers: number): MergeSpec {
  const config = quick ? { ...VIT_TINY, layers: 1 } : { ...CLIP_VIT_B32, layers };
  return { config, experts: 8 };
}

type Tensors = Record<string, { shape: number[]; data: Float32Array }>;

function source(label: string, tensors: Tensors): TensorSource {
  return {
    label,
    names: () => Object.keys(tensors),
    shape: (name) => tensors[name].shape,
    read: (name) => Promise.resolve(tensors[name].data.slice()),
  };
}

function normals(rng: Rng, label: string, shape: number[], std = 1): Tensors[string] {
  return { shape, data: rng.fork(label).normals(numel(shape), std) };
}

/** Rows of probabilities: a softmax of random logits (temperature 2). */
function probabilities(rng: Rng, label: string, rows: number, classes: number): Tensors[string] {
  const data = rng.fork(label).normals(rows * classes, 2);
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * classes, (r + 1) * classes);
    const max = Math.max(...row);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += row[c] = Math.exp(row[c] - max);
    for (let c = 0; c < classes; c++) row[c] /= sum;
  }
  return { shape: [rows, classes], data };
}

/**
 * Writes the model workloads' inputs into `dir`: `spec.json`, `model.safetensors` (θ0),
 * `train.safetensors`, `ri.safetensors` (τ, auxiliary images, heads, cached targets, batch
 * order), `eval.safetensors` (labelled images, head) and `merged.safetensors` (Task Arithmetic of 8 random experts).
 *
 * @example
 * ```ts
 * import { modelSpec, writeModelData } from "./data.ts";
 * const dir = await Deno.makeTempDir();
 * await writeModelData(dir, modelSpec(true));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeModelData(dir: string, spec: ModelSpec, seed = 0): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const rng = new Rng(seed, "bench");
  const { config, train, ri } = spec;
  const image = [config.channels, config.imageSize, config.imageSize];
  const theta0 = Object.fromEntries(initHostParams(config, seed)) as Tensors;
  await writeCheckpoint(`${dir}/model.safetensors`, source("θ0", theta0));
  const labels = rng.fork("labels");
  await writeCheckpoint(
    `${dir}/train.safetensors`,
    source("train", {
      pixels: normals(rng, "train/pixels", [train.batch, ...image]),
      labels: {
        shape: [train.batch],
        data: Float32Array.from({ length: train.batch }, () => labels.int(train.classes)),
      },
      head: normals(rng, "train/head", [train.classes, config.projectionDim]),
    }),
  );
  const riTensors: Tensors = {
    aux: normals(rng, "ri/aux", [ri.auxCount, ...image]),
  };
  // τ a few percent of θ0 at ViT-B/32's geometry, as CLIP's task vectors are
  const tauStd = spec.config.width >= 768 ? 0.002 : 0.01;
  for (const [name, t] of Object.entries(theta0)) {
    riTensors[`tau.${name}`] = normals(rng, `ri/tau/${name}`, t.shape, tauStd);
  }
  // The trainer's batch order (lib/data's batchOrder, one permutation per epoch)
  const orders = new Float32Array(ri.orderEpochs * ri.auxCount);
  for (let epoch = 0; epoch < ri.orderEpochs; epoch++) {
    const order = batchOrder(ri.auxCount, { batchSize: ri.batch, seed: ri.seed, epoch });
    orders.set(order, epoch * ri.auxCount);
  }
  riTensors.order = { shape: [ri.orderEpochs, ri.auxCount], data: orders };
  ri.classes.forEach((classes, j) => {
    riTensors[`head.${j}`] = normals(rng, `ri/head/${j}`, [classes, config.projectionDim]);
    riTensors[`target.${j}`] = probabilities(rng, `ri/target/${j}`, ri.auxCount, classes);
  });
  await writeCheckpoint(`${dir}/ri.safetensors`, source("ri", riTensors));
  if (spec.eval.count > 0) await writeEvalData(dir, spec, theta0, rng);
  await Deno.writeTextFile(`${dir}/spec.json`, JSON.stringify(spec, null, 1));
}

/** The evaluation workload's labelled images, head and merged model. */
async function writeEvalData(dir: string, spec: ModelSpec, theta0: Tensors, rng: Rng) {
  const { config } = spec;
  const image = [config.channels, config.imageSize, config.imageSize];
  const evalLabels = rng.fork("eval/labels");
  await writeCheckpoint(
    `${dir}/eval.safetensors`,
    source("eval", {
      pixels: normals(rng, "eval/pixels", [spec.eval.count, ...image]),
      labels: {
        shape: [spec.eval.count],
        data: Float32Array.from(
          { length: spec.eval.count },
          () => evalLabels.int(spec.eval.classes),
        ),
      },
      head: normals(rng, "eval/head", [spec.eval.classes, config.projectionDim]),
    }),
  );
  await writeMergedModel(dir, theta0, rng);
}

/** The evaluated model: Task Arithmetic (α = 0.3) of 8 random experts of θ0. */
async function writeMergedModel(dir: string, theta0: Tensors, rng: Rng) {
  const experts = [];
  for (let t = 0; t < 8; t++) {
    const expert: Tensors = {};
    for (const [name, b] of Object.entries(theta0)) {
      const noise = rng.fork(`eval/expert${t}/${name}`).normals(b.data.length, 0.01);
      expert[name] = { shape: b.shape, data: noise.map((v, i) => v + b.data[i]) };
    }
    experts.push(`${dir}/eval_expert${t}.safetensors`);
    await writeCheckpoint(experts[t], source(`expert${t}`, expert));
  }
  await mergeCheckpoints({
    method: "task_arithmetic",
    base: `${dir}/model.safetensors`,
    experts,
    out: `${dir}/merged.safetensors`,
  });
  for (const path of experts) await Deno.remove(path);
}

/** What `layout.json` of the merge inputs records. */
export interface MergeLayout {
  /** The spec the files were written from (to reuse them only when it matches). */
  spec: MergeSpec;
  /** File name of the base, in `dir/merge`. */
  base: string;
  /** File names of the experts, in `dir/merge`. */
  experts: string[];
  /** Bytes of one checkpoint. */
  modelBytes: number;
}

/**
 * Writes the merge inputs into `dir/merge` (unless the files there were written from the same
 * spec): θ0 with N(0, 0.02²) weights and experts θ0 + N(0, 0.001²), float32 safetensors
 * checkpoints with Hugging Face CLIP vision names, one tensor in memory at a time.
 *
 * @example
 * ```ts
 * import { mergeSpec, writeMergeData } from "./data.ts";
 * const dir = await Deno.makeTempDir();
 * const layout = await writeMergeData(dir, mergeSpec(true, 1));
 * console.log(layout.experts.length); // 8
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeMergeData(dir: string, spec: MergeSpec): Promise<MergeLayout> {
  const root = `${dir}/merge`;
  const stamp = `${root}/layout.json`;
  try {
    const old = JSON.parse(await Deno.readTextFile(stamp)) as MergeLayout;
    if (JSON.stringify(old.spec) === JSON.stringify(spec)) return old;
  } catch {
    // not written yet
  }
  await Deno.mkdir(root, { recursive: true });
  const shapes = parameterShapes(spec.config);
  const layout: MergeLayout = {
    spec,
    base: "base.safetensors",
    experts: Array.from({ length: spec.experts }, (_, t) => `expert${t}.safetensors`),
    modelBytes: 4 * [...shapes.values()].reduce((n, s) => n + numel(s), 0),
  };
  await writeCheckpoint(`${root}/${layout.base}`, randomModel(shapes, -1));
  for (let t = 0; t < spec.experts; t++) {
    await writeCheckpoint(`${root}/${layout.experts[t]}`, randomModel(shapes, t));
  }
  await Deno.writeTextFile(stamp, JSON.stringify(layout, null, 1));
  return layout;
}

/** θ0 (expert < 0) or expert `expert`, generated tensor by tensor when read. */
function randomModel(shapes: Map<string, number[]>, expert: number): TensorSource {
  return {
    label: expert < 0 ? "base" : `expert${expert}`,
    names: () => [...shapes.keys()],
    shape: (name) => shapes.get(name)!,
    read: (name) => {
      const n = numel(shapes.get(name)!);
      const data = new Rng(0, `merge/base/${name}`).normals(n, 0.02);
      if (expert >= 0) {
        const delta = new Rng(0, `merge/expert${expert}/${name}`).normals(n, 0.001);
        for (let i = 0; i < n; i++) data[i] += delta[i];
      }
      return Promise.resolve(data);
    },
  };
}
