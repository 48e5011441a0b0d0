/**
 * Figures as plain text for terminals and logs: a table with aligned columns, a heatmap as a
 * grid of values with shading, bars drawn with block characters, line curves summarised with
 * a sparkline.
 *
 * @module
 */
import {
  finiteExtent,
  formatNumber,
  formatWithStyle,
  type NumberStyle,
  numberStyle,
} from "./format.ts";
import type { BarsSpec, FigureSpec, HeatmapSpec, LinesSpec, StackSpec, TableSpec } from "./spec.ts";

const MAX_ROWS = 40;
const MAX_COLS = 16;
const BAR_WIDTH = 30;

/**
 * The figure as plain text (no colours, no escape codes).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { toText } from "./text.ts";
 * import { tableSpec } from "./spec.ts";
 * const text = toText(tableSpec({ columns: ["method", "acc"], rows: [["TA", 0.8125]] }));
 * equal(text, "method    acc\n──────  ─────\nTA      0.813");
 * ```
 */
export function toText(spec: FigureSpec): string {
  switch (spec.kind) {
    case "heatmap":
      return heatmapText(spec);
    case "heatmaps":
      return withTitle(
        spec.title,
        spec.panels.map((p) =>
          heatmapText({ ...spec, kind: "heatmap", title: p.title, z: p.z }) + "\n"
        ),
      ).trimEnd();
    case "bars":
      return barsText(spec);
    case "lines":
      return linesText(spec);
    case "table":
      return tableText(spec);
    case "stack":
      return stackText(spec);
  }
}

/**
 * A table's cells as text: numbers in each all-numeric column share one number style so
 * their decimals line up; empty cells are "".
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { tableCells } from "./text.ts";
 * import { tableSpec } from "./spec.ts";
 * const spec = tableSpec({ columns: ["a"], rows: [[0.5], [0.25]] });
 * deepEqual(tableCells(spec), [["0.500"], ["0.250"]]); // one style: the decimals line up
 * ```
 */
export function tableCells(spec: TableSpec): string[][] {
  const styles = spec.columns.map((_, j) => {
    const column = spec.rows.map((row) => row[j]).filter((c) => c !== null && c !== undefined);
    const numeric = column.length > 0 && column.every((c) => typeof c === "number");
    return numeric ? numberStyle(column as number[], spec.digits) : undefined;
  });
  return spec.rows.map((row) =>
    row.map((c, j) => {
      if (c === null || c === undefined) return "";
      if (typeof c !== "number") return String(c);
      const style = styles[j];
      return style ? formatWithStyle(c, style) : formatNumber(c, spec.digits);
    })
  );
}

function tableText(spec: TableSpec): string {
  const cells = tableCells(spec);
  const numeric = spec.columns.map((_, j) => spec.rows.some((row) => typeof row[j] === "number"));
  const widths = spec.columns.map((c, j) =>
    Math.max(c.length, ...cells.map((row) => row[j].length))
  );
  const line = (values: string[]) =>
    values.map((v, j) => (numeric[j] ? v.padStart(widths[j]) : v.padEnd(widths[j])))
      .join("  ").trimEnd();
  const lines = [line(spec.columns), widths.map((w) => "─".repeat(w)).join("  ")];
  for (const row of cells) lines.push(line(row));
  return withTitle(spec.title, lines);
}

function heatmapText(spec: HeatmapSpec): string {
  const rows = spec.rows.length;
  const cols = spec.columns.length;
  const shownRows = Math.min(rows, MAX_ROWS);
  const shownCols = Math.min(cols, MAX_COLS);
  const style = numberStyle(spec.z.flat(), spec.digits);
  const { min, max } = spec.range;
  const cell = (v: number) => `${formatWithStyle(v, style)} ${shade((v - min) / (max - min))}`;
  const valueWidth = Math.max(...spec.z.flat().map((v) => cell(v).length));
  const colWidth = Math.max(valueWidth, Math.min(12, maxLength(spec.columns)));
  const rowWidth = Math.min(24, maxLength(spec.rows));
  const header = " ".repeat(rowWidth) + "  " +
    spec.columns.slice(0, shownCols).map((c) => fit(c, colWidth).padStart(colWidth)).join(" ");
  const lines = [header.trimEnd()];
  for (let i = 0; i < shownRows; i++) {
    const values = spec.z[i].slice(0, shownCols).map((v) => cell(v).padStart(colWidth));
    lines.push(fit(spec.rows[i], rowWidth).padEnd(rowWidth) + "  " + values.join(" "));
  }
  const notes = [];
  if (shownRows < rows || shownCols < cols) {
    notes.push(`(showing ${shownRows} of ${rows} rows, ${shownCols} of ${cols} columns)`);
  }
  const axes = [spec.yTitle && `rows: ${spec.yTitle}`, spec.xTitle && `columns: ${spec.xTitle}`]
    .filter(Boolean).join(", ");
  notes.push(
    `${spec.valueLabel}${axes ? ` (${axes})` : ""}; shading ${shade(0)}…${shade(1)} spans ` +
      `${formatNumber(min, 3)} … ${formatNumber(max, 3)}`,
  );
  return withTitle(spec.title, [...lines, ...notes]);
}

