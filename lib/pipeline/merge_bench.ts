/**
 * A zoo made ready for merging experiments: the experts' and θ0's evaluations are computed
 * once, and any task vectors can then be merged with any method and scored (accuracy,
 * normalised accuracy, ξ) in one call. The study, the coefficient sweeps and the notebooks
 * all go through it, so they report the same numbers for the same models.
 *
 * @module
 */
import type { StudyModels } from "./models.ts";
import { RealModels } from "./real.ts";
import { ensureEngine } from "../engine/backend.ts";
import { asWeights } from "../models/named_weights.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { HostParams } from "../models/weights.ts";
import { MemorySource } from "../tensor/source.ts";
import { merge, type MergeOptions } from "../merge/merge.ts";
import { type MergeSummary, mergeSummaryTable } from "../merge/summary.ts";
import type { DataSourceName, MergeData } from "../merge/method.ts";
import type { HeadLogits } from "../interference/predict.ts";
import {
  Interference,
  interference,
  type InterferenceMatrix,
  pairwiseInterference,
} from "../interference/measure.ts";
import { type DistanceName, parseDistance } from "../interference/distance.ts";
import { modelLogits } from "../ri/adapt.ts";
import { bars, displayWith, type Figure, stack, table } from "../display/mod.ts";
import { evaluateOnTasks, type EvaluationSuite } from "./evaluate.ts";
import { addTaskVector, subtractBase } from "../taskvec/host.ts";

/** One task's scores in an {@linkcode Evaluation}. */
export interface TaskScore {
  /** Task name. */
  task: string;
  /** Top-1 accuracy on the task's test split, in [0, 1]. */
  accuracy: number;
  /** Accuracy divided by the task's expert's. */
  normalised: number;
  /** ξi: KL(expert ‖ model) on the task's test images. */
  xi: number;
}

/**
 * A model's scores on the zoo's tasks. The names are those of a study's results rows
 * (`results.json`): `avgAccuracy`, `avgNormalised`, `xi` (here the whole {@linkcode Interference};
 * `xi.total` is the row's `xi`), `accuracyByTask`, `xiByTask`; arrays (`accuracy`, `normalised`)
 * follow `tasks`' order, and `perTask` gives one object per task.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { Interference } from "../interference/measure.ts";
 * import { Evaluation } from "./merge_bench.ts";
 * const e = new Evaluation(["mnist", "fashion"], [0.9, 0.6], [1, 0.75],
 *   new Interference(["mnist", "fashion"], [0.1, 0.5], "kl"), "ties");
 * equal(e.avgAccuracy, 0.75);
 * deepStrictEqual(e.accuracyByTask, { mnist: 0.9, fashion: 0.6 });
 * deepStrictEqual(e.perTask.map((t) => t.task), ["mnist", "fashion"]);
 * equal(e.perTask[1].xi, 0.5);
 * ```
 */
export class Evaluation {
  /**
   * Wraps the values below.
   *
   * @param tasks task names
   * @param accuracy accuracy per task, in [0, 1]
   * @param normalised accuracy / the expert's accuracy, per task
   * @param xi interference ξ of the model (per task and total)
   * @param label what was evaluated
   */
  constructor(
    readonly tasks: readonly string[],
    readonly accuracy: readonly number[],
    readonly normalised: readonly number[],
    readonly xi: Interference,
    readonly label = "model",
  ) {}

  /** Mean accuracy over tasks. */
  get avgAccuracy(): number {
    return mean(this.accuracy);
  }

  /** Mean normalised accuracy over tasks. */
  get avgNormalised(): number {
    return mean(this.normalised);
  }

  /** Accuracy per task keyed by task name (a results row's `accuracyByTask`). */
  get accuracyByTask(): Record<string, number> {
    return Object.fromEntries(this.tasks.map((t, i) => [t, this.accuracy[i]]));
  }

  /** ξi per task keyed by task name (a results row's `xiByTask`). */
  get xiByTask(): Record<string, number> {
    return Object.fromEntries(this.tasks.map((t, i) => [t, this.xi.perTask[i]]));
  }

