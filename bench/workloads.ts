/**
 * This project's side of `deno task bench`: each workload on the data the harness wrote
 * (bench/data.ts), timed step by step, through the library's own code paths.
 * bench/py/peer.py is the PyTorch side of the same work.
 *
 * - `vit_train`: one training step of the benchmark ViT (VIT_TINY) at batch 128: lib/train's
 *   `trainStep` (forward, frozen cosine head, `crossEntropy`, backward, global-norm clipping,
 *   AdamW), the step every training of lib/train runs.
 * - `ri_step`: one RI step of lib/ri's trainer (`trainTaskVector` with `riLoss`, KL, as
 *   `adaptExpert` builds it): batch of 128 auxiliary images gathered in the trainer's order,
 *   θ0 + τ' forward, logits under 8 heads, KL to the cached targets (own head + α/(N−1) Σ
 *   others), backward with respect to τ', AdamW.
 * - `eval`: lib/train's `accuracy` of a merged model over 512 labelled images (passes of 256).
 * - `merge_<method>`: `mergeCheckpoints` of 8 experts streamed from disk, output written
 *   (`task_arithmetic`, `ties`, `tsv_m`, `iso_cts`), and `merge_read`, the I/O floor.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  type Head,
  type HostParams,
  type ImageSet,
  mergeCheckpoints,
  openCheckpoint,
  openTaskVectors,
  type ViTConfig,
  writeCheckpoint,
} from "../mod.ts";
import { headLogits, makeHead } from "../lib/models/head.ts";
import { disposeParams, hostToParams, toVariables } from "../lib/models/weights.ts";
import { imageFeatures } from "../lib/models/vit.ts";
import { AdamW } from "../lib/train/adamw.ts";
import { accuracy } from "../lib/train/evaluate.ts";
import { crossEntropy } from "../lib/train/losses.ts";
import { trainStep } from "../lib/train/step.ts";
import { readTaskVectors } from "../lib/taskvec/task_vector.ts";
import { readsOverlap } from "../lib/tensor/source.ts";
import { readScalars } from "../lib/engine/read.ts";
import { riLoss } from "../lib/ri/loss.ts";
import { trainTaskVector } from "../lib/ri/trainer.ts";
import type { TrainJob } from "../lib/ri/job.ts";
import type { MergeLayout, ModelSpec } from "./data.ts";
import { cpuMs, othersMeter } from "./machine.ts";
import { kindOf } from "./profile_step.ts";

/** What one side measured for one workload in one process. */
export interface SideResult {
  /** "ours" or "pytorch". */
  side: string;
  /** Workload name. */
  workload: string;
  /** Wall time of each timed iteration (a merge is one iteration), ms. */
  times_ms: number[];
  /** CPU time per timed iteration (every thread), ms. */
  cpu_ms: number;
  /** Peak resident memory of the process (VmHWM), MiB. */
  peak_mib?: number;
  /** Values to compare between the sides (first and last loss, or a checksum). */
  check?: Record<string, number>;
  /**
   * Cores that other processes used on average during the timed iterations (machine-wide
   * busy time minus this process's, bench/machine.ts `othersMeter`).
   */
  others_cores?: number;
  /** Time per phase (merges), s. */
  phases?: Record<string, unknown>;
  /** Kernel time per kind of kernel, ms per iteration (with --profile). */
  profile?: Record<string, number>;
}

/** How a model workload is run. */
export interface StepOptions {
  /** Timed iterations. */
  steps: number;
  /** Untimed iterations first (at least 1: the first iteration's value is the check). */
  warmup: number;
  /** Also profile kernels (tf.profile) over a few extra iterations. */
  profile?: boolean;
}

/** Iterations profiled with --profile. */
const PROFILED = 3;

/** Runs `step` warmup + steps times; the first value it returns and the last are the check. */
async function timed(
  workload: string,
  step: () => number | Promise<number>,
  options: StepOptions,
): Promise<SideResult> {
  const first = await step();
  for (let i = 1; i < options.warmup; i++) await step();
  const walls: number[] = [];
  let last = first;
  const others = othersMeter();
  const cpu0 = cpuMs();
  for (let i = 0; i < options.steps; i++) {
    const t0 = performance.now();
    last = await step();
    walls.push(performance.now() - t0);
  }
  const cpu = (cpuMs() - cpu0) / options.steps;
  const result: SideResult = {
    side: "ours",
    workload,
    times_ms: walls,
    cpu_ms: cpu,
    others_cores: others(),
    check: { first, last },
  };
  if (options.profile) {
    result.profile = await profileKinds(async () => {
      for (let r = 0; r < PROFILED; r++) await step();
    });
  }
  return result;
}

/**
 * Kernel time per kind of kernel (bench/profile_step.ts) and per kernel, ms per iteration,
 * over one call of `run`, which runs {@linkcode PROFILED} iterations.
 */
