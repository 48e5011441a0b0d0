/**
 * A small static SVG renderer for heatmaps, bars, line curves and tables: the image a viewer
 * shows when it runs no JavaScript (GitHub, nbviewer, a notebook whose plotly.js output was
 * cleared). It uses the same colours as the Plotly figure; hovering a cell or bar in a browser
 * shows its value through the SVG `<title>` element.
 *
 * @module
 */
import { colorAt, plotlyColorscale, seriesColor, textColorOn } from "./colors.ts";
import {
  escapeXml,
  finiteExtent,
  formatNumber,
  formatWithStyle,
  niceTicks,
  numberStyle,
  wrapWords,
} from "./format.ts";
import type {
  BarsSpec,
  FigureSpec,
  HeatmapSpec,
  HeatmapsSpec,
  LinesSpec,
  StackSpec,
  TableSpec,
} from "./spec.ts";
import { tableCells } from "./text.ts";

/** A drawn figure: its size and its SVG content (without the outer `<svg>` element). */
interface Drawn {
  width: number;
  height: number;
  body: string;
}

const FONT = "Helvetica, Arial, sans-serif";
const AXIS = "#444444";
const GRID = "#e6e6e6";

/**
 * The figure as a standalone SVG document.
 *
 * @example
 * ```ts
 * import { match, ok } from "node:assert/strict";
 * import { toSvg } from "./svg.ts";
 * import { heatmapSpec } from "./spec.ts";
 * const svg = toSvg(heatmapSpec({ values: [[0, 1], [1, 0]], rowLabels: ["a", "b"] }));
 * match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="\d+"/);
 * ok(svg.endsWith("</svg>"));
 * ok(svg.includes(">a</text>") && svg.includes(">b</text>")); // the row labels are drawn
 * ```
 */
export function toSvg(spec: FigureSpec): string {
  const d = draw(spec);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${d.width}" height="${d.height}" ` +
    `viewBox="0 0 ${d.width} ${d.height}" font-family="${FONT}" font-size="12">` +
    `<rect width="${d.width}" height="${d.height}" fill="#ffffff"/>${d.body}</svg>`;
}

function draw(spec: FigureSpec): Drawn {
  switch (spec.kind) {
    case "heatmap":
      return drawHeatmap(spec);
    case "heatmaps":
      return drawHeatmaps(spec);
    case "bars":
      return drawBars(spec);
    case "lines":
      return drawLines(spec);
    case "table":
      return drawTable(spec);
    case "stack":
      return drawStack(spec);
  }
}

function drawHeatmap(spec: HeatmapSpec): Drawn {
  const nRows = spec.rows.length;
  const nCols = spec.columns.length;
  const cell = clamp(Math.floor(Math.min(520 / nCols, 440 / nRows)), 6, 56);
  const rowLabelW = maxWidth(spec.rows) + 10;
  const left = 8 + (spec.yTitle ? 22 : 0) + rowLabelW;
  const gridW = nCols * cell;
  const gridH = nRows * cell;
  const barX = left + gridW + 18;
  const ticks = colorTicks(spec);
  const tickW = maxWidth(ticks.map((t) => formatNumber(t, 3)));
  const width = Math.ceil(barX + 14 + 8 + tickW + 26);
  const title = titleBlock(spec.title, width);
  const top = title.height + 8;
  const colLabels = columnLabels(spec.columns, cell, left, top + gridH + 6);
  const barH = Math.max(gridH, 120);
  const height = Math.ceil(top + Math.max(gridH + colLabels.height, barH) + xTitleHeight(spec) + 8);
  const parts = [title.body];
  parts.push(heatmapCells(spec, spec.z, left, top, cell));
  parts.push(rowLabels(spec.rows, left, top, cell));
  parts.push(colLabels.body);
  if (spec.yTitle) parts.push(verticalText(14, top + gridH / 2, spec.yTitle));
  if (spec.xTitle) {
    parts.push(text(left + gridW / 2, height - 12, spec.xTitle, `text-anchor="middle"`));
  }
  parts.push(colorBar(spec, barX, top, barH, ticks));
  return { width, height, body: parts.join("") };
}

