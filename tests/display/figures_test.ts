import { deepStrictEqual, equal, match, ok as assert, throws } from "node:assert/strict";
import {
  bars,
  Figure,
  heatmap,
  lines,
  sharedColorRange,
  stack,
  table,
} from "../../lib/display/mod.ts";
import { colorAt, plotlyColorscale, seriesColor } from "../../lib/display/colors.ts";
import { formatNumber, niceTicks, numberStyle } from "../../lib/display/format.ts";
import { runPython } from "../helpers/python.ts";

const TASKS = ["mnist", "fashion", "kmnist"];
const BEFORE = [[0.01, 0.42, 0.3], [0.25, 0.02, 0.5], [0.33, 0.12, 0.03]];
const AFTER = [[0.005, 0.11, 0.08], [0.07, 0.01, 0.13], [0.09, 0.04, 0.02]];

function trace(fig: Figure, i = 0): Record<string, unknown> {
  const plotly = fig.toPlotly();
  assert(plotly, "expected a Plotly figure");
  return plotly.data[i];
}

Deno.test("heatmap: Plotly trace carries the matrix, labels, scale and hover values", () => {
  const fig = heatmap({
    values: BEFORE.map((r) => Float32Array.from(r)),
    rowLabels: TASKS,
    columnLabels: TASKS,
    valueLabel: "ξ",
    yTitle: "expert",
  });
  const t = trace(fig);
  equal(t.type, "heatmap");
  deepStrictEqual(t.x, TASKS);
  deepStrictEqual(t.y, TASKS);
  deepStrictEqual((t.z as number[][])[0].map((v) => Number(v.toFixed(6))), [0.01, 0.42, 0.3]);
  equal(t.zmin, Math.fround(0.01));
  equal(t.zmax, Math.fround(0.5));
  deepStrictEqual(t.colorscale, plotlyColorscale("sequential"));
  match(String(t.hovertemplate), /expert: %\{y\}.*ξ: %\{z:\.4g\}/);
  equal(t.texttemplate, "%{z:.3f}");
  const layout = fig.toPlotly()!.layout as { yaxis: { autorange: string } };
  equal(layout.yaxis.autorange, "reversed"); // row 0 on top, as the matrix is written
});

Deno.test("heatmap: a shared colour range makes before/after comparable", () => {
  const range = sharedColorRange([BEFORE, AFTER]);
  deepStrictEqual(range, { min: 0.005, max: 0.5 });
  const a = trace(heatmap({ values: BEFORE, range }));
  const b = trace(heatmap({ values: AFTER, range }));
  deepStrictEqual([a.zmin, a.zmax], [b.zmin, b.zmax]);
  // The same value gets the same colour in both static images.
  const cellFill = (svg: string, i: number) =>
    [...svg.matchAll(
      /<rect x="[\d.]+" y="[\d.]+" width="\d+" height="\d+" fill="(#[0-9a-f]{6})"/g,
    )][i][1];
  const svgA = heatmap({ values: [[0.3]], range }).toSvg();
  const svgB = heatmap({ values: [[0.3]], range, title: "after" }).toSvg();
  equal(cellFill(svgA, 0), cellFill(svgB, 0));
  equal(cellFill(svgA, 0), colorAt("sequential", (0.3 - 0.005) / (0.5 - 0.005)));
});

Deno.test("heatmap: a diverging scale is symmetric about zero by default", () => {
  const t = trace(heatmap({ values: [[-0.2, 0.8]], scale: "diverging" }));
  deepStrictEqual([t.zmin, t.zmax], [-0.8, 0.8]);
  deepStrictEqual(t.colorscale, plotlyColorscale("diverging"));
  equal(colorAt("diverging", 0.5), "#f7f7f7");
});

Deno.test("heatmap: bad input names the parameter and what was expected", () => {
  throws(() => heatmap({ values: [[1, 2], [3]] }), /row 1 has 1 values, expected 2/);
  throws(
    () => heatmap({ values: [[1, 2]], columnLabels: ["a"] }),
    /columnLabels has 1 labels, expected 2/,
  );
  throws(() => heatmap({ values: [[1, 2]], columnLabels: ["a", "a"] }), /label "a" twice/);
  throws(() => heatmap({ values: [] }), /no rows/);
  throws(() => heatmap({ values: [[1]], range: { min: 1, max: 1 } }), /min < max/);
});

Deno.test("heatmap: NaN cells become gaps in Plotly and grey in the SVG", () => {
  const fig = heatmap({ values: [[NaN, 1], [0, 0.5]] });
  deepStrictEqual((trace(fig).z as unknown[][])[0], [null, 1]);
  match(fig.toSvg(), /fill="#d9d9d9"/);
  match(fig.toText(), /n\/a/);
});