async function profileKinds(run: () => unknown): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  const info = await tf.profile(async () => void await run());
  for (const k of info.kernels) {
    if (k.name === "unnamed scope") continue;
    const ms = Number(k.kernelTimeMs) / PROFILED;
    totals[kindOf(k.name)] = (totals[kindOf(k.name)] ?? 0) + ms;
    totals[`kernel ${k.name}`] = (totals[`kernel ${k.name}`] ?? 0) + ms;
  }
  return totals;
}

type HostMap = Map<string, { shape: number[]; data: Float32Array }>;

async function readAll(path: string): Promise<HostMap> {
  using ckpt = await openCheckpoint(path);
  const out: HostMap = new Map();
  for (const name of ckpt.names()) {
    out.set(name, { shape: [...ckpt.shape(name)], data: await ckpt.read(name) });
  }
  return out;
}

function hostOf(map: HostMap, name: string) {
  const t = map.get(name);
  if (!t) throw new Error(`bench data: no tensor "${name}"`);
  return t;
}

function tensorOf(map: HostMap, name: string) {
  const t = hostOf(map, name);
  return tf.tensor(t.data, t.shape, "float32");
}

function headOf(weight: tf.Tensor, logitScale: number, label: string): Head {
  const classes = Array.from({ length: weight.shape[0] }, (_, c) => `${label}${c}`);
  const head = makeHead(label, classes, weight as tf.Tensor2D, logitScale);
  weight.dispose();
  return head;
}

/** The labelled (or, without labels, unlabelled) image set stored as `pixels`. */
function imageSet(
  pixels: { shape: number[]; data: Float32Array },
  labels?: Float32Array,
): ImageSet {
  const [count, channels, size] = pixels.shape;
  return {
    count,
    channels,
    size,
    pixels: pixels.data,
    labels: labels ? Int32Array.from(labels) : new Int32Array(0),
    classes: [],
  };
}

/**
 * One training step of the benchmark ViT through lib/train's `trainStep`: forward, frozen
 * cosine head, cross-entropy, backward, clipping to global norm 1, AdamW.
 *
 * @example
 * ```ts ignore
 * const result = await vitTrain(spec, dir, { steps: 5, warmup: 2 });
 * ```
 */
export async function vitTrain(spec: ModelSpec, dir: string, options: StepOptions) {
  const s = spec.train;
  const init = hostToParams(await readAll(`${dir}/model.safetensors`));
  const vars = toVariables(init);
  disposeParams(init);
  const inputs = await readAll(`${dir}/train.safetensors`);
  const pixels = tensorOf(inputs, "pixels") as tf.Tensor4D;
  const labels = tf.tensor1d(Int32Array.from(hostOf(inputs, "labels").data), "int32");
  const head = headOf(tensorOf(inputs, "head"), s.logitScale, "class");
  const optimizer = new AdamW(vars, { weightDecay: s.weightDecay });
  const loss = () =>
    crossEntropy(headLogits(head, imageFeatures(vars, spec.config, pixels)), labels);
  const step = async () => {
    const value = trainStep(loss, optimizer, { lr: s.lr, clipNorm: s.clipNorm });
    const [out] = await readScalars([value]); // one asynchronous read per step, as fitLoop at most
    value.dispose();
    return out;
  };
  return await timed("vit_train", step, options);
}

/** The RI job of the harness's data: τ, 8 heads, cached targets, the auxiliary set, `riLoss`. */
async function riJob(spec: ModelSpec, dir: string): Promise<TrainJob> {
  const s = spec.ri;
  const base: HostParams = await readAll(`${dir}/model.safetensors`);
  const inputs = await readAll(`${dir}/ri.safetensors`);
  const init: HostParams = new Map([...base.keys()].map((n) => [n, hostOf(inputs, `tau.${n}`)]));
  const heads = s.classes.map((_, j) =>
    headOf(tensorOf(inputs, `head.${j}`), s.logitScale, `h${j}`)
  );
  return {
    title: "RI bench",
    config: spec.config,
    base,
    init,
    heads,
    targets: s.classes.map((_, j) => hostOf(inputs, `target.${j}`).data),
    aux: imageSet(hostOf(inputs, "aux")),
    // exactly what adaptExpert trains with (lib/ri/adapt.ts)
    loss: (logits, targets) => riLoss(logits, targets, s.own, { alpha: s.alpha, distance: "kl" }),
    identity: { kind: "bench" },
  };
}

/**
 * RI steps of lib/ri's trainer (`trainTaskVector` with `riLoss`), timed from one step's end to
 * the next through its `onStep` callback: each interval is one whole step of the real loop
 * (batch gathering, forward under 8 heads, KL, backward, AdamW, reading the loss).
 *
 * @example
 * ```ts ignore
 * const result = await riStep(spec, dir, { steps: 5, warmup: 2 });
 * ```
 */