/** Panels side by side with one colour bar at the right. */
function drawHeatmaps(spec: HeatmapsSpec): Drawn {
  const nRows = spec.rows.length;
  const nCols = spec.columns.length;
  const n = spec.panels.length;
  const cell = clamp(Math.floor(Math.min(600 / n / nCols, 440 / nRows)), 6, 48);
  const rowLabelW = maxWidth(spec.rows) + 10;
  const left = 8 + (spec.yTitle ? 22 : 0) + rowLabelW;
  const gridW = nCols * cell;
  const gap = 24;
  const panelTitles = spec.panels.map((p) => wrapWords(p.title, gridW / (12 * 0.6)));
  const panelTitleH = Math.max(...panelTitles.map((l) => l.length)) * 15 + 6;
  const barX = left + n * gridW + (n - 1) * gap + 18;
  const ticks = colorTicks(spec);
  const tickW = maxWidth(ticks.map((t) => formatNumber(t, 3)));
  const width = Math.ceil(barX + 14 + 8 + tickW + 26);
  const title = titleBlock(spec.title, width);
  const top = title.height + 8 + panelTitleH;
  const gridH = nRows * cell;
  let labelsH = 0;
  const parts = [title.body];
  spec.panels.forEach((panel, k) => {
    const x = left + k * (gridW + gap);
    panelTitles[k].forEach((line, i) =>
      parts.push(
        text(
          x + gridW / 2,
          top - panelTitleH + 12 + i * 15,
          line,
          `text-anchor="middle" font-weight="bold"`,
        ),
      )
    );
    parts.push(heatmapCells(spec, panel.z, x, top, cell));
    const labels = columnLabels(spec.columns, cell, x, top + gridH + 6);
    labelsH = Math.max(labelsH, labels.height);
    parts.push(labels.body);
  });
  parts.push(rowLabels(spec.rows, left, top, cell));
  const barH = Math.max(gridH, 120);
  const height = Math.ceil(top + Math.max(gridH + labelsH, barH) + xTitleHeight(spec) + 8);
  if (spec.yTitle) parts.push(verticalText(14, top + gridH / 2, spec.yTitle));
  if (spec.xTitle) {
    const middle = left + (n * gridW + (n - 1) * gap) / 2;
    parts.push(text(middle, height - 12, spec.xTitle, `text-anchor="middle"`));
  }
  parts.push(colorBar(spec, barX, top, barH, ticks));
  return { width, height, body: parts.join("") };
}

function rowLabels(rows: string[], left: number, top: number, cell: number): string {
  return rows.map((label, i) =>
    text(left - 6, top + (i + 0.5) * cell, shorten(label), `text-anchor="end" dy="0.35em"`)
  ).join("");
}

/** Five or six round ticks over the colour range, its ends included when they are not. */
function colorTicks(spec: HeatmapSpec | HeatmapsSpec): number[] {
  const { min, max } = spec.range;
  return niceTicks(min, max, 6).filter((t) => t >= min - 1e-12 && t <= max + 1e-12);
}

function heatmapCells(
  spec: HeatmapSpec | HeatmapsSpec,
  z: number[][],
  left: number,
  top: number,
  cell: number,
): string {
  const { min, max } = spec.range;
  const style = numberStyle(z.flat(), spec.digits);
  const out: string[] = [];
  z.forEach((row, i) =>
    row.forEach((v, j) => {
      const fill = Number.isFinite(v) ? colorAt(spec.scale, (v - min) / (max - min)) : "#d9d9d9";
      const x = left + j * cell;
      const y = top + i * cell;
      const tip = `${spec.rows[i]} → ${spec.columns[j]}: ${spec.valueLabel} = ${
        formatNumber(v, 4)
      }`;
      out.push(
        `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" ` +
          `stroke="#ffffff" stroke-width="1"><title>${escapeXml(tip)}</title></rect>`,
      );
      if (!spec.showValues || cell < 16) return;
      const label = formatWithStyle(v, style);
      const size = Math.min(11, (cell - 4) / (label.length * 0.58));
      if (size < 6) return;
      out.push(text(
        x + cell / 2,
        y + cell / 2,
        label,
        `text-anchor="middle" dy="0.35em" font-size="${r(size)}" fill="${textColorOn(fill)}"`,
      ));
    })
  );
  return out.join("");
}

