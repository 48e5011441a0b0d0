/**
 * Test fixtures of the real-checkpoint tests: a small random CLIP checkpoint set written by
 * Python (tests/real/clip_set.py) in the real formats, and the PyTorch reference forward
 * (tests/real/clip_ref.py) run on the stored files.
 *
 * @module
 */
import type { ViTConfig } from "../../mod.ts";
import { runPython } from "../helpers/python.ts";

const HERE = new URL(".", import.meta.url).pathname;

/** CLIP geometry, shrunk: 64-dimensional heads (2 of them), 4×4 patches of 8×8 pixels. */
export const SMALL_CLIP: ViTConfig = {
  imageSize: 32,
  patchSize: 8,
  channels: 3,
  width: 128,
  layers: 2,
  heads: 2,
  mlpDim: 256,
  projectionDim: 64,
  activation: "quick_gelu",
  layerNormEps: 1e-5,
};

/** Runs one of this folder's Python scripts with `args`. */
export function runScript(script: string, args: string[]): Promise<string> {
  return runPython(`exec(open(${JSON.stringify(HERE + script)}).read())`, args);
}

/**
 * Writes the checkpoint set into `dir`: `hf/base/` (model.safetensors + config.json),
 * `hf_sharded/base/`, `hf_bin/base/` (two `.bin` shards and their index), `hf/experts/{a,b,c}.safetensors`, `oc/base.pt`,
 * `oc/experts/{a.pt, b.safetensors, c.pt}` and `heads.safetensors` (see clip_set.py).
 */
export async function writeClipSet(dir: string, config = SMALL_CLIP, seed = 0): Promise<void> {
  await runScript("clip_set.py", [dir, JSON.stringify({ ...config, seed })]);
}

/** One file for the PyTorch reference: where the vision tower is inside it. */
export interface RefJob {
  /** Checkpoint file. */
  path: string;
  /** Its layout. */
  layout: "hf" | "open_clip";
  /** Prefix of the layout's names ("" or "visual." and such). */
  prefix: string;
  /** Key of the nested dict holding the state dict, for training checkpoints. */
  key?: string;
  /** Where the projection comes from when the file has none. */
  projection_from?: { path: string; prefix: string };
}

/** The cases of the set: each file, how the reference reads it, and its layout. */
export function clipSetJobs(dir: string): Record<string, RefJob> {
  const base = `${dir}/hf/base/model.safetensors`;
  return {
    "hf/base": { path: base, layout: "hf", prefix: "" },
    "hf_sharded/base": {
      path: `${dir}/hf_sharded/base/model.safetensors.index.json`,
      layout: "hf",
      prefix: "",
    },
    "hf_bin/base": {
      path: `${dir}/hf_bin/base/pytorch_model.bin.index.json`,
      layout: "hf",
      prefix: "",
    },
    "hf/a": { path: `${dir}/hf/experts/a.safetensors`, layout: "hf", prefix: "" },
    "hf/b": { path: `${dir}/hf/experts/b.safetensors`, layout: "hf", prefix: "" },
    "hf/c": {
      path: `${dir}/hf/experts/c.safetensors`,
      layout: "hf",
      prefix: "",
      projection_from: { path: base, prefix: "" },
    },
    "oc/base": { path: `${dir}/oc/base.pt`, layout: "open_clip", prefix: "visual." },
    "oc/a": { path: `${dir}/oc/experts/a.pt`, layout: "open_clip", prefix: "model.visual." },
    "oc/b": { path: `${dir}/oc/experts/b.safetensors`, layout: "open_clip", prefix: "visual." },
    "oc/c": {
      path: `${dir}/oc/experts/c.pt`,
      layout: "open_clip",
      prefix: "module.visual.",
      key: "state_dict",
    },
  };
}

/** Features of every job on `pixels` from the PyTorch reference, by job name. */
export async function referenceFeatures(
  jobs: Record<string, RefJob & { cfg: ViTConfig }>,
  pixelsPath: string,
  outPath: string,
): Promise<string[]> {
  await runScript("clip_ref.py", [JSON.stringify(Object.values(jobs)), pixelsPath, outPath]);
  return Object.keys(jobs);
}

/** The tasks of the set (clip_set.py's heads) and their class counts. */
export const SET_CLASSES = { a: 3, b: 4, c: 5 } as const;

/**
 * A study's files in `dir`: the checkpoint set, an unlabelled `aux/` folder of `aux`
 * pictures, `tests/<task>/<class>/` with two pictures per class (all written by Python), and
 * two real-model descriptions over the same weights: `models-mixed.json` (a Hugging Face base
 * folder, experts as an open_clip `.pt`, a Hugging Face BF16 file and an open_clip training
 * checkpoint) and `models-oc.json` (everything in open_clip layout).
 */
export async function writeStudyFiles(dir: string, aux = 24): Promise<void> {
  await writeClipSet(dir);
  const spec = { aux, classes: SET_CLASSES, per_class: 2 };
  await runScript("study_ref.py", [HERE, "folders", dir, JSON.stringify(spec)]);
  const common = {
    heads: "heads.safetensors",
    tasks: Object.fromEntries(Object.keys(SET_CLASSES).map((t) => [t, `tests/${t}`])),
    aux: "aux",
  };
  const write = (name: string, base: string, b: string) =>
    Deno.writeTextFile(
      `${dir}/${name}`,
      JSON.stringify({
        base,
        experts: { a: "oc/experts/a.pt", b, c: "oc/experts/c.pt" },
        ...common,
      }),
    );
  await write("models-mixed.json", "hf/base", "hf/experts/b.safetensors");
  await write("models-oc.json", "oc/base.pt", "oc/experts/b.safetensors");
}

/** Accuracy per task of each model (a file as `RefJob`) from the PyTorch reference. */
export async function referenceAccuracy(
  dir: string,
  models: Record<string, RefJob>,
): Promise<Record<string, Record<string, number>>> {
  const spec = {
    cfg: SMALL_CLIP,
    heads: `${dir}/heads.safetensors`,
    tasks: Object.fromEntries(Object.keys(SET_CLASSES).map((t) => [t, `${dir}/tests/${t}`])),
    models,
  };
  const out = `${dir}/ref-accuracy.json`;
  await runScript("study_ref.py", [HERE, "accuracy", JSON.stringify(spec), out]);
  return JSON.parse(await Deno.readTextFile(out));
}
