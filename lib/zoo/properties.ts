/**
 * The zoo's validity properties (BENCHMARK.md), measured before RI is ever run: each expert's
 * test accuracy on its task, θ0 with the frozen heads on each task, and every merge
 * method at its registry defaults, merging all experts. From the means over tasks (in points)
 * follow the four criteria of the paper's regime:
 *
 * - experts − (θ0 + heads) ≥ 15: fine-tuning matters;
 * - Task Arithmetic (at its default λ = 0.3) ≥ (θ0 + heads) + 5: merging helps;
 * - the best merge ≥ (θ0 + heads) + 10: merging helps a lot, as on CLIP;
 * - the best merge ≤ experts − 5: interference remains to resolve.
 *
 * Beside them: ‖τ‖/‖θ0‖ (each task vector's global L2 norm over θ0's; CLIP's are a few
 * percent) and the task vectors' mean pairwise cosine similarity.
 *
 * @module
 */
import { stack, table } from "../display/figure.ts";
import type { Figure } from "../display/figure.ts";
import { progress, type ProgressMode } from "../display/progress.ts";
import { disposeParams, type HostParams, hostToParams } from "../models/weights.ts";
import type { Head } from "../models/head.ts";
import type { TaskSplits } from "../data/dataset.ts";
import type { TaskSpec } from "../data/tasks.ts";
import { merge } from "../merge/merge.ts";
import { defaultStudyMethods, getMethod } from "../merge/registry.ts";
import { TaskVector } from "../taskvec/task_vector.ts";
import { taskVectorStats } from "../taskvec/stats.ts";
import { accuracy } from "../train/evaluate.ts";
import { addTaskVector } from "../taskvec/host.ts";
import type { TensorSource } from "../tensor/source.ts";
import type { ZooConfig } from "./config.ts";

/** The thresholds of BENCHMARK.md's four criteria, in points of mean top-1 accuracy. */
export const REQUIRED: Readonly<Record<CriterionKey, number>> = {
  /** experts − (θ0 + heads) must be at least this. */
  expertGap: 15,
  /** Task Arithmetic − (θ0 + heads) must be at least this. */
  taskArithmeticGain: 5,
  /** best merge − (θ0 + heads) must be at least this. */
  bestMergeGain: 10,
  /** experts − best merge must be at least this. */
  bestMergeHeadroom: 5,
};

/** A criterion's name: a key of {@linkcode REQUIRED}. */
export type CriterionKey =
  | "expertGap"
  | "taskArithmeticGain"
  | "bestMergeGain"
  | "bestMergeHeadroom";

/** Mean accuracies (in points) the criteria are judged on. */
export interface CriteriaMeans {
  /** Mean expert accuracy. */
  expert: number;
  /** Mean accuracy of θ0 with the heads. */
  base: number;
  /** Mean accuracy of Task Arithmetic at its default coefficient. */
  taskArithmetic: number;
  /** Mean accuracy of the best merge method at its defaults. */
  bestMerge: number;
}

/** One criterion's outcome. */
export interface Criterion {
  /** Short key (`expertGap`, `taskArithmeticGain`, `bestMergeGain`, `bestMergeHeadroom`). */
  key: CriterionKey;
  /** What is measured, in words. */
  text: string;
  /** The measured difference, in points. */
  value: number;
  /** The least value that meets it, in points. */
  threshold: number;
  /** Whether the value reaches the threshold. */
  met: boolean;
}

/**
 * Judges the four criteria on mean accuracies in points (see the module's documentation).
 *
 * @example
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { checkCriteria } from "./properties.ts";
 * const c = checkCriteria({ expert: 86, base: 60, taskArithmetic: 66, bestMerge: 72 });
 * assertEquals(c.map((x) => x.met), [true, true, true, true]);
 * assertEquals(c[1].value, 6); // TA − (θ0 + heads)
 * ```
 */
