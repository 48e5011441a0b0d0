/**
 * The registry of merge methods: one entry per method, carrying its published defaults, where
 * each default comes from, its parameter schema and its tensor rule.
 *
 * @module
 */
import { average } from "./average.ts";
import { consensusTaskArithmetic, consensusTies } from "./consensus.ts";
import { dareTaskArithmetic, dareTies } from "./dare.ts";
import { DATA_SOURCES, type DataSourceName, type MergeMethod } from "./method.ts";
import { rangeText, resolveParams } from "./params.ts";
import { taskArithmetic } from "./task_arithmetic.ts";
import { ties } from "./ties.ts";
import { tsvM } from "./tsv_m.ts";
import { isoC } from "./iso_c.ts";
import { isoCts } from "./iso_cts.ts";
import { wudi } from "./wudi.ts";
import { weightedAverage } from "./weighted_average.ts";
import { tiesMax } from "./ties_max.ts";
import { dareAverage } from "./dare_average.ts";
import { magmax } from "./magmax.ts";
import { modelStock } from "./model_stock.ts";
import { emr } from "./emr.ts";
import { tallMask } from "./tall_mask.ts";
import { tsvC } from "./tsv_c.ts";
import { slerp } from "./slerp.ts";
import { knots } from "./knots.ts";
import { dogeTa } from "./doge_ta.ts";
import { dop } from "./dop.ts";
import { trustRegion } from "./trust_region.ts";
import { svcMethods } from "./svc.ts";
import { adaMergingLayer, adaMergingTask } from "./adamerging.ts";
import { regMean } from "./regmean.ts";
import { regMeanPlusPlus } from "./regmean_plusplus.ts";
import { fisherMerging } from "./fisher.ts";
import { fwHard } from "./fw_merging.ts";
import { fwSoft } from "./fw_soft.ts";
import { concreteTaskArithmetic } from "./concrete_ta.ts";
import { adaSvd } from "./ada_svd.ts";
import { concreteAdaMergingLayer, concreteAdaMergingTask } from "./concrete_adamerging.ts";

/**
 * Every registered method: the data-free ones in the order the literature introduced them, then
 * the data-using ones (`needs: "data"`), which read the model, heads and data.
 */
export const MERGE_METHODS: readonly MergeMethod[] = [
  average,
  taskArithmetic,
  ties,
  dareTaskArithmetic,
  dareTies,
  consensusTaskArithmetic,
  consensusTies,
  tsvM,
  isoC,
  isoCts,
  wudi,
  // Data-free methods added with issue #18, in the order the literature introduced them.
  slerp,
  weightedAverage,
  tiesMax,
  tallMask,
  dareAverage,
  modelStock,
  emr,
  magmax,
  tsvC,
  knots,
  trustRegion,
  dogeTa,
  dop,
  ...svcMethods,
  // Data-using methods (issue #18).
  fisherMerging,
  regMean,
  regMeanPlusPlus,
  adaMergingTask,
  adaMergingLayer,
  fwHard,
  fwSoft,
  concreteTaskArithmetic,
  adaSvd,
  concreteAdaMergingTask,
  concreteAdaMergingLayer,
];

/**
 * Names of the registered methods.
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { methodNames } from "./registry.ts";
 * const names = methodNames();
 * ok(names.includes("ties") && names.includes("task_arithmetic"));
 * equal(new Set(names).size, names.length); // each registered once
 * ```
 */
export function methodNames(): string[] {
  return MERGE_METHODS.map((m) => m.name);
}

/**
 * The methods `deno task merge` runs by default (`--methods all`): every registered method but
 * those whose entry says why not ({@linkcode MergeMethod.notInDefaultStudy}: two-model only,
 * equal to another at its defaults, or too slow for the study's budget).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { defaultStudyMethods } from "./registry.ts";
 * equal(defaultStudyMethods().includes("ties"), true);
 * equal(defaultStudyMethods().includes("slerp"), false); // two models only
 * ```
 */
export function defaultStudyMethods(): string[] {
  return MERGE_METHODS.filter((m) => m.notInDefaultStudy === undefined).map((m) => m.name);
}