function colorBar(
  spec: HeatmapSpec | HeatmapsSpec,
  x: number,
  top: number,
  height: number,
  ticks: number[],
): string {
  const id = `ri-scale-${spec.scale}`;
  const stops = plotlyColorscale(spec.scale)
    .map(([t, c]) => `<stop offset="${r(t * 100)}%" stop-color="${c}"/>`).join("");
  const { min, max } = spec.range;
  const y = (t: number) => top + height * (1 - (t - min) / (max - min));
  const tickMarks = ticks.map((t) =>
    `<line x1="${x + 14}" x2="${x + 18}" y1="${r(y(t))}" y2="${r(y(t))}" stroke="${AXIS}"/>` +
    text(x + 21, y(t), formatNumber(t, 3), `dy="0.35em"`)
  ).join("");
  const labelX = x + 21 + maxWidth(ticks.map((t) => formatNumber(t, 3))) + 14;
  return `<defs><linearGradient id="${id}" x1="0" y1="1" x2="0" y2="0">${stops}` +
    `</linearGradient></defs>` +
    `<rect x="${x}" y="${top}" width="14" height="${height}" fill="url(#${id})" ` +
    `stroke="${AXIS}" stroke-width="0.5"/>` + tickMarks +
    verticalText(labelX, top + height / 2, spec.valueLabel);
}

function drawBars(spec: BarsSpec): Drawn {
  const nCat = spec.categories.length;
  const nSer = spec.series.length;
  const plotW = clamp(nCat * (nSer * 22 + 18), 280, 900);
  const groupW = plotW / nCat;
  const barW = (groupW * 0.8) / nSer;
  const values = spec.series.flatMap((s) => s.values);
  const axis = valueAxis(values, spec.range, true);
  const style = numberStyle(values, spec.digits);
  // A value label fits across its bar, or stands turned upright above it; never wider than
  // the bar, so neighbouring labels cannot overlap.
  const labelW = maxWidth(values.filter(Number.isFinite).map((v) => formatWithStyle(v, style)), 10);
  const labels: "across" | "upright" | "none" = nCat * nSer > 48
    ? "none"
    : labelW <= barW * 0.96
    ? "across"
    : barW >= 11
    ? "upright"
    : "none";
  const headroom = labels === "upright" ? labelW + 6 : labels === "across" ? 14 : 0;
  const plotH = 260 + headroom;
  const width = Math.ceil(8 + (spec.yTitle ? 22 : 0) + maxWidth(axis.labels) + 10 + plotW + 16);
  const title = titleBlock(spec.title, width);
  const legendH = nSer > 1 ? legendHeight(spec.series, width) : 0;
  const top = title.height + legendH + 10;
  const left = 8 + (spec.yTitle ? 22 : 0) + maxWidth(axis.labels) + 10;
  const catLabels = columnLabels(spec.categories, groupW, left, top + plotH + 6);
  const height = Math.ceil(top + plotH + catLabels.height + xTitleHeight(spec) + 8);
  const dataTop = top + headroom;
  const dataH = plotH - headroom;
  const y = (v: number) => dataTop + dataH * (1 - (v - axis.lo) / (axis.hi - axis.lo));
  const parts = [title.body, legend(spec.series, left, title.height, width)];
  parts.push(yGrid(axis, left, plotW, y));
  spec.series.forEach((s, k) =>
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      const x = left + i * groupW + groupW * 0.1 + k * barW;
      const base = y(clamp(0, axis.lo, axis.hi));
      const end = y(clamp(v, axis.lo, axis.hi));
      const tip = `${spec.categories[i]} · ${s.name}: ${formatNumber(v, 4)}`;
      parts.push(
        `<rect x="${r(x)}" y="${r(Math.min(base, end))}" width="${r(barW * 0.92)}" ` +
          `height="${r(Math.abs(end - base))}" fill="${seriesColor(k)}">` +
          `<title>${escapeXml(tip)}</title></rect>`,
      );
      const label = formatWithStyle(v, style);
      const cx = x + barW * 0.46;
      const tipY = Math.min(base, end);
      if (labels === "across") {
        parts.push(text(cx, tipY - 4, label, `text-anchor="middle" font-size="10" fill="${AXIS}"`));
      } else if (labels === "upright") {
        parts.push(
          `<text transform="translate(${r(cx + 3.5)},${r(tipY - 4)}) rotate(-90)" ` +
            `font-size="10" fill="${AXIS}">${escapeXml(label)}</text>`,
        );
      }
    })
  );
  parts.push(axes(left, top, plotW, plotH), catLabels.body);
  if (spec.yTitle) parts.push(verticalText(14, top + plotH / 2, spec.yTitle));
  if (spec.xTitle) {
    parts.push(text(left + plotW / 2, height - 12, spec.xTitle, `text-anchor="middle"`));
  }
  if (spec.steps) {
    const note = `${spec.stepName} = ${spec.steps[spec.activeStep ?? 0].label} ` +
      `(the interactive figure has a slider over ${spec.stepName})`;
    parts.push(text(8, height + 14, note, `font-size="11" fill="#666666"`));
    return { width, height: height + 22, body: parts.join("") };
  }
  return { width, height, body: parts.join("") };
}