export function checkCriteria(m: CriteriaMeans): Criterion[] {
  const criterion = (key: CriterionKey, text: string, value: number): Criterion => ({
    key,
    text,
    value,
    threshold: REQUIRED[key],
    met: value >= REQUIRED[key],
  });
  return [
    criterion("expertGap", "experts − (θ0 + heads)", m.expert - m.base),
    criterion("taskArithmeticGain", "Task Arithmetic − (θ0 + heads)", m.taskArithmetic - m.base),
    criterion("bestMergeGain", "best merge − (θ0 + heads)", m.bestMerge - m.base),
    criterion("bestMergeHeadroom", "experts − best merge", m.expert - m.bestMerge),
  ];
}

/** One merge method's result in the properties. */
export interface MergeProperty {
  /** Registry name. */
  method: string;
  /** Its effective hyperparameters (the registry's defaults). */
  params: Record<string, unknown>;
  /** Accuracy per task (fractions), in task order. */
  accuracy: number[];
}

/** Everything measured on a zoo's suite (accuracies are fractions in [0, 1]). */
export interface ZooPropertiesData {
  /** Task names. */
  tasks: string[];
  /** Each expert on its own task's test split. */
  expert: number[];
  /** θ0 with each task's head. */
  base: number[];
  /** Every registered merge of all experts, at its defaults. */
  merges: MergeProperty[];
  /** ‖τ_t‖ / ‖θ0‖ per task (global L2 norms). */
  tauRatio: number[];
  /** The task vectors' cosine-similarity matrix. */
  cosine: number[][];
}

/** Accuracies per task and what follows from them. */
export class ZooProperties {
  /** Wraps measured data (see {@linkcode evaluateZoo}). */
  constructor(readonly data: ZooPropertiesData) {
    if (!data.merges.some((m) => m.method === "task_arithmetic")) {
      throw new Error("zoo properties: no task_arithmetic merge among the merges");
    }
  }

  /** Task names. */
  get tasks(): string[] {
    return this.data.tasks;
  }

  /** Each expert's accuracy on its task. */
  get expert(): number[] {
    return this.data.expert;
  }

  /** θ0 with each task's head. */
  get base(): number[] {
    return this.data.base;
  }

  /** Task Arithmetic's accuracy per task (at its default coefficient). */
  get taskArithmetic(): number[] {
    return this.mergeOf("task_arithmetic").accuracy;
  }

  /** A merge's result by method name. */
  mergeOf(method: string): MergeProperty {
    const m = this.data.merges.find((m) => m.method === method);
    if (!m) throw new Error(`zoo properties: no merge "${method}"`);
    return m;
  }

  /** The merge with the highest mean accuracy (the first such in registry order). */
  get bestMerge(): MergeProperty {
    let best = this.data.merges[0];
    for (const m of this.data.merges) if (mean(m.accuracy) > mean(best.accuracy)) best = m;
    return best;
  }

  /** Mean accuracies over tasks, in points. */
  get means(): CriteriaMeans {
    return {
      expert: 100 * mean(this.expert),
      base: 100 * mean(this.base),
      taskArithmetic: 100 * mean(this.taskArithmetic),
      bestMerge: 100 * mean(this.bestMerge.accuracy),
    };
  }

  /** Mean of ‖τ_t‖/‖θ0‖ over tasks. */
  get tauRatio(): number {
    return mean(this.data.tauRatio);
  }

  /** Mean cosine similarity over distinct pairs of task vectors (NaN with one task). */
  get meanCosine(): number {
    const c = this.data.cosine;
    const off = c.flatMap((row, i) => row.filter((_, j) => j > i));
    return off.length ? mean(off) : NaN;
  }

  /** The four criteria (see {@linkcode checkCriteria}). */
  get criteria(): Criterion[] {
    return checkCriteria(this.means);
  }

  /** Whether every criterion is met. */
  get valid(): boolean {
    return this.criteria.every((c) => c.met);
  }