  /** One object per task: accuracy, normalised accuracy and ξi. */
  get perTask(): TaskScore[] {
    return this.tasks.map((task, i) => ({
      task,
      accuracy: this.accuracy[i],
      normalised: this.normalised[i],
      xi: this.xi.perTask[i],
    }));
  }
}
displayWith(Evaluation.prototype, (e) =>
  bars({
    categories: [...e.tasks],
    series: [
      { name: "accuracy (%)", values: e.accuracy.map((a) => 100 * a) },
      { name: "normalised (%)", values: e.normalised.map((a) => 100 * a) },
    ],
    title: `${e.label}: accuracy ${(100 * e.avgAccuracy).toFixed(1)}%, normalised ` +
      `${(100 * e.avgNormalised).toFixed(1)}%, ξ ${e.xi.total.toFixed(3)}`,
    yTitle: "%",
  }));

/**
 * A merged model: its parameters, its task vector and what the merge did. Shown as the
 * merge's summary (score it with {@linkcode MergeBench.evaluate} for accuracies). A method that
 * builds one model per task (`output: "per-task"`: EMR, TSV-C, TALL-mask compression) gives
 * one θ_t and τ_t per task; task t is then evaluated with θ_t ({@linkcode MergedModel.modelFor}).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { MergedModel } from "./merge_bench.ts";
 * const summary = { method: "average", params: { scaling: 1 }, tasks: ["a"], notes: {} };
 * const m = new MergedModel(new Map(), new Map(), summary);
 * equal(m.tauNorm(), 0);
 * equal(m.summary.method, "average");
 * equal(m.perTask, false); // one model for every task
 * ```
 */
export class MergedModel {
  readonly #theta: HostParams | readonly HostParams[];
  readonly #tau: HostParams | readonly HostParams[];

  /**
   * Wraps the values below.
   *
   * @param theta θ0 + α·M (per-task methods: θ0 + α·M_t for every task, in task order)
   * @param tau α·M (per-task methods: α·M_t for every task)
   * @param summary method, effective hyperparameters, notes
   */
  constructor(
    theta: HostParams | readonly HostParams[],
    tau: HostParams | readonly HostParams[],
    readonly summary: MergeSummary,
  ) {
    if (Array.isArray(theta) !== Array.isArray(tau)) {
      throw new Error("MergedModel: θ and τ must both be single models or both per task");
    }
    this.#theta = theta;
    this.#tau = tau;
  }

