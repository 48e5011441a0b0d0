/**
 * The whole RI study on a built-in zoo, end to end: build or reuse the zoo, adapt every
 * expert with RI on auxiliary data, merge with every method with and without RI (and,
 * optionally, the Merge + Distill_Aux baseline), evaluate accuracy and ξ, and write
 * `runs/<name>/` (results.json, report.html, the adapted task vectors and merged models).
 *
 * Every expensive artefact is written atomically as soon as it exists, and found again on a
 * rerun: an interrupted study resumes where it stopped (inside an RI adaptation, from its
 * last state checkpoint) and ends with the numbers of an uninterrupted run.
 *
 * @module
 */
import { join } from "node:path";
import { describeEngine, initEngine } from "../engine/backend.ts";
import { taskHeads, Zoo } from "../zoo/zoo.ts";
import { auxSource } from "../data/auxiliary.ts";
import { concatSets, type ImageSet, subset, taskSplits } from "../data/dataset.ts";
import { Rng } from "../tensor/random.ts";
import { type SuiteName, suiteTasks, taskByName } from "../data/tasks.ts";
import { disposeHead } from "../models/head.ts";
import { defaultZooConfig, projectRelative } from "../zoo/config.ts";
import { type HostParams } from "../models/weights.ts";
import { loadModel, saveModel } from "../models/store.ts";
import { defaultStudyMethods, getMethod } from "../merge/registry.ts";
import { checkTaskCount } from "../merge/merge.ts";
import { dataSourceOf } from "../merge/data.ts";
import { resolveParams } from "../merge/params.ts";
import type { DataSourceName, MergeData } from "../merge/method.ts";
import { type HeadLogits } from "../interference/predict.ts";
import { adaptExpert, modelLogits, type RiSettings } from "../ri/adapt.ts";
import { distillMerged } from "../ri/distill.ts";
import type { LossCurveData } from "../ri/curve.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { progress, type ProgressMode } from "../display/progress.ts";
import { runsRoot, type StudyConfig } from "./config.ts";
import { addTaskVector } from "../taskvec/host.ts";
import { evaluateOnTasks, type EvaluationSuite } from "./evaluate.ts";
import { type Evaluation, MergeBench } from "./merge_bench.ts";
import {
  normaliseRow,
  StudyResults,
  type StudyRow,
  type UnseenData,
  type UnseenRow,
} from "./results.ts";
import { writeStudyReport } from "./report.ts";
import { checkStudyTasks, openStudyModels, type StudyModels, type StudyZoo } from "./models.ts";
import { InterruptedError, watchInterrupt } from "../train/interrupt.ts";

/** Options of {@linkcode runStudy}. */
export interface StudyOptions {
  /** Progress display (default `auto`). */
  progress?: ProgressMode;
  /** Receives one line per stage (default console.log). */
  log?: (line: string) => void;
  /** Another zoo than the suite's default (tests, `deno task gpu-check`). */
  zoo?: StudyZoo;
}

/** Where a study run keeps its files. */
export interface RunPaths {
  /** The run folder, `out/name`. */
  dir: string;
  /** The configuration the folder belongs to. */
  config: string;
  /** `results.json`. */
  results: string;
  /** `report.html`. */
  report: string;
  /** A task's RI-adapted task vector τ'. */
  adapted: (task: string) => string;
  /** A training state checkpoint (resume point). */
  state: (what: string) => string;
  /** A task's RI loss curve (JSON). */
  curve: (task: string) => string;
  /** A merged model. */
  merged: (label: string) => string;
  /** One merged model's evaluation row (JSON). */
  row: (label: string) => string;
}

/**
 * The run's folder layout.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { resolveStudyConfig } from "./config.ts";
 * import { runPaths } from "./study.ts";
 * import { projectRoot } from "../zoo/config.ts";
 * const paths = runPaths(resolveStudyConfig({ suite: "mf4", name: "x", out: "runs" }));
 * equal(paths.adapted("mnist"), `${projectRoot()}/runs/x/adapted/mnist.safetensors`);
 * ```
 */
