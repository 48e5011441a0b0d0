import { deepStrictEqual, equal, match, ok as assert } from "node:assert/strict";
import { defaultStudyMethods, getMethod } from "../../lib/merge/registry.ts";
import type { StudyData } from "../../lib/pipeline/results.ts";
import { tempDir } from "../helpers/temp.ts";
import { renderPage } from "./chromium.ts";
import { assertHeatmapDrawn, type Plotly, plotlyOf, saveShot } from "./figures.ts";
import {
  assertKeptLikeStored,
  type ExecutedCell,
  type ExecutedNotebook,
  nbconvertExecute,
  REPO_ROOT,
} from "../../tasks/notebook_runner.ts";
import { cellWith, notebookToHtml, richOutput, streamText } from "./harness.ts";

const TASKS = ["mnist", "fashion", "mnist_rot90", "fashion_inv"];

/** The one code cell whose whole source is `source`. */
function cellIs(nb: ExecutedNotebook, source: string): ExecutedCell {
  const found = nb.cells.filter((c) => c.type === "code" && c.source.trim() === source);
  equal(found.length, 1, `expected one cell "${source}"`);
  return found[0];
}

/** Every rich output of a cell, in order. */
function richOutputs(cell: ExecutedCell): Record<string, unknown>[] {
  return cell.outputs.filter((o) => o.data).map((o) => o.data!);
}

function text(data: Record<string, unknown>): string {
  return String(data["text/plain"] ?? "");
}

/** A 4 × 4 heatmap of the mf4 tasks with finite values. */
function assertTaskHeatmap(fig: Plotly): void {
  const trace = fig.data[0];
  equal(trace.type, "heatmap");
  deepStrictEqual(trace.x, TASKS);
  deepStrictEqual(trace.y, TASKS);
  const z = trace.z as number[][];
  equal(z.length, 4);
  for (const row of z) assert(row.length === 4 && row.every(Number.isFinite), JSON.stringify(z));
}

/** The data lines of a text table that start with `label` followed by numbers. */
function numbersAfter(table: string, label: string): number[] {
  const line = table.split("\n").find((l) => l.startsWith(`${label} `));
  assert(line, `no row "${label}" in:\n${table}`);
  return line.slice(label.length).trim().split(/\s+/).map(Number);
}

