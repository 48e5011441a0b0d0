/**
 * A small random problem for the data-using merge methods, shared by the cross-checks against
 * the independent PyTorch reference and against FusionBench's own code: θ0 of a small CLIP
 * vision tower, T task vectors, one head per task, each task's test and training images, the
 * {@linkcode MergeData} context our methods read, and the same things written as safetensors
 * for Python.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { ok as assert } from "node:assert/strict";
import { merge, type MergedTaskVector } from "../../lib/merge/merge.ts";
import { adaMergingSettings } from "../../lib/merge/adamerging.ts";
import { adaMergingBatch } from "../../lib/merge/adamerging_schedule.ts";
import { fitAdaMerging } from "../../lib/merge/adamerging_fit.ts";
import { concreteSettings } from "../../lib/merge/concrete_ta.ts";
import { concreteNoise, fitConcrete, fitConcreteAdaMerging } from "../../lib/merge/concrete_fit.ts";
import { concreteAdaMergingSettings } from "../../lib/merge/concrete_adamerging.ts";
import { gramInputs } from "../../lib/merge/regmean.ts";
import { frankWolfeSettings } from "../../lib/merge/fw_merging.ts";
import { frankWolfeImages } from "../../lib/merge/fw_merging_schedule.ts";
import { fitFrankWolfe, fitFrankWolfeSoft } from "../../lib/merge/fw_merging_fit.ts";
import { pickImages } from "../../lib/merge/data.ts";
import { resolveParams } from "../../lib/merge/params.ts";
import { getMethod } from "../../lib/merge/registry.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { runPython } from "../helpers/python.ts";
import { initEngine } from "../../lib/engine/backend.ts";
import type { ViTConfig } from "../../lib/models/config.ts";
import { type Head, makeHead } from "../../lib/models/head.ts";
import type { HostParams } from "../../lib/models/weights.ts";
import { saveModel } from "../../lib/models/store.ts";
import { writeSafetensors } from "../../lib/io/safetensors.ts";
import { Rng } from "../../lib/tensor/random.ts";
import type { ImageSet } from "../../lib/data/dataset.ts";
import type { PixelNorm } from "../../lib/data/batches.ts";
import type { DataSourceName, MergeData } from "../../lib/merge/method.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { randomViTParams, SMALL_VIT } from "../helpers/small_models.ts";

/** Pixel normalisation of the problem (applied by both sides). */
export const DATA_NORM: PixelNorm = { mean: 0.5, std: 0.25 };

/** The problem: θ0, task vectors, heads, images. */
export interface DataProblem {
  /** Geometry. */
  config: ViTConfig;
  /** θ0. */
  base: HostParams;
  /** Task vectors (in memory). */
  taus: MemorySource[];
  /** One head per task. */
  heads: Head[];
  /** Per task: test images (labels dropped when read as test inputs). */
  tests: ImageSet[];
  /** Per task: training images with labels. */
  trains: ImageSet[];
  /** The context our data-using methods read. */
  data: MergeData;
  /** Frees the heads. */
  dispose(): void;
}

function randomImages(rng: Rng, count: number, config: ViTConfig, classes: number): ImageSet {
  const per = config.channels * config.imageSize ** 2;
  const pixels = new Float32Array(count * per);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.uniform();
  const labels = Int32Array.from({ length: count }, () => rng.int(classes));
  const names = Array.from({ length: classes }, (_, c) => `c${c}`);
  return {
    count,
    channels: config.channels,
    size: config.imageSize,
    pixels,
    labels,
    classes: names,
  };
}

/**
 * A random problem: θ0 with every tensor random (LayerNorm scales near 1), T task vectors of
 * scale `tauScale`, heads of 3, 4, 5, … classes with logit scale 10, `test` and `train` images
 * per task.
 */
export async function dataProblem(
  tasks: number,
  { seed = 3, test = 40, train = 48, tauScale = 0.05 } = {},
): Promise<DataProblem> {
  await initEngine({ backend: "wasm" });
  const config = SMALL_VIT;
  const rng = new Rng(seed, "data-problem");
  const base = randomViTParams(config, (name) => rng.fork(name));
  const taus = Array.from({ length: tasks }, (_, t) => {
    const tensors: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
    for (const [name, b] of base) {
      tensors[name] = {
        shape: b.shape,
        data: rng.fork(`tau${t}/${name}`).normals(b.data.length, tauScale),
      };
    }
    return new MemorySource(`τ${t}`, tensors);
  });
  const heads = Array.from({ length: tasks }, (_, t) => {
    const classes = 3 + t;
    const w = tf.tensor2d(rng.fork(`head${t}`).normals(classes * config.projectionDim), [
      classes,
      config.projectionDim,
    ]);
    const head = makeHead(`task${t}`, Array.from({ length: classes }, (_, c) => `c${c}`), w, 10);
    w.dispose();
    return head;
  });
  const tests = heads.map((h, t) =>
    randomImages(rng.fork(`test${t}`), test, config, h.classes.length)
  );
  const trains = heads.map((h, t) =>
    randomImages(rng.fork(`train${t}`), train, config, h.classes.length)
  );
  const sources: DataSourceName[] = ["test_inputs", "train"];
  const data: MergeData = {
    model: { config, base, heads, norm: DATA_NORM },
    sources,
    images: (source, t) =>
      Promise.resolve(
        source === "train" ? trains[t] : { ...tests[t], labels: new Int32Array(0), classes: [] },
      ),
  };
  return {
    config,
    base,
    taus,
    heads,
    tests,
    trains,
    data,
    dispose: () => heads.forEach((h) => h.weight.dispose()),
  };
}

