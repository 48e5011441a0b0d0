import { deepStrictEqual, equal, ok as assert, throws } from "node:assert/strict";
import { join } from "node:path";
import { resolveStudyConfig } from "../../lib/pipeline/config.ts";
import { StudyResults, type StudyRow } from "../../lib/pipeline/results.ts";
import {
  aggregatePath,
  parseSeeds,
  runSeeds,
  SeedAggregate,
  seedConfig,
  spread,
} from "../../lib/pipeline/seeds.ts";
import { runPaths } from "../../lib/pipeline/study.ts";
import { initEngine, loadZoo } from "../../mod.ts";
import { accuracy } from "../../lib/train/evaluate.ts";
import { disposeHead } from "../../lib/models/head.ts";
import { disposeParams, hostToParams } from "../../lib/models/weights.ts";
import { loadHeads } from "../../lib/models/store.ts";
import { taskByName } from "../../lib/data/tasks.ts";
import { taskSplits } from "../../lib/data/dataset.ts";
import { tempDir } from "../helpers/temp.ts";

const row = (method: string, ri: boolean, acc: number, xi: number): StudyRow => ({
  method,
  ri,
  avgAccuracy: acc,
  avgNormalised: acc / 0.9,
  xi,
  accuracyByTask: { a: acc },
  xiByTask: { a: xi },
  params: {},
});

const run = (seed: number, rows: StudyRow[], suite = "mf4") =>
  new StudyResults({
    suite,
    seed,
    backend: "wasm",
    adapter: "CPU",
    aux: "shapes",
    steps: 10,
    config: {},
    zoo: "",
    experts: { a: 0.9, b: 0.7 },
    base: { a: 0.5, b: 0.3 + seed / 10 },
    seconds: {},
    rows,
  });

Deno.test("spread: mean and sample standard deviation over seeds", () => {
  deepStrictEqual(spread([2, 4, 4, 4, 5, 5, 7, 9]).mean, 5);
  assert(Math.abs(spread([2, 4, 4, 4, 5, 5, 7, 9]).sd - Math.sqrt(32 / 7)) < 1e-12);
  assert(Number.isNaN(spread([3]).sd));
  throws(() => spread([]), /no values/);
});

Deno.test("seeds: lists and ranges, no repeats", () => {
  deepStrictEqual(parseSeeds("0,1,2"), [0, 1, 2]);
  deepStrictEqual(parseSeeds("0-2,5"), [0, 1, 2, 5]);
  throws(() => parseSeeds("0,0"), /a seed repeats/);
  throws(() => parseSeeds("2-0"), /runs backwards/);
  throws(() => parseSeeds("a"), /"a" is not a seed/);
  throws(() => parseSeeds(""), /no seeds/);
});

Deno.test("the aggregate: mean ± sd per method and RI, rows every seed has, gains per seed", () => {
  const agg = SeedAggregate.of([
    run(0, [row("ta", false, 0.6, 2), row("ta", true, 0.7, 1), row("ties", false, 0.5, 3)]),
    run(1, [row("ta", false, 0.8, 4), row("ta", true, 0.8, 2)]),
  ], ["r0", "r1"]);
  deepStrictEqual(agg.data.seeds, [0, 1]);
  deepStrictEqual(agg.data.rows.map((r) => `${r.method}${r.ri ? "+ri" : ""}`), ["ta", "ta+ri"]);
  const [off] = agg.data.rows;
  assert(Math.abs(off.avgAccuracy.mean - 0.7) < 1e-12);
  assert(Math.abs(off.avgAccuracy.sd - Math.sqrt(0.02)) < 1e-12);
  deepStrictEqual(off.xi.values, [2, 4]);
  assert(Math.abs(agg.data.base.mean - 0.425) < 1e-12); // seeds 0.4 and 0.45
  const text = agg.table().toText();
  // The gain is averaged per seed: (0.1 + 0.0) / 2 = 5.0 points, sd 7.1.
  assert(text.includes("5.0 ± 7.1"), text);
  assert(text.includes("70.0 ± 14.1") && text.includes("seeds 0, 1"), text);
  const one = SeedAggregate.of([run(3, [row("ta", false, 0.6, 2)])], ["r"]);
  assert(one.table().toText().includes("60.0 ± –"));
  throws(() => SeedAggregate.of([run(0, []), run(0, [])], ["a", "b"]), /seeds repeat/);
  throws(() => SeedAggregate.of([run(0, []), run(1, [], "mf8")], ["a", "b"]), /b has suite mf8/);
});

Deno.test("each seed's run is named as that seed's default run", () => {
  const c = resolveStudyConfig({ suite: "mf4", steps: 5 });
  equal(seedConfig(c, 1).name, "mf4-seed1-shapes-5steps");
  equal(seedConfig(c, 1).seed, 1);
  equal(seedConfig({ ...c, name: "mine" }, 1).name, "mine-seed1");
  equal(aggregatePath(c, [0, 1]), join("runs", "mf4-seeds0-1-shapes-5steps", "aggregate.json"));
});