/** The first cell put plotly.js on the page and stated the engine, cache and runs folders. */
function assertLibraryLoaded(nb: ExecutedNotebook, runs: string): void {
  const [library, workspace] = richOutputs(cellWith(nb, "setupNotebook()"));
  match(library["text/html"] as string, /<script data-ri-plotly="4\.\d+\.\d+">/);
  const text = String(workspace["text/plain"]);
  match(text, /^Workspace/);
  match(text, /engine +backend wasm on CPU \(wasm SIMD \+ OpenBLAS/);
  assert(text.includes(`project  ${REPO_ROOT}`), text);
  assert(text.includes(`cache    ${REPO_ROOT}/.cache (zoos`), text);
  assert(text.includes(`runs     ${runs} (study runs`), text);
  match(text, /outputs +each cell waits until its outputs are on iopub/);
}

// One test, notebooks in the order a reader takes them: the sensitivity notebook reuses the RI
// notebook's adapted experts through the shared run folder, as it does for a user.
Deno.test({
  name: "the notebooks run top to bottom headless, with their key outputs",
  sanitizeResources: false,
  async fn(t) {
    await using dir = await tempDir();
    const runs = `${dir.path}/runs`;
    // Stock `jupyter nbconvert --execute`: no wait between cells, the kernel in notebooks/.
    // Every cell must keep the outputs of the stored copy, and nothing may be written under
    // notebooks/ (the cache and the runs resolve from the project root).
    const run = async (name: string) => {
      const path = `${REPO_ROOT}/notebooks/${name}.ipynb`;
      const nb = await nbconvertExecute(path, {
        outDir: dir.path,
        env: { RI_RUNS: runs },
        timeoutS: 900,
      });
      await assertKeptLikeStored(nb, path);
      for (const stray of [".cache", "runs"]) {
        const made = await Deno.stat(`${REPO_ROOT}/notebooks/${stray}`).then(
          () => true,
          () => false,
        );
        assert(!made, `${name} wrote notebooks/${stray}: paths must resolve from the project root`);
      }
      return nb;
    };

    await t.step("quickstart: zoo, task vectors, two merges, the heatmap", async () => {
      const nb = await run("quickstart");
      assertLibraryLoaded(nb, runs);
      const zoo = text(richOutput(cellWith(nb, "loadZoo(")));
      match(zoo, /^Zoo properties/);
      // expert, θ0 + head, Task Arithmetic, the best merge, ‖τ‖/‖θ0‖
      for (const task of TASKS) assert(numbersAfter(zoo, task).length === 5, zoo);
      match(zoo, /Criteria \(points\)/);

      const set = richOutput(cellWith(nb, "openTaskVectors("));
      match(text(set), /^TaskVectorSet\(4 tasks: mnist, fashion, mnist_rot90, fashion_inv/);
      match(text(set), /Task-vector norms[^]*Cosine similarity of task vectors/);
      equal((set["text/html"] as string).match(/Plotly\.newPlot/g)?.length, 2);

      match(text(richOutput(cellWith(nb, "MergeBench.open("))), /expert acc \(%\)/);
      const ta = text(richOutput(cellWith(nb, `bench.merge("task_arithmetic"`)));
      match(ta, /^Merge: task_arithmetic/);
      deepStrictEqual(numbersAfter(ta, "parameter scaling"), [0.3]);
      assert(numbersAfter(ta, "‖α·M‖")[0] > 0, ta);
      match(text(richOutput(cellWith(nb, `bench.merge("ties"`))), /tiesThresholds/);
      for (const label of ["Task Arithmetic", "TIES"]) {
        const source = `bench.evaluate(${label === "TIES" ? "ties" : "ta"}.theta`;
        const bars = plotlyOf(richOutput(cellWith(nb, source)));
        deepStrictEqual(bars.data.map((d) => d.name), ["accuracy (%)", "normalised (%)"]);
        deepStrictEqual(bars.data[0].x, TASKS);
        match((bars.layout.title as { text: string }).text, new RegExp(`^${label}`));
      }
      const diff = streamText(cellWith(nb, "mergeCheckpoints(")).match(
        /largest difference from the in-memory merge: (\S+)/,
      );
      assert(diff && Number(diff[1]) <= 1e-6, `streamed merge differs: ${diff?.[1]}`);
      assertTaskHeatmap(plotlyOf(richOutput(cellWith(nb, "bench.pairwise("))));
    });

    await t.step(
      "interference: ξ, matrices on task and auxiliary data; drawn in Chromium",
      async () => {
        const nb = await run("interference");
        assertLibraryLoaded(nb, runs);
        const xi = text(richOutput(cellWith(nb, "const methods = [")));
        for (const m of ["average", "task_arithmetic", "ties", "tsv_m", "iso_c"]) {
          const [acc, norm, total] = numbersAfter(xi, m);
          assert(acc > 0 && acc <= 100 && norm > 0 && total > 0, `${m}: ${acc} ${norm} ${total}`);
        }
        match(streamText(cellWith(nb, "pearson(scores")), /over 5 merges: -?[01]\.\d{3}\n/);
        const matrices = richOutputs(cellWith(nb, "for (const matrix of"));
        equal(matrices.length, 3);
        matrices.forEach((m) => assertTaskHeatmap(plotlyOf(m)));
        const titles = matrices.map((m) => (plotlyOf(m).layout.title as { text: string }).text);
        const sources = ["task images", "shape images", "noise images"];
        sources.forEach((on, i) => match(titles[i], new RegExp(`^${on} \\((task|aux) data;`)));
        const agreement = text(richOutput(cellWith(nb, "Spearman")));
        const [rho, , ratio] = numbersAfter(agreement, sources[0]);
        deepStrictEqual([rho, ratio], [1, 1]); // the task-data matrix against itself
        for (const on of sources.slice(1)) equal(numbersAfter(agreement, on).length, 3);

        const page = await renderPage(await notebookToHtml(nb.path, dir.path), { expectPlots: 6 });
        await saveShot("interference_notebook.png", page.screenshot);
        deepStrictEqual(page.consoleErrors, []);
        match(page.dom, /class="main-svg"/);
        const heatmaps = page.plots.filter((p) => p.heatmapImages > 0);
        equal(heatmaps.length, 3);
        for (const h of heatmaps) assertHeatmapDrawn(h, page.screenshot, TASKS);
      },
    );

    await t.step(
      "ri: every method with and without RI; the run's report draws in Chromium",
      async () => {
        const nb = await run("ri");
        assertLibraryLoaded(nb, runs);
        const data = JSON.parse(
          await Deno.readTextFile(`${runs}/notebook-ri/results.json`),
        ) as StudyData;
        // methods: "all" runs the registry's default study set
        const methods = defaultStudyMethods();
        for (const method of methods) {
          for (const ri of [false, true]) {
            const row = data.rows.find((r) => r.method === method && r.ri === ri);
            assert(
              row && row.avgAccuracy > 0 && Number.isFinite(row.xi),
              `${method} ri=${ri}: ${row}`,
            );
          }
        }
        const progress = richOutputs(cellWith(nb, "runStudy(config)")).map(text);
        for (const task of TASKS) {
          assert(progress.some((p) => new RegExp(`^RI ${task} .*100% {2}40/40`).test(p)), task);
        }
        const merges = 2 * methods.length;
        assert(
          progress.some((p) => new RegExp(`^merging .*${merges}/${merges}`).test(p)),
          progress.join("\n"),
        );

        const shown = richOutput(cellIs(nb, "results"));
        const html = shown["text/html"] as string;
        match(html, /<table class="ri-table"/);
        for (const method of methods) {
          // a method that builds one model per task is labelled so
          const label = getMethod(method).output === "per-task"
            ? `${method} (one model per task)`
            : method;
          const cells = numbersAfter(text(shown), label);
          // acc, acc +RI, gain, norm, norm +RI, ξ, ξ +RI (no distillation here)
          equal(cells.length, 7, `${method}: ${cells}`);
          assert(cells.every(Number.isFinite), `${method}: ${cells}`);
          assert(html.includes(`>${label}</td>`), `${method} missing from the HTML table`);
        }
        match(text(shown), /RI-adapted experts \(off-diagonal mean [0-9.]+\)/);
        match(text(shown), /Pairwise interference before and after RI \(kl, aux data\)/);

        const curves = plotlyOf(richOutput(cellIs(nb, "results.curvesFigure()")));
        deepStrictEqual(curves.data.map((d) => d.name), TASKS);
        equal((curves.layout.yaxis as { type: string }).type, "linear"); // the real range
        const perTask = plotlyOf(
          richOutput(cellIs(nb, `results.perTaskFigure("task_arithmetic")`)),
        );
        deepStrictEqual(perTask.data.map((d) => d.name), [
          "expert",
          "θ0",
          "task_arithmetic",
          "task_arithmetic + RI",
        ]);

        const report = streamText(cellWith(nb, "report.html")).trim();
        equal(report, `${runs}/notebook-ri/report.html`);
        const page = await renderPage(report, { expectPlots: 7 });
        await saveShot("ri_report.png", page.screenshot);
        deepStrictEqual(page.consoleErrors, []);
        match(page.dom, /class="main-svg"/);
        // Before and after RI side by side, one colour bar.
        const pair = page.plots.filter((p) => p.heatmapImages > 0);
        equal(pair.length, 1);
        equal(pair[0].heatmapImages, 2);
        equal(page.plots.filter((p) => p.barPaths > 0).length, 2); // accuracy and ξ bars
        match(page.dom, /Settings of this run/);
        match(page.dom, /Accuracy \(%\) per task/);
        for (const key of ["lr", "batch", "alpha", "distance", "auxSize"]) {
          assert(page.dom.includes(`>${key}</td>`), `report.html does not state ${key}`);
        }
      },
    );

    await t.step("sensitivity: coefficient sweeps and auxiliary sources", async () => {
      const nb = await run("sensitivity");
      assertLibraryLoaded(nb, runs);
      const norms = streamText(cellWith(nb, "adaptExperts(config"));
      equal(norms.match(/‖τ'‖ \d+\.\d{3}/g)?.length, 4, norms);
      const sweeps = richOutput(cellWith(nb, "scalingSweep("))["text/html"] as string;
      equal(sweeps.match(/Plotly\.newPlot/g)?.length, 2);
      for (const m of ["task_arithmetic", "average"]) {
        // Titled by method, the default α marked, one curve per set of task vectors.
        assert(sweeps.includes(`"text":"${m}: average accuracy`), `no sweep titled ${m}`);
        for (const label of ["original", "RI"]) {
          assert(sweeps.includes(`"name":"${label}"`), `no curve ${m} (${label})`);
        }
      }
      match(sweeps, /"text":"default α = 0\.3"/);
      match(sweeps, /"text":"default α = 1"/);
      const gaps = text(richOutput(cellWith(nb, "Default α against the best α")));
      equal(gaps.split("\n").filter((l) => /^(task_arithmetic|average) /.test(l)).length, 4);
      const xi = plotlyOf(richOutput(cellWith(nb, "Interference ξ against")));
      equal(xi.data.length, 4);
      const bySource = text(richOutput(cellWith(nb, "RI by auxiliary source")));
      for (const source of ["noise", "shapes", "oracle"]) {
        assert(bySource.includes(`+RI ${source}`));
      }
      for (const m of ["task_arithmetic", "tsv_m"]) {
        const values = numbersAfter(bySource, m);
        assert(values.length === 8 && values.every((v) => v > 0), `${m}: ${values}`);
      }
    });
  },
});