export function runPaths(config: StudyConfig): RunPaths {
  const dir = join(runsRoot(config.out), config.name);
  return {
    dir,
    config: join(dir, "config.json"),
    results: join(dir, "results.json"),
    report: join(dir, "report.html"),
    adapted: (task: string) => join(dir, "adapted", `${task}.safetensors`),
    state: (what: string) => join(dir, "state", `${what}.safetensors`),
    curve: (task: string) => join(dir, "curves", `${task}.json`),
    merged: (label: string) => join(dir, "merged", `${label}.safetensors`),
    row: (label: string) => join(dir, "rows", `${label}.json`),
  };
}

/**
 * Runs (or resumes) the study described by `config` and returns its results.
 *
 * @example
 * ```ts ignore
 * const results = await runStudy(resolveStudyConfig({ suite: "mf4", steps: 50 }));
 * console.log(results.table().toText());
 * ```
 */
export async function runStudy(
  config: StudyConfig,
  options: StudyOptions = {},
): Promise<StudyResults> {
  const log = options.log ?? console.log;
  const mode = options.progress;
  const paths = runPaths(config);
  const seconds: Record<string, number> = {};
  const timed = async <T>(stage: string, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const out = await fn();
    seconds[stage] = Math.round((performance.now() - t) / 100) / 10;
    return out;
  };
  const methods = config.methods === "all" ? defaultStudyMethods() : config.methods;
  // Unknown names, and methods that cannot merge this many tasks, fail before any work.
  const builtInTasks = config.models === undefined ? suiteTasks(config.suite).length : undefined;
  checkStudyMethods(methods, config.distill, builtInTasks);
  const sources = mergeSources(config, [...methods, ...config.distill]);
  const needsAux = config.ri !== "off" || config.distill.length > 0 || sources.has("aux");
  // Read before the run folder is made: a bad auxiliary source leaves nothing behind.
  const early = needsAux ? await timed("aux", () => readAuxiliary(config)) : undefined;
  await claimRunFolder(paths, config);

  const engine = await initEngine({ backend: config.backend });
  log(`engine: ${describeEngine(engine)}`);
  const zoo = await timed("zoo", () => openStudyModels(config, mode, options.zoo));
  try {
    log(`zoo: ${zoo.dir}`);
    checkStudyMethods(methods, config.distill, zoo.taskNames.length);
    const bench = await timed("evaluate experts", () => MergeBench.open(zoo));
    const aux = needsAux ? early ?? await timed("aux", () => auxiliarySet(config, zoo)) : undefined;
    // Data-using merges read these (the aux set is RI's, the same images RI trains on).
    const data = bench.mergeData(aux && { set: aux, origin: `${config.aux} ×${aux.count}` });
    for (const source of sources) {
      if (!data.sources.includes(source)) {
        throw new Error(
          `a merge method of this study reads ${source}, which ${zoo.dir} does not offer ` +
            `(it offers ${data.sources.join(", ")})`,
        );
      }
    }
    let adapted: HostParams[] | undefined;
    let curves: Record<string, LossCurveData> | undefined;
    if (config.ri !== "off") {
      ({ adapted, curves } = await timed(
        "RI",
        () => adaptAll(bench, aux!, config, paths, mode),
      ));
    }
    const rows: StudyRow[] = [];
    const variants = config.ri === "both" ? [false, true] : [config.ri === "on"];
    await timed("merge + evaluate", async () => {
      const total = methods.length * variants.length;
      const bar = progress("merging", total, { mode });
      // In a notebook Interrupt stops between rows (each row is on disk once done).
      using interrupt = watchInterrupt({ terminal: false });
      for (const ri of variants) {
        const taus = ri ? adapted! : bench.taus;
        for (const method of methods) {
          rows.push(await mergeRow(bench, method, ri, taus, paths, config, data));
          bar.tick();
          if (await interrupt.requested()) {
            const kept = `the rows done are kept in ${paths.dir}: run the same study to resume`;
            throw new InterruptedError("merging", rows.length, total, undefined, kept);
          }
        }
      }
      await bar.done();
    });
    if (config.distill.length) {
      await timed("distill", async () => {
        for (const method of config.distill) {
          rows.push(await distillRow(bench, method, aux!, config, paths, data, mode));
        }
      });
    }
    const unseen = config.unseen.length
      ? await timed("unseen", () => evaluateUnseen(bench, config, rows, paths, mode))
      : undefined;
    const pairwise = adapted
      ? await timed("pairwise", () => pairwiseOnAux(bench, aux!, adapted!, config, mode))
      : undefined;
    const results = new StudyResults({
      suite: config.suite,
      seed: config.seed,
      backend: engine.backend,
      adapter: engine.adapter,
      aux: config.aux,
      steps: config.steps,
      config: { ...config },
      zoo: projectRelative(zoo.dir),
      experts: byTask(bench, bench.expertAccuracy),
      base: byTask(bench, bench.baseAccuracy),
      rows,
      riCurves: curves,
      pairwise,
      ...(unseen ? { unseen } : {}),
      seconds,
    });
    await writeFileAtomic(paths.results, JSON.stringify(results, null, 2) + "\n");
    await writeStudyReport(paths.report, results, engine);
    log(`wrote ${paths.results} and ${paths.report}`);
    return results;
  } finally {
    zoo.dispose();
  }
}

