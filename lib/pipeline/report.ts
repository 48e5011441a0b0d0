/**
 * The study's `report.html`: one self-contained, offline page with the results table, the
 * accuracy and ξ bars, the pairwise interference heatmaps before and after RI on one colour
 * scale, and the RI loss curves — the same figures a notebook shows.
 *
 * @module
 */
import { type DocumentItem, writeHtmlDocument } from "../display/mod.ts";
import { describeEngine, type EngineInfo } from "../engine/backend.ts";
import { LossCurve } from "../ri/curve.ts";
import type { StudyResults } from "./results.ts";

/**
 * The report's items, top to bottom.
 *
 * @example
 * ```ts ignore
 * const items = studyReportItems(results, engine);
 * ```
 */
export function studyReportItems(results: StudyResults, engine?: EngineInfo): DocumentItem[] {
  const d = results.data;
  const items: DocumentItem[] = [
    `Suite ${d.suite}, seed ${d.seed}, auxiliary source ${d.aux}, RI ${d.steps} steps per ` +
    `expert; ${engine ? describeEngine(engine) : `backend ${d.backend}`}. Accuracies are ` +
    `top-1 on each task's test split under its own head; normalised accuracy divides by the ` +
    `expert's; ξ sums, over tasks, the KL divergence from the expert's predictions to the ` +
    `merged model's.`,
    ...(d.rows.some((r) => r.data)
      ? [
        `Data-using merges read, besides the task vectors, the data in the table's "merge ` +
        `data" column (source, images per task, labels or not); their rows with RI also read ` +
        `RI's auxiliary data (${d.aux}). Data-free merges read only the task vectors.`,
      ]
      : []),
    { heading: "Settings" },
    results.settingsTable(),
    { heading: "Merge methods with and without RI (default hyperparameters)" },
    results.table(),
    results.accuracyFigure(),
    results.xiFigure(),
    { heading: "Accuracy per task" },
    results.perTaskTable(),
  ];
  const unseen = results.unseenTable();
  if (unseen) {
    items.push(
      { heading: "Held-out tasks (generalisation to unseen domains)" },
      "Every merged model on tasks that no expert was trained on, each under its own head " +
        "(class prototypes from θ0, as for the suite's tasks), beside θ0 with the same heads.",
      unseen,
    );
  }
  const pairwise = results.pairwiseFigure();
  if (pairwise) {
    items.push(
      { heading: "Pairwise interference I[i][j] on auxiliary data" },
      "How far expert i moves task j's predictions away from θ0's (diagonal: its own task). " +
        "RI should shrink the off-diagonal entries and keep the diagonal.",
      pairwise,
    );
  }
  if (d.riCurves) {
    items.push({ heading: "RI loss curves" });
    for (const curve of Object.values(d.riCurves)) items.push(LossCurve.fromJSON(curve).figure());
  }
  const times = Object.entries(d.seconds).map(([k, v]) => `${k} ${v} s`).join(", ");
  items.push({ heading: "Run" }, `Stage times: ${times}. Zoo: ${d.zoo}.`);
  return items;
}

/**
 * Writes the study report to `path` atomically.
 *
 * @example
 * ```ts ignore
 * await writeStudyReport("runs/x/report.html", results, engine);
 * ```
 */
export async function writeStudyReport(
  path: string,
  results: StudyResults,
  engine?: EngineInfo,
): Promise<void> {
  const title = `RI study: ${results.data.suite}, ${results.data.rows.length} merged models`;
  await writeHtmlDocument(path, title, studyReportItems(results, engine));
}
