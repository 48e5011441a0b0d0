import { deepStrictEqual, equal, match, ok as assert, throws } from "node:assert/strict";
import {
  CosineSimilarity,
  MemorySource,
  merge,
  MergedModel,
  StudyResults,
  TaskVectorNorms,
  TaskVectorSet,
} from "../../mod.ts";
import { bundleOf } from "../../lib/display/jupyter.ts";
import { TaskVector } from "../../lib/taskvec/task_vector.ts";
import type { FigureSpec, HeatmapSpec, HeatmapsSpec } from "../../lib/display/spec.ts";
import { specOf } from "../../lib/display/figure.ts";
import type { StudyData, StudyRow } from "../../lib/pipeline/results.ts";
import { LIBRARY_NOTE, storedNotebook } from "../../tasks/notebooks.ts";
import { plotlyOf } from "./figures.ts";
import { runPython } from "../helpers/python.ts";

const w = (values: number[]) => ({ w: { shape: [values.length], data: new Float32Array(values) } });

Deno.test("task-vector norms show as bars and cosine similarities as a heatmap centred on 0", async () => {
  const norms = new TaskVectorNorms(["a", "b"], ["w"], [[3], [4]], [3, 4]);
  const bars = plotlyOf(await bundleOf(norms));
  deepStrictEqual(bars.data[0].x, ["a", "b"]);
  deepStrictEqual(bars.data[0].y, [3, 4]);

  const cosine = new CosineSimilarity(["a", "b", "c"], [[1, 0.2, -0.1], [0.2, 1, 0.05], [
    -0.1,
    0.05,
    1,
  ]]);
  const heat = specOf(cosine.figure()) as HeatmapSpec;
  equal(heat.scale, "diverging");
  // The off-diagonal entries set the scale; the diagonal's 1 would wash them out.
  deepStrictEqual(heat.range, { min: -0.2, max: 0.2 });
  const fig = plotlyOf(await bundleOf(cosine));
  deepStrictEqual(fig.data[0].x, ["a", "b", "c"]);
  deepStrictEqual(fig.data[0].z, cosine.matrix);
  // Text stays the class's own.
  match(String(cosine), /^Cosine similarity of task vectors/);
});

Deno.test("a task-vector set shows norms and cosine similarities from one pass", async () => {
  const base = new MemorySource("base", w([0, 0]));
  let reads = 0;
  const counting = (label: string, values: number[]) => {
    const source = new MemorySource(label, w(values));
    return {
      label,
      names: () => source.names(),
      shape: (n: string) => source.shape(n),
      read: (n: string) => (reads++, source.read(n)),
    };
  };
  const set = new TaskVectorSet(["a", "b"], [
    new TaskVector("a", base, counting("a", [3, 4])),
    new TaskVector("b", base, counting("b", [4, 3])),
  ], base);
  const bundle = await bundleOf(set);
  const plain = String(bundle["text/plain"]);
  assert(plain.startsWith(String(set)), plain);
  match(plain, /\na {2}█+ {2}5\n[^]*a {2}1\.00 █ 0\.96 █/);
  equal((bundle["text/html"] as string).match(/Plotly\.newPlot/g)?.length, 2);
  assert(typeof bundle["image/svg+xml"] === "string");
  const after = reads;
  await bundleOf(set); // shown again: the pass is not repeated
  equal(reads, after);
});

Deno.test("a merged task vector shows its summary and norm, in a notebook and as text", async () => {
  const m = await merge("average", [
    new MemorySource("a", w([2, 4])),
    new MemorySource("b", w([4, 4])),
  ]);
  equal(m.norm(), 5); // α·M = (3, 4)
  const bundle = await bundleOf(m);
  const plain = String(bundle["text/plain"]);
  match(plain, /^Merge: average/);
  match(plain, /parameter scaling +1\n/);
  match(plain, /‖α·M‖ +5\n?/);
  match(bundle["text/html"] as string, /<table class="ri-table"/);
  equal(String(m), plain);
  equal(Deno.inspect(m), plain);
});

Deno.test("a merged model shows the merge's summary with lists of numbers kept short", async () => {
  const summary = {
    method: "ties",
    params: { k: 20, scaling: 0.3 },
    tasks: ["a", "b"],
    notes: { tiesThresholds: [0.0077030770480, 0.0070520490407] },
  };
  const model = new MergedModel(
    new Map(),
    new Map([["w", { shape: [2], data: new Float32Array([0, 2]) }]]),
    summary,
  );
  const plain = String((await bundleOf(model))["text/plain"]);
  match(plain, /tiesThresholds +0\.007703, 0\.007052/);
  match(plain, /‖α·M‖ +2/);
});

