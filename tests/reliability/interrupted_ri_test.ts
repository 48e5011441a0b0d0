/**
 * `deno task ri` interrupted: killed (SIGKILL) at chosen and at random (seeded) moments and
 * rerun, and stopped by Ctrl-C (SIGINT). After every interruption the run folder holds only
 * complete files; every rerun continues from the last saved state (its progress starts at
 * the saved step + 1, not at 1); the final adapted task vectors and loss curves are
 * byte-for-byte those of an uninterrupted run (RI's batches depend only on the seed and the
 * step, and a resumed run reloads τ' and AdamW's moments exactly, so nothing differs).
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { initEngine } from "../../lib/engine/backend.ts";
import { loadZoo } from "../../lib/zoo/zoo.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { tempDir } from "../helpers/temp.ts";
import { digests, filesUnder } from "./files.ts";
import {
  assertResumed,
  checkRunFolder,
  runScript,
  savedSteps as savedIn,
  stateStep,
} from "./run_folder.ts";

const RI = new URL("../../tasks/ri.ts", import.meta.url).pathname;
const TASKS = ["mnist", "fashion"];
const STEPS = 16;
const SEED = Number(Deno.env.get("RI_KILL_SEED") ?? 1);

/** The command's flags: tiny RI on the mf4 zoo, a state checkpoint every 4 steps. */
function flags(out: string): string[] {
  return [
    ...["--suite", "mf4", "--steps", String(STEPS), "--aux-size", "64", "--batch", "16"],
    ...["--checkpoint-every", "4", "--methods", "task_arithmetic,ties"],
    ...["--expert", TASKS.join(","), "--out", out, "--name", "run"],
  ];
}

const statePath = (out: string, task: string) =>
  join(out, "run", "state", `ri-${task}.safetensors`);

const savedSteps = (out: string) => savedIn(join(out, "run"), TASKS);
const resumed = (output: string, saved: Record<string, number>) =>
  assertResumed(output, saved, STEPS);

/** A poll for runScript: true once `task`'s state holds step ≥ `step`. */
function stateReaches(out: string, task: string, step: number): () => Promise<boolean> {
  return async () => (await stateStep(statePath(out, task)).catch(() => 0)) >= step;
}

/** Nothing partial in the run folder. */
async function assertComplete(out: string, after: string): Promise<void> {
  const { problems } = await checkRunFolder(join(out, "run"));
  deepStrictEqual(problems, [], `partial files after ${after}`);
}

/** The adapted task vectors and curves (by relative path), and no state left. */
async function outputs(out: string): Promise<Record<string, string>> {
  const states = (await filesUnder(join(out, "run", "state"))).filter((f) => !f.endsWith(".tmp"));
  deepStrictEqual(states, [], "state files left behind");
  const all = await digests(join(out, "run"));
  const kept = Object.entries(all).filter(([f]) =>
    /^(adapted|curves)\/\w+\.(safetensors|json)$/.test(f)
  );
  equal(kept.length, 2 * TASKS.length, `outputs: ${Object.keys(all)}`);
  return Object.fromEntries(kept);
}

Deno.test({
  name: "deno task ri killed and interrupted: nothing partial, resumes, same bits at the end",
  sanitizeResources: false,
  async fn(t) {
    // The shared mf4 zoo, built here if missing, so that no timed run below builds it.
    await initEngine({ backend: "wasm" });
    (await loadZoo({ suite: "mf4", seed: 0, progress: "off" })).dispose();
    await using dir = await tempDir();
    const refOut = join(dir.path, "reference");
    const reference = await runScript(RI, flags(refOut));
    equal(reference.code, 0, reference.output);
    const expected = await outputs(refOut);

    /** Runs to the end, then compares with the uninterrupted run. */
    const finish = async (out: string) => {
      const saved = await savedSteps(out);
      const run = await runScript(RI, flags(out));
      equal(run.code, 0, run.output);
      resumed(run.output, saved);
      deepStrictEqual(await outputs(out), expected);
    };

    await t.step(
      "SIGKILL at chosen moments: inside the first expert, then the second",
      async () => {
        const out = join(dir.path, "chosen");
        // Killed once mnist has saved step 8 or later ...
        let run = await runScript(RI, flags(out), { when: stateReaches(out, "mnist", 8) });
        assert(run.signalled && !run.finished, `not killed:\n${run.output}`);
        await assertComplete(out, "the first kill");
        // ... then rerun and killed once fashion has a state: mnist had to resume to get there.
        const saved = await savedSteps(out);
        assert(saved.mnist >= 8, `mnist saved step ${saved.mnist}`);
        run = await runScript(RI, flags(out), { when: stateReaches(out, "fashion", 4) });
        assert(run.signalled, `not killed:\n${run.output}`);
        equal(resumed(run.output, saved), 1, `mnist did not resume:\n${run.output}`);
        await assertComplete(out, "the second kill");
        await finish(out);
      },
    );

    await t.step("SIGKILL at random moments", async () => {
      const out = join(dir.path, "random");
      // Each run is killed within the first 60 % of an uninterrupted run's time: early ones
      // land while it starts (zoo, auxiliary set, targets), later ones in RI or its writes.
      const rng = new Rng(SEED, "kill ri");
      for (let i = 0; i < 4; i++) {
        const saved = await savedSteps(out);
        const afterMs = reference.ms * rng.range(0.1, 0.6);
        const run = await runScript(RI, flags(out), { afterMs });
        resumed(run.output, saved);
        await assertComplete(out, `a kill after ${afterMs.toFixed(0)} ms`);
        if (run.finished) break;
      }
      await finish(out);
    });

    await t.step("Ctrl-C (SIGINT): exit 130, the state kept, the rerun resumes", async () => {
      const out = join(dir.path, "interrupted");
      const run = await runScript(RI, flags(out), {
        signal: "SIGINT",
        when: stateReaches(out, "mnist", 4),
      });
      equal(run.code, 130, run.output);
      const lines = run.output.split("\n");
      // (The WebGPU probe's Vulkan loader may print "error: XDG_RUNTIME_DIR is invalid".)
      const errors = lines.filter((l) => l.startsWith("error:") && !l.includes("XDG_RUNTIME_DIR"));
      deepStrictEqual(errors, []);
      const stopped = lines.filter((l) => l.startsWith("stopped:"));
      equal(stopped.length, 1, run.output);
      const match = stopped[0].match(
        /^stopped: RI mnist: interrupted after step (\d+) of 16; state saved to (.+): run the same command again to resume$/,
      );
      assert(match, stopped[0]);
      const step = Number(match[1]);
      equal(match[2], statePath(out, "mnist"));
      equal(await stateStep(statePath(out, "mnist")), step); // saved after the very step
      assert(step >= 4 && step < STEPS, `stopped at ${step}`);
      await assertComplete(out, "Ctrl-C");
      deepStrictEqual(await filesUnder(join(out, "run", "adapted")), []);
      const rerun = await runScript(RI, flags(out));
      equal(rerun.code, 0, rerun.output);
      equal(resumed(rerun.output, { mnist: step, fashion: 0 }), 1, rerun.output);
      deepStrictEqual(await outputs(out), expected);
    });
  },
});
