import { deepStrictEqual, equal, match, ok as assert, rejects, throws } from "node:assert/strict";
import { bars, heatmap, htmlDocument, lines, table } from "../../lib/display/mod.ts";
import { tempDir } from "../helpers/temp.ts";
import { regionStats, renderPage } from "./chromium.ts";
import { assertHeatmapDrawn, plotlyOf, saveShot } from "./figures.ts";
import {
  assertClean,
  assertKeptLikeStored,
  cellWith,
  executeNotebook,
  nbconvertExecute,
  notebookToHtml,
  REPO_ROOT,
  richOutput,
  streamText,
} from "./harness.ts";

const TASKS = ["mnist", "fashion", "kmnist", "digits"];
const BEFORE = [
  [0.02, 0.41, 0.35, 0.28],
  [0.38, 0.03, 0.44, 0.31],
  [0.29, 0.47, 0.02, 0.36],
  [0.22, 0.33, 0.40, 0.01],
];
Deno.test("display demo notebook: executes headless with its figures, then draws in Chromium", async (t) => {
  await using dir = await tempDir();
  const path = `${REPO_ROOT}/notebooks/display_demo.ipynb`;
  const nb = await nbconvertExecute(path, { outDir: dir.path, timeoutS: 300 });
  await assertKeptLikeStored(nb, path); // stock nbconvert kept every output

  await t.step("every figure cell holds its bundle", () => {
    const [library, workspace] = cellWith(nb, "setupNotebook()").outputs.map((o) => o.data!);
    match(library["text/html"] as string, /<script data-ri-plotly="4\.\d+\.\d+">/);
    match(String(workspace["text/plain"]), /^Workspace[^]*cache +\S+\/\.cache/);

    const before = plotlyOf(richOutput(cellWith(nb, "Interference before RI")));
    const after = plotlyOf(richOutput(cellWith(nb, "Interference after RI")));
    const [b, a] = [before.data[0], after.data[0]];
    equal(b.type, "heatmap");
    deepStrictEqual(b.x, TASKS);
    deepStrictEqual(b.y, TASKS);
    deepStrictEqual(b.z, BEFORE);
    deepStrictEqual([b.zmin, b.zmax], [a.zmin, a.zmax]); // one colour scale for both
    deepStrictEqual([b.zmin, b.zmax], [0.01, 0.47]);
    equal((before.layout.title as { text: string }).text, "Interference before RI");
    match(String(b.hovertemplate), /expert: %\{y\}<br>task data: %\{x\}<br>ξ: %\{z:\.4g\}/);

    const grouped = plotlyOf(richOutput(cellWith(nb, "Methods with and without RI")));
    deepStrictEqual(grouped.data.map((d) => d.name), ["merged", "merged + RI"]);
    equal(grouped.layout.barmode, "group");

    const curves = plotlyOf(richOutput(cellWith(nb, "RI loss curves")));
    deepStrictEqual(curves.data.map((d) => d.name), TASKS);
    equal((curves.layout.yaxis as { type: string }).type, "log");
  });

  await t.step("the progress bar ends in place at its final state", () => {
    const cell = cellWith(nb, `progress("demo work", 40)`);
    const out = richOutput(cell); // one output, updated in place
    match(
      out["text/plain"] as string,
      /^demo work {2}█{20} {2}100% {2}40\/40 {2}done in \d+s {2}loss 0\.025$/,
    );
    match(out["text/html"] as string, /class="ri-progress"/);
  });

  await t.step("a tensor shows statistics and a heatmap", () => {
    const out = richOutput(cellWith(nb, "tf.tensor2d("));
    equal(
      out["text/plain"],
      "Tensor float32 [3, 4] · min -1.6 · max 2 · mean 0.275 · std 1.041 · values " +
        "[0.5, -1.2, 2, 0.3, 1.5, 0.1, -0.7, 0.9, -0.4, 0.8, 1.1, -1.6]",
    );
    equal((out["image/svg+xml"] as string).match(/<rect [^>]*><title>/g)?.length, 12);
  });

  await t.step("nbconvert's HTML draws every Plotly figure in Chromium", async () => {
    const html = await notebookToHtml(nb.path, dir.path);
    const page = await renderPage(html, { expectPlots: 5 });
    await saveShot("display_demo.png", page.screenshot);
    deepStrictEqual(page.consoleErrors, []);
    equal(page.plots.length, 5);
    match(page.dom, /class="main-svg"/);
    const heatmaps = page.plots.filter((p) => p.heatmapImages > 0);
    equal(heatmaps.length, 3); // two interference heatmaps and the tensor's
    assertHeatmapDrawn(heatmaps[0], page.screenshot, TASKS);
    assertHeatmapDrawn(heatmaps[1], page.screenshot, TASKS);
    const barsPlot = page.plots.find((p) => p.barPaths > 0);
    equal(barsPlot?.barPaths, 8);
    assert(regionStats(page.screenshot, barsPlot!).lumaStd > 20);
    for (const p of page.plots) equal(p.staticHidden, true);
  });
});