/**
 * Checks the study's methods before any work: every name registered; every method able to
 * merge `tasks` task vectors (when known; SLERP merges exactly two); and every Distill_Aux
 * method one that builds a single merged model. The errors name the method and the reason.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkStudyMethods } from "./study.ts";
 * checkStudyMethods(["ties", "tsv_m"], ["ties"], 8);
 * throws(() => checkStudyMethods(["no_such_method"], [], 8), /unknown merge method "no_such_method"/);
 * ```
 */
export function checkStudyMethods(
  methods: readonly string[],
  distill: readonly string[],
  tasks?: number,
): void {
  for (const name of methods) {
    const method = getMethod(name);
    if (tasks === undefined) continue;
    try {
      checkTaskCount(method, tasks);
    } catch (err) {
      throw new Error(
        `${(err as Error).message}: this study has ${tasks} tasks; leave ${name} out of ` +
          `--methods`,
      );
    }
  }
  for (const name of distill) {
    const method = getMethod(name);
    if (method.output === "per-task") {
      throw new Error(
        `--distill ${name}: Merge + Distill_Aux distils one merged model, and ${name} builds ` +
          `one model per task`,
      );
    }
    if (tasks !== undefined) checkTaskCount(method, tasks);
  }
}

/**
 * The fixed auxiliary set RI and distillation train on: `config.auxSize` images of
 * `config.aux` (for `oracle`, the zoo's training images with their labels dropped).
 *
 * @example
 * ```ts ignore
 * const aux = await auxiliarySet(resolveStudyConfig({ suite: "mf4", aux: "noise" }), zoo);
 * ```
 */
export async function auxiliarySet(config: StudyConfig, zoo: StudyModels): Promise<ImageSet> {
  if (!(zoo instanceof Zoo)) {
    const set = await zoo.auxiliarySet(config.aux, config.auxSize, config.seed);
    return atLeastOneBatch(set, config);
  }
  if (config.aux !== "oracle") return (await readAuxiliary(config))!;
  // In-task data without labels: an upper bound the paper reports (+3.3 points).
  const trains: ImageSet[] = [];
  for (const task of zoo.taskNames) {
    const { train } = await zoo.data(task);
    trains.push({ ...train, labels: new Int32Array(0), classes: [] });
  }
  const all = concatSets(trains);
  const pick = new Rng(config.seed, "aux/oracle").permutation(all.count);
  return atLeastOneBatch(subset(all, pick.slice(0, Math.min(config.auxSize, all.count))), config);
}

/**
 * The auxiliary set of a built-in zoo from any source but `oracle`, read without the zoo (the
 * configuration fixes its image geometry), so that a bad source fails before anything is
 * written; undefined for `oracle` and real checkpoints, which need the models first.
 */