/**
 * The method registered as `name`; the error for an unknown name lists the valid ones.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import { getMethod } from "./registry.ts";
 * equal(getMethod("task_arithmetic").title, "Task Arithmetic");
 * equal(getMethod("Task-Arithmetic"), getMethod("task_arithmetic")); // case and dashes forgiven
 * throws(() => getMethod("soup"), /unknown merge method "soup": valid methods are average, /);
 * ```
 */
export function getMethod(name: string): MergeMethod {
  const wanted = String(name).trim().toLowerCase().replaceAll("-", "_");
  const method = MERGE_METHODS.find((m) => m.name === wanted);
  if (!method) {
    throw new Error(
      `unknown merge method "${name}": valid methods are ${methodNames().join(", ")}`,
    );
  }
  return method;
}

/**
 * A method's registry entry as text: title, paper, code, tensor rule and every parameter with
 * its default, range, meaning and source.
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { describeMethod } from "./registry.ts";
 * const text = describeMethod("ties");
 * equal(text.split("\n")[0], "ties: TIES-Merging");
 * ok(text.includes("\n  --param k=20  (number in (0, 100]) "));
 * ok(text.includes("default from: tanganke/fusion_bench@54c9e8c config/method/ties_merging.yaml"));
 * ```
 */
export function describeMethod(method: string | MergeMethod): string {
  const m = typeof method === "string" ? getMethod(method) : method;
  const lines = [
    `${m.name}: ${m.title}`,
    `  ${m.summary}`,
    `  paper: ${m.paper}`,
    `  code: ${m.code}`,
    `  tensors: ${m.tensorRule}`,
  ];
  if (m.needs === "data" && m.dataSource) {
    const source: DataSourceName = m.dataSource(resolveParams(m));
    lines.push(
      `  data: reads the model, the heads and, by default, ${source} (${
        DATA_SOURCES[source]
      }); runs in a study (deno task merge --methods ${m.name}), not on checkpoints alone`,
    );
  }
  if (m.output === "per-task") {
    lines.push("  output: one model per task (θ0 + α·M_t), each evaluated on its own task");
  }
  if (m.taskCount) lines.push(`  task vectors: ${taskCountText(m.taskCount)}`);
  if (m.notInDefaultStudy) lines.push(`  not in the default study set: ${m.notInDefaultStudy}`);
  for (const p of m.params) {
    lines.push(`  --param ${p.name}=${p.default}  (${p.type} in ${rangeText(p)}) ${p.meaning}`);
    lines.push(`      default from: ${p.source}`);
  }
  if (m.fusionBench) {
    const flags = Object.entries(m.fusionBench.params).map(([k, v]) => `--param ${k}=${v}`);
    lines.push(
      flags.length > 0
        ? `  FusionBench compatibility: ${flags.join(" ")}`
        : "  differs from FusionBench by design (no switch):",
    );
    lines.push(`      ${m.fusionBench.note}`);
  }
  if (m.scalingSearch) {
    lines.push(
      `  α searched on validation in the original: {${m.scalingSearch.grid.join(", ")}} ` +
        `(${m.scalingSearch.source})`,
    );
  }
  return lines.join("\n");
}

/**
 * How many task vectors a method accepts, in words.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { taskCountText } from "./registry.ts";
 * equal(taskCountText({ min: 2, max: 2 }), "exactly 2");
 * equal(taskCountText({ min: 2 }), "at least 2");
 * equal(taskCountText({ min: 2, max: 8 }), "2 to 8");
 * ```
 */
export function taskCountText(count: { readonly min?: number; readonly max?: number }): string {
  const { min, max } = count;
  if (min !== undefined && min === max) return `exactly ${min}`;
  if (max === undefined) return `at least ${min ?? 1}`;
  return min === undefined ? `at most ${max}` : `${min} to ${max}`;
}

/**
 * The whole registry as text (what `deno task merge --list` prints).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { describeMethod, describeRegistry, methodNames } from "./registry.ts";
 * const text = describeRegistry();
 * equal(text, methodNames().map((name) => describeMethod(name)).join("\n\n")); // every entry
 * equal(text.split("\n")[0], "average: Weight averaging");
 * ```
 */
export function describeRegistry(): string {
  return MERGE_METHODS.map((m) => describeMethod(m)).join("\n\n");
}
