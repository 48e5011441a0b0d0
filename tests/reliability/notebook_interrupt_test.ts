/**
 * Interrupt in a notebook, with the kernelspec `deno task kernel` installs
 * (`interrupt_mode: "signal"`): Jupyter sends SIGINT to the kernel. Loading `mod.ts` in the
 * kernel keeps a SIGINT listener for the kernel's lifetime, so Interrupt never ends the kernel:
 * RI's trainer finishes its step, saves its state and throws `InterruptedError`; a training
 * loop of lib/train (the zoo's) stops after its step the same way; any other cell goes on, and
 * the kernel says that nothing of the kit was running. One kernel runs all the cells in turn,
 * as a notebook would.
 *
 * (Deno's other mode, `message`, terminates V8's execution, which no JavaScript observes: an
 * awaiting cell never ends and nothing is saved. docs/RELIABILITY.md has the measurements.)
 */
import { equal, match, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { installKernelspec } from "../../tasks/kernel.ts";
import { initEngine } from "../../lib/engine/backend.ts";
import { loadZoo } from "../../lib/zoo/zoo.ts";
import { PYTHON } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";

const REPO = new URL("../../", import.meta.url);
const DRIVER = new URL("./kernel_interrupt.py", import.meta.url).pathname;
const STEPS = 24;

/** Cell 1: the kit, as every notebook loads it. */
const LOAD = `
import * as ri from ${JSON.stringify(new URL("mod.ts", REPO).href)};
import * as tf from "@tensorflow/tfjs";
import { crossEntropy } from ${JSON.stringify(new URL("lib/train/losses.ts", REPO).href)};
import { fitLoop } from ${JSON.stringify(new URL("lib/train/fit.ts", REPO).href)};
await ri.initEngine({ backend: "wasm" });
"loaded";
`;

/** A cell that awaits without any loop of the kit; `marker` says it has started. */
function sleepCell(marker: string): string {
  return `Deno.writeTextFileSync(${JSON.stringify(marker)}, "");
await new Promise((resolve) => setTimeout(resolve, 4000));
"slept";`;
}

/** Adapts mnist with RI on the mf4 zoo, checkpointing every 4 steps. */
function riCell(statePath: string): string {
  return `
const zoo = await ri.loadZoo({ suite: "mf4", seed: 0, progress: "off" });
const aux = await (await ri.auxSource("shapes", { channels: 1, size: 28 }, 0)).images(0, 64);
let first = 0;
const result = await ri.adaptExpert(
  { task: "mnist", config: zoo.config.model, base: zoo.base, expert: await zoo.expert("mnist"),
    heads: zoo.heads, aux, norm: zoo.config.norm },
  { steps: ${STEPS}, batch: 16, lr: 1e-4, weightDecay: 1e-4, alpha: 1, distance: "kl", seed: 0,
    checkpointEvery: 4 },
  { statePath: ${JSON.stringify(statePath)}, progress: "off",
    onStep: (step) => { if (!first) console.log("first step " + (first = step)); } },
);
zoo.dispose();
console.log("resumed from " + result.resumedFrom);
`;
}

/** A long lib/train fitLoop (what builds a zoo's base and experts) on a toy set. */
function fitCell(marker: string): string {
  return `
const n = 64;
const set = { count: n, channels: 1, size: 1, classes: ["a", "b"],
  pixels: Float32Array.from({ length: n }, (_, i) => i % 2),
  labels: Int32Array.from({ length: n }, (_, i) => i % 2) };
const w = tf.variable(tf.zeros([1, 2])), b = tf.variable(tf.zeros([2]));
const loss = (x, y) => crossEntropy(x.reshape([-1, 1]).matMul(w).add(b), y);
try {
  await fitLoop({ w, b }, set, loss, { epochs: 100000, batchSize: 4, lr: 0.1, weightDecay: 0,
    seed: 0, norm: { mean: 0, std: 1 }, reportEvery: 1, title: "toy fit",
    onProgress: (done) => { if (done === 5) Deno.writeTextFileSync(${
    JSON.stringify(marker)
  }, ""); } });
} finally {
  tf.dispose([w, b]);
}
`;
}

const METHODS = "task_arithmetic,ties,tsv_m,iso_c,iso_cts";

/** A study without RI (merges only) on mf4, writing under `out`. */
function studyCell(out: string): string {
  return `
const config = ri.resolveStudyConfig({ suite: "mf4", ri: "off", methods: "${METHODS}",
  name: "study", out: ${JSON.stringify(out)} });
await ri.runStudy(config, { progress: "off", log: () => {} });
`;
}

interface CellRun {
  status: string;
  ename: string | null;
  evalue: string | null;
  stream: string;
  result?: string;
  alive?: boolean;
  seconds_to_idle?: number;
  state_step_after_interrupt?: number;
}

Deno.test({
  name: "Interrupt in a notebook (the project's kernelspec) stops RI and training loops after " +
    "their step with state kept, leaves other cells running, and never ends the kernel",
  sanitizeResources: false,
  async fn() {
    await initEngine({ backend: "wasm" });
    (await loadZoo({ suite: "mf4", seed: 0, progress: "off" })).dispose(); // shared cache
    await using dir = await tempDir();
    const dataHome = join(dir.path, "jupyter-data");
    const { spec } = await installKernelspec({ dataHome });
    equal(spec.interrupt_mode, "signal");
    const statePath = join(dir.path, "state.safetensors");
    const marker = join(dir.path, "fit-started");
    const asleep = join(dir.path, "sleep-started");
    const runs = join(dir.path, "runs");
    const rows = join(runs, "study", "rows");
    const scenario = join(dir.path, "scenario.json");
    await Deno.writeTextFile(
      scenario,
      JSON.stringify({
        cwd: REPO.pathname,
        cells: [
          { code: LOAD },
          { code: sleepCell(asleep), exists: asleep },
          { code: riCell(statePath), state: statePath, min_step: 4 },
          { code: "6 * 7" },
          { code: riCell(statePath) },
          { code: fitCell(marker), exists: marker },
          { code: studyCell(runs), exists: join(rows, "task_arithmetic.json") },
          { code: "6 * 7" },
        ],
      }),
    );
    const out = await new Deno.Command(PYTHON, {
      args: [DRIVER, scenario],
      env: { JUPYTER_PATH: `${dataHome}/jupyter`, PYDEVD_DISABLE_FILE_VALIDATION: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    assert(out.success, `driver failed:\n${new TextDecoder().decode(out.stderr)}\n${stdout}`);
    const report = JSON.parse(stdout.split("\n").pop()!) as {
      interrupt_mode: string;
      runs: CellRun[];
    };
    equal(report.interrupt_mode, "signal");
    const [load, sleep, first, answer, second, fit, study, last] = report.runs;
    const show = (run: CellRun) => JSON.stringify(run);
    equal(load.status, "ok", show(load));

    // Nothing of the kit running: the cell goes on to its end, the kernel says so.
    equal(sleep.status, "ok", show(sleep));
    equal(sleep.result, '"slept"', show(sleep));
    match(sleep.stream, /Interrupt: no training loop of this kit is running/);
    assert(sleep.alive, "the kernel died");

    // RI: stops after its step, that very step saved; the kernel still runs code.
    equal(first.ename, "InterruptedError", show(first));
    const stopped = first.evalue?.match(
      /^RI mnist: interrupted after step (\d+) of 24; state saved to (.+): run the same command again to resume$/,
    );
    assert(stopped, first.evalue ?? "no error");
    const step = Number(stopped[1]);
    equal(stopped[2], statePath);
    assert(step >= 4 && step < STEPS, `stopped at ${step}`);
    equal(first.state_step_after_interrupt, step);
    match(first.stream, /Interrupt: stopping after this step/);
    assert(first.alive, "the kernel died");
    equal(answer.result, "42");

    // The same cell again resumes from the saved step and runs to the end.
    equal(second.status, "ok", show(second));
    assert(second.stream.includes(`first step ${step + 1}\n`), second.stream);
    assert(second.stream.includes(`resumed from ${step}\n`), second.stream);

    // A lib/train loop stops the same way (it keeps no state of its own).
    equal(fit.ename, "InterruptedError", show(fit));
    match(fit.evalue ?? "", /^toy fit: interrupted after step \d+ of 1600000; this run's weights/);
    assert(fit.alive, "the kernel died");

    // A study's merge stage stops after its current row; the rows done stay on disk.
    equal(study.ename, "InterruptedError", show(study));
    const merged = study.evalue?.match(
      /^merging: interrupted after step (\d+) of 5; the rows done/,
    );
    assert(merged, study.evalue ?? "no error");
    const done = [...Deno.readDirSync(rows)].filter((e) => e.name.endsWith(".json"));
    equal(done.length, Number(merged[1]));
    assert(done.length < 5, `${done.length} rows`);
    equal(last.result, "42");
  },
});