async function readAuxiliary(config: StudyConfig): Promise<ImageSet | undefined> {
  if (config.models !== undefined || config.aux === "oracle") return undefined;
  const { channels, imageSize: size } =
    defaultZooConfig(config.suite as SuiteName, config.seed).model;
  const spec = config.aux.replace(/^dir:/, "folder:");
  const source = await auxSource(spec, { channels, size }, config.seed);
  const count = Number.isFinite(source.count)
    ? Math.min(config.auxSize, source.count)
    : config.auxSize;
  return atLeastOneBatch(await source.images(0, count), config);
}

/** RI draws whole batches from the auxiliary set: fewer images than one batch is an error. */
function atLeastOneBatch(set: ImageSet, config: StudyConfig): ImageSet {
  if (set.count >= config.batch) return set;
  throw new Error(
    `auxiliary set ${config.aux}: ${set.count} image${set.count === 1 ? "" : "s"}, fewer than ` +
      `one RI batch of ${config.batch}; add images or lower the batch size (--batch)`,
  );
}

async function adaptAll(
  bench: MergeBench,
  aux: ImageSet,
  config: StudyConfig,
  paths: ReturnType<typeof runPaths>,
  mode?: ProgressMode,
): Promise<{ adapted: HostParams[]; curves: Record<string, LossCurveData> }> {
  const zoo = bench.zoo;
  const { model, norm } = zoo.config;
  let baseLogits: HeadLogits[] | undefined; // computed only if some expert still needs RI
  const adapted: HostParams[] = [];
  const curves: Record<string, LossCurveData> = {};
  for (const [i, task] of zoo.taskNames.entries()) {
    let done = await readAdapted(paths, task);
    if (!done) {
      baseLogits ??= await modelLogits(model, zoo.base, zoo.heads, aux, norm);
      done = await adaptOne(zoo, bench.experts[i], task, aux, baseLogits, config, paths, mode);
    }
    adapted.push(done.tau);
    curves[task] = done.curve;
  }
  return { adapted, curves };
}

/** Adapts one expert and writes its τ' and loss curve into the run folder. */
async function adaptOne(
  zoo: StudyModels,
  expert: HostParams,
  task: string,
  aux: ImageSet,
  baseLogits: HeadLogits[] | undefined,
  config: StudyConfig,
  paths: ReturnType<typeof runPaths>,
  mode?: ProgressMode,
): Promise<{ tau: HostParams; curve: LossCurveData }> {
  const { model, norm } = zoo.config;
  const state = paths.state(`ri-${task}`);
  const result = await adaptExpert(
    { task, config: model, base: zoo.base, expert, heads: zoo.heads, aux, norm, baseLogits },
    riSettings(config),
    { statePath: state, progress: mode },
  );
  await saveModel(paths.adapted(task), model, result.tau, { kind: "ri-task-vector", task });
  await writeFileAtomic(paths.curve(task), JSON.stringify(result.curve) + "\n");
  await Deno.remove(state).catch(() => {});
  return { tau: result.tau, curve: result.curve.toJSON() };
}

/**
 * Adapts the experts of `tasks` only (the unit of work of `deno task ri --expert NAME`):
 * reuses the zoo and the run folder of `config`, so a later study run finds them done.
 *
 * @example
 * ```ts ignore
 * await adaptExperts(resolveStudyConfig({ suite: "mf4", steps: 50 }), ["mnist"]);
 * ```
 */