// The mf4 zoos of seeds 0 and 1 are built (or reused) in the shared cache; runs go to a temp folder.
Deno.test({
  name: "mf4 over two seeds, with held-out tasks: per-seed results, aggregate, reuse",
  sanitizeResources: false,
  async fn() {
    await initEngine({ backend: "wasm" });
    await using dir = await tempDir();
    const config = resolveStudyConfig({
      suite: "mf4",
      steps: 3,
      auxSize: 256,
      // emr builds one model per task: scored on the suite, not on held-out tasks
      methods: ["task_arithmetic", "tsv_m", "emr"],
      unseen: "mnist_inv,fashion_vflip",
      out: dir.path,
    });
    const lines: string[] = [];
    const agg = await runSeeds(config, [0, 1], { progress: "off", log: (l) => lines.push(l) });
    deepStrictEqual(agg.data.seeds, [0, 1]);
    equal(agg.data.rows.length, 6);
    const saved = JSON.parse(await Deno.readTextFile(aggregatePath(config, [0, 1])));
    deepStrictEqual(saved, JSON.parse(JSON.stringify(agg)));
    for (const [i, seed] of [0, 1].entries()) {
      const paths = runPaths(seedConfig(config, seed));
      equal(agg.data.runs[i], paths.results);
      const data = JSON.parse(await Deno.readTextFile(paths.results));
      equal(data.seed, seed);
      for (const r of agg.data.rows) {
        const found = data.rows.find((x: StudyRow) => x.method === r.method && x.ri === r.ri);
        equal(r.avgAccuracy.values[i], found.avgAccuracy);
      }
      // Held-out tasks: θ0 and every merged model, each task under its own head; a held-out
      // task has no model of EMR's (one per suite task).
      const u = data.unseen;
      deepStrictEqual(u.tasks, ["mnist_inv", "fashion_vflip"]);
      equal(u.rows.length, 4);
      assert(u.rows.every((r: { method: string }) => r.method !== "emr"));
      for (const r of u.rows) {
        deepStrictEqual(Object.keys(r.accuracyByTask), u.tasks);
        assert(r.avgAccuracy >= 0 && r.avgAccuracy <= 1);
      }
      // θ0's score, recomputed here from the zoo's files with the plain accuracy function.
      const zoo = await loadZoo({ suite: "mf4", seed, progress: "off", build: false });
      const [head] = await loadHeads(join(zoo.dir, "heads", "fashion_vflip.safetensors"));
      const { test } = await taskSplits(taskByName("fashion_vflip"), zoo.config.splits, 0);
      const params = hostToParams(zoo.base);
      const acc = await accuracy(params, zoo.config.model, head, test, { norm: zoo.config.norm });
      equal(u.base.fashion_vflip, acc);
      disposeParams(params);
      disposeHead(head);
      zoo.dispose();
      const report = await Deno.readTextFile(paths.report);
      assert(report.includes("Held-out tasks"));
    }
    // A rerun reuses both finished runs and gives the same aggregate.
    const again = await runSeeds(config, [0, 1], { progress: "off", log: (l) => lines.push(l) });
    deepStrictEqual(again.toJSON(), agg.toJSON());
    equal(lines.filter((l) => l.includes("is done, reused")).length, 2);
    // A finished run that lacks a method the study names (as when a method is registered after
    // it ran, for `all`) or its held-out scores is resumed: only the missing work is done, and the
    // aggregate is whole.
    const seed1 = runPaths(seedConfig(config, 1)).results;
    const partial = JSON.parse(await Deno.readTextFile(seed1));
    partial.rows = partial.rows.filter((r: StudyRow) => r.method !== "tsv_m");
    await Deno.writeTextFile(seed1, JSON.stringify(partial));
    const seed0 = runPaths(seedConfig(config, 0)).results;
    const noUnseen = JSON.parse(await Deno.readTextFile(seed0));
    delete noUnseen.unseen; // as a run without --unseen writes it
    await Deno.writeTextFile(seed0, JSON.stringify(noUnseen));
    lines.length = 0;
    const resumed = await runSeeds(config, [0, 1], { progress: "off", log: (l) => lines.push(l) });
    deepStrictEqual(lines.filter((l) => l.startsWith("seed")), [
      `seed 0: running ${runPaths(seedConfig(config, 0)).dir}`,
      `seed 1: running ${runPaths(seedConfig(config, 1)).dir}`,
    ]);
    deepStrictEqual(resumed.data.unseen, agg.data.unseen);
    deepStrictEqual(
      resumed.data.rows.map((r) => r.avgAccuracy),
      agg.data.rows.map((r) => r.avgAccuracy),
    );
    // Held-out tasks over seeds: θ0 + heads and each merge, mean ± sd.
    const u = agg.data.unseen!;
    deepStrictEqual(u.tasks, ["mnist_inv", "fashion_vflip"]);
    equal(u.rows.length, 4);
    equal(u.base.values.length, 2);
    assert(agg.unseenTable()!.toText().includes("Held-out tasks"));
  },
});