export async function riStep(spec: ModelSpec, dir: string, options: StepOptions) {
  const s = spec.ri;
  const job = await riJob(spec, dir);
  const total = options.warmup + options.steps;
  const settings = {
    steps: total,
    batch: s.batch,
    lr: s.lr,
    weightDecay: s.weightDecay,
    seed: s.seed,
    checkpointEvery: total,
  };
  const ends: number[] = [], losses: number[] = [];
  let cpu0 = 0;
  let others = othersMeter();
  await trainTaskVector(job, settings, {
    progress: "off",
    onStep: (step, point) => {
      ends.push(performance.now());
      losses.push(point.total);
      if (step === options.warmup) {
        cpu0 = cpuMs();
        others = othersMeter();
      }
    },
  });
  const cpu = (cpuMs() - cpu0) / options.steps;
  const result: SideResult = {
    side: "ours",
    workload: "ri_step",
    times_ms: ends.slice(options.warmup).map((t, i) => t - ends[options.warmup - 1 + i]),
    cpu_ms: cpu,
    others_cores: others(),
    check: { first: losses[0], last: losses[total - 1] },
  };
  if (options.profile) {
    result.profile = await profileKinds(() =>
      trainTaskVector(job, { ...settings, steps: PROFILED }, { progress: "off" })
    );
  }
  tf.dispose(job.heads.map((h) => h.weight));
  return result;
}

/**
 * lib/train's `accuracy` of the merged model over the labelled evaluation set (passes of 256
 * images); the check is the number of correct predictions.
 *
 * @example
 * ```ts ignore
 * const result = await evaluate(spec, dir, { steps: 5, warmup: 2 });
 * ```
 */
export async function evaluate(spec: ModelSpec, dir: string, options: StepOptions) {
  const params = hostToParams(await readAll(`${dir}/merged.safetensors`));
  const inputs = await readAll(`${dir}/eval.safetensors`);
  const set = imageSet(hostOf(inputs, "pixels"), hostOf(inputs, "labels").data);
  const head = headOf(tensorOf(inputs, "head"), spec.eval.logitScale, "class");
  const config: ViTConfig = spec.config;
  const feed = { norm: { mean: 0, std: 1 }, batchSize: spec.eval.batch };
  const step = async () =>
    Math.round((await accuracy(params, config, head, set, feed)) * set.count);
  return await timed("eval", step, options);
}

/**
 * A merge of the harness's checkpoints by `mergeCheckpoints` (method's defaults), or `read`:
 * every tensor of the base and the experts read once and τ formed, the first expert's τ
 * written (the I/O floor). Returns the wall and CPU time of the whole call and the wall time of each pass.
 *
 * @example
 * ```ts ignore
 * const result = await mergeWorkload("ties", dir, `${dir}/out.safetensors`);
 * ```
 */
export async function mergeWorkload(method: string, dir: string, out: string) {
  const layout = JSON.parse(await Deno.readTextFile(`${dir}/merge/layout.json`)) as MergeLayout;
  const base = `${dir}/merge/${layout.base}`;
  const experts = layout.experts.map((e) => `${dir}/merge/${e}`);
  const phases: Record<string, number> = {};
  let phase = "", since = performance.now();
  const mark = (next: string) => {
    const now = performance.now();
    if (phase) phases[phase] = (phases[phase] ?? 0) + (now - since) / 1000;
    phase = next;
    since = now;
  };
  const cpu0 = cpuMs(), t0 = performance.now(), others = othersMeter();
  if (method === "read") {
    mark("read");
    await readOnly(base, experts, out);
  } else {
    await mergeCheckpoints({
      method,
      base,
      experts,
      out,
      progress: (p) => {
        if (p.phase !== phase) mark(p.phase);
      },
    });
  }
  mark("");
  const wall = performance.now() - t0;
  const result: SideResult = {
    side: "ours",
    workload: `merge_${method}`,
    times_ms: [wall],
    cpu_ms: cpuMs() - cpu0,
    others_cores: others(),
    phases: { passes: phases },
  };
  return result;
}

/**
 * Reads every tensor of the base and the experts once (τ formed) and writes the first τ: each
 * file is read once, as on the PyTorch side (bench/py/merges.py `read_only`).
 */
async function readOnly(base: string, experts: string[], out: string): Promise<void> {
  using set = await openTaskVectors(base, experts);
  const vectors = set.vectors;
  const theta0 = set.base;
  if (!theta0) throw new Error(`${base}: no base checkpoint`);
  await writeCheckpoint(out, {
    label: "read",
    names: () => theta0.names(),
    shape: (name) => theta0.shape(name),
    read: async (name) => (await readTaskVectors(vectors, name))[0],
    concurrentReads: readsOverlap(vectors),
  });
}