  /** The criteria that are missed (empty when valid). */
  get missed(): Criterion[] {
    return this.criteria.filter((c) => !c.met);
  }

  /**
   * Tables: per task (expert, θ0 + head, Task Arithmetic, the best merge, ‖τ‖/‖θ0‖), every
   * merge's mean, and the four criteria with their thresholds.
   */
  table(): Figure {
    const pct = (v: number) => Math.round(1000 * v) / 10;
    const best = this.bestMerge;
    const ta = this.taskArithmetic;
    const rows: (string | number)[][] = this.tasks.map((t, i) => [
      t,
      pct(this.expert[i]),
      pct(this.base[i]),
      pct(ta[i]),
      pct(best.accuracy[i]),
      round3(this.data.tauRatio[i]),
    ]);
    const m = this.means;
    rows.push([
      "mean",
      round1(m.expert),
      round1(m.base),
      round1(m.taskArithmetic),
      round1(m.bestMerge),
      round3(this.tauRatio),
    ]);
    const perTask = table({
      title: `Zoo properties (accuracy %, test splits, merges at their defaults): ` +
        `‖τ‖/‖θ0‖ ${this.tauRatio.toFixed(3)}, mean pairwise cos(τi, τj) ` +
        `${this.meanCosine.toFixed(3)}`,
      columns: ["task", "expert", "θ0 + head", "task_arithmetic", best.method, "‖τ‖/‖θ0‖"],
      rows,
      digits: 3,
    });
    const merges = table({
      title: "Every merge method at its registry defaults (mean accuracy %)",
      columns: ["method", "mean acc", "− (θ0 + heads)"],
      rows: this.data.merges.map((x) => [
        x.method,
        round1(100 * mean(x.accuracy)),
        round1(100 * mean(x.accuracy) - m.base),
      ]),
      digits: 3,
    });
    const criteria = table({
      title: this.valid
        ? "Criteria (points): all met"
        : `Criteria (points): MISSED ${this.missed.map((c) => c.key).join(", ")}`,
      columns: ["criterion", "value", "need ≥", "verdict"],
      rows: this.criteria.map((c) => [
        c.text + (c.key.startsWith("best") ? ` (${best.method})` : ""),
        round1(c.value),
        c.threshold,
        c.met ? "meets" : "FAILS",
      ]),
      digits: 3,
    });
    return stack([perTask, merges, criteria]);
  }

  /** Plain data for `zoo-<suite>.json` (accuracies as fractions; derived values included). */
  toJSON(): Record<string, unknown> {
    return {
      ...this.data,
      means: this.means,
      bestMethod: this.bestMerge.method,
      meanTauRatio: this.tauRatio,
      meanCosine: this.meanCosine,
      criteria: this.criteria,
      valid: this.valid,
    };
  }

  /** Reads what {@linkcode ZooProperties.toJSON} wrote. */
  static fromJSON(json: Record<string, unknown>): ZooProperties {
    const list = (key: string) => {
      const v = json[key];
      if (!Array.isArray(v)) throw new Error(`zoo properties: "${key}" is not a list`);
      return v;
    };
    return new ZooProperties({
      tasks: list("tasks") as string[],
      expert: list("expert") as number[],
      base: list("base") as number[],
      merges: list("merges") as MergeProperty[],
      tauRatio: list("tauRatio") as number[],
      cosine: list("cosine") as number[][],
    });
  }
}