/**
 * Writes the problem for Python into `dir`: base.safetensors, tau{t}.safetensors,
 * heads.safetensors (head{t} [classes, P], scale{t}) and images.safetensors (images{t} of
 * `source`, [n, C, H, W] before normalisation). Returns the paths.
 */
export async function writeProblem(
  p: DataProblem,
  dir: string,
  source: "test" | "train",
): Promise<{ base: string; tasks: string[]; heads: string; images: string }> {
  const base = `${dir}/base.safetensors`;
  await saveModel(base, p.config, p.base);
  const tasks: string[] = [];
  for (let t = 0; t < p.taus.length; t++) {
    const path = `${dir}/tau${t}.safetensors`;
    const host: HostParams = new Map(p.taus[t].names().map((n) => [n, p.taus[t].get(n)]));
    await saveModel(path, p.config, host);
    tasks.push(path);
  }
  const heads = `${dir}/heads.safetensors`;
  await writeSafetensors(
    heads,
    p.heads.flatMap((h, t) => [
      { name: `head${t}`, shape: h.weight.shape, data: h.weight.dataSync() as Float32Array },
      { name: `scale${t}`, shape: [], data: new Float32Array([h.logitScale]) },
    ]),
  );
  const images = `${dir}/images.safetensors`;
  const sets = source === "train" ? p.trains : p.tests;
  await writeSafetensors(
    images,
    sets.map((s, t) => ({
      name: `images${t}`,
      shape: [s.count, s.channels, s.size, s.size],
      data: s.pixels,
    })),
  );
  return { base, tasks, heads, images };
}

const DIR = new URL(".", import.meta.url).pathname;

/** The Python side: our independent reference, or FusionBench's own code. */
export type Reference = "data_reference" | "fusionbench_data";

async function runReference(reference: Reference, spec: Record<string, unknown>) {
  await runPython(
    `import sys, json
sys.path.insert(0, ${JSON.stringify(DIR)})
import ${reference}
${reference}.main(json.loads(sys.argv[1]))`,
    [JSON.stringify(spec)],
  );
}

function chunks(idx: ArrayLike<number>, size: number): number[][] {
  const all = Array.from(idx), out: number[][] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.slice(i, i + size));
  return out;
}

/**
 * The attention key bias adds the same number to every score of a query's row, which the
 * softmax ignores: its gradient is zero in exact arithmetic, and Adam (m̂/√v̂) turns each side's
 * rounding noise into steps of ±lr. Layer-wise AdaMerging's coefficient for it (and M's values
 * on it, which change no output) follow that noise in both implementations (FusionBench's too)
 * and are left out of the comparison.
 */
function isKeyBias(name: string): boolean {
  return name.endsWith("self_attn.k_proj.bias");
}

