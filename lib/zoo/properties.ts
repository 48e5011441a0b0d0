/**
 * The zoo's validity properties (BENCHMARK.md): each expert's test accuracy on its task, θ0
 * with the frozen heads on each task, and Task Arithmetic's merge of all experts at its default
 * coefficient, absolute and normalised (merged / expert). A fair benchmark needs the experts
 * clearly above θ0 (≥ 15 points on average) and TA clearly below the experts (≥ 10 points of
 * normalised accuracy).
 *
 * @module
 */
import { table } from "../display/figure.ts";
import type { Figure } from "../display/figure.ts";
import { progress, type ProgressMode } from "../display/progress.ts";
import { disposeParams, type HostParams, hostToParams } from "../models/weights.ts";
import type { Head } from "../models/head.ts";
import type { TaskSplits } from "../data/dataset.ts";
import type { TaskSpec } from "../data/tasks.ts";
import { merge } from "../merge/merge.ts";
import { addTaskVector } from "../taskvec/host.ts";
import { TaskVector } from "../taskvec/task_vector.ts";
import type { TensorSource } from "../tensor/source.ts";
import { accuracy } from "../train/evaluate.ts";
import type { ZooConfig } from "./config.ts";

/** The thresholds BENCHMARK.md asks for, in points. */
export const REQUIRED = { expertGap: 15, taskArithmeticLoss: 10 } as const;

/** Accuracies per task (fractions in [0, 1]) and what follows from them. */
export class ZooProperties {
  /** Builds from per-task accuracies, in task order. */
  constructor(
    /** Task names. */
    readonly tasks: readonly string[],
    /** Each expert on its own task's test split. */
    readonly expert: readonly number[],
    /** θ0 with each task's head. */
    readonly base: readonly number[],
    /** The Task Arithmetic merge with each task's head. */
    readonly taskArithmetic: readonly number[],
    /** The coefficient Task Arithmetic was evaluated at. */
    readonly scaling: number,
  ) {}

  /** Merged / expert accuracy per task. */
  get normalized(): number[] {
    return this.taskArithmetic.map((a, i) => a / this.expert[i]);
  }

  /** Averages over tasks. */
  get means(): { expert: number; base: number; taskArithmetic: number; normalized: number } {
    return {
      expert: mean(this.expert),
      base: mean(this.base),
      taskArithmetic: mean(this.taskArithmetic),
      normalized: mean(this.normalized),
    };
  }

  /** Mean expert accuracy minus mean θ0-with-heads accuracy, in points. */
  get expertGap(): number {
    return 100 * (this.means.expert - this.means.base);
  }

  /** 100 minus Task Arithmetic's mean normalised accuracy (in %): its loss against the experts. */
  get taskArithmeticLoss(): number {
    return 100 * (1 - this.means.normalized);
  }

  /** Whether both required gaps are met. */
  get valid(): boolean {
    return this.expertGap >= REQUIRED.expertGap &&
      this.taskArithmeticLoss >= REQUIRED.taskArithmeticLoss;
  }

  /** A table: one row per task, then the means and the two gaps with their thresholds. */
  table(): Figure {
    const pct = (v: number) => Math.round(1000 * v) / 10;
    const rows: (string | number)[][] = this.tasks.map((t, i) => [
      t,
      pct(this.expert[i]),
      pct(this.base[i]),
      pct(this.taskArithmetic[i]),
      pct(this.normalized[i]),
    ]);
    const m = this.means;
    rows.push(["mean", pct(m.expert), pct(m.base), pct(m.taskArithmetic), pct(m.normalized)]);
    const ok = (v: boolean) => (v ? "meets" : "FAILS");
    return table({
      title: `Zoo validity (accuracy %, test splits): expert − θ0 = ${this.expertGap.toFixed(1)} ` +
        `points (need ≥ ${REQUIRED.expertGap}: ${ok(this.expertGap >= REQUIRED.expertGap)}); ` +
        `TA loses ${this.taskArithmeticLoss.toFixed(1)} points of normalised accuracy ` +
        `(need ≥ ${REQUIRED.taskArithmeticLoss}: ` +
        `${ok(this.taskArithmeticLoss >= REQUIRED.taskArithmeticLoss)})`,
      columns: ["task", "expert", "θ0 + head", `TA λ=${this.scaling}`, "TA normalised"],
      rows,
      digits: 4,
    });
  }

  /** Plain data for `zoo.json` (accuracies as fractions, derived values included). */
  toJSON(): Record<string, unknown> {
    return {
      tasks: this.tasks,
      expert: this.expert,
      base: this.base,
      taskArithmetic: this.taskArithmetic,
      taskArithmeticScaling: this.scaling,
      normalized: this.normalized,
      means: this.means,
      expertGapPoints: this.expertGap,
      taskArithmeticLossPoints: this.taskArithmeticLoss,
      valid: this.valid,
    };
  }

  /** Reads what {@linkcode ZooProperties.toJSON} wrote. */
  static fromJSON(json: Record<string, unknown>): ZooProperties {
    const list = (key: string) => {
      const v = json[key];
      if (!Array.isArray(v)) throw new Error(`zoo.json: "${key}" is not a list`);
      return v as number[];
    };
    return new ZooProperties(
      list("tasks") as unknown as string[],
      list("expert"),
      list("base"),
      list("taskArithmetic"),
      Number(json.taskArithmeticScaling),
    );
  }
}

function mean(values: readonly number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
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
 * Measures the properties of a zoo on the tasks' test splits: θ0, each expert, and the Task
 * Arithmetic merge (the merge registry's `task_arithmetic` at the zoo's coefficient).
 *
 * @example
 * ```ts ignore
 * const properties = await evaluateZoo(zoo);
 * console.log(properties.table().toText());
 * ```
 */
export async function evaluateZoo(zoo: ZooModels, mode?: ProgressMode): Promise<ZooProperties> {
  const { config, tasks } = zoo;
  const feed = { norm: config.norm };
  const bar = progress("evaluating", 3 * tasks.length, { mode });
  const score = async (host: HostParams, per: (i: number) => boolean) => {
    const params = hostToParams(host);
    try {
      const out: number[] = [];
      for (const [i, task] of tasks.entries()) {
        if (!per(i)) continue;
        const { test } = await zoo.data(task.name);
        out.push(await accuracy(params, config.model, zoo.heads[i], test, feed));
        bar.tick();
      }
      return out;
    } finally {
      disposeParams(params);
    }
  };
  const base = await score(zoo.base, () => true);
  const expert: number[] = [];
  for (let i = 0; i < tasks.length; i++) {
    expert.push(...await score(await zoo.expert(tasks[i].name), (j) => j === i));
  }
  const baseSource = zoo.baseSource();
  const vectors = await Promise.all(
    tasks.map(async (t) => new TaskVector(t.name, baseSource, await zoo.expertSource(t.name))),
  );
  const merged = await merge("task_arithmetic", vectors, { scaling: config.taskArithmeticScaling });
  const taskArithmetic = await score(addTaskVector(zoo.base, merged.tensors()), () => true);
  await bar.done();
  return new ZooProperties(
    tasks.map((t) => t.name),
    expert,
    base,
    taskArithmetic,
    config.taskArithmeticScaling,
  );
}
