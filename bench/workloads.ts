/**
 * This project's side of `deno task bench`: each workload on the data the harness wrote
 * (bench/data.ts), timed step by step. bench/py/peer.py is the PyTorch side of the same work.
 *
 * - `vit_train`: one training step of the benchmark ViT (VIT_TINY) at batch 128: forward,
 *   frozen cosine head, cross-entropy, backward (the AdamW update joins when lib/train lands;
 *   `spec.optimizer` tells the PyTorch side which).
 * - `ri_step`: one RI step: θ0 + τ' forward, logits under 8 heads, KL to cached targets
 *   (own task + α/(N−1) Σ others), backward with respect to τ'.
 * - `eval`: forward of a merged model on a batch of 256 images, head logits and arg-max.
 * - `merge_<method>`: `mergeCheckpoints` of 8 experts streamed from disk, output written
 *   (`task_arithmetic`, `ties`, `tsv_m`, `iso_cts`), and `merge_read`, the I/O floor.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  type Head,
  headLogits,
  hostToParams,
  imageFeatures,
  makeHead,
  mergeCheckpoints,
  openCheckpoint,
  openTaskVectors,
  type ParamMap,
  toVariables,
  type ViTConfig,
  writeCheckpoint,
} from "../mod.ts";
import { readTaskTensors } from "../lib/merge/stream.ts";
import type { MergeLayout, ModelSpec } from "./data.ts";
import { cpuMs } from "./machine.ts";
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

/** Runs `step` warmup + steps times; the first value it returns and the last are the check. */
async function timed(
  workload: string,
  step: () => number,
  options: StepOptions,
): Promise<SideResult> {
  const first = step();
  for (let i = 1; i < options.warmup; i++) step();
  const walls: number[] = [];
  let last = first;
  const cpu0 = cpuMs();
  for (let i = 0; i < options.steps; i++) {
    const t0 = performance.now();
    last = step();
    walls.push(performance.now() - t0);
  }
  const cpu = (cpuMs() - cpu0) / options.steps;
  const result: SideResult = {
    side: "ours",
    workload,
    times_ms: walls,
    cpu_ms: cpu,
    check: { first, last },
  };
  if (options.profile) result.profile = await profileKinds(step, Math.min(3, options.steps));
  return result;
}

/** Median kernel time per kind of kernel over `runs` profiled iterations (bench/profile_step.ts). */
async function profileKinds(step: () => number, runs: number): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (let r = 0; r < runs; r++) {
    const info = await tf.profile(() => void step());
    for (const k of info.kernels) {
      if (k.name === "unnamed scope") continue;
      const key = `${kindOf(k.name)}`;
      totals[key] = (totals[key] ?? 0) + Number(k.kernelTimeMs) / runs;
      totals[`kernel ${k.name}`] = (totals[`kernel ${k.name}`] ?? 0) +
        Number(k.kernelTimeMs) / runs;
    }
  }
  return totals;
}

async function readAll(
  path: string,
): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  using ckpt = await openCheckpoint(path);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const name of ckpt.names()) {
    out.set(name, { shape: [...ckpt.shape(name)], data: await ckpt.read(name) });
  }
  return out;
}

function tensorOf(map: Map<string, { shape: number[]; data: Float32Array }>, name: string) {
  const t = map.get(name);
  if (!t) throw new Error(`bench data: no tensor "${name}"`);
  return tf.tensor(t.data, t.shape, "float32");
}

function headOf(weight: tf.Tensor, logitScale: number, label: string): Head {
  const classes = Array.from({ length: weight.shape[0] }, (_, c) => `${label}${c}`);
  const head = makeHead(label, classes, weight as tf.Tensor2D, logitScale);
  weight.dispose();
  return head;
}

/** Mean over the batch of KL(p ‖ softmax(logits)). */
function klDivergence(p: tf.Tensor2D, logits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.log(tf.maximum(p, 1e-30));
    return tf.mean(tf.sum(tf.mul(p, tf.sub(logP, tf.logSoftmax(logits))), 1)) as tf.Scalar;
  });
}