Deno.test("a standalone HTML report draws its figures in Chromium", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/report.html`;
  await Deno.writeTextFile(
    path,
    htmlDocument("RI report", [
      { heading: "Interference" },
      heatmap({ values: BEFORE, rowLabels: TASKS, columnLabels: TASKS, valueLabel: "ξ" }),
      bars({ categories: TASKS, series: [{ name: "accuracy", values: [0.9, 0.8, 0.85, 0.7] }] }),
      lines({ series: [{ name: "loss", y: [1, 0.5, 0.3, 0.2] }] }),
      table({ columns: ["method", "acc"], rows: [["TA", 0.71]] }),
    ]),
  );
  const page = await renderPage(path, { expectPlots: 3 });
  await saveShot("report.png", page.screenshot);
  deepStrictEqual(page.consoleErrors, []);
  equal(page.plots.length, 3);
  assertHeatmapDrawn(page.plots[0], page.screenshot, TASKS);
  equal(page.plots[1].barPaths, 4);
  match(page.dom, /<table class="ri-table"/);
});

Deno.test("without plotly.js on the page a figure keeps its static picture", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/static.html`;
  const fig = heatmap({ values: BEFORE, rowLabels: TASKS, columnLabels: TASKS });
  await Deno.writeTextFile(
    path,
    `<!DOCTYPE html><html><body>${fig.toHtml({ library: "never" })}</body></html>`,
  );
  const page = await renderPage(path, { expectPlots: 0 });
  equal(page.plots.length, 0);
  equal(page.statics.length, 1);
  const stats = regionStats(page.screenshot, page.statics[0]);
  assert(
    stats.lumaStd > 30 && stats.colors > 10,
    `static picture looks blank: ${JSON.stringify(stats)}`,
  );
  // Waiting for a plot that never comes fails instead of passing on the static picture.
  await rejects(renderPage(path, { expectPlots: 1, timeoutMs: 8000 }), /0 of 1 Plotly plots drawn/);
});

/** lib/display/jupyter.ts, for `inKernel` (not part of the public surface). */
const JUPYTER = JSON.stringify(new URL("../../lib/display/jupyter.ts", import.meta.url).href);

Deno.test("the runner keeps every output without waiting, updates displays by id and names failing cells", async () => {
  await using dir = await tempDir();
  const cells = [
    `import { display, heatmap } from "@ri-merge/ri";
import { inKernel } from ${JUPYTER};
` +
    `console.log("in kernel:", inKernel());`,
    // No pause at the end: without the kit's ordering the kernel often reported idle first.
    `for (let i = 0; i < 30; i++) console.log("line", i);`,
    `await display(heatmap({ values: [[1, 2]], columnLabels: ["a", "b"] }), { id: "h" });\n` +
    `await display(heatmap({ values: [[3, 4]], columnLabels: ["a", "b"] }), { id: "h", update: true });`,
    `({ answer: 42, name: "x" })`,
    `throw new Error("boom in cell 4");`,
    `console.log("after the error");`,
  ];
  const notebook = `${dir.path}/probe.ipynb`;
  await Deno.writeTextFile(notebook, JSON.stringify(notebookJson(cells)));
  // The kernel starts in notebooks/, as JupyterLab starts it: "@ri-merge/ri" still resolves.
  const nb = await executeNotebook(notebook, {
    outDir: dir.path,
    cwd: `${REPO_ROOT}/notebooks`,
    allowErrors: true,
  });
  equal(streamText(nb.cells[0]), "in kernel: true\n");
  equal(streamText(nb.cells[1]), Array.from({ length: 30 }, (_, i) => `line ${i}\n`).join(""));
  deepStrictEqual(plotlyOf(richOutput(nb.cells[2])).data[0].z, [[3, 4]]);
  equal(richOutput(nb.cells[3])["text/plain"], `{ answer: 42, name: "x" }`); // NO_COLOR: no ANSI
  const error = nb.cells[4].outputs.find((o) => o.output_type === "error");
  equal(error?.evalue, "boom in cell 4");
  equal(streamText(nb.cells[5]), "after the error\n");
  deepStrictEqual(nb.stray, []);
  throws(() => assertClean("probe.ipynb", nb), /cell 4 raised Error: boom in cell 4/);
  throws(() => richOutput(nb.cells[1]), /cell 1 has 0 rich outputs/);
});

function notebookJson(sources: string[]): unknown {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
    cells: sources.map((source, i) => ({
      cell_type: "code",
      id: `cell-${i}`,
      metadata: {},
      execution_count: null,
      outputs: [],
      source,
    })),
  };
}