  /** True when the method built one model per task. */
  get perTask(): boolean {
    return Array.isArray(this.#theta);
  }

  /** θ0 + α·M (throws for a per-task merge: use {@linkcode MergedModel.modelFor}). */
  get theta(): HostParams {
    return single(this.#theta, this.summary.method, "θ");
  }

  /** α·M (throws for a per-task merge: use {@linkcode MergedModel.taskVectorFor}). */
  get tau(): HostParams {
    return single(this.#tau, this.summary.method, "τ");
  }

  /** The model task `task` is evaluated with: θ, or the task's own θ_t for a per-task merge. */
  modelFor(task: number): HostParams {
    return pick(this.#theta, task);
  }

  /** The task vector of task `task`'s model: α·M, or α·M_t for a per-task merge. */
  taskVectorFor(task: number): HostParams {
    return pick(this.#tau, task);
  }

  /** The L2 norm of α·M (per-task merges: the mean over tasks of ‖α·M_t‖). */
  tauNorm(): number {
    const norm = (tau: HostParams) => {
      let sum = 0;
      for (const t of tau.values()) for (const v of t.data) sum += v * v;
      return Math.sqrt(sum);
    };
    const taus = this.#tau;
    if (!isPerTask(taus)) return norm(taus);
    return taus.reduce((a, t) => a + norm(t), 0) / taus.length;
  }
}

function isPerTask(x: HostParams | readonly HostParams[]): x is readonly HostParams[] {
  return Array.isArray(x);
}

function single(x: HostParams | readonly HostParams[], method: string, what: string): HostParams {
  if (!isPerTask(x)) return x;
  throw new Error(
    `method "${method}" built one model per task, not one merged ${what}: use ` +
      `modelFor(task) / taskVectorFor(task), or pass the MergedModel to MergeBench.evaluate`,
  );
}

function pick(x: HostParams | readonly HostParams[], task: number): HostParams {
  if (!isPerTask(x)) return x;
  const out = x[task];
  if (!out) throw new Error(`no model for task ${task} (${x.length} per-task models)`);
  return out;
}
displayWith(
  MergedModel.prototype,
  (m) =>
    mergeSummaryTable(
      m.summary,
      m.perTask
        ? [["output", "one model per task"], ["mean over tasks of ‖α·M_t‖", m.tauNorm()]]
        : [["‖α·M‖", m.tauNorm()]],
    ),
);

/**
 * The zoo with its reference evaluations, ready for merges.
 *
 * @example
 * ```ts ignore
 * const bench = await MergeBench.open(await loadZoo({ suite: "mf4" }));
 * const merged = await bench.merge("ties", bench.taus);
 * console.log(await bench.evaluate(merged.theta, "ties"));
 * ```
 */
export class MergeBench {
  /** Heads and test images per task. */
  readonly #suite: EvaluationSuite;

  private constructor(
    /** The zoo (or real checkpoints). */
    readonly zoo: StudyModels,
    suite: EvaluationSuite,
    /** Expert i's accuracy on task i. */
    readonly expertAccuracy: readonly number[],
    /** Expert i's logits on task i's test images under head i (ξ's reference). */
    readonly expertLogits: readonly HeadLogits[],
    /** θ0's accuracy per task. */
    readonly baseAccuracy: readonly number[],
    /** The experts θi in task order. */
    readonly experts: readonly HostParams[],
    /** The original task vectors τi = θi − θ0. */
    readonly taus: readonly HostParams[],
  ) {
    this.#suite = suite;
  }

  /** Evaluates the zoo's experts and θ0 once. */
  static async open(zoo: StudyModels): Promise<MergeBench> {
    const tests: ImageSet[] = [];
    for (const task of zoo.taskNames) tests.push((await zoo.data(task)).test);
    const suite = { config: zoo.config.model, heads: zoo.heads, tests, norm: zoo.config.norm };
    const experts: HostParams[] = [];
    const expertAccuracy: number[] = [];
    const expertLogits: HeadLogits[] = [];
    for (const [i, task] of zoo.taskNames.entries()) {
      const params = await zoo.expert(task);
      const [own] = await evaluateOnTasks(
        { ...suite, heads: [suite.heads[i]], tests: [tests[i]] },
        params,
      );
      experts.push(params);
      expertAccuracy.push(own.accuracy);
      expertLogits.push(own.logits);
    }
    const baseAccuracy = (await evaluateOnTasks(suite, zoo.base)).map((e) => e.accuracy);
    const taus = experts.map((p, i) =>
      asWeights(subtractBase(p, zoo.base), `τ ${zoo.taskNames[i]}`)
    );
    return new MergeBench(zoo, suite, expertAccuracy, expertLogits, baseAccuracy, experts, taus);
  }

  /** Task names in order. */
  get tasks(): string[] {
    return this.zoo.taskNames;
  }

  /**
   * What data-using merges read (`needs: "data"`): θ0, the geometry, the heads and, per task,
   * `test_inputs` (its test images with the labels dropped), `train` (its training images and
   * labels: built-in zoos only, real-checkpoint descriptions hold no training images) and,
   * when `aux` is given, `aux` (the same task-agnostic set for every task).
   */
  mergeData(aux?: { set: ImageSet; origin: string }): MergeData {
    const zoo = this.zoo;
    const tests = this.#suite.tests;
    const sources: DataSourceName[] = ["test_inputs"];
    const hasTrain = !(zoo instanceof RealModels); // a built-in zoo, not real checkpoints
    if (hasTrain) sources.push("train");
    if (aux) sources.push("aux");
    const unlabeled = (set: ImageSet): ImageSet => ({
      ...set,
      labels: new Int32Array(0),
      classes: [],
    });
    return {
      model: { config: zoo.config.model, base: zoo.base, heads: zoo.heads, norm: zoo.config.norm },
      sources,
      async images(source: DataSourceName, task: number): Promise<ImageSet> {
        if (!sources.includes(source)) {
          throw new Error(`${zoo.dir}: no ${source} data for merging (have ${sources.join(", ")})`);
        }
        if (source === "test_inputs") return unlabeled(tests[task]);
        if (source === "aux") return unlabeled(aux!.set);
        const splits = await zoo.data(zoo.taskNames[task]);
        if (!("train" in splits)) throw new Error(`${zoo.dir}: no training images`);
        return splits.train;
      },
      describe: (source) => source === "aux" ? aux?.origin : undefined,
    };
  }

  /**
   * Merges task vectors (one per task, in order) with a registered method; θ0 is given to the
   * methods that read it. A per-task method gives one model per task.
   */
  async merge(
    method: string,
    taus: readonly HostParams[],
    options: MergeOptions = {},
  ): Promise<MergedModel> {
    await ensureEngine(); // wudi trains with tfjs
    const sources = taus.map((t, i) => new MemorySource(this.tasks[i], t));
    const baseModel = options.baseModel ?? new MemorySource("θ0", this.zoo.base);
    const merged = await merge(method, sources, { ...options, baseModel });
    if (merged.perTask) {
      const tau = merged.perTask.map((m, i) =>
        asWeights(m.tensors(), `α·M (${method}, ${this.tasks[i]})`)
      );
      const thetas = tau.map((t, i) =>
        asWeights(addTaskVector(this.zoo.base, t), `θ0 + α·M (${method}, ${this.tasks[i]})`)
      );
      return new MergedModel(thetas, tau, merged.summary);
    }
    const tau = asWeights(merged.tensors(), `α·M (${method})`);
    const theta = asWeights(addTaskVector(this.zoo.base, tau), `θ0 + α·M (${method})`);
    return new MergedModel(theta, tau, merged.summary);
  }

  /**
   * The pairwise interference matrix I[i][j] of task vectors `taus` (one per task): on the
   * auxiliary set `aux` under every head, or, without `aux`, on each task j's test images
   * under head j.
   */
  async pairwise(
    taus: readonly HostParams[],
    distance: DistanceName | "KL" | "CE" | "MSE",
    aux?: ImageSet,
    label = "experts",
    onModel?: (done: number, total: number) => void,
  ): Promise<InterferenceMatrix> {
    // Before any model runs: an unknown distance fails at once, listing the valid ones.
    const d = parseDistance(distance);
    if (taus.length !== this.tasks.length) {
      throw new Error(`pairwise: ${taus.length} task vectors for ${this.tasks.length} tasks`);
    }
    const { model, norm } = this.zoo.config;
    const heads = this.zoo.heads;
    const logits = async (params: HostParams): Promise<HeadLogits[]> => {
      if (aux) return await modelLogits(model, params, heads, aux, norm);
      return (await evaluateOnTasks(this.#suite, params)).map((e) => e.logits);
    };
    const base = await logits(this.zoo.base);
    onModel?.(1, taus.length + 1);
    const rows: HeadLogits[][] = [];
    for (const tau of taus) {
      rows.push(await logits(addTaskVector(this.zoo.base, tau)));
      onModel?.(rows.length + 1, taus.length + 1);
    }
    return pairwiseInterference(base, rows, d, aux ? "aux" : "task", label);
  }

  /**
   * Scores a backbone on every task: accuracy, normalised accuracy and ξ. Given a
   * {@linkcode MergedModel} of a per-task method (or one backbone per task), task t is scored
   * with its own model.
   */
  async evaluate(
    theta: HostParams | MergedModel | readonly HostParams[],
    label?: string,
  ): Promise<Evaluation> {
    const models = theta instanceof MergedModel
      ? (theta.perTask ? this.tasks.map((_, t) => theta.modelFor(t)) : theta.theta)
      : theta;
    const evals = await evaluateOnTasks(this.#suite, models);
    const xi = interference(this.expertLogits, evals.map((e) => e.logits), "kl");
    const accuracy = evals.map((e) => e.accuracy);
    const normalised = accuracy.map((a, i) => a / this.expertAccuracy[i]);
    return new Evaluation(this.tasks, accuracy, normalised, xi, label);
  }
}

displayWith(MergeBench.prototype, (b) => benchFigure(b));

/** The reference points every merge is judged against: each expert, and θ0 with the heads. */
function benchFigure(b: MergeBench): Figure {
  const pct = (xs: readonly number[]) => xs.map((a) => 100 * a);
  const rows = b.tasks.map((t, i) => [
    t,
    100 * b.expertAccuracy[i],
    100 * b.baseAccuracy[i],
    100 * (b.expertAccuracy[i] - b.baseAccuracy[i]),
  ]);
  rows.push([
    "mean",
    100 * mean(b.expertAccuracy),
    100 * mean(b.baseAccuracy),
    100 * (mean(b.expertAccuracy) - mean(b.baseAccuracy)),
  ]);
  return stack([
    table({
      columns: ["task", "expert acc (%)", "θ0 acc (%)", "gap (points)"],
      rows,
      title: `Merge bench: ${b.tasks.length} tasks, ${b.zoo.dir}`,
    }),
    bars({
      categories: [...b.tasks],
      series: [
        { name: "expert", values: pct(b.expertAccuracy) },
        { name: "θ0 + head", values: pct(b.baseAccuracy) },
      ],
      title: "Test accuracy (%) of each expert on its task, and of θ0 with the task's head",
      yTitle: "accuracy (%)",
      range: [0, 100],
    }),
  ]);
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