/** Gradients of `loss` for every variable, disposed after reading the loss. */
function gradientStep(loss: () => tf.Scalar, vars: tf.Variable[]): number {
  const { value, grads } = tf.variableGrads(loss, vars);
  const out = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

/**
 * One training step of the benchmark ViT (forward, frozen cosine head, cross-entropy,
 * backward) on the harness's batch.
 *
 * @example
 * ```ts ignore
 * const result = await vitTrain(spec, dir, { steps: 5, warmup: 2 });
 * ```
 */
export async function vitTrain(spec: ModelSpec, dir: string, options: StepOptions) {
  const s = spec.train;
  const vars = toVariables(hostToParams(await readAll(`${dir}/model.safetensors`)));
  const inputs = await readAll(`${dir}/train.safetensors`);
  const pixels = tensorOf(inputs, "pixels");
  const labels = tf.oneHot(tensorOf(inputs, "labels").toInt() as tf.Tensor1D, s.classes);
  const head = headOf(tensorOf(inputs, "head"), s.logitScale, "class");
  const loss = () =>
    tf.losses.softmaxCrossEntropy(
      labels,
      headLogits(head, imageFeatures(vars, spec.config, pixels)),
    ) as tf.Scalar;
  return await timed("vit_train", () => gradientStep(loss, Object.values(vars)), options);
}

/**
 * One RI step: θ0 + τ' forward, logits under every head, KL to the cached targets of the
 * batch (own head + α/(N−1) Σ others), backward with respect to τ'.
 *
 * @example
 * ```ts ignore
 * const result = await riStep(spec, dir, { steps: 5, warmup: 2 });
 * ```
 */
export async function riStep(spec: ModelSpec, dir: string, options: StepOptions) {
  const s = spec.ri;
  const base = hostToParams(await readAll(`${dir}/model.safetensors`));
  const inputs = await readAll(`${dir}/ri.safetensors`);
  const tau = toVariables(
    Object.fromEntries(Object.keys(base).map((n) => [n, tensorOf(inputs, `tau.${n}`)])),
  );
  const aux = tensorOf(inputs, "aux");
  const heads = s.classes.map((_, j) =>
    headOf(tensorOf(inputs, `head.${j}`), s.logitScale, `h${j}`)
  );
  const targets = s.classes.map((_, j) => tensorOf(inputs, `target.${j}`) as tf.Tensor2D);
  const perEpoch = Math.floor(s.auxCount / s.batch);
  let counter = 0;
  const step = () => {
    const k = counter++ % perEpoch;
    const x = aux.slice(k * s.batch, s.batch);
    const batchTargets = targets.map((t) => t.slice(k * s.batch, s.batch));
    const loss = () => {
      const params: ParamMap = {};
      for (const name of Object.keys(base)) params[name] = tf.add(base[name], tau[name]);
      const features = imageFeatures(params, spec.config, x);
      const kls = heads.map((h, j) => klDivergence(batchTargets[j], headLogits(h, features)));
      const others = tf.addN(kls.filter((_, j) => j !== s.own));
      return tf.add(kls[s.own], tf.mul(others, s.alpha / (heads.length - 1))) as tf.Scalar;
    };
    try {
      return gradientStep(loss, Object.values(tau));
    } finally {
      tf.dispose([x, ...batchTargets]);
    }
  };
  return await timed("ri_step", step, options);
}

/**
 * Forward of the merged model on one batch, head logits and arg-max; the check is the sum of
 * the predicted classes.
 *
 * @example
 * ```ts ignore
 * const result = await evaluate(spec, dir, { steps: 5, warmup: 2 });
 * ```
 */
export async function evaluate(spec: ModelSpec, dir: string, options: StepOptions) {
  const params = hostToParams(await readAll(`${dir}/merged.safetensors`));
  const inputs = await readAll(`${dir}/eval.safetensors`);
  const pixels = tensorOf(inputs, "pixels");
  const head = headOf(tensorOf(inputs, "head"), spec.eval.logitScale, "class");
  const config: ViTConfig = spec.config;
  const step = () => {
    const predicted = tf.tidy(() =>
      headLogits(head, imageFeatures(params, config, pixels)).argMax(1).sum()
    );
    const value = predicted.dataSync()[0];
    predicted.dispose();
    return value;
  };
  return await timed("eval", step, options);
}

/**
 * A merge of the harness's checkpoints by `mergeCheckpoints` (method's defaults), or `read`:
 * every tensor of the base and the experts read once and τ formed, θ0 written back (the I/O
 * floor). Returns the wall and CPU time of the whole call and the wall time of each pass.
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
  const cpu0 = cpuMs(), t0 = performance.now();
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
    phases: { passes: phases },
  };
  return result;
}

/** Reads every tensor of the base and the experts once (τ formed) and writes θ0 back. */
async function readOnly(base: string, experts: string[], out: string): Promise<void> {
  using set = await openTaskVectors(base, experts);
  const vectors = set.vectors;
  const theta0 = set.base;
  if (!theta0) throw new Error(`${base}: no base checkpoint`);
  await writeCheckpoint(out, {
    label: "read",
    names: () => theta0.names(),
    shape: (name) => theta0.shape(name),
    read: async (name) => {
      await readTaskTensors(vectors, name);
      return await theta0.read(name);
    },
  });
}
