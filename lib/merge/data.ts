/**
 * Data for data-using merge methods: checking that a {@linkcode MergeData} context fits the
 * task vectors, describing what a merge read ({@linkcode DataUse}) in one line, and the seeded
 * choice of which images a method reads, so that a test can give a reference implementation
 * exactly the same images.
 *
 * @module
 */
import { Rng } from "../tensor/random.ts";
import {
  DATA_SOURCES,
  type DataSourceName,
  type DataUse,
  type MergeData,
  type MergeMethod,
  type Params,
} from "./method.ts";

/**
 * Why data-using methods are left out of the study's default set (`--methods all`): the
 * default comparison is between merges that read only the task vectors, and AdaMerging's
 * optimisation alone would take longer than the default study's time budget.
 */
export const DATA_METHOD_NOT_DEFAULT =
  "reads data besides the task vectors (see data:), so it runs when named (--methods)";

/**
 * The data source `method` reads under `params`, or undefined for a data-free method.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { dataSourceOf } from "./data.ts";
 * import { getMethod } from "./registry.ts";
 * equal(dataSourceOf(getMethod("ties"), {}), undefined);
 * equal(dataSourceOf(getMethod("regmean"), { data: "train" }), "train");
 * ```
 */
export function dataSourceOf(method: MergeMethod, params: Params): DataSourceName | undefined {
  if (method.needs !== "data") return undefined;
  if (!method.dataSource) {
    throw new Error(`method "${method.name}" needs data but names no data source`);
  }
  return method.dataSource(params);
}

/**
 * Checks that a data-using method has a data context that fits `tasks` task vectors: one head
 * per task and the source it reads. The errors name the method and what is missing.
 *
 * @example
 * ```ts
 * import { doesNotThrow, throws } from "node:assert/strict";
 * import { checkMergeData } from "./data.ts";
 * import { getMethod } from "./registry.ts";
 * doesNotThrow(() => checkMergeData(getMethod("ties"), {}, 3, undefined)); // data-free
 * throws(() => checkMergeData(getMethod("regmean"), { data: "train" }, 3, undefined), /study/);
 * ```
 */
export function checkMergeData(
  method: MergeMethod,
  params: Params,
  tasks: number,
  data: MergeData | undefined,
): void {
  const source = dataSourceOf(method, params);
  if (source === undefined) return;
  if (!data) {
    throw new Error(
      `method "${method.name}" reads data (${DATA_SOURCES[source]}) through the model and ` +
        `heads: run it in a study (deno task merge --methods ${method.name}) or pass the data ` +
        `context (options.data)`,
    );
  }
  if (data.model.heads.length !== tasks) {
    throw new Error(
      `method "${method.name}": ${data.model.heads.length} heads for ${tasks} task vectors ` +
        `(one head per task, in the same order)`,
    );
  }
  if (!data.sources.includes(source)) {
    throw new Error(
      `method "${method.name}" reads ${source} (${DATA_SOURCES[source]}), which these models ` +
        `do not offer (they offer ${data.sources.join(", ") || "no data"})`,
    );
  }
}

/**
 * The record of what a method read from `data`: the source, the images per task, whether labels
 * were read, and the source's origin when the context describes it.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { dataUseOf } from "./data.ts";
 * deepStrictEqual(dataUseOf(undefined, "train", 256, false), {
 *   source: "train",
 *   perTask: 256,
 *   labels: false,
 * });
 * ```
 */
export function dataUseOf(
  data: MergeData | undefined,
  source: DataSourceName,
  perTask: number,
  labels: boolean,
): DataUse {
  const origin = data?.describe?.(source);
  return { source, perTask, labels, ...(origin ? { origin } : {}) };
}

/**
 * One line saying what a merge read, e.g. `test_inputs 256/task, no labels`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { describeDataUse } from "./data.ts";
 * equal(
 *   describeDataUse({ source: "train", perTask: 256, labels: false }),
 *   "train inputs 256/task, no labels",
 * );
 * ```
 */
export function describeDataUse(use: DataUse | undefined): string {
  if (!use) return "none";
  const what = use.source === "train" ? "train inputs" : use.source;
  const origin = use.origin ? ` (${use.origin})` : "";
  return `${what}${origin} ${use.perTask}/task, ${use.labels ? "with labels" : "no labels"}`;
}

/**
 * The positions of the images a method reads from a set of `count` images: all of them in
 * order when `want` is 0 or at least `count`, else the first `want` of a permutation seeded by
 * `seed` and `label`.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { pickImages } from "./data.ts";
 * deepStrictEqual(pickImages(4, 0, 1, "x"), new Int32Array([0, 1, 2, 3]));
 * equal(new Set(pickImages(10, 3, 1, "x")).size, 3);
 * ```
 */
export function pickImages(count: number, want: number, seed: number, label: string): Int32Array {
  if (want <= 0 || want >= count) return Int32Array.from({ length: count }, (_, i) => i);
  return new Rng(seed, label).permutation(count).slice(0, want);
}
