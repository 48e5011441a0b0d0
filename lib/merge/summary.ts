/**
 * A merge's summary (method, effective hyperparameters, tasks, notes) as a table: the display
 * of merged task vectors and merged models.
 *
 * @module
 */
import { type Figure, formatNumber, table, type TableCell } from "../display/mod.ts";
import type { DataUse, Params } from "./method.ts";
import { describeDataUse } from "./data.ts";

/** What a merge did: the method, its effective hyperparameters and facts found on the way. */
export interface MergeSummary {
  /** Registry name of the method. */
  method: string;
  /** Effective hyperparameters (defaults filled in, scaling override applied). */
  params: Params;
  /** Labels of the task vectors, in order. */
  tasks: string[];
  /** Per-task weights applied before merging, if any. */
  taskScales?: number[];
  /** Facts the method recorded (thresholds, counts). */
  notes: Record<string, unknown>;
  /** The data a data-using method read (absent for data-free methods). */
  data?: DataUse;
}

/**
 * A merge's summary as a table: the method, its effective hyperparameters, the tasks, the
 * task weights and the facts the method recorded, then any `extra` rows.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { mergeSummaryTable } from "./summary.ts";
 * const summary = { method: "ties", params: { k: 20, scaling: 0.3 }, tasks: ["a", "b"], notes: {} };
 * deepEqual(mergeSummaryTable(summary).toText().split("\n"), [
 *   "Merge: ties",
 *   "                   value",
 *   "─────────────────  ─────",
 *   "method              ties",
 *   "parameter k           20",
 *   "parameter scaling    0.3",
 *   "tasks               a, b",
 * ]);
 * ```
 */
export function mergeSummaryTable(
  summary: MergeSummary,
  extra: readonly [string, TableCell][] = [],
): Figure {
  const rows: TableCell[][] = [
    ["method", summary.method],
    ...Object.entries(summary.params).map(([k, v]) => [`parameter ${k}`, cellOf(v)]),
    ["tasks", summary.tasks.join(", ")],
  ];
  if (summary.taskScales) rows.push(["task weights", summary.taskScales.join(", ")]);
  if (summary.data) rows.push(["data read", describeDataUse(summary.data)]);
  for (const [k, v] of Object.entries(summary.notes)) rows.push([k, cellOf(v)]);
  rows.push(...extra.map(([k, v]) => [k, v]));
  return table({ columns: ["", "value"], rows, title: `Merge: ${summary.method}`, digits: 4 });
}

function cellOf(value: unknown): TableCell {
  if (typeof value === "number" || typeof value === "string") return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "number")) {
    return value.map((v) => formatNumber(v, 4)).join(", ");
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