/** max |ours − ref| over every tensor (key biases left out, see isKeyBias), and max |ref|. */
async function compare(
  ours: { names(): readonly string[]; get(n: string): { data: Float32Array } },
  refPath: string,
  skip?: ReadonlyMap<string, Uint8Array>,
) {
  using ref = await SafetensorsReader.open(refPath);
  let diff = 0, scale = 0;
  for (const name of ours.names()) {
    if (isKeyBias(name)) continue;
    const a = ours.get(name).data, b = await ref.read(`M.${name}`);
    const left = skip?.get(name);
    for (let i = 0; i < a.length; i++) {
      if (left?.[i]) continue;
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
  }
  return { diff, scale };
}

/**
 * RegMean, Fisher merging or Ada-SVD here and in `reference` on the same problem and batches:
 * the merged task vectors agree to float32 rounding (max |diff| < 1e-4 · max |M|). `inspect`
 * sees our merge (its summary's notes).
 */
export async function closedForm(
  reference: Reference,
  p: DataProblem,
  dir: string,
  method: "regmean" | "regmean_plusplus" | "fisher" | "ada_svd",
  params: Record<string, unknown>,
  inspect?: (ours: MergedTaskVector) => void,
): Promise<void> {
  const ours = await merge(method, p.taus, { params, data: p.data });
  const P = ours.summary.params;
  const batch = P.batch as number, examples = P.examples as number;
  const batches = p.trains.map((set, t) => {
    if (method === "ada_svd") {
      return chunks(pickImages(set.count, examples, P.seed as number, `ada_svd/task${t}`), batch);
    }
    if (method !== "fisher") {
      return chunks(
        gramInputs(set.count, examples, batch, P.seed as number, `regmean/task${t}`),
        batch,
      );
    }
    const count = examples === 0
      ? set.count
      : Math.min(set.count, Math.ceil(examples / batch) * batch);
    return chunks(Array.from({ length: count }, (_, i) => i), batch);
  });
  const files = await writeProblem(p, dir, "train");
  const out = `${dir}/ref-${method}.safetensors`;
  await runReference(reference, {
    method,
    config: p.config,
    norm: DATA_NORM,
    ...files,
    params: P,
    batches,
    out,
  });
  const { diff, scale } = await compare(ours, out);
  console.log(
    `${method} ${JSON.stringify(params)}: max |diff| ${diff.toExponential(2)}, max |M| ${
      scale.toFixed(3)
    }`,
  );
  assert(scale > 1e-3, `${method}: the merged task vector is (nearly) zero`);
  assert(diff < 1e-4 * scale, `${method}: max |diff| ${diff} ≥ 1e-4 × ${scale}`);
  inspect?.(ours);
}

/** Largest allowed |Δλ| between trajectories (a fiftieth of the tests' step size 0.01). */
export const TRAJECTORY_TOLERANCE = 2e-4;

/**
 * AdaMerging here and in `reference` from the same coefficients, on the same batches, for the
 * same steps: the trajectories agree within {@linkcode TRAJECTORY_TOLERANCE} at every step (the
 * key-bias coefficients left out, see isKeyBias), and so do the merged task vectors.
 */
export async function adaMergingCase(
  reference: Reference,
  p: DataProblem,
  dir: string,
  method: "adamerging" | "adamerging_task",
  params: Record<string, unknown>,
) {
  const m = getMethod(method);
  const P = resolveParams(m, params);
  const settings = adaMergingSettings(P, method === "adamerging");
  const names = [...p.taus[0].names()];
  const taus: HostParams[] = p.taus.map((s) => new Map(names.map((n) => [n, s.get(n)])));
  const sets = p.tests.map((s) => ({ ...s, labels: new Int32Array(0), classes: [] }));
  const ours: Float32Array[] = [];
  await fitAdaMerging({
    model: p.data.model,
    taus,
    names,
    sets,
    settings,
    onStep: (_s, lambda) => ours.push(Float32Array.from(lambda)),
  });
  const merged = await merge(method, p.taus, { params, data: p.data });
  const batches = Array.from(
    { length: settings.steps },
    (_, s) =>
      sets.map((set, t) =>
        Array.from(adaMergingBatch(set.count, settings.batch, settings.seed, t, s + 1))
      ),
  );
  const files = await writeProblem(p, dir, "test");
  const out = `${dir}/ref-${method}.safetensors`;
  await runReference(reference, {
    method,
    config: p.config,
    norm: DATA_NORM,
    ...files,
    names,
    layer_wise: settings.layerWise,
    params: P,
    batches,
    out,
  });
  using ref = await SafetensorsReader.open(out);
  const trajectory = await ref.read("trajectory"); // [steps, T, L]
  const per = ours[0].length;
  let worst = 0, moved = 0;
  let where = 0;
  ours.forEach((lambda, s) => {
    for (let i = 0; i < per; i++) {
      if (settings.layerWise && isKeyBias(names[i % names.length])) continue;
      if (Math.abs(lambda[i] - trajectory[s * per + i]) > worst) where = i;
      worst = Math.max(worst, Math.abs(lambda[i] - trajectory[s * per + i]));
      moved = Math.max(moved, Math.abs(lambda[i] - settings.init));
    }
  });
  const { diff, scale } = await compare(merged, out);
  console.log(
    `${method} ${JSON.stringify(params)}: trajectory max |Δλ| ${worst.toExponential(2)} over ` +
      `${settings.steps} steps (λ moved up to ${moved.toFixed(3)}); M max |diff| ${
        diff.toExponential(2)
      } worst ${names[where % names.length]}`,
  );
  assert(moved > 20 * TRAJECTORY_TOLERANCE, `${method}: the coefficients hardly moved (${moved})`);
  assert(worst < TRAJECTORY_TOLERANCE, `${method}: trajectories differ by ${worst}`);
  assert(
    diff < 1e-4 * scale,
    `${method}: merged task vector differs by ${diff} (max |M| ${scale})`,
  );
}

/**
 * The problem with every task vector's attention key biases set to zero, for Frank-Wolfe
 * merging's cross-checks: the key bias's gradient is zero in exact arithmetic, so its cosine with
 * a candidate's parameters is rounding noise, different on each side. With τ_t's key biases zero
 * every candidate has θ0's key biases, the noise term is the same for all of them and cannot
 * change a choice (in FusionBench, ours or the reference).
 */
export function withoutKeyBiases(p: DataProblem): DataProblem {
  const taus = p.taus.map((src, t) => {
    const tensors: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
    for (const name of src.names()) {
      const v = src.get(name);
      tensors[name] = {
        shape: v.shape,
        data: isKeyBias(name) ? new Float32Array(v.data.length) : v.data,
      };
    }
    return new MemorySource(`τ${t}`, tensors);
  });
  return { ...p, taus };
}

/**
 * Frank-Wolfe merging's cross-check cases: FusionBench's task-wise cross-entropy step from Task
 * Arithmetic, full steps (γ_0 = 1) chosen per tensor from θ0, and the entropy on test inputs.
 */
export const FW_CASES: readonly Record<string, unknown>[] = [
  { steps: 3, examples: 8, batch: 3 },
  { steps: 3, examples: 6, granularity: "layer", init: "base", step_size: 1, init_scaling: 1 },
  { steps: 3, examples: 6, loss: "entropy", data: "test_inputs", step_size: 1, seed: 1 },
];

/** Largest allowed |Δ cosine| between the two sides' oracle scores (float32 gradients). */
export const FW_SCORE_TOLERANCE = 1e-4;

/**
 * Frank-Wolfe merging (hard) here and in `reference` on the same problem and image streams:
 * the same candidate chosen at every iteration (and every tensor, granularity layer), oracle
 * scores within {@linkcode FW_SCORE_TOLERANCE} where the reference writes them (key biases left
 * out, see isKeyBias), and the merged task vectors equal to float32 rounding (max |diff| < 1e-4 ·
 * max |M|). Every choice must also be clear: our margin between the choice and the runner-up
 * more than ten times the largest difference between the two sides' scores, so that no case
 * passes or fails by rounding.
 */
export async function frankWolfeCase(
  reference: Reference,
  p: DataProblem,
  dir: string,
  params: Record<string, unknown>,
): Promise<void> {
  const P = resolveParams(getMethod("fw_hard"), params);
  const settings = frankWolfeSettings(P);
  const names = [...p.taus[0].names()];
  const taus: HostParams[] = p.taus.map((s) => new Map(names.map((n) => [n, s.get(n)])));
  const train = P.data === "train";
  const sets = train
    ? p.trains
    : p.tests.map((s) => ({ ...s, labels: new Int32Array(0), classes: [] }));
  const fit = await fitFrankWolfe({ model: p.data.model, taus, names, sets, settings });
  const merged = await merge("fw_hard", p.taus, { params, data: p.data });
  const batches = Array.from(
    { length: settings.steps },
    (_, k) =>
      sets.map((set, t) =>
        Array.from(frankWolfeImages(set.count, settings.examples, settings.seed, t, k))
      ),
  );
  const files = await writeProblem(p, dir, train ? "train" : "test");
  const out = `${dir}/ref-fw_hard.safetensors`;
  await runReference(reference, {
    method: "fw_hard",
    config: p.config,
    norm: DATA_NORM,
    ...files,
    names,
    params: P,
    batches,
    labels: p.trains.map((s) => Array.from(s.labels)),
    out,
  });
  using ref = await SafetensorsReader.open(out);
  const refChoices = await ref.read("choices"); // [steps, 1 or tensors]
  // [steps, T + 1, tensors]: our reference writes its scores; FusionBench's code keeps them.
  const refScores = ref.has("scores") ? await ref.read("scores") : undefined;
  const C = taus.length + 1, L = names.length;
  const ours = fit.choices.flat();
  let scoreDiff = 0, margin = Infinity;
  for (let k = 0; k < settings.steps; k++) {
    const at = (c: number, l: number) => fit.scores[k][c][l];
    for (let c = 0; c < C && refScores; c++) {
      for (let l = 0; l < L; l++) {
        if (isKeyBias(names[l])) continue;
        scoreDiff = Math.max(scoreDiff, Math.abs(at(c, l) - refScores[(k * C + c) * L + l]));
      }
    }
    // Our margin between the choice and the runner-up (task: the summed scores).
    const rows = settings.granularity === "task"
      ? [Array.from({ length: C }, (_, c) => names.reduce((s, _n, l) => s + at(c, l), 0))]
      : names.map((n, l) => isKeyBias(n) ? [] : Array.from({ length: C }, (_, c) => at(c, l)));
    for (const row of rows.filter((r) => r.length > 0)) {
      const sorted = [...row].sort((a, b) => a - b);
      margin = Math.min(margin, sorted[1] - sorted[0]);
    }
  }
  const chosenDiff =
    ours.filter((c, i) =>
      !(settings.granularity === "layer" && isKeyBias(names[i % L])) && c !== refChoices[i]
    ).length;
  const { diff, scale } = await compare(merged, out);
  let fitDiff = 0;
  for (const name of names) {
    const a = fit.merged.get(name)!, b = merged.get(name).data;
    for (let i = 0; i < a.length; i++) fitDiff = Math.max(fitDiff, Math.abs(a[i] - b[i]));
  }
  console.log(
    `fw_hard ${JSON.stringify(params)}: choices ${
      JSON.stringify(settings.granularity === "task" ? ours : "per tensor")
    } (${chosenDiff} differ; smallest margin ${margin.toExponential(2)}), scores ${
      refScores ? `max |Δ| ${scoreDiff.toExponential(2)}` : "not written by the reference"
    }, M max |diff| ${diff.toExponential(2)} (max |M| ${scale.toFixed(3)})`,
  );
  assert(ours.length === refChoices.length, `fw_hard: ${ours.length} vs ${refChoices.length}`);
  assert(chosenDiff === 0, `fw_hard: ${chosenDiff} choices differ from the reference's`);
  assert(scoreDiff < FW_SCORE_TOLERANCE, `fw_hard: oracle scores differ by ${scoreDiff}`);
  assert(scale > 1e-3, "fw_hard: the merged task vector is (nearly) zero");
  assert(diff < 1e-4 * scale, `fw_hard: max |diff| ${diff} ≥ 1e-4 × ${scale}`);
  assert(fitDiff === 0, `fw_hard: merge() and fitFrankWolfe differ by ${fitDiff}`);
  // Where the scores are not written (FusionBench, float32 like ours), the differences measured
  // against the float64 reference (≤ 1.5e-6) stand in.
  const noise = refScores ? scoreDiff : FW_SCORE_TOLERANCE / 10;
  assert(margin > 10 * noise, `fw_hard: a near tie (margin ${margin}): choose another case`);
}

/**
 * Frank-Wolfe merging (soft) here and in `reference` on the same problem and batches: the
 * coefficients of every AdaMerging step of every round within {@linkcode TRAJECTORY_TOLERANCE}
 * (the key-bias coefficients left out, see isKeyBias), and the merged task vectors equal to
 * float32 rounding.
 */
export async function frankWolfeSoftCase(
  reference: Reference,
  p: DataProblem,
  dir: string,
  params: Record<string, unknown>,
) {
  const P = resolveParams(getMethod("fw_soft"), params);
  const rounds = P.steps as number, steps = P.ada_steps as number;
  const settings = {
    layerWise: true,
    init: P.init as number,
    lr: P.lr as number,
    steps,
    batch: P.batch as number,
    clamp: false,
    seed: P.seed as number,
  };
  const names = [...p.taus[0].names()];
  const taus: HostParams[] = p.taus.map((s) => new Map(names.map((n) => [n, s.get(n)])));
  const sets = p.tests.map((s) => ({ ...s, labels: new Int32Array(0), classes: [] }));
  const ours: { round: number; lambda: Float32Array }[] = [];
  await fitFrankWolfeSoft({
    model: p.data.model,
    taus,
    names,
    sets,
    rounds,
    settings,
    laterInit: P.ada_coeff as number,
    onStep: (round, _s, lambda) => ours.push({ round, lambda: Float32Array.from(lambda) }),
  });
  const merged = await merge("fw_soft", p.taus, { params, data: p.data });
  const batches = Array.from(
    { length: rounds },
    (_, r) =>
      Array.from({ length: steps }, (_, s) =>
        sets.map((set, t) =>
          Array.from(
            adaMergingBatch(set.count, settings.batch, settings.seed, t, r * steps + s + 1),
          )
        )),
  );
  const files = await writeProblem(p, dir, "test");
  const out = `${dir}/ref-fw_soft.safetensors`;
  await runReference(reference, {
    method: "fw_soft",
    config: p.config,
    norm: DATA_NORM,
    ...files,
    names,
    params: P,
    batches,
    out,
  });
  using ref = await SafetensorsReader.open(out);
  const trajectory = await ref.read("trajectory"); // [rounds · steps, T, L]
  const per = ours[0].lambda.length;
  let worst = 0, moved = 0;
  ours.forEach(({ round, lambda }, s) => {
    const init = round === 0 ? settings.init : P.ada_coeff as number;
    for (let i = 0; i < per; i++) {
      if (isKeyBias(names[i % names.length])) continue;
      worst = Math.max(worst, Math.abs(lambda[i] - trajectory[s * per + i]));
      moved = Math.max(moved, Math.abs(lambda[i] - init));
    }
  });
  const { diff, scale } = await compare(merged, out);
  console.log(
    `fw_soft ${JSON.stringify(params)}: trajectory max |Δλ| ${worst.toExponential(2)} over ` +
      `${rounds} × ${steps} steps (λ moved up to ${moved.toFixed(4)}); M max |diff| ${
        diff.toExponential(2)
      } (max |M| ${scale.toFixed(3)})`,
  );
  assert(ours.length * per === trajectory.length, "fw_soft: trajectories of different lengths");
  assert(moved > 20 * TRAJECTORY_TOLERANCE, `fw_soft: the coefficients hardly moved (${moved})`);
  assert(worst < TRAJECTORY_TOLERANCE, `fw_soft: trajectories differ by ${worst}`);
  assert(diff < 1e-4 * scale, `fw_soft: merged task vector differs by ${diff} (max |M| ${scale})`);
}

/** Largest allowed |Δz| between the mask-logit trajectories (a fiftieth of the step size 0.01). */
export const LOGIT_TOLERANCE = 2e-4;

/**
 * A concrete sample with 1 − s below this has a float32 sigmoid gradient s(1 − s) with relative
 * error ≥ 2⁻²⁴ / 1e-5 ≈ 6e-3 (none at all at the clamp 1 − 2⁻²³): its logit leaves the
 * comparison from that step on.
 */
export const SATURATED = 1e-5;

/**
 * A gradient entry ∂L/∂m below this fraction of the largest in its tensor is not resolved in
 * float32 (the sums behind it round at the scale of the largest): its logit leaves the
 * comparison from that step on.
 */
export const UNRESOLVED_GRADIENT = 1e-6;

/**
 * A logit gradient ∂L/∂z_i that the rescaling m = s / mean(s) cancels to below this fraction of
 * its own term ∂L/∂m_i · ∂m_i/∂s_i · ∂s_i/∂z_i keeps only the digits float32 lost: its logit
 * leaves the comparison from that step on.
 */
export const CANCELLED = 1e-3;

/** The uniform noise of steps 1 … steps + 1 for every tensor (ours), written for Python. */
async function writeNoise(
  path: string,
  names: readonly string[],
  taus: readonly HostParams[],
  seed: number,
  steps: number,
) {
  await writeSafetensors(
    path,
    Array.from({ length: steps + 1 }, (_, s) =>
      names.map((name) => {
        const { shape, data } = taus[0].get(name)!;
        return {
          name: `u${s + 1}/${name}`,
          shape,
          data: concreteNoise(seed, s + 1, name, data.length),
        };
      })).flat(),
  );
}

/**
 * Our mask-logit trajectory (`ours[s]`: every logit after step s + 1, in `names`' order) against
 * a reference's, every entry left out from the first step at which float32 cannot resolve its
 * gradient by the float64 reference's diagnostics (`diag`: samples, mask_grads, logit_grads; see
 * SATURATED, UNRESOLVED_GRADIENT, CANCELLED), where Adam's step, which divides by √v̂, turns
 * rounding into a step of up to lr; the key biases always. `skip` marks those entries by tensor:
 * their final mask entry follows their logit, so M's comparison leaves them out too.
 */
async function compareLogits(
  ours: readonly Float32Array[],
  trajectory: Float32Array,
  diag: SafetensorsReader,
  names: readonly string[],
  taus: readonly HostParams[],
  settings: { temperature: number; init: number },
): Promise<{ worst: number; moved: number; left: number; skip: Map<string, Uint8Array> }> {
  const keyBias = new Uint8Array(ours[0].length);
  let at = 0;
  for (const n of names) {
    const size = taus[0].get(n)!.data.length;
    if (isKeyBias(n)) keyBias.fill(1, at, at + size);
    at += size;
  }
  const samples = await diag.read("samples"), mgrads = await diag.read("mask_grads");
  const zgrads = await diag.read("logit_grads");
  const dropped = new Uint8Array(keyBias);
  let worst = 0, moved = 0;
  ours.forEach((z, s) => {
    let start = 0;
    for (const n of names) {
      const end = start + taus[0].get(n)!.data.length;
      let top = 0, mean = 0;
      for (let i = start; i < end; i++) {
        top = Math.max(top, Math.abs(mgrads[s * z.length + i]));
        mean += samples[s * z.length + i] / (end - start);
      }
      for (let i = start; i < end; i++) {
        const j = s * z.length + i;
        // ∂L/∂z_i = (∂L/∂m_i − mean(m ⊙ ∂L/∂m)) · s_i(1 − s_i) / (T · mean(s)): its own term
        const term = Math.abs(mgrads[j]) * samples[j] * (1 - samples[j]) /
          (settings.temperature * mean);
        if (
          1 - samples[j] < SATURATED || Math.abs(mgrads[j]) < UNRESOLVED_GRADIENT * top ||
          Math.abs(zgrads[j]) < CANCELLED * term
        ) dropped[i] = 1;
      }
      start = end;
    }
    for (let i = 0; i < z.length; i++) {
      if (dropped[i]) continue;
      worst = Math.max(worst, Math.abs(z[i] - trajectory[s * z.length + i]));
      moved = Math.max(moved, Math.abs(z[i] - settings.init));
    }
  });
  const left = dropped.reduce((n, d) => n + d, 0) - keyBias.reduce((n, d) => n + d, 0);
  const skip = new Map<string, Uint8Array>();
  let from = 0;
  for (const n of names) {
    const size = taus[0].get(n)!.data.length;
    skip.set(n, dropped.slice(from, from + size));
    from += size;
  }
  return { worst, moved, left, skip };
}

/**
 * Concrete Task Arithmetic here and in `reference` from the same logits, with the same uniform
 * noise at every step (ours, {@linkcode concreteNoise}, written for Python and injected there in
 * place of `torch.rand`), on the same batches: every mask logit's trajectory agrees within
 * {@linkcode LOGIT_TOLERANCE} at every step (the key biases left out, see isKeyBias, and each
 * entry from its first {@linkcode SATURATED} sample, {@linkcode UNRESOLVED_GRADIENT} or
 * {@linkcode CANCELLED} gradient on, fewer than 5% of them), and the merged task vectors (the
 * final mask drawn with the same noise) to 1e-4 · max |M| on every other entry.
 */
export async function concreteCase(
  reference: Reference,
  p: DataProblem,
  dir: string,
  params: Record<string, unknown>,
) {
  const P = resolveParams(getMethod("concrete_ta"), params);
  const settings = concreteSettings(P);
  const names = [...p.taus[0].names()];
  const taus: HostParams[] = p.taus.map((s) => new Map(names.map((n) => [n, s.get(n)])));
  const sets = p.tests.map((s) => ({ ...s, labels: new Int32Array(0), classes: [] }));
  const ours: Float32Array[] = [];
  const fit = await fitConcrete({
    model: p.data.model,
    taus,
    names,
    sets,
    settings,
    onStep: (_s, logits) => ours.push(Float32Array.from(names.flatMap((n) => [...logits.get(n)!]))),
  });
  const merged = await merge("concrete_ta", p.taus, { params, data: p.data });
  const batches = Array.from(
    { length: settings.steps },
    (_, s) =>
      sets.map((set, t) =>
        Array.from(adaMergingBatch(set.count, settings.batch, settings.seed, t, s + 1))
      ),
  );
  const noise = `${dir}/noise.safetensors`;
  await writeNoise(noise, names, taus, settings.seed, settings.steps);
  const files = await writeProblem(p, dir, "test");
  const spec = { method: "concrete_ta", config: p.config, norm: DATA_NORM, ...files, names, noise };
  // The float64 reference's samples and gradients decide which entries float32 cannot resolve;
  // the trajectory compared is `reference`'s.
  const diagnostics = `${dir}/ref-concrete_ta-data_reference.safetensors`;
  await runReference("data_reference", { ...spec, params: P, batches, out: diagnostics });
  const out = reference === "data_reference"
    ? diagnostics
    : `${dir}/ref-concrete_ta-${reference}.safetensors`;
  if (reference !== "data_reference") {
    await runReference(reference, { ...spec, params: P, batches, out });
  }
  using diag = await SafetensorsReader.open(diagnostics);
  using ref = await SafetensorsReader.open(out);
  const trajectory = await ref.read("trajectory"); // [steps, Σ sizes], names' order
  const { worst, moved, left, skip } = await compareLogits(
    ours,
    trajectory,
    diag,
    names,
    taus,
    settings,
  );
  const { diff, scale } = await compare(merged, out, skip);
  console.log(
    `${reference} concrete_ta ${JSON.stringify(params)}: logit trajectory max |Δz| ${
      worst.toExponential(2)
    } ` +
      `over ${settings.steps} steps × ${ours[0].length} logits (${left} left out with an ` +
      `unresolved or cancelled gradient or saturated sample; z moved up to ${
        moved.toFixed(3)
      }); M max |diff| ${diff.toExponential(2)} (max |M| ${scale.toFixed(3)}); entropy ${
        fit.losses[0].toFixed(4)
      } → ${fit.losses[fit.losses.length - 1].toFixed(4)}`,
  );
  assert(moved > 20 * LOGIT_TOLERANCE, `concrete_ta: the logits hardly moved (${moved})`);
  assert(left < 0.05 * ours[0].length, `concrete_ta: ${left} logits left out (≥ 5%)`);
  assert(worst < LOGIT_TOLERANCE, `concrete_ta: logit trajectories differ by ${worst}`);
  assert(scale > 1e-3, "concrete_ta: the merged task vector is (nearly) zero");
  assert(diff < 1e-4 * scale, `concrete_ta: M differs by ${diff} (max |M| ${scale})`);
}

/**
 * The problem with tensor `name` zero in every task vector (a layer no expert fine-tuned; its
 * bias, if any, keeps its task vectors). Shares everything else with `p` (dispose `p` only).
 */
export function withFrozen(p: DataProblem, name: string): DataProblem {
  const taus = p.taus.map((tau) => {
    const tensors: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
    for (const n of tau.names()) {
      const { shape, data } = tau.get(n);
      tensors[n] = { shape, data: n === name ? new Float32Array(data.length) : data };
    }
    return new MemorySource(`${tau.label} (${name} zero)`, tensors);
  });
  return { ...p, taus };
}

/** max |a − b| over the entries of λ (T × L row-major, `steps` of them), key biases left out. */
function lambdaDiff(
  ours: readonly Float32Array[],
  ref: Float32Array,
  names: readonly string[],
  layerWise: boolean,
): number {
  let worst = 0;
  ours.forEach((lambda, s) => {
    for (let i = 0; i < lambda.length; i++) {
      if (layerWise && isKeyBias(names[i % names.length])) continue;
      worst = Math.max(worst, Math.abs(lambda[i] - ref[s * lambda.length + i]));
    }
  });
  return worst;
}

/**
 * Concrete AdaMerging here and in `reference` with the same noise and batches (as
 * {@linkcode concreteCase}): the mask logits of every mask step agree as Concrete TA's do, λ
 * after every inner step and every AdaMerging step within {@linkcode TRAJECTORY_TOLERANCE} (the
 * key-bias coefficients left out layer-wise), and the merged task vectors to 1e-4 · max |M|.
 */
export async function concreteAdaMergingCase(
  reference: Reference,
  p: DataProblem,
  dir: string,
  method: "concrete_adamerging" | "concrete_adamerging_task",
  params: Record<string, unknown>,
) {
  const P = resolveParams(getMethod(method), params);
  const layerWise = method === "concrete_adamerging";
  const settings = concreteAdaMergingSettings(P, layerWise);
  const names = [...p.taus[0].names()];
  const taus: HostParams[] = p.taus.map((s) => new Map(names.map((n) => [n, s.get(n)])));
  const sets = p.tests.map((s) => ({ ...s, labels: new Int32Array(0), classes: [] }));
  const ours: Float32Array[] = [], inner: Float32Array[] = [], ada: Float32Array[] = [];
  await fitConcreteAdaMerging({
    model: p.data.model,
    taus,
    names,
    sets,
    settings,
    onStep: (_s, logits, lambda) => {
      ours.push(Float32Array.from(names.flatMap((n) => [...logits.get(n)!])));
      inner.push(Float32Array.from(lambda));
    },
    onAdaStep: (_s, lambda) => ada.push(Float32Array.from(lambda)),
  });
  const merged = await merge(method, p.taus, { params, data: p.data });
  const batches = Array.from(
    { length: 2 * settings.steps + settings.adaSteps },
    (_, s) =>
      sets.map((set, t) =>
        Array.from(adaMergingBatch(set.count, settings.batch, settings.seed, t, s + 1))
      ),
  );
  const noise = `${dir}/noise.safetensors`;
  await writeNoise(noise, names, taus, settings.seed, settings.steps);
  const files = await writeProblem(p, dir, "test");
  const spec = {
    method,
    config: p.config,
    norm: DATA_NORM,
    ...files,
    names,
    noise,
    layer_wise: layerWise,
    params: P,
    batches,
  };
  const diagnostics = `${dir}/ref-${method}-data_reference.safetensors`;
  await runReference("data_reference", { ...spec, out: diagnostics });
  const out = reference === "data_reference"
    ? diagnostics
    : `${dir}/ref-${method}-${reference}.safetensors`;
  if (reference !== "data_reference") await runReference(reference, { ...spec, out });
  using diag = await SafetensorsReader.open(diagnostics);
  using ref = await SafetensorsReader.open(out);
  const { worst, moved, left, skip } = await compareLogits(
    ours,
    await ref.read("trajectory"),
    diag,
    names,
    taus,
    settings,
  );
  const innerDiff = lambdaDiff(inner, await ref.read("inner_lambda"), names, layerWise);
  const adaDiff = lambdaDiff(ada, await ref.read("ada_lambda"), names, layerWise);
  let adaMoved = 0;
  for (const lambda of ada) {
    for (const v of lambda) adaMoved = Math.max(adaMoved, Math.abs(v - settings.lambdaInit));
  }
  const { diff, scale } = await compare(merged, out, skip);
  console.log(
    `${reference} ${method} ${JSON.stringify(params)}: logits max |Δz| ${
      worst.toExponential(2)
    } over ${settings.steps} steps (${left} of ${ours[0].length} left out; z moved up to ${
      moved.toFixed(3)
    }); inner λ max |Δ| ${innerDiff.toExponential(2)}; AdaMerging λ max |Δ| ${
      adaDiff.toExponential(2)
    } over ${settings.adaSteps} steps (moved ${adaMoved.toFixed(3)}); M max |diff| ${
      diff.toExponential(2)
    } (max |M| ${scale.toFixed(3)})`,
  );
  assert(moved > 20 * LOGIT_TOLERANCE, `${method}: the logits hardly moved (${moved})`);
  assert(left < 0.05 * ours[0].length, `${method}: ${left} logits left out (≥ 5%)`);
  assert(worst < LOGIT_TOLERANCE, `${method}: logit trajectories differ by ${worst}`);
  assert(innerDiff < TRAJECTORY_TOLERANCE, `${method}: inner λ differ by ${innerDiff}`);
  assert(adaMoved > 20 * TRAJECTORY_TOLERANCE, `${method}: λ hardly moved (${adaMoved})`);
  assert(adaDiff < TRAJECTORY_TOLERANCE, `${method}: AdaMerging λ differ by ${adaDiff}`);
  assert(scale > 1e-3, `${method}: the merged task vector is (nearly) zero`);
  assert(diff < 1e-4 * scale, `${method}: M differs by ${diff} (max |M| ${scale})`);
}