function drawLines(spec: LinesSpec): Drawn {
  const plotW = 520;
  const plotH = 260;
  const xs = finiteExtent([...spec.series.map((s) => s.x), spec.marks.map((m) => m.x)]);
  const xAxis = linearAxis(xs[0], xs[1]);
  const yAxis = spec.logY
    ? logAxis(spec.series.flatMap((s) => s.y.filter((v) => v > 0)))
    : valueAxis(spec.series.flatMap((s) => s.y), undefined, false);
  const left = 8 + (spec.yTitle ? 22 : 0) + maxWidth(yAxis.labels) + 10;
  const width = left + plotW + 24;
  const title = titleBlock(spec.title, width);
  const legendH = spec.series.length > 1 ? legendHeight(spec.series, width) : 0;
  const marksH = spec.marks.length ? 16 : 0;
  const top = title.height + legendH + marksH + 10;
  const height = top + plotH + 24 + xTitleHeight(spec) + 8;
  const X = (v: number) => left + plotW * (v - xAxis.lo) / (xAxis.hi - xAxis.lo);
  const yOf = (v: number) => (spec.logY ? Math.log10(v) : v);
  const Y = (v: number) =>
    top + plotH * (1 - (clamp(yOf(v), yAxis.lo, yAxis.hi) - yAxis.lo) / (yAxis.hi - yAxis.lo));
  const parts = [title.body, legend(spec.series, left, title.height, width)];
  parts.push(
    yGrid(yAxis, left, plotW, (t) => top + plotH * (1 - (t - yAxis.lo) / (yAxis.hi - yAxis.lo))),
  );
  xAxis.ticks.forEach((t, i) =>
    parts.push(
      `<line x1="${r(X(t))}" x2="${r(X(t))}" y1="${top + plotH}" y2="${top + plotH + 4}" ` +
        `stroke="${AXIS}"/>`,
      text(X(t), top + plotH + 19, xAxis.labels[i], `text-anchor="middle"`),
    )
  );
  for (const m of spec.marks) {
    parts.push(
      `<line x1="${r(X(m.x))}" x2="${r(X(m.x))}" y1="${top}" y2="${top + plotH}" ` +
        `stroke="#555555" stroke-dasharray="4 3"/>`,
      text(
        clamp(X(m.x), left + textWidth(m.label, 11) / 2, left + plotW - textWidth(m.label, 11) / 2),
        top - 5,
        m.label,
        `text-anchor="middle" font-size="11"`,
      ),
    );
  }
  spec.series.forEach((s, k) => parts.push(curve(s, k, X, Y, spec)));
  parts.push(axes(left, top, plotW, plotH));
  if (spec.yTitle) parts.push(verticalText(14, top + plotH / 2, spec.yTitle));
  if (spec.xTitle) {
    parts.push(text(left + plotW / 2, height - 12, spec.xTitle, `text-anchor="middle"`));
  }
  return { width, height, body: parts.join("") };
}

