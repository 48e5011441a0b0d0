/**
 * Streaming at full size: 8 experts of the CLIP ViT-B/32 vision tower's shape (random weights,
 * 351 MB each in float32) merged by `deno task merge` in a child process, whose peak resident
 * memory (VmHWM) must stay near (experts + 2) × the largest tensor plus the runtime: below the
 * size of one expert, let alone experts × model. The SVD methods at this size are measured by the opt-in test below
 * (RI_MERGE_BENCH=1), not in CI.
 */
import { equal, ok as assert } from "node:assert/strict";
import { openCheckpoint } from "../../lib/io/open.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { numel } from "../../lib/tensor/host.ts";
import { tempDir } from "../helpers/temp.ts";
import { randomModel, runMergeTask, vitB32Layout } from "./fixtures.ts";

const EXPERTS = 8;
const MiB = 1024 * 1024;

/** Writes the base and the experts; returns their paths. */
async function writeModels(dir: string) {
  const layout = vitB32Layout();
  const base = `${dir}/base.safetensors`;
  await writeCheckpoint(base, randomModel(layout, 1));
  const experts = [];
  for (let t = 0; t < EXPERTS; t++) {
    experts.push(`${dir}/expert${t}.safetensors`);
    await writeCheckpoint(experts[t], randomModel(layout, 1, t));
  }
  return { layout, base, experts };
}

/** Runs `deno task merge` in a child; returns its time and peak memory (MiB) as it prints them. */
async function mergeInChild(args: string[]) {
  const { code, stdout, stderr } = await runMergeTask(args);
  equal(code, 0, stderr);
  const match = stdout.match(/time ([\d.]+) s, peak memory \(VmHWM\) (\d+) MiB/);
  assert(match, stdout);
  return { seconds: Number(match[1]), peakMiB: Number(match[2]), stdout };
}

Deno.test("8 ViT-B/32-shaped experts merge by streaming with bounded peak memory", async () => {
  await using dir = await tempDir();
  const { layout, base, experts } = await writeModels(dir.path);
  const largest = Math.max(...layout.map(([, s]) => numel(s))) * 4 / MiB;
  const model = layout.reduce((n, [, s]) => n + numel(s), 0) * 4 / MiB;
  const out = `${dir.path}/merged.safetensors`;
  const run = await mergeInChild([
    "--method",
    "task_arithmetic",
    "--base",
    base,
    "--experts",
    ...experts,
    "--out",
    out,
  ]);
  console.log(
    `task_arithmetic, ${EXPERTS} experts of ${model.toFixed(0)} MiB (largest tensor ` +
      `${largest.toFixed(1)} MiB): ${run.seconds} s, peak memory ${run.peakMiB} MiB`,
  );
  // About T + 4 live tensors plus the runtime: less than ONE expert model (not T × the model)
  assert(run.peakMiB < model, `peak ${run.peakMiB} MiB ≥ one model (${model.toFixed(0)} MiB)`);
  using merged = await openCheckpoint(out);
  const name = "vision_model.encoder.layers.11.mlp.fc2.weight";
  const theta0 = await randomModel(layout, 1).read(name);
  const expected = new Float32Array(theta0);
  for (let t = 0; t < EXPERTS; t++) {
    const theta = await randomModel(layout, 1, t).read(name);
    for (let i = 0; i < expected.length; i++) expected[i] += 0.3 * (theta[i] - theta0[i]);
  }
  const got = await merged.read(name);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
  assert(worst < 1e-5, `merged ${name} differs by ${worst}`);
});

Deno.test({
  name: "ViT-B/32 scale, SVD methods and TIES: time and peak memory (RI_MERGE_BENCH=1)",
  ignore: Deno.env.get("RI_MERGE_BENCH") !== "1",
  fn: async () => {
    await using dir = await tempDir();
    const { base, experts } = await writeModels(dir.path);
    const methods = (Deno.env.get("RI_MERGE_BENCH_METHODS") ?? "ties,tsv_m,iso_c,iso_cts").split(
      ",",
    );
    for (const method of methods) {
      const run = await mergeInChild([
        "--method",
        method,
        "--base",
        base,
        "--experts",
        ...experts,
        "--out",
        `${dir.path}/${method}.safetensors`,
      ]);
      console.log(`${method}: ${run.seconds} s, peak memory ${run.peakMiB} MiB`);
    }
  },
});