function study(pairwise: boolean): StudyResults {
  const row = (method: string, ri: boolean, acc: number[]): StudyRow => ({
    method,
    ri,
    avgAccuracy: acc.reduce((a, b) => a + b) / acc.length,
    avgNormalised: 0.8,
    xi: ri ? 0.5 : 1,
    accuracyByTask: { a: acc[0], b: acc[1] },
    xiByTask: { a: 0.2, b: 0.3 },
    params: {},
  });
  const data: StudyData = {
    suite: "mf4",
    seed: 0,
    backend: "wasm",
    adapter: "CPU",
    aux: "shapes",
    steps: 3,
    config: {},
    zoo: "",
    experts: { a: 0.9, b: 0.8 },
    base: { a: 0.5, b: 0.4 },
    rows: [row("ta", false, [0.6, 0.5]), row("ta", true, [0.7, 0.6])],
    riCurves: {
      a: { title: "RI a", steps: [1, 2, 3], total: [1, 0.5, 0.25], parts: {} },
      b: { title: "RI b", steps: [1, 2, 3], total: [2, 1, 0.5], parts: {} },
    },
    seconds: {},
  };
  if (pairwise) {
    data.pairwise = {
      tasks: ["a", "b"],
      distance: "kl",
      before: [[0.5, 0.4], [0.3, 0.6]],
      after: [[0.5, 0.1], [0.05, 0.6]],
    };
  }
  return new StudyResults(data);
}

Deno.test("a study's results show per-task bars, loss curves and the pairwise matrices on one scale", async () => {
  const results = study(true);
  const perTask = plotlyOf(results.perTaskFigure("ta").toBundle());
  deepStrictEqual(perTask.data.map((d) => d.name), ["expert", "θ0", "ta", "ta + RI"]);
  deepStrictEqual(perTask.data[3].y, [70, 60]);
  throws(() => results.perTaskFigure("ties"), /no merge "ties" in these results \(methods: ta\)/);

  const curves = plotlyOf(results.curvesFigure()!.toBundle());
  deepStrictEqual(curves.data.map((d) => d.name), ["a", "b"]);

  // Before and after RI side by side, on one colour scale (one colour bar).
  const pairwise = specOf(results.pairwiseFigure()!) as HeatmapsSpec;
  equal(pairwise.kind, "heatmaps");
  equal(pairwise.panels.length, 2);
  deepStrictEqual(pairwise.range, { min: 0.05, max: 0.6 });
  equal(results.pairwiseFigure()!.toPlotly()!.data.every((t) => t.coloraxis === "coloraxis"), true);

  const shown = (specOf(results.figure()) as { items: FigureSpec[] }).items.map((s) => s.kind);
  deepStrictEqual(shown, ["table", "bars", "bars", "heatmaps"]);
  match(String((await bundleOf(results))["text/plain"]), /RI-adapted experts/);

  equal(study(false).pairwiseFigure(), undefined);
  deepStrictEqual((specOf(study(false).figure()) as { items: FigureSpec[] }).items.length, 3);
});

Deno.test("a stored notebook leaves out plotly.js and the timing metadata, and keeps the rest", () => {
  const figure = {
    "text/plain": "fig",
    "text/html": "<div>figure</div>",
    "image/svg+xml": "<svg/>",
  };
  const executed = {
    cells: [
      {
        cell_type: "code",
        metadata: { execution: { "iopub.execute_input": "x" }, tags: ["keep"] },
        outputs: [{
          output_type: "display_data",
          data: {
            "text/plain": "plotly.js 4.1.1 (offline copy) loaded",
            "text/html": ['<script data-ri-plotly="4.1.1">', "…</script>"],
          },
        }],
      },
      { cell_type: "code", metadata: {}, outputs: [{ output_type: "display_data", data: figure }] },
    ],
  };
  const stored = JSON.parse(storedNotebook(JSON.stringify(executed)));
  deepStrictEqual(stored.cells[0].metadata, { tags: ["keep"] });
  equal(stored.cells[0].outputs[0].data["text/html"], LIBRARY_NOTE);
  equal(stored.cells[0].outputs[0].data["text/plain"], "plotly.js 4.1.1 (offline copy) loaded");
  deepStrictEqual(stored.cells[1].outputs[0].data, figure);
});

Deno.test("every stored notebook is valid nbformat 4, as Jupyter checks on opening it", async () => {
  const dir = new URL("../../notebooks/", import.meta.url).pathname;
  const paths = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".ipynb"))
    .map((e) => `${dir}${e.name}`).sort();
  assert(paths.length >= 5, paths.join(", "));
  // nbformat's own validator (Debian's python3-nbformat): the classic Notebook runs it on open
  // and reports "Notebook JSON is invalid" for, e.g., a markdown cell with an outputs key.
  const report = await runPython(
    "import sys, nbformat\n" +
      "for p in sys.argv[1:]:\n" +
      "    try:\n" +
      "        nbformat.validate(nbformat.read(p, as_version=4)); print(p, 'valid')\n" +
      "    except nbformat.ValidationError as e:\n" +
      "        print(p, 'INVALID', e.message)\n",
    paths,
  );
  deepStrictEqual(report.trim().split("\n"), paths.map((p) => `${p} valid`));
});