Deno.test("bars: one series, grouped series, palette shared with the SVG", () => {
  const single = bars({ categories: TASKS, series: [{ name: "acc", values: [0.9, 0.8, 0.7] }] });
  equal(single.toPlotly()!.data.length, 1);
  equal((single.toPlotly()!.layout as { showlegend: boolean }).showlegend, false);
  const grouped = bars({
    categories: ["TA", "TIES"],
    series: [{ name: "merged", values: [0.71, 0.74] }, { name: "+RI", values: [0.83, 0.85] }],
    range: [0, 1],
  });
  const plotly = grouped.toPlotly()!;
  equal(plotly.layout.barmode, "group");
  deepStrictEqual(plotly.data.map((d) => d.name), ["merged", "+RI"]);
  deepStrictEqual(plotly.data.map((d) => (d.marker as { color: string }).color), [
    seriesColor(0),
    seriesColor(1),
  ]);
  deepStrictEqual((plotly.layout.yaxis as { range: number[] }).range, [0, 1]);
  const svg = grouped.toSvg();
  equal(svg.match(/<rect [^>]*fill="#1f77b4"><title>/g)?.length, 2);
  equal(svg.match(/<rect [^>]*fill="#ff7f0e"><title>/g)?.length, 2);
  match(svg, /<title>TIES · \+RI: 0\.85<\/title>/);
  throws(
    () => bars({ categories: ["a", "b"], series: [{ name: "s", values: [1] }] }),
    /series 0 \("s"\) has 1 values, expected 2/,
  );
});

Deno.test("bars: bar heights in the SVG are proportional to the values", () => {
  const svg = bars({
    categories: ["a", "b"],
    series: [{ name: "s", values: [0.25, 1] }],
    range: [0, 1],
  })
    .toSvg();
  const heights = [...svg.matchAll(/<rect [^>]*height="([\d.]+)" fill="#1f77b4"/g)].map((m) =>
    Number(m[1])
  );
  equal(heights.length, 2);
  assert(Math.abs(heights[1] / heights[0] - 4) < 0.01, `heights ${heights}`);
});

Deno.test("lines: default x, log axis drops non-positive values, markers for short curves", () => {
  const fig = lines({ series: [{ name: "loss", y: [1, 0.1, 0, 0.01] }], logY: true });
  const t = trace(fig);
  deepStrictEqual(t.x, [0, 1, 2, 3]);
  deepStrictEqual(t.y, [1, 0.1, null, 0.01]);
  equal(t.mode, "lines+markers");
  equal((fig.toPlotly()!.layout.yaxis as { type: string }).type, "log");
  // The SVG path breaks at the dropped point: two separate segments.
  equal(fig.toSvg().match(/<path d="M[^"]*"/)![0].split("M").length - 1, 2);
  throws(() => lines({ series: [{ name: "a", x: [1, 2], y: [1] }] }), /2 x values and 1 y values/);
});

Deno.test("table: aligned text, HTML with numbers right-aligned, empty cells", () => {
  const fig = table({
    title: "Results",
    columns: ["method", "acc", "n"],
    rows: [["TA", 0.712, 8], ["Iso-C", null, 12]],
  });
  equal(
    fig.toText(),
    ["Results", "method    acc   n", "──────  ─────  ──", "TA      0.712   8", "Iso-C          12"]
      .join("\n"),
  );
  const html = fig.toHtml();
  match(html, /<caption[^>]*>Results<\/caption>/);
  match(html, /text-align:right">0\.712<\/td>/);
  equal(fig.toPlotly(), undefined);
  throws(() => table({ columns: ["a", "b"], rows: [[1]] }), /row 0 has 1 cells, expected 2/);
});

Deno.test("text: heatmap grid shows labels, aligned values and the colour range", () => {
  const text = heatmap({ values: BEFORE, rowLabels: TASKS, columnLabels: TASKS, title: "ξ" })
    .toText();
  const rows = text.split("\n");
  equal(rows[0], "ξ");
  match(rows[1], /mnist\s+fashion\s+kmnist/);
  match(rows[2], /^mnist\s+0\.010 ·\s+0\.420 █\s+0\.300 ▒$/);
  match(rows.at(-1)!, /spans 0\.01 … 0\.5/);
});

Deno.test("every SVG is well-formed XML (checked by Python's parser)", async () => {
  const figs = [
    heatmap({ values: BEFORE, rowLabels: ["a<b", "c&d", `"q"`], title: "T <&>" }),
    bars({ categories: ["x"], series: [{ name: "<s>", values: [-1] }] }),
    lines({ series: [{ name: "a", y: [1, NaN, 3] }, { name: "b", y: [2, 2, 2] }] }),
    table({ columns: ["<c>"], rows: [["&"]] }),
    stack([heatmap({ values: [[1]] }), table({ columns: ["a"], rows: [[1]] })], { title: "S" }),
  ];
  const svgs = figs.map((f) => f.toSvg());
  const out = await runPython(
    "import sys, json, xml.etree.ElementTree as ET\n" +
      "for s in json.loads(sys.argv[1]):\n" +
      "    root = ET.fromstring(s); print(root.tag.split('}')[-1], len(list(root.iter())))",
    [JSON.stringify(svgs)],
  );
  const lines_ = out.trim().split("\n");
  equal(lines_.length, svgs.length);
  for (const line of lines_) match(line, /^svg \d+$/);
});

Deno.test("format helpers: significant digits, shared styles and round ticks", () => {
  equal(formatNumber(0.123456), "0.1235");
  equal(formatNumber(1234567.8), "1.235e+6");
  equal(formatNumber(-Infinity), "-∞");
  deepStrictEqual(numberStyle([0.01, 0.25, 0.9]), { kind: "fixed", decimals: 3 });
  deepStrictEqual(numberStyle([1.5, 12.25]), { kind: "fixed", decimals: 1 });
  deepStrictEqual(numberStyle([1e-5, 2e-5]), { kind: "exponent", decimals: 2 });
  deepStrictEqual(niceTicks(0, 0.93), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  deepStrictEqual(niceTicks(-3, 17, 4), [-5, 0, 5, 10, 15, 20]);
});
