import { deepStrictEqual, equal, match, rejects } from "node:assert/strict";
import { collectResults, toCsv, toJsonLines } from "../../lib/pipeline/collect.ts";
import { tempDir } from "../helpers/temp.ts";

const RUN = (seed: number, legacy: boolean) => ({
  suite: "mf4",
  seed,
  backend: "wasm",
  adapter: "CPU",
  aux: "shapes",
  steps: 50,
  config: { lr: 3e-4, distance: "kl" },
  zoo: ".cache/zoo/x",
  experts: { mnist: 0.8, fashion: 0.5 },
  base: { mnist: 0.4, fashion: 0.25 },
  seconds: {},
  rows: [false, true].map((ri) =>
    legacy
      ? {
        method: "ties",
        ri,
        avg_acc: 0.5,
        norm_acc: 0.75,
        xi: 1,
        per_task: { mnist: 0.6, fashion: 0.4 },
        xi_per_task: { mnist: 0.25, fashion: 0.75 },
        params: {},
      }
      : {
        method: "ties",
        ri,
        avgAccuracy: 0.5,
        avgNormalised: 0.75,
        xi: 1,
        accuracyByTask: { mnist: 0.6, fashion: 0.4 },
        xiByTask: { mnist: 0.25, fashion: 0.75 },
        params: {},
      }
  ),
});

Deno.test("results of several runs (old and new row names) become one tidy table, by function and by command", async () => {
  await using dir = await tempDir();
  for (const [name, seed, legacy] of [["seed0", 0, false], ["seed1", 1, true]] as const) {
    await Deno.mkdir(`${dir.path}/runs/${name}`, { recursive: true });
    await Deno.writeTextFile(
      `${dir.path}/runs/${name}/results.json`,
      JSON.stringify(RUN(seed, legacy)),
    );
  }
  const rows = await collectResults([`${dir.path}/runs`]);
  // 2 runs × (expert, θ0, ties, ties + RI) × 2 tasks
  equal(rows.length, 16);
  deepStrictEqual(
    rows.filter((r) => r.method === "ties" && r.ri && r.task === "fashion"),
    [0, 1].map((seed) => ({
      run: `seed${seed}`,
      suite: "mf4",
      seed,
      aux: "shapes",
      steps: 50,
      lr: 3e-4,
      distance: "kl",
      method: "ties",
      ri: true,
      distill: false,
      task: "fashion",
      accuracy: 0.4,
      normalised: 0.8,
      xi: 0.75,
    })),
  );
  const csv = toCsv(rows).split("\n");
  equal(
    csv[0],
    "run,suite,seed,aux,steps,lr,distance,method,ri,distill,task,accuracy,normalised,xi",
  );
  equal(csv[1], "seed0,mf4,0,shapes,50,0.0003,kl,expert,false,false,mnist,0.8,1,0");
  equal(csv[3], "seed0,mf4,0,shapes,50,0.0003,kl,base,false,false,mnist,0.4,0.5,"); // no ξ for θ0
  equal(toJsonLines(rows).trim().split("\n").length, 16);
  match(toJsonLines(rows).split("\n")[2], /"method":"base".*"xi":null/);

  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tasks/collect.ts", `${dir.path}/runs`, "--out", `${dir.path}/all.jsonl`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  match(new TextDecoder().decode(out.stderr), /16 rows from 2 runs/);
  equal((await Deno.readTextFile(`${dir.path}/all.jsonl`)).trim().split("\n").length, 16);

  await Deno.writeTextFile(`${dir.path}/bad.json`, "{}");
  await rejects(collectResults([`${dir.path}/bad.json`]), /bad\.json: not a study's results\.json/);
});