export async function adaptExperts(
  config: StudyConfig,
  tasks: string[],
  options: StudyOptions = {},
): Promise<Record<string, LossCurveData>> {
  const log = options.log ?? console.log;
  const paths = runPaths(config);
  checkSuiteTasks(config, tasks); // before anything is built or written
  const early = await readAuxiliary(config);
  await claimRunFolder(paths, config);
  const engine = await initEngine({ backend: config.backend });
  log(`engine: ${describeEngine(engine)}`);
  const zoo = await openStudyModels(config, options.progress, options.zoo);
  try {
    checkStudyTasks(zoo, tasks); // unknown names fail first, listing the zoo's tasks
    const aux = early ?? await auxiliarySet(config, zoo);
    const curves: Record<string, LossCurveData> = {};
    for (const task of tasks) {
      const done = await readAdapted(paths, task) ??
        await adaptOne(
          zoo,
          await zoo.expert(task),
          task,
          aux,
          undefined,
          config,
          paths,
          options.progress,
        );
      curves[task] = done.curve;
      log(`${task}: adapted task vector in ${paths.adapted(task)}`);
    }
    return curves;
  } finally {
    zoo.dispose();
  }
}

/**
 * At least one task, each of the built-in suite's (an error lists them); real checkpoints'
 * tasks are checked once their description is open.
 */
function checkSuiteTasks(config: StudyConfig, tasks: string[]): void {
  if (tasks.length === 0) throw new Error("no expert to adapt");
  if (config.models !== undefined) return;
  const known = suiteTasks(config.suite as SuiteName).map((t) => t.name);
  for (const task of tasks) {
    if (!known.includes(task)) {
      throw new Error(
        `unknown task "${task}" in suite ${config.suite}; its tasks are ${known.join(", ")}`,
      );
    }
  }
}

/**
 * The RI settings of a study configuration.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { resolveStudyConfig } from "./config.ts";
 * import { riSettings } from "./study.ts";
 * equal(riSettings(resolveStudyConfig({ steps: 20 })).steps, 20);
 * ```
 */
export function riSettings(config: StudyConfig): RiSettings {
  const { steps, batch, lr, weightDecay, alpha, distance, seed, checkpointEvery } = config;
  return { steps, batch, lr, weightDecay, alpha, distance, seed, checkpointEvery };
}

