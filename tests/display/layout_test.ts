import { ok as assert } from "node:assert/strict";
import {
  bars,
  type Figure,
  heatmap,
  heatmaps,
  htmlDocument,
  lines,
  specOf,
  stack,
  table,
} from "../../lib/display/mod.ts";
import { tempDir } from "../helpers/temp.ts";
import { renderPage } from "../notebooks/chromium.ts";
import { saveShot } from "../notebooks/figures.ts";

const TASKS = ["mnist", "fashion", "mnist_rot90", "fashion_inv", "mnist_inv", "fashion_vflip"];
const METHODS = [
  "average",
  "task_arithmetic",
  "ties",
  "dare_ta",
  "dare_ties",
  "consensus_ta",
  "consensus_ties",
  "tsv_m",
  "iso_c",
  "iso_cts",
  "wudi",
];
const matrix = (k: number) =>
  TASKS.map((_, i) =>
    TASKS.map((_, j) => (i === j ? 1.9 : k * (0.1 + ((i * 7 + j * 3) % 11) / 10)))
  );

/** One figure of every kind, each with a long title (the titles that used to be cut). */
function figures(): Record<string, Figure> {
  return {
    heatmap: heatmap({
      values: matrix(1),
      rowLabels: TASKS,
      columnLabels: TASKS,
      title: "RI-adapted experts (aux data; off-diagonal mean 0.16), the number RI is about",
      xTitle: "task j",
      yTitle: "expert i",
      valueLabel: "kl(pj(θ0), pj(θ0+τi))",
    }),
    heatmaps: heatmaps({
      panels: [
        { title: "experts (off-diagonal mean 1.28)", values: matrix(1) },
        { title: "RI-adapted experts (off-diagonal mean 0.16)", values: matrix(0.12) },
      ],
      rowLabels: TASKS,
      columnLabels: TASKS,
      title: "Pairwise interference before and after RI (kl, aux data)",
      xTitle: "task j",
      yTitle: "expert i",
      valueLabel: "kl(pj(θ0), pj(θ0+τi))",
    }),
    // Four tasks, as in every mf4 report: panels of four cells, titles longer than a panel.
    heatmapsNarrow: heatmaps({
      panels: [
        {
          title: "original experts (off-diagonal mean 0.447)",
          values: matrix(1).slice(0, 4).map((r) => r.slice(0, 4)),
        },
        {
          title: "RI-adapted experts (off-diagonal mean 0.0804)",
          values: matrix(0.12).slice(0, 4).map((r) => r.slice(0, 4)),
        },
      ],
      rowLabels: TASKS.slice(0, 4),
      columnLabels: TASKS.slice(0, 4),
      title: "Pairwise interference before and after RI (kl, aux data)",
      xTitle: "task j",
      yTitle: "expert i",
      valueLabel: "kl(pj(θ0), pj(θ0+τi))",
    }),
    bars: bars({
      categories: METHODS,
      series: [
        { name: "without RI", values: METHODS.map((_, i) => 0.59 + i * 0.006) },
        { name: "with RI", values: METHODS.map((_, i) => 0.649 - i * 0.004) },
      ],
      title:
        "Average accuracy at default hyperparameters of every merge method, with and without RI",
      yTitle: "accuracy",
    }),
    barsFew: bars({
      categories: TASKS.slice(0, 4),
      series: ["expert", "θ0", "task_arithmetic", "task_arithmetic + RI"].map((name, k) => ({
        name,
        values: [0.59, 0.649, 0.71, 0.83].map((v) => 100 * (v - k * 0.05)),
      })),
      title: "Accuracy (%) per task: task_arithmetic with and without RI",
      yTitle: "accuracy (%)",
      range: [0, 100],
    }),
    lines: lines({
      series: [
        {
          name: "task_arithmetic (original)",
          x: [0.05, 0.1, 0.2, 0.3, 0.5],
          y: [60, 64, 66, 61, 50],
        },
        { name: "task_arithmetic (RI)", x: [0.05, 0.1, 0.2, 0.3, 0.5], y: [61, 66, 70, 71, 68] },
      ],
      title: "task_arithmetic: average accuracy (%) against the merge coefficient α",
      xTitle: "α",
      yTitle: "accuracy (%)",
      marks: [{ x: 0.3, label: "default α = 0.3" }],
    }),
    logLines: lines({
      series: [
        { name: "total", y: Array.from({ length: 40 }, (_, i) => 1.2 * Math.exp(-i / 12) + 0.05) },
        {
          name: "own",
          y: Array.from({ length: 40 }, (_, i) => (i === 0 ? 1e-8 : 0.02 * (1 - Math.exp(-i / 5)))),
        },
      ],
      title: "Loss, RI mnist (log axis: at most four decades)",
      xTitle: "step",
      yTitle: "loss",
      logY: true,
    }),
    stack: stack([
      table({ title: "A table in a stack", columns: ["method", "acc"], rows: [["ties", 0.59]] }),
      bars({
        categories: ["a", "b"],
        series: [{ name: "acc", values: [0.59, 0.649] }],
        title: "Bars in a stack",
      }),
    ], { title: "A stack of a table and bars, with its own title" }),
    table: table({
      title:
        "Settings of this run, a table whose title is long enough to need wrapping in a narrow table",
      columns: ["setting", "value"],
      rows: [["lr", 0.0003], ["batch", 128]],
    }),
  };
}

type Box = { x: number; y: number; w: number; h: number; what: string };

