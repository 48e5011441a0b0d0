/**
 * `deno task merge` in study mode killed (SIGKILL) inside RI, inside the merges and at random
 * (seeded) moments, then rerun. After every kill the run folder holds only complete files;
 * the reruns continue RI from the saved states and keep what is done; the final results
 * (results.json's rows, accuracies, ξ, curves and pairwise interference) and every adapted
 * task vector, merged model and row file are byte-for-byte those of an uninterrupted run.
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { initEngine } from "../../lib/engine/backend.ts";
import { loadZoo } from "../../lib/zoo/zoo.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { tempDir } from "../helpers/temp.ts";
import { digests, filesUnder } from "./files.ts";
import { assertResumed, checkRunFolder, runScript, savedSteps, stateStep } from "./run_folder.ts";

const MERGE = new URL("../../tasks/merge.ts", import.meta.url).pathname;
const TASKS = ["mnist", "fashion", "mnist_rot90", "fashion_inv"];
const STEPS = 12;
const SEED = Number(Deno.env.get("RI_KILL_SEED") ?? 1);

function flags(out: string): string[] {
  return [
    ...["--suite", "mf4", "--steps", String(STEPS), "--aux-size", "64", "--batch", "16"],
    ...["--checkpoint-every", "4", "--methods", "task_arithmetic,ties"],
    ...["--out", out, "--name", "run"],
  ];
}

/** Every output of the run: complete files by relative path (temporary files left aside). */
async function outputs(out: string): Promise<Record<string, string>> {
  const run = join(out, "run");
  const states = (await filesUnder(join(run, "state"))).filter((f) => !f.endsWith(".tmp"));
  deepStrictEqual(states, [], "state files left behind");
  const files = Object.entries(await digests(run))
    .filter(([f]) => /^(adapted|curves|merged|rows)\/[\w+]+\.(safetensors|json)$/.test(f));
  equal(files.length, 2 * TASKS.length + 2 * 4, `outputs: ${files.map(([f]) => f)}`);
  return Object.fromEntries(files);
}

/** results.json without what differs between two runs by design (timings, output folder). */
async function results(out: string): Promise<Record<string, unknown>> {
  const data = JSON.parse(await Deno.readTextFile(join(out, "run", "results.json")));
  const { seconds: _seconds, config, ...rest } = data;
  const { out: _out, ...settings } = config;
  return { ...rest, settings };
}

async function assertComplete(out: string, after: string): Promise<void> {
  const { problems } = await checkRunFolder(join(out, "run"));
  deepStrictEqual(problems, [], `partial files after ${after}`);
}

Deno.test({
  name: "deno task merge (study) killed anywhere: nothing partial, resumes, same results",
  sanitizeResources: false,
  async fn(t) {
    await initEngine({ backend: "wasm" });
    (await loadZoo({ suite: "mf4", seed: 0, progress: "off" })).dispose();
    await using dir = await tempDir();
    const refOut = join(dir.path, "reference");
    const reference = await runScript(MERGE, flags(refOut));
    equal(reference.code, 0, reference.output);

    /** Runs to the end, then compares with the uninterrupted run. */
    const finish = async (out: string) => {
      const before = await savedSteps(join(out, "run"), TASKS);
      const result = await runScript(MERGE, flags(out));
      equal(result.code, 0, result.output);
      assertResumed(result.output, before, STEPS);
      await assertComplete(out, "the last run");
      deepStrictEqual(await results(out), await results(refOut));
      deepStrictEqual(await outputs(out), await outputs(refOut));
    };

    await t.step("SIGKILL at chosen moments: inside RI, then inside the merges", async () => {
      const out = join(dir.path, "chosen"), run = join(out, "run");
      const fashionState = join(run, "state", "ri-fashion.safetensors");
      let result = await runScript(MERGE, flags(out), {
        when: async () => (await stateStep(fashionState).catch(() => 0)) >= 4,
      });
      assert(result.signalled, `not killed:\n${result.output}`);
      await assertComplete(out, "a kill inside RI");
      // The rerun must resume fashion's RI from its state and leave mnist's alone.
      const before = await savedSteps(run, TASKS);
      assert(before.fashion >= 4);
      result = await runScript(MERGE, flags(out), {
        when: async () => (await filesUnder(join(run, "rows"))).some((f) => f.endsWith(".json")),
      });
      assert(result.signalled, `not killed:\n${result.output}`);
      equal(assertResumed(result.output, before, STEPS), 1, result.output);
      assert(!/^RI mnist\s/m.test(result.output), "mnist was adapted again");
      await assertComplete(out, "a kill inside the merges");
      // The last run merges what is left: RI is not run again.
      await finish(out);
    });

    await t.step("SIGKILL at random moments", async () => {
      const out = join(dir.path, "random");
      // Within the first 70 % of an uninterrupted run's time: while it starts, in RI, in the
      // merges and evaluations, in the writes.
      const rng = new Rng(SEED, "kill study");
      for (let i = 0; i < 3; i++) {
        const before = await savedSteps(join(out, "run"), TASKS);
        const afterMs = reference.ms * rng.range(0.1, 0.7);
        const result = await runScript(MERGE, flags(out), { afterMs });
        assertResumed(result.output, before, STEPS);
        await assertComplete(out, `a kill after ${afterMs.toFixed(0)} ms`);
        if (result.finished) break;
      }
      await finish(out);
    });
  },
});