function mean(values: readonly number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

function round1(v: number): number {
  return Math.round(10 * v) / 10;
}

function round3(v: number): number {
  return Math.round(1000 * v) / 1000;
}

/** The global L2 norm of a model's parameters. */
function globalNorm(params: HostParams): number {
  let sum = 0;
  for (const t of params.values()) for (const v of t.data) sum += v * v;
  return Math.sqrt(sum);
}

/** What {@linkcode evaluateZoo} reads of a zoo (the zoo's `ZooContents` has all of it). */
export interface ZooModels {
  /** What the zoo was built from. */
  readonly config: ZooConfig;
  /** The tasks, in order. */
  readonly tasks: readonly TaskSpec[];
  /** θ0. */
  readonly base: HostParams;
  /** One head per task, in task order. */
  readonly heads: readonly Head[];
  /** A task's expert. */
  expert(task: string): Promise<HostParams>;
  /** θ0 as a tensor source. */
  baseSource(): TensorSource;
  /** A task's expert as a tensor source. */
  expertSource(task: string): Promise<TensorSource>;
  /** A task's splits. */
  data(task: string): Promise<TaskSplits>;
}

/**
 * The merge methods the properties measure: every registered method that the default study
 * runs (see `defaultStudyMethods`), that needs nothing but the task vectors (a data-using
 * method needs the study's data sources) and that builds one model for all tasks (EMR, TSV-C
 * and TALL-mask compression build one per task: not a merge the criteria speak of).
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { propertyMethods } from "./properties.ts";
 * import { getMethod } from "../merge/registry.ts";
 * const methods = propertyMethods();
 * ok(methods.includes("task_arithmetic"));
 * equal(methods.includes("slerp"), false); // not in the default study (two models only)
 * ok(methods.every((name) => getMethod(name).needs !== "data")); // the task vectors suffice
 * equal(methods.includes("emr"), false); // one model per task
 * ```
 */
export function propertyMethods(): string[] {
  return defaultStudyMethods().filter((m) => {
    const method = getMethod(m);
    return method.needs !== "data" && method.output !== "per-task";
  });
}

/**
 * Measures the properties of a zoo on the tasks' test splits: θ0, each expert, every
 * merge method of {@linkcode propertyMethods} at its defaults (or the `methods` given;
 * `task_arithmetic` must be among them), and the task vectors' norms and cosines.
 *
 * @example
 * ```ts ignore
 * const properties = await evaluateZoo(zoo);
 * console.log(properties.table().toText());
 * ```
 */
export async function evaluateZoo(
  zoo: ZooModels,
  mode?: ProgressMode,
  methods: readonly string[] = propertyMethods(),
): Promise<ZooProperties> {
  const { config, tasks } = zoo;
  const feed = { norm: config.norm };
  const bar = progress("evaluating", (2 + methods.length) * tasks.length, { mode });
  const score = async (host: HostParams, only?: number) => {
    const params = hostToParams(host);
    try {
      const out: number[] = [];
      for (const [i, task] of tasks.entries()) {
        if (only !== undefined && i !== only) continue;
        const { test } = await zoo.data(task.name);
        out.push(await accuracy(params, config.model, zoo.heads[i], test, feed));
        bar.tick();
      }
      return out;
    } finally {
      disposeParams(params);
    }
  };
  const base = await score(zoo.base);
  const expert: number[] = [];
  for (let i = 0; i < tasks.length; i++) {
    expert.push(...await score(await zoo.expert(tasks[i].name), i));
  }
  const baseSource = zoo.baseSource();
  const vectors = await Promise.all(
    tasks.map(async (t) => new TaskVector(t.name, baseSource, await zoo.expertSource(t.name))),
  );
  const merges: MergeProperty[] = [];
  for (const method of methods) {
    const merged = await merge(method, vectors);
    const model = addTaskVector(zoo.base, merged.tensors());
    merges.push({ method, params: { ...merged.summary.params }, accuracy: await score(model) });
  }
  const names = tasks.map((t) => t.name);
  const stats = await taskVectorStats(names, vectors);
  const baseNorm = globalNorm(zoo.base);
  await bar.done();
  return new ZooProperties({
    tasks: names,
    expert,
    base,
    merges,
    tauRatio: stats.norms.global.map((n) => n / baseNorm),
    cosine: stats.cosine.matrix.map((row) => [...row]),
  });
}
