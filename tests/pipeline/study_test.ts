import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { resolveStudyConfig, STUDY_DEFAULTS } from "../../lib/pipeline/config.ts";
import { runPaths, runStudy } from "../../lib/pipeline/study.ts";
import type { StudyData } from "../../lib/pipeline/results.ts";
import { tempDir } from "../helpers/temp.ts";

// The mf4 zoo is built (or reused) in the shared cache; the run itself goes to a temp folder.
Deno.test({
  name: "the mf4 study: RI lowers its loss and ξ, writes results and report, and resumes",
  sanitizeResources: false,
  async fn() {
    await using dir = await tempDir();
    // RI at its default step count: on the mf4 zoo of ZOO_VERSION 2, 50 steps left TSV-M's ξ
    // where it was (1.152 → 1.153); at 200 every expert's RI loss has flattened.
    const config = resolveStudyConfig({
      suite: "mf4",
      steps: STUDY_DEFAULTS.steps,
      auxSize: 2048,
      methods: ["task_arithmetic", "tsv_m", "emr"],
      distill: ["task_arithmetic"],
      out: dir.path,
      name: "study",
    });
    const results = await runStudy(config, { progress: "off", log: () => {} });
    const paths = runPaths(config);
    const data = JSON.parse(await Deno.readTextFile(paths.results)) as StudyData;
    for (const key of ["suite", "seed", "backend", "aux", "steps", "experts", "base", "rows"]) {
      assert(key in data, `results.json lacks ${key}`);
    }
    equal(data.rows.length, 7);
    for (const row of data.rows) {
      assert(
        row.avgAccuracy >= 0 && row.avgAccuracy <= 1 && row.avgNormalised > 0,
        JSON.stringify(row),
      );
      assert(Number.isFinite(row.xi) && row.xi >= 0);
      deepStrictEqual(Object.keys(row.accuracyByTask), Object.keys(data.experts));
    }
    // RI lowers its own loss for every expert ...
    for (const [task, curve] of Object.entries(data.riCurves!)) {
      const first = curve.total.slice(0, 5).reduce((a, b) => a + b) / 5;
      const last = curve.total.slice(-5).reduce((a, b) => a + b) / 5;
      assert(last < first, `RI loss of ${task} went from ${first} to ${last}`);
    }
    // ... and the interference of the merged model.
    for (const method of ["task_arithmetic", "tsv_m"]) {
      const off = data.rows.find((r) => r.method === method && !r.ri)!;
      const on = data.rows.find((r) => r.method === method && r.ri)!;
      assert(on.xi < off.xi, `${method}: ξ ${off.xi} without RI, ${on.xi} with RI`);
    }
    // Off-diagonal pairwise interference on auxiliary data shrinks.
    const off = (m: number[][]) => m.flatMap((r, i) => r.filter((_, j) => j !== i));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b) / xs.length;
    assert(mean(off(data.pairwise!.after)) < mean(off(data.pairwise!.before)));
    const report = await Deno.readTextFile(paths.report);
    assert(report.includes("Pairwise interference") && report.includes("Plotly"));
    await Deno.stat(paths.merged("tsv_m+ri"));
    // EMR builds one model per task: each saved, each scored on its own task, and marked
    for (const task of Object.keys(data.experts)) await Deno.stat(paths.merged(`emr+ri.${task}`));
    equal(data.rows.find((r) => r.method === "emr")?.output, "per-task");
    assert(results.table().toText().includes("emr (one model per task)"));
    await Deno.stat(paths.adapted("mnist"));
    // A rerun finds everything done and gives the same numbers.
    const again = await runStudy(config, { progress: "off", log: () => {} });
    deepStrictEqual(again.data.rows, results.data.rows);
  },
});

Deno.test({
  name: "the mf4 study runs data-using merges on the data they name and records it per row",
  sanitizeResources: false,
  async fn() {
    await using dir = await tempDir();
    const config = resolveStudyConfig({
      suite: "mf4",
      ri: "off",
      auxSize: 256,
      methods: ["task_arithmetic", "regmean", "fisher", "adamerging_task", "adamerging"],
      methodParams: "regmean.examples=32,fisher.examples=40,fisher.batch=20," +
        "adamerging_task.steps=3,adamerging_task.examples=64," +
        "adamerging.steps=2,adamerging.data=aux",
      out: dir.path,
      name: "data",
    });
    const results = await runStudy(config, { progress: "off", log: () => {} });
    const data = (m: string) => results.data.rows.find((r) => r.method === m)?.data;
    equal(data("task_arithmetic"), undefined);
    deepStrictEqual(data("regmean"), { source: "train", perTask: 32, labels: false });
    deepStrictEqual(data("fisher"), { source: "train", perTask: 40, labels: false });
    deepStrictEqual(data("adamerging_task"), { source: "test_inputs", perTask: 64, labels: false });
    deepStrictEqual(data("adamerging"), {
      source: "aux",
      perTask: 256,
      labels: false,
      origin: "shapes ×256",
    });
    const text = results.table().toText();
    assert(text.includes("merge data") && text.includes("test_inputs 64/task, no labels"), text);
    const saved = JSON.parse(await Deno.readTextFile(runPaths(config).results)) as StudyData;
    deepStrictEqual(saved.rows.find((r) => r.method === "regmean")?.data, data("regmean"));
    assert((await Deno.readTextFile(runPaths(config).report)).includes("merge data"));
  },
});
