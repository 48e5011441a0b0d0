/**
 * The models a study runs on: the built-in zoo (`suite`), or real CLIP checkpoints
 * (`models`, see `real.ts`). Both offer the same face (task names, geometry, θ0, heads,
 * experts, test images), which is all RI, the merges and the evaluation read.
 *
 * @module
 */
import { loadZoo, type Zoo } from "../zoo/zoo.ts";
import type { SuiteName } from "../data/tasks.ts";
import type { ZooConfig } from "../zoo/config.ts";
import type { ProgressMode } from "../display/progress.ts";
import type { StudyConfig } from "./config.ts";
import { openRealModels, type RealModels } from "./real.ts";

/** A built-in zoo or real checkpoints. */
export type StudyModels = Zoo | RealModels;

/**
 * Opens the models of `config`: the real-model description when `models` is set, else the
 * built-in zoo of `suite` and `seed` (built where missing).
 *
 * @example
 * ```ts ignore
 * const models = await openStudyModels(resolveStudyConfig({ models: "run.models.json" }));
 * try { console.log(models.taskNames); } finally { models.dispose(); }
 * ```
 */
export async function openStudyModels(
  config: StudyConfig,
  progress?: ProgressMode,
  zoo?: StudyZoo,
): Promise<StudyModels> {
  if (config.models !== undefined) return await openRealModels(config.models, progress);
  if (zoo && (zoo.config.suite !== config.suite || zoo.config.seed !== config.seed)) {
    throw new Error(
      `the study runs suite ${config.suite} with seed ${config.seed}, but the zoo given is ` +
        `suite ${zoo.config.suite} with seed ${zoo.config.seed}`,
    );
  }
  return await loadZoo({
    suite: config.suite as SuiteName,
    seed: config.seed,
    progress,
    config: zoo?.config,
    root: zoo?.root,
  });
}

/**
 * Another zoo than the suite's default (smaller, for tests and the GPU check): its recipe and
 * the cache root it is built in.
 */
export interface StudyZoo {
  /** The zoo's recipe (same suite and seed as the study). */
  config: ZooConfig;
  /** Cache root (default `RI_CACHE` or `.cache`). */
  root?: string;
}

/**
 * Fails, listing the models' tasks, when one of `tasks` is not among them.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkStudyTasks } from "./models.ts";
 * checkStudyTasks({ dir: "zoo", taskNames: ["a", "b"] }, ["b"]);
 * throws(() => checkStudyTasks({ dir: "zoo", taskNames: ["a", "b"] }, ["c"]), /zoo: no task "c" \(tasks: a, b\)/);
 * ```
 */
export function checkStudyTasks(
  models: { readonly dir: string; readonly taskNames: readonly string[] },
  tasks: readonly string[],
): void {
  for (const task of tasks) {
    if (!models.taskNames.includes(task)) {
      throw new Error(`${models.dir}: no task "${task}" (tasks: ${models.taskNames.join(", ")})`);
    }
  }
}