function curve(
  s: LinesSpec["series"][number],
  k: number,
  X: (v: number) => number,
  Y: (v: number) => number,
  spec: LinesSpec,
): string {
  const ok = (i: number) =>
    Number.isFinite(s.x[i]) && Number.isFinite(s.y[i]) && (!spec.logY || s.y[i] > 0);
  let d = "";
  let pen = false;
  for (let i = 0; i < s.y.length; i++) {
    if (!ok(i)) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${r(X(s.x[i]))} ${r(Y(s.y[i]))}`;
    pen = true;
  }
  let out = `<path d="${d}" fill="none" stroke="${seriesColor(k)}" stroke-width="2"/>`;
  if (spec.markers) {
    for (let i = 0; i < s.y.length; i++) {
      if (!ok(i)) continue;
      const tip = `${s.name}: x = ${formatNumber(s.x[i])}, y = ${formatNumber(s.y[i])}`;
      out += `<circle cx="${r(X(s.x[i]))}" cy="${r(Y(s.y[i]))}" r="3" fill="${seriesColor(k)}">` +
        `<title>${escapeXml(tip)}</title></circle>`;
    }
  }
  return out;
}

function drawTable(spec: TableSpec): Drawn {
  const cells = tableCells(spec);
  const widths = spec.columns.map((c, j) => maxWidth([c, ...cells.map((row) => row[j])]) + 18);
  const rowH = 22;
  // Wide enough for the title on at most a few lines, however narrow the columns.
  const titleW = spec.title ? Math.min(600, textWidth(spec.title, 15) + 24) : 0;
  const width = Math.ceil(Math.max(widths.reduce((a, b) => a + b, 0) + 16, titleW));
  const title = titleBlock(spec.title, width, "start");
  const top = title.height + 4;
  const height = top + rowH * (cells.length + 1) + 8;
  const parts = [title.body];
  const row = (values: string[], y: number, bold: boolean) => {
    let x = 8;
    return values.map((v, j) => {
      const numeric = cells.length > 0 && typeof spec.rows[0]?.[j] === "number";
      const tx = numeric ? x + widths[j] - 9 : x + 9;
      x += widths[j];
      const attrs = `dy="0.35em"${numeric ? ` text-anchor="end"` : ""}` +
        (bold ? ` font-weight="bold"` : "");
      return text(tx, y, v, attrs);
    }).join("");
  };
  parts.push(row(spec.columns, top + rowH / 2, true));
  parts.push(
    `<line x1="8" x2="${width - 8}" y1="${top + rowH}" y2="${top + rowH}" stroke="${AXIS}"/>`,
  );
  cells.forEach((values, i) => parts.push(row(values, top + rowH * (i + 1.5), false)));
  return { width, height, body: parts.join("") };
}

function drawStack(spec: StackSpec): Drawn {
  const drawn = spec.items.map(draw);
  const title = titleBlock(spec.title, Math.max(...drawn.map((d) => d.width), 200), "start");
  let y = title.height;
  const parts = [title.body];
  for (const d of drawn) {
    parts.push(`<g transform="translate(0,${y})">${d.body}</g>`);
    y += d.height + 12;
  }
  return {
    width: Math.max(200, ...drawn.map((d) => d.width)),
    height: Math.max(20, y - 12),
    body: parts.join(""),
  };
}

/** A value axis: domain [lo, hi] with tick positions and labels. */
interface Axis {
  log?: boolean;
  lo: number;
  hi: number;
  ticks: number[];
  labels: string[];
}

function valueAxis(values: number[], range: [number, number] | undefined, zero: boolean): Axis {
  if (range) {
    const ticks = niceTicks(range[0], range[1], 5).filter((t) => t >= range[0] && t <= range[1]);
    return withLabels(range[0], range[1], ticks);
  }
  let [lo, hi] = finiteExtent([values]);
  if (Number.isNaN(lo)) [lo, hi] = [0, 1];
  if (zero) [lo, hi] = [Math.min(0, lo), Math.max(0, hi)];
  return linearAxis(lo, hi);
}

function linearAxis(lo: number, hi: number): Axis {
  if (Number.isNaN(lo)) [lo, hi] = [0, 1];
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const ticks = niceTicks(lo, hi, 5);
  return withLabels(ticks[0], ticks[ticks.length - 1], ticks);
}

function logAxis(values: number[]): Axis {
  let [lo, hi] = finiteExtent([values.map(Math.log10)]);
  if (Number.isNaN(lo)) [lo, hi] = [0, 1];
  // At most four decades below the largest value (see plotly.ts's logYRange).
  lo = Math.floor(Math.max(lo, hi - 4));
  hi = Math.max(lo + 1, Math.ceil(hi));
  const ticks: number[] = [];
  for (let k = lo; k <= hi; k++) ticks.push(k);
  return { log: true, lo, hi, ticks, labels: ticks.map((k) => formatNumber(10 ** k, 3)) };
}

function withLabels(lo: number, hi: number, ticks: number[]): Axis {
  const style = numberStyle(ticks, 3);
  const tickStyle = style.kind === "fixed"
    ? { kind: "fixed" as const, decimals: decimalsOf(ticks) }
    : style;
  return { lo, hi, ticks, labels: ticks.map((t) => formatWithStyle(t, tickStyle)) };
}

// Decimals needed to write every tick exactly (0.2 → 1, 0.25 → 2), at most 6.
function decimalsOf(ticks: number[]): number {
  let d = 0;
  for (const t of ticks) {
    while (d < 6 && Math.abs(Number(t.toFixed(d)) - t) > 1e-9 * Math.max(1, Math.abs(t))) d++;
  }
  return d;
}

function yGrid(axis: Axis, left: number, plotW: number, y: (v: number) => number): string {
  return axis.ticks.map((t, i) =>
    `<line x1="${left}" x2="${left + plotW}" y1="${r(y(t))}" y2="${r(y(t))}" ` +
    `stroke="${t === 0 && !axis.log ? "#999999" : GRID}"/>` +
    text(left - 6, y(t), axis.labels[i], `text-anchor="end" dy="0.35em"`)
  ).join("");
}

