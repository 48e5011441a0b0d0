import { deepStrictEqual, ok as assert, rejects } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine/backend.ts";
import { disposeHead } from "../../lib/models/head.ts";
import { adaptExpert, type RiSettings } from "../../lib/ri/adapt.ts";
import { microRiInputs } from "../helpers/tiny_runs.ts";
import { tempDir } from "../helpers/temp.ts";

/** A random θ0, an expert nearby, three random heads and 64 random auxiliary images. */
const setup = () => microRiInputs(64);

const SETTINGS: RiSettings = {
  steps: 12,
  batch: 16,
  lr: 3e-3,
  weightDecay: 1e-4,
  alpha: 1,
  distance: "kl",
  seed: 5,
  checkpointEvery: 4,
};

Deno.test("RI lowers its loss and keeps the tensor count flat", async () => {
  await initEngine({ backend: "wasm" });
  const inputs = setup();
  const counts: number[] = [];
  const { curve, tau } = await adaptExpert(inputs, SETTINGS, {
    progress: "off",
    onStep: () => counts.push(tf.memory().numTensors),
  });
  const { start, end } = curve.startEnd(3);
  assert(end < start * 0.8, `loss went from ${start} to ${end}`);
  assert(counts.every((c) => c === counts[0]), `tensor counts per step: ${counts}`);
  deepStrictEqual([...tau.keys()], [...inputs.base.keys()]);
  inputs.heads.forEach(disposeHead);
});

Deno.test("an interrupted RI run resumes from its state and ends as an uninterrupted one", async () => {
  await initEngine({ backend: "wasm" });
  await using dir = await tempDir();
  const statePath = `${dir.path}/state.safetensors`;
  const inputs = setup();
  const straight = await adaptExpert(inputs, SETTINGS, { progress: "off" });
  // Interrupt at step 7: the state on disk is the one saved after step 4.
  await rejects(
    adaptExpert(inputs, SETTINGS, {
      statePath,
      progress: "off",
      onStep: (step) => {
        if (step === 7) throw new Error("interrupted");
      },
    }),
    /interrupted/,
  );
  const resumed = await adaptExpert(inputs, SETTINGS, { statePath, progress: "off" });
  assert(
    resumed.resumedFrom === 8 || resumed.resumedFrom === 4,
    `resumed from ${resumed.resumedFrom}`,
  );
  deepStrictEqual(resumed.curve.total, straight.curve.total);
  for (const [name, t] of straight.tau) deepStrictEqual(resumed.tau.get(name)!.data, t.data, name);
  // A state saved with other settings is refused, not silently mixed in.
  await rejects(
    adaptExpert(inputs, { ...SETTINGS, lr: 1e-3 }, { statePath, progress: "off" }),
    /belongs to another run/,
  );
  inputs.heads.forEach(disposeHead);
});

Deno.test("RI stops at the step where a parameter turns NaN, naming it", async () => {
  await initEngine({ backend: "wasm" });
  const inputs = setup();
  const name = "vision_model.post_layernorm.weight";
  const bad = inputs.expert.get(name)!;
  inputs.expert.set(name, { shape: bad.shape, data: bad.data.map((v, i) => (i === 0 ? NaN : v)) });
  await rejects(
    adaptExpert(inputs, SETTINGS, { progress: "off" }),
    (err: Error) => /step 1 made tensor "vision_model\.[\w.]+" non-finite/.test(err.message),
  );
  inputs.heads.forEach(disposeHead);
});

Deno.test("RI refuses an auxiliary set smaller than one batch, and an unknown task", async () => {
  await initEngine({ backend: "wasm" });
  const inputs = setup();
  const empty = { ...inputs.aux, count: 0, pixels: new Float32Array(0) };
  await rejects(adaptExpert({ ...inputs, aux: empty }, SETTINGS), /it is empty/);
  await rejects(adaptExpert({ ...inputs, task: "zzz" }, SETTINGS), /no head for task "zzz"/);
  inputs.heads.forEach(disposeHead);
});
