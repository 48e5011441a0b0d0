/**
 * ViT-B/32 geometry on real-format files, on the CPU: random CLIP ViT-B/32 weights written by
 * PyTorch (Hugging Face safetensors and open_clip `.pt`/safetensors), then the toolkit's
 * stages on them with the time of each and the process's peak memory (VmHWM): opening the
 * converted task vectors, CLIP preprocessing of a picture folder, the forward pass and head
 * logits, and one TIES merge streamed to disk. Then the whole study as `deno task merge
 * --config` runs it (RI for 3 experts, a few steps on a few pictures; Task Arithmetic and TIES
 * with and without RI; evaluation on labelled test folders), in a process of its own so that
 * its peak memory is its own.
 *
 * ```sh
 * ./deno run -A tests/real/b32_scale.ts [WORK_DIR]
 * ./deno run -A tests/real/b32_scale.ts --study WORK_DIR   # only the study, on files written before
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  clipImageFolder,
  describeEngine,
  initEngine,
  loadClipVision,
  openClipTaskVectors,
  prepareMerge,
  readHeadsFile,
  writeCheckpoint,
} from "../../mod.ts";
import { CLIP_VIT_B32 } from "../../lib/models/config.ts";
import { applyTaskVectors } from "../../lib/taskvec/task_vector.ts";
import { disposeHead, headLogits } from "../../lib/models/head.ts";
import { disposeParams, hostToParams } from "../../lib/models/weights.ts";
import { imageFeatures } from "../../lib/models/vit.ts";
import { resolveStudyConfig } from "../../lib/pipeline/config.ts";
import { runStudy } from "../../lib/pipeline/study.ts";
import { runScript, SET_CLASSES, writeClipSet } from "./fixtures.ts";

/** Peak resident memory of this process so far, in MiB (Linux VmHWM). */
export async function peakMemoryMiB(): Promise<number> {
  const status = await Deno.readTextFile("/proc/self/status");
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return Math.round(kb / 1024);
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const out = await fn();
  const s = ((performance.now() - start) / 1000).toFixed(1);
  console.log(`${label.padEnd(44)} ${s.padStart(6)} s   peak ${await peakMemoryMiB()} MiB`);
  return out;
}

async function main(dir: string): Promise<void> {
  const engine = await initEngine({ backend: "wasm" });
  console.log(describeEngine(engine));
  await timed("write B/32 set with PyTorch (not ours)", async () => {
    await writeClipSet(dir, { ...CLIP_VIT_B32, minimal: true } as typeof CLIP_VIT_B32);
    await runScript("images.py", [`${dir}/pictures`, "224"]);
    const here = new URL("./", import.meta.url).pathname;
    const folders = { aux: 8, classes: SET_CLASSES, per_class: 1 };
    await runScript("study_ref.py", [here, "folders", dir, JSON.stringify(folders)]);
  });
  using set = await timed(
    "open base + 3 experts (HF + open_clip .pt)",
    () =>
      openClipTaskVectors(`${dir}/hf/base`, {
        a: `${dir}/oc/experts/a.pt`,
        b: `${dir}/hf/experts/b.safetensors`,
        c: `${dir}/oc/experts/c.pt`,
      }),
  );
  const { config, host } = await timed(
    "load the base tower into memory",
    () => loadClipVision(`${dir}/hf/base`),
  );
  const folder = await clipImageFolder(`${dir}/pictures/imgs`);
  const pictures = await timed(
    `preprocess ${folder.count} pictures (CLIP, 224²)`,
    () => folder.images(0, folder.count),
  );
  const heads = await readHeadsFile(`${dir}/heads.safetensors`, {
    featureDim: config.projectionDim,
  });
  await timed(`forward ${pictures.count} pictures + 3 heads`, async () => {
    const params = hostToParams(host);
    const x = tf.tensor4d(pictures.pixels, [pictures.count, 3, 224, 224]);
    const f = imageFeatures(params, config, x);
    for (const h of heads) tf.dispose(await headLogits(h, f).data());
    tf.dispose([f, x]);
    disposeParams(params);
  });
  heads.forEach(disposeHead);
  await timed("TIES merge of 3 experts, streamed to disk", async () => {
    const merged = await prepareMerge("ties", set.vectors);
    await writeCheckpoint(`${dir}/merged.safetensors`, applyTaskVectors(set.base!, [merged], 1));
  });
}

/** The study on the files of `main`, as `deno task merge --config` runs it. */
async function study(dir: string): Promise<void> {
  const models = {
    base: "hf/base",
    experts: { a: "oc/experts/a.pt", b: "hf/experts/b.safetensors", c: "oc/experts/c.pt" },
    heads: "heads.safetensors",
    tasks: Object.fromEntries(Object.keys(SET_CLASSES).map((t) => [t, `tests/${t}`])),
    aux: "aux",
  };
  await Deno.writeTextFile(`${dir}/models.json`, JSON.stringify(models));
  const config = resolveStudyConfig({
    models: `${dir}/models.json`,
    methods: ["task_arithmetic", "ties"],
    steps: 2,
    batch: 4,
    auxSize: 8,
    lr: 1e-5,
    backend: "wasm",
    out: `${dir}/runs`,
    name: "b32",
  });
  const start = performance.now();
  const results = await runStudy(config, { progress: "off", log: () => {} });
  const s = ((performance.now() - start) / 1000).toFixed(1);
  const stages = Object.entries(results.data.seconds).map(([k, v]) => `${k} ${v} s`).join(", ");
  console.log(
    `${"study: RI 3 × 2 steps, 4 merges, evaluation".padEnd(44)} ${s.padStart(6)} s   ` +
      `peak ${await peakMemoryMiB()} MiB (own process)\n  stages: ${stages}`,
  );
}

if (import.meta.main && Deno.args[0] === "--study") {
  await study(Deno.args[1]);
} else if (import.meta.main) {
  const dir = Deno.args[0] ?? await Deno.makeTempDir({ prefix: "ri-b32-" });
  try {
    await main(dir);
    const self = new URL(import.meta.url).pathname;
    const { success } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", self, "--study", dir],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!success) throw new Error("the study failed");
  } finally {
    if (!Deno.args[0]) await Deno.remove(dir, { recursive: true });
  }
}