/** A task's adapted τ' and curve when its adaptation is done (null when not). */
async function readAdapted(
  paths: ReturnType<typeof runPaths>,
  task: string,
): Promise<{ tau: HostParams; curve: LossCurveData } | null> {
  try {
    // The curve is written last: with it, the adaptation is complete.
    const curve = JSON.parse(await Deno.readTextFile(paths.curve(task))) as LossCurveData;
    const tau = (await loadModel(paths.adapted(task))).host;
    // A run killed between writing the curve and removing the state left the state behind.
    await Deno.remove(paths.state(`ri-${task}`)).catch(() => {});
    return { tau, curve };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * The data sources the data-using methods among `methods` read, with the study's parameters
 * for them (an empty set when every method is data-free).
 */
function mergeSources(config: StudyConfig, methods: readonly string[]): Set<DataSourceName> {
  const out = new Set<DataSourceName>();
  for (const name of methods) {
    const method = getMethod(name);
    const source = dataSourceOf(method, resolveParams(method, config.methodParams?.[name]));
    if (source) out.add(source);
  }
  return out;
}

async function mergeRow(
  bench: MergeBench,
  method: string,
  ri: boolean,
  taus: readonly HostParams[],
  paths: ReturnType<typeof runPaths>,
  config: StudyConfig,
  data: MergeData,
): Promise<StudyRow> {
  const label = method + (ri ? "+ri" : "");
  const cached = normaliseRow(await readJson<StudyRow>(paths.row(label)));
  if (cached) return cached;
  const merged = await bench.merge(method, taus, { params: config.methodParams?.[method], data });
  const params = { ...merged.summary.params };
  const metadata = { kind: "merged", method, ri: String(ri), params: JSON.stringify(params) };
  const model = bench.zoo.config.model;
  if (merged.perTask) {
    // One model per task (each evaluated on its own task): merged/<label>.<task>.safetensors
    for (const [t, task] of bench.tasks.entries()) {
      await saveModel(paths.merged(`${label}.${task}`), model, merged.modelFor(t), {
        ...metadata,
        task,
      });
    }
  } else {
    await saveModel(paths.merged(label), model, merged.theta, metadata);
  }
  const row = toRow(method, ri, false, await bench.evaluate(merged, label), params);
  const withData = merged.summary.data ? { ...row, data: merged.summary.data } : row;
  await writeFileAtomic(paths.row(label), JSON.stringify(withData) + "\n");
  return withData;
}

async function distillRow(
  bench: MergeBench,
  method: string,
  aux: ImageSet,
  config: StudyConfig,
  paths: ReturnType<typeof runPaths>,
  data: MergeData,
  mode?: ProgressMode,
): Promise<StudyRow> {
  const label = `${method}+distill`;
  const state = paths.state(`distill-${method}`);
  const cached = normaliseRow(await readJson<StudyRow>(paths.row(label)));
  if (cached) {
    await Deno.remove(state).catch(() => {}); // left by a run killed just after the row
    return cached;
  }
  const { zoo } = bench;
  const merged = await bench.merge(method, bench.taus, {
    params: config.methodParams?.[method],
    data,
  });
  const { tau } = await distillMerged(
    {
      method,
      config: zoo.config.model,
      base: zoo.base,
      merged: merged.tau,
      experts: bench.experts,
      heads: zoo.heads,
      aux,
      norm: zoo.config.norm,
    },
    riSettings(config),
    config.distance,
    { statePath: state, progress: mode },
  );
  const theta = addTaskVector(zoo.base, tau);
  await saveModel(paths.merged(label), zoo.config.model, theta, { kind: "distilled", method });
  const params = { ...merged.summary.params };
  const evaluated = toRow(method, false, true, await bench.evaluate(theta, label), params);
  const row = merged.summary.data ? { ...evaluated, data: merged.summary.data } : evaluated;
  await writeFileAtomic(paths.row(label), JSON.stringify(row) + "\n");
  await Deno.remove(state).catch(() => {});
  return row;
}

function toRow(
  method: string,
  ri: boolean,
  distill: boolean,
  e: Evaluation,
  params: Record<string, unknown>,
): StudyRow {
  return {
    method,
    ri,
    ...(distill ? { distill } : {}),
    ...(getMethod(method).output === "per-task" ? { output: "per-task" as const } : {}),
    avgAccuracy: e.avgAccuracy,
    avgNormalised: e.avgNormalised,
    xi: e.xi.total,
    accuracyByTask: e.accuracyByTask,
    xiByTask: e.xiByTask,
    params,
  };
}

/** A row's label: its run-folder file names (`ties`, `ties+ri`, `ties+distill`). */
function rowLabel(row: StudyRow): string {
  return row.method + (row.distill ? "+distill" : row.ri ? "+ri" : "");
}

/**
 * Scores θ0 and every merged model of `rows` (not the per-task models of a method that builds
 * one per task: a held-out task has none) on the held-out tasks of `config.unseen`, each
 * under its own head (made by the zoo's recipe from θ0; see `taskHeads`). Each model's scores
 * are kept in the run folder (`rows/unseen-<label>.json`) and found again on a rerun.
 */
async function evaluateUnseen(
  bench: MergeBench,
  config: StudyConfig,
  rows: readonly StudyRow[],
  paths: ReturnType<typeof runPaths>,
  mode?: ProgressMode,
): Promise<UnseenData> {
  const zoo = bench.zoo;
  if (!(zoo instanceof Zoo)) throw new Error("unseen tasks need a built-in zoo");
  const tasks = config.unseen.map(taskByName);
  const heads = await taskHeads(zoo, tasks, mode);
  try {
    const tests = [];
    for (const task of tasks) {
      tests.push((await taskSplits(task, zoo.config.splits, zoo.config.dataSeed)).test);
    }
    const suite: EvaluationSuite = {
      config: zoo.config.model,
      heads,
      tests,
      norm: zoo.config.norm,
    };
    const names = tasks.map((t) => t.name);
    const score = async (label: string, model: () => Promise<HostParams>) => {
      const file = paths.row(`unseen-${label}`);
      const cached = await readJson<Record<string, number>>(file);
      if (cached && names.every((t) => t in cached)) return cached;
      const evals = await evaluateOnTasks(suite, await model());
      const perTask = Object.fromEntries(evals.map((e) => [e.task, e.accuracy]));
      await writeFileAtomic(file, JSON.stringify(perTask) + "\n");
      return perTask;
    };
    // A method that builds one model per task (EMR, TSV-C, TALL masks) has no model for a task
    // outside the suite: its rows are not scored here.
    const merged = rows.filter((r) => r.output !== "per-task");
    const bar = progress("unseen tasks", merged.length + 1, { mode });
    const base = await score("base", () => Promise.resolve(zoo.base));
    bar.tick();
    const out: UnseenRow[] = [];
    for (const row of merged) {
      const label = rowLabel(row);
      const perTask = await score(
        label,
        async () => (await loadModel(paths.merged(label), zoo.config.model)).host,
      );
      const accs = names.map((t) => perTask[t]);
      out.push({
        method: row.method,
        ri: row.ri,
        ...(row.distill ? { distill: true } : {}),
        avgAccuracy: accs.reduce((a, b) => a + b, 0) / accs.length,
        accuracyByTask: Object.fromEntries(names.map((t) => [t, perTask[t]])),
      });
      bar.tick();
    }
    await bar.done();
    return {
      tasks: names,
      base: Object.fromEntries(names.map((t) => [t, base[t]])),
      rows: out,
    };
  } finally {
    heads.forEach(disposeHead);
  }
}

/** Auxiliary images the pairwise matrices of a study are measured on (the first ones). */
const PAIRWISE_IMAGES = 2048;

async function pairwiseOnAux(
  bench: MergeBench,
  aux: ImageSet,
  adapted: HostParams[],
  config: StudyConfig,
  mode?: ProgressMode,
) {
  // A mean over 2 048 images is estimated well enough, at a quarter of the default set's cost.
  const images = aux.count > PAIRWISE_IMAGES
    ? subset(aux, Array.from({ length: PAIRWISE_IMAGES }, (_, i) => i))
    : aux;
  const models = 2 * (bench.tasks.length + 1);
  const bar = progress("pairwise interference", models, { mode });
  const before = await bench.pairwise(
    bench.taus,
    config.distance,
    images,
    "experts",
    (done) => bar.update(done),
  );
  const after = await bench.pairwise(
    adapted,
    config.distance,
    images,
    "RI-adapted experts",
    (done) => bar.update(models / 2 + done),
  );
  await bar.done();
  return {
    tasks: bench.tasks,
    distance: config.distance,
    before: before.values.map((r) => [...r]),
    after: after.values.map((r) => [...r]),
  };
}

function byTask(bench: MergeBench, values: readonly number[]): Record<string, number> {
  return Object.fromEntries(bench.tasks.map((t, i) => [t, values[i]]));
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * Whether a saved configuration (JSON text) makes the same artefacts as `config`: equal but for
 * `unseen`, which only adds evaluations (kept in their own files).
 */
function sameArtefacts(saved: string, config: StudyConfig): boolean {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(saved);
  } catch {
    return false;
  }
  const strip = (c: Record<string, unknown>) => JSON.stringify({ ...c, unseen: undefined });
  return strip(parsed) === strip({ ...config });
}

/** Creates the run folder, or checks that an existing one holds the same configuration. */
async function claimRunFolder(paths: ReturnType<typeof runPaths>, config: StudyConfig) {
  const text = JSON.stringify(config, null, 2) + "\n";
  const existing = await Deno.readTextFile(paths.config).catch(() => null);
  if (existing !== null && !sameArtefacts(existing, config)) {
    throw new Error(
      `${paths.dir} holds a run with another configuration (${paths.config}); ` +
        `pass --name to start a new run, or delete the folder`,
    );
  }
  try {
    for (const sub of ["adapted", "state", "curves", "merged", "rows"]) {
      await Deno.mkdir(join(paths.dir, sub), { recursive: true });
    }
    if (existing === null) await writeFileAtomic(paths.config, text);
  } catch (err) {
    throw new Error(`cannot create the run folder ${paths.dir}: ${(err as Error).message}`);
  }
}