function barsText(spec: BarsSpec): string {
  const values = spec.series.flatMap((s) => s.values);
  const [lo, hi] = finiteExtent([values]);
  const top = spec.range
    ? Math.max(Math.abs(spec.range[0]), Math.abs(spec.range[1]))
    : Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const style = numberStyle(values, spec.digits);
  const catWidth = Math.min(24, maxLength(spec.categories));
  const grouped = spec.series.length > 1;
  const nameWidth = grouped ? Math.min(20, maxLength(spec.series.map((s) => s.name))) : 0;
  const lines: string[] = [];
  spec.categories.forEach((cat, i) =>
    spec.series.forEach((s, k) => {
      const label = k === 0 ? fit(cat, catWidth).padEnd(catWidth) : " ".repeat(catWidth);
      const name = grouped ? "  " + fit(s.name, nameWidth).padEnd(nameWidth) : "";
      lines.push(`${label}${name}  ${bar(s.values[i], top, style)}`);
    })
  );
  if (spec.yTitle) lines.push(`(${spec.yTitle})`);
  if (spec.steps) {
    lines.push(
      `shown: ${spec.stepName} = ${spec.steps[spec.activeStep ?? 0].label} ` +
        `(a slider over ${spec.steps.map((s) => s.label).join(", ")} in the interactive figure)`,
    );
  }
  return withTitle(spec.title, lines);
}

function bar(v: number, top: number, style: NumberStyle): string {
  if (!Number.isFinite(v)) return " ".repeat(BAR_WIDTH) + "  n/a";
  const eighths = Math.round(Math.min(1, Math.abs(v) / top) * BAR_WIDTH * 8);
  const blocks = "█".repeat(Math.floor(eighths / 8)) + PARTIAL[eighths % 8];
  return blocks.padEnd(BAR_WIDTH) + "  " + formatWithStyle(v, style);
}

const PARTIAL = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

function linesText(spec: LinesSpec): string {
  const nameWidth = Math.min(20, maxLength(spec.series.map((s) => s.name)));
  const lines = spec.series.map((s) => {
    const finite = s.y.map((v, i) => [s.x[i], v]).filter(([, v]) => Number.isFinite(v));
    if (finite.length === 0) return `${fit(s.name, nameWidth).padEnd(nameWidth)}  no values`;
    let best = finite[0];
    for (const p of finite) if (p[1] < best[1]) best = p;
    const first = formatNumber(finite[0][1], spec.digits);
    const last = formatNumber(finite[finite.length - 1][1], spec.digits);
    return `${fit(s.name, nameWidth).padEnd(nameWidth)}  ${sparkline(s.y)}  ` +
      `${first} → ${last}, min ${formatNumber(best[1], spec.digits)} at x=${
        formatNumber(best[0], spec.digits)
      } (${s.y.length} points)`;
  });
  const axes = [spec.xTitle && `x: ${spec.xTitle}`, spec.yTitle && `y: ${spec.yTitle}`]
    .filter(Boolean).join(", ");
  if (axes) lines.push(`(${axes}${spec.logY ? ", log y" : ""})`);
  for (const m of spec.marks) {
    lines.push(`marked: ${m.label} (x = ${formatNumber(m.x, spec.digits)})`);
  }
  return withTitle(spec.title, lines);
}

/**
 * A one-line sparkline of at most `width` characters (values averaged into buckets).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { sparkline } from "./text.ts";
 * equal(sparkline([1, 2, 3, 4]), "▁▃▆█");
 * ```
 */
export function sparkline(values: ArrayLike<number>, width = 24): string {
  const n = values.length;
  const buckets = Math.min(width, n);
  const means: number[] = [];
  for (let b = 0; b < buckets; b++) {
    let sum = 0;
    let count = 0;
    for (let i = Math.floor((b * n) / buckets); i < Math.floor(((b + 1) * n) / buckets); i++) {
      if (Number.isFinite(values[i])) (sum += values[i]), count++;
    }
    means.push(count ? sum / count : NaN);
  }
  const [lo, hi] = finiteExtent([means]);
  return means.map((m) => {
    if (!Number.isFinite(m)) return " ";
    const t = hi > lo ? (m - lo) / (hi - lo) : 0.5;
    return SPARK[Math.min(7, Math.round(t * 7))];
  }).join("");
}

const SPARK = "▁▂▃▄▅▆▇█";

function stackText(spec: StackSpec): string {
  return withTitle(spec.title, [spec.items.map(toText).join("\n\n")]);
}

function shade(t: number): string {
  if (!Number.isFinite(t)) return " ";
  return SHADES[Math.min(4, Math.max(0, Math.floor(t * 5)))];
}

const SHADES = ["·", "░", "▒", "▓", "█"];

function withTitle(title: string | undefined, lines: string[]): string {
  return (title ? [title, ...lines] : lines).join("\n");
}

function fit(s: string, width: number): string {
  return s.length > width ? s.slice(0, Math.max(1, width - 1)) + "…" : s;
}

function maxLength(labels: string[]): number {
  return labels.reduce((m, l) => Math.max(m, l.length), 0);
}
