import { deepStrictEqual, equal, ok as assert, rejects, throws } from "node:assert/strict";
import { initEngine } from "../../mod.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { resolveStudyConfig } from "../../lib/pipeline/config.ts";
import { parseStudyArgs } from "../../lib/pipeline/cli.ts";
import { openRealModels } from "../../lib/pipeline/real.ts";
import type { StudyData } from "../../lib/pipeline/results.ts";
import { tempDir } from "../helpers/temp.ts";
import { clipSetJobs, referenceAccuracy, type RefJob, writeStudyFiles } from "./fixtures.ts";

const MERGE = new URL("../../tasks/merge.ts", import.meta.url).pathname;

/** Runs `deno task merge ARGS` as a user does; fails with its output when it fails. */
async function mergeTask(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MERGE, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert(out.success, `deno task merge ${args.join(" ")} failed:\n${text}`);
  return text;
}

Deno.test({
  name: "deno task merge --config on real-format CLIP files: RI, merges, PyTorch-checked scores",
  sanitizeResources: false,
  async fn() {
    await using dir = await tempDir();
    const d = dir.path;
    await writeStudyFiles(d);
    // The configuration names its models description relative to its own folder.
    await Deno.mkdir(`${d}/conf`);
    await Deno.writeTextFile(
      `${d}/conf/study.json`,
      JSON.stringify({
        models: "../models-mixed.json",
        methods: ["task_arithmetic", "ties"],
        steps: 8,
        batch: 16, // the whole auxiliary set: each step's loss is on the same pictures
        auxSize: 16,
        lr: 1e-5,
        checkpointEvery: 4,
        backend: "wasm",
        out: `${d}/runs`,
        name: "e2e",
      }),
    );
    const log = await mergeTask(["--config", `${d}/conf/study.json`]);
    const run = `${d}/runs/e2e`;
    const data = JSON.parse(await Deno.readTextFile(`${run}/results.json`)) as StudyData;
    equal(data.suite, "models");
    equal(data.zoo, `${d}/models-mixed.json`);
    deepStrictEqual(Object.keys(data.experts), ["a", "b", "c"]);
    deepStrictEqual(
      data.rows.map((r) => `${r.method}${r.ri ? "+ri" : ""}`),
      ["task_arithmetic", "ties", "task_arithmetic+ri", "ties+ri"],
    );
    assert(log.includes("task_arithmetic"), log);
    // RI ran on the auxiliary pictures (one full batch per step): it lowered its loss, and
    // every expert now moves the other tasks' predictions much less (pairwise, on aux).
    const curves = Object.values(data.riCurves!);
    deepStrictEqual(curves.map((c) => c.total.length), [8, 8, 8]);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const [first, last] = [sum(curves.map((c) => c.total[0])), sum(curves.map((c) => c.total[7]))];
    assert(last < 0.5 * first, `RI loss summed over experts: ${first} → ${last}`);
    const offDiagonal = (m: number[][]) => sum(m.flatMap((r, i) => r.filter((_, j) => j !== i)));
    const { before, after } = data.pairwise!;
    assert(offDiagonal(after) < 0.5 * offDiagonal(before), JSON.stringify(data.pairwise));
    // Every score is what PyTorch gets from the stored files: θ0 and the experts as the
    // user gave them, the merged models as the run wrote them.
    const jobs = clipSetJobs(d);
    const merged = (label: string): RefJob => ({
      path: `${run}/merged/${label}.safetensors`,
      layout: "hf",
      prefix: "",
    });
    const labels = data.rows.map((r) => `${r.method}${r.ri ? "+ri" : ""}`);
    const ref = await referenceAccuracy(d, {
      base: jobs["hf/base"],
      a: jobs["oc/a"],
      b: jobs["hf/b"],
      c: jobs["oc/c"],
      ...Object.fromEntries(labels.map((l) => [l, merged(l)])),
    });
    deepStrictEqual(data.base, ref.base);
    deepStrictEqual(data.experts, { a: ref.a.a, b: ref.b.b, c: ref.c.c });
    for (const [i, row] of data.rows.entries()) deepStrictEqual(row.accuracyByTask, ref[labels[i]]);
    // RI changed the models: the adapted merge is not the original one.
    const fc1 = async (label: string) => {
      using file = await SafetensorsReader.open(merged(label).path);
      return await file.read("vision_model.encoder.layers.0.mlp.fc1.weight");
    };
    const [plain, adapted] = [await fc1("ties"), await fc1("ties+ri")];
    assert(plain.some((v, i) => v !== adapted[i]), "RI left the TIES merge unchanged");

    // Without test folders or an auxiliary folder, the study says which is missing.
    const bare = {
      base: "hf/base",
      experts: { a: "hf/experts/a.safetensors" },
      heads: "heads.safetensors",
    };
    await Deno.writeTextFile(`${d}/bare.json`, JSON.stringify(bare));
    await initEngine({ backend: "wasm" });
    using real = await openRealModels(`${d}/bare.json`, "off");
    deepStrictEqual(real.taskNames, ["a"]);
    throws(() => real.data("a"), /bare\.json: no "tasks" test folders in this description/);
    throws(() => real.data("z"), /bare\.json: no task "z" \(tasks: a\)/);
    await rejects(real.auxiliarySet("models", 4, 0), /bare\.json: no "aux" folder/);
    await rejects(real.auxiliarySet(`dir:${d}/hf`, 4, 0), /no \.png, \.jpg or \.jpeg files/);
  },
});

Deno.test("a models key switches the study to real checkpoints; what cannot apply is refused", async () => {
  const c = resolveStudyConfig({ models: "runs/vitb32.models.json", steps: 5 });
  equal(c.models, "runs/vitb32.models.json");
  equal(c.suite, "models");
  equal(c.aux, "models");
  equal(c.name, "vitb32.models-seed0-models-5steps");
  equal(resolveStudyConfig({ models: "m.json", aux: "dir:/data/coco" }).aux, "dir:/data/coco");
  equal(resolveStudyConfig({}).models, undefined);
  throws(() => resolveStudyConfig({ models: "m.json", suite: "mf4" }), /suite and models exclude/);
  throws(
    () => resolveStudyConfig({ models: "m.json", aux: "shapes" }),
    /with models, aux must be models .* or dir:PATH, got "shapes"/,
  );
  throws(() => resolveStudyConfig({ models: "" }), /models must be a non-empty string/);

  await using dir = await tempDir();
  const d = dir.path;
  await Deno.mkdir(`${d}/conf`);
  await Deno.writeTextFile(`${d}/conf/run.json`, JSON.stringify({ models: "../m.json" }));
  const fromFile = await parseStudyArgs(["--config", `${d}/conf/run.json`]);
  equal(fromFile.config.models, `${d}/m.json`); // next to the configuration file
  const fromFlag = await parseStudyArgs(["--models", "m.json"]);
  equal(fromFlag.config.models, "m.json"); // from the working directory
  await rejects(openRealModels(`${d}/m.json`), /models .*m\.json: cannot read it as JSON/);
});