function axes(left: number, top: number, w: number, h: number): string {
  return `<path d="M${left} ${top}V${top + h}H${left + w}" fill="none" stroke="${AXIS}"/>`;
}

function legendItems(series: { name: string }[], left: number, width: number) {
  let x = left;
  let row = 0;
  return series.map((s) => {
    const w = 30 + textWidth(s.name);
    if (x > left && x + w > width - 8) [x, row] = [left, row + 1];
    const item = { x, row, name: s.name };
    x += w;
    return item;
  });
}

function legendHeight(series: { name: string }[], width: number): number {
  const rows = Math.max(...legendItems(series, 0, width).map((i) => i.row)) + 1;
  return rows * 20 + 4;
}

function legend(series: { name: string }[], left: number, y: number, width: number): string {
  if (series.length < 2) return "";
  return legendItems(series, left, width).map((it, k) => {
    const top = y + it.row * 20;
    return `<rect x="${r(it.x)}" y="${top + 4}" width="12" height="12" fill="${seriesColor(k)}"/>` +
      text(it.x + 17, top + 10, it.name, `dy="0.35em"`);
  }).join("");
}

/**
 * Category or column labels under a plot: straight when they fit their slot, else upright
 * (turned 90°, reading upwards), so that neighbouring labels never overlap.
 */
function columnLabels(
  labels: string[],
  slot: number,
  left: number,
  y: number,
): { body: string; height: number } {
  const shown = labels.map(shorten);
  const widest = maxWidth(shown);
  if (widest <= slot - 4) {
    const body = shown.map((l, i) =>
      text(left + (i + 0.5) * slot, y + 10, l, `text-anchor="middle"`)
    ).join("");
    return { body, height: 22 };
  }
  const body = shown.map((l, i) => {
    const x = r(left + (i + 0.5) * slot + 4);
    return `<text transform="translate(${x},${r(y + 2)}) rotate(-90)" text-anchor="end">` +
      `${escapeXml(l)}</text>`;
  }).join("");
  return { body, height: widest + 10 };
}

function xTitleHeight(spec: { xTitle?: string }): number {
  return spec.xTitle ? 24 : 0;
}

/** The title wrapped to `width`: its lines (15 px bold) and the height they take. */
function titleBlock(
  title: string | undefined,
  width: number,
  align: "middle" | "start" = "middle",
): { body: string; height: number } {
  if (!title) return { body: "", height: 0 };
  const lines = wrapWords(title, (width - 16) / (15 * 0.62));
  const x = align === "middle" ? width / 2 : 8;
  const body = lines.map((line, i) =>
    text(x, 20 + i * 19, line, `text-anchor="${align}" font-size="15" font-weight="bold"`)
  ).join("");
  return { body, height: 11 + lines.length * 19 };
}

function verticalText(x: number, y: number, s: string): string {
  return `<text transform="translate(${r(x)},${r(y)}) rotate(-90)" text-anchor="middle">` +
    `${escapeXml(s)}</text>`;
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${r(x)}" y="${r(y)}" ${attrs}>${escapeXml(s)}</text>`;
}

// Widths are estimated (no font metrics here): 0.58 em per character fits Helvetica digits.
function textWidth(s: string, size = 12): number {
  return s.length * size * 0.58;
}

function maxWidth(labels: string[], size = 12): number {
  return labels.reduce((m, l) => Math.max(m, textWidth(shorten(l), size)), 0);
}

function shorten(label: string): string {
  return label.length > 28 ? label.slice(0, 27) + "…" : label;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function r(v: number): number {
  return Math.round(v * 10) / 10;
}