// Runs in the page: per figure, its box and the boxes of its title and labels (interactive:
// Plotly's SVG; static: our SVG's text elements).
const PROBE = `(() => {
  const box = (el, what) => { const r = el.getBoundingClientRect();
    return { x: r.left, y: r.top, w: r.width, h: r.height, what: what + ": " + (el.textContent || "").slice(0, 40) }; };
  const visible = (el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none" && s.opacity !== "0"; };
  const plots = Array.from(document.querySelectorAll(".js-plotly-plot")).map((el) => {
    const labels = [];
    const add = (sel, what) => el.querySelectorAll(sel).forEach((t) => visible(t) && labels.push(box(t, what)));
    add("g.xtick text", "x tick"); add("g.ytick text", "y tick");
    add("g.g-xtitle text, g.g-x2title text", "x title"); add("g.g-ytitle text, g.g-y2title text", "y title");
    add("g.legend text.legendtext", "legend"); add("g.annotation text", "annotation");
    add("g.colorbar text", "colour bar"); add("g.trace.bars g.point text", "bar value");
    const titles = Array.from(el.querySelectorAll(".gtitle")).filter(visible).map((t) => box(t, "title"));
    const modebar = el.querySelector(".modebar");
    const legend = el.querySelector("g.legend rect.bg");
    return { figure: box(el, "figure"), titles, labels, modebar: modebar ? box(modebar, "modebar") : null,
      legend: legend && visible(legend) ? box(legend, "legend box") : null };
  });
  const statics = Array.from(document.querySelectorAll("svg.static-figure")).map((svg) => ({
    figure: box(svg, "figure"),
    titles: Array.from(svg.querySelectorAll("text[font-weight=bold]")).map((t) => box(t, "title")),
    labels: Array.from(svg.querySelectorAll("text:not([font-weight=bold])"))
      .filter((t) => Number(t.getAttribute("font-size") || 12) >= 10 && !t.closest("g.cell"))
      .map((t) => box(t, "label")),
    modebar: null,
    legend: null,
  }));
  return { plots, statics };
})()`;

interface Probed {
  figure: Box;
  titles: Box[];
  labels: Box[];
  modebar: Box | null;
  legend: Box | null;
}

const inside = (a: Box, outer: Box) =>
  a.x >= outer.x - 1 && a.y >= outer.y - 1 && a.x + a.w <= outer.x + outer.w + 1 &&
  a.y + a.h <= outer.y + outer.h + 1;
const overlap = (a: Box, b: Box) =>
  Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x) > 1 &&
  Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y) > 1;

function problems(kind: string, p: Probed): string[] {
  const out: string[] = [];
  if (p.titles.length === 0) out.push(`${kind}: no title drawn`);
  for (const t of [...p.titles, ...p.labels]) {
    if (!inside(t, p.figure)) {
      out.push(
        `${kind}: ${t.what} lies outside the figure ${JSON.stringify(t)} vs ${
          JSON.stringify(p.figure)
        }`,
      );
    }
  }
  if (p.modebar) {
    for (const t of p.titles) {
      if (overlap(t, p.modebar)) out.push(`${kind}: title under the toolbar`);
    }
  }
  if (p.legend) {
    if (!inside(p.legend, p.figure)) out.push(`${kind}: the legend lies outside the figure`);
    for (const t of [...p.titles, ...p.labels].filter((t) => !t.what.startsWith("legend"))) {
      if (overlap(t, p.legend)) out.push(`${kind}: the legend covers ${t.what}`);
    }
  }
  const texts = [...p.titles, ...p.labels];
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (overlap(texts[i], texts[j])) {
        out.push(`${kind}: "${texts[i].what}" overlaps "${texts[j].what}"`);
      }
    }
  }
  return out;
}

Deno.test({
  name: "every figure kind keeps its title and labels inside, apart, and clear of the toolbar",
  sanitizeResources: false,
  async fn(t) {
    await using dir = await tempDir();
    const all = figures();
    const kinds = Object.keys(all);
    await t.step("interactive (Plotly in Chromium)", async () => {
      const plotted = kinds.filter((k) => specOf(all[k]).kind !== "table");
      const path = `${dir.path}/interactive.html`;
      await Deno.writeTextFile(path, htmlDocument("layout", plotted.map((k) => all[k])));
      const page = await renderPage(path, {
        timeoutMs: 240_000, // Chromium starts slowly on a loaded machine
        expectPlots: plotted.length,
        probe: PROBE,
        width: 1300,
      });
      await saveShot("layout_interactive.png", page.screenshot);
      const { plots } = page.probed as { plots: Probed[] };
      assert(plots.length === plotted.length, `${plots.length} plots drawn`);
      const found = plots.flatMap((p, i) => problems(plotted[i], p));
      assert(found.length === 0, found.join("\n"));
    });
    await t.step("static SVG (what GitHub and a kernel-less viewer show)", async () => {
      const body = kinds.map((k) =>
        `<div style="margin:12px">${
          all[k].toSvg().replace("<svg ", `<svg class="static-figure" `)
        }</div>`
      ).join("");
      const path = `${dir.path}/static.html`;
      await Deno.writeTextFile(path, `<!DOCTYPE html><html><body>${body}</body></html>`);
      const page = await renderPage(path, {
        expectPlots: 0,
        probe: PROBE,
        width: 1300,
        timeoutMs: 240_000,
      });
      await saveShot("layout_static.png", page.screenshot);
      const { statics } = page.probed as { statics: Probed[] };
      assert(statics.length === kinds.length, `${statics.length} static figures`);
      const found = statics.flatMap((p, i) => problems(kinds[i], p));
      assert(found.length === 0, found.join("\n"));
    });
  },
});
