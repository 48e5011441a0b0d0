import { deepStrictEqual, ok as assert } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  clipImageFolder,
  initEngine,
  loadClipVision,
  openClipTaskVectors,
  openClipVision,
  prepareMerge,
} from "../../mod.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { writeSafetensors } from "../../lib/io/safetensors.ts";
import { disposeParams, hostToParams } from "../../lib/models/weights.ts";
import { imageFeatures } from "../../lib/models/vit.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { assertSameValues, relError } from "./arrays.ts";
import { clipSetJobs, referenceFeatures, runScript, SMALL_CLIP, writeClipSet } from "./fixtures.ts";

/** The path our loader opens for a job (a Hugging Face directory for the base models). */
function loaderPath(job: string, path: string): string {
  return job.endsWith("base") && job.startsWith("hf") ? path.replace(/\/[^/]+$/, "") : path;
}

Deno.test("real CLIP checkpoint files: PyTorch cross-check, layouts, task vectors", async (t) => {
  await initEngine({ backend: "wasm" });
  await using dir = await tempDir();
  await writeClipSet(dir.path);
  await t.step("features on stored HF and open_clip files match PyTorch", () => features(dir.path));
  await t.step("both layouts convert to identical tensors", () => sameTensors(dir.path));
  await t.step("task vectors and merges stream over converted files", () => merges(dir.path));
  await t.step(
    "image folder → features matches PIL preprocessing → PyTorch",
    () => pictures(dir.path),
  );
});

async function features(d: string): Promise<void> {
  const jobs = clipSetJobs(d);
  const c = SMALL_CLIP;
  const batch = 3;
  const pixels = new Rng(5).normals(batch * 3 * c.imageSize ** 2);
  const pixelsPath = `${d}/pixels.safetensors`;
  await writeSafetensors(pixelsPath, [
    { name: "pixels", shape: [batch, 3, c.imageSize, c.imageSize], data: pixels },
  ]);
  const ours: Record<string, Float32Array> = {};
  using base = await openClipVision(`${d}/hf/base`);
  deepStrictEqual(base.config, SMALL_CLIP); // heads from config.json
  const withCfg: Record<string, (typeof jobs)[string] & { cfg: typeof c }> = {};
  for (const [name, job] of Object.entries(jobs)) {
    const { config, host } = await loadClipVision(loaderPath(name, job.path), {
      projectionFrom: job.projection_from ? base : undefined,
    });
    deepStrictEqual(config, SMALL_CLIP, `${name}: config`); // 64-dim heads without config.json
    const params = hostToParams(host);
    const x = tf.tensor4d(pixels, [batch, 3, c.imageSize, c.imageSize]);
    const f = imageFeatures(params, config, x);
    ours[name] = (await f.data()) as Float32Array;
    tf.dispose([f, x]);
    disposeParams(params);
    withCfg[name] = { ...job, cfg: config };
  }
  const names = await referenceFeatures(withCfg, pixelsPath, `${d}/ref.safetensors`);
  using ref = await SafetensorsReader.open(`${d}/ref.safetensors`);
  for (const [i, name] of names.entries()) {
    const want = await ref.read(`features.${i}`);
    deepStrictEqual(want.length, batch * c.projectionDim);
    const err = relError(ours[name], want);
    assert(err < 1e-4, `${name}: relative error ${err} against PyTorch (limit 1e-4)`);
  }
  // The experts differ from the base, so matching each reference is not a coincidence.
  assert(relError(ours["hf/a"], ours["hf/base"]) > 1e-3);
}

async function sameTensors(d: string): Promise<void> {
  using hfBase = await openClipVision(`${d}/hf/base`);
  const pairs: [string, string][] = [
    [`${d}/hf/base/model.safetensors`, `${d}/oc/base.pt`],
    [`${d}/hf/experts/a.safetensors`, `${d}/oc/experts/a.pt`],
    [`${d}/hf/experts/b.safetensors`, `${d}/oc/experts/b.safetensors`],
    [`${d}/hf/experts/c.safetensors`, `${d}/oc/experts/c.pt`],
  ];
  for (const [hfPath, ocPath] of pairs) {
    using hf = await openClipVision(hfPath, { projectionFrom: hfBase });
    using oc = await openClipVision(ocPath);
    deepStrictEqual(hf.layout, "hf");
    deepStrictEqual(oc.layout, "open_clip");
    deepStrictEqual(oc.names(), hf.names());
    for (const name of hf.names()) {
      deepStrictEqual(oc.shape(name), hf.shape(name));
      assertSameValues(await oc.read(name), await hf.read(name), `${ocPath}: ${name}`);
    }
  }
}

async function merges(d: string): Promise<void> {
  using hf = await openClipTaskVectors(`${d}/hf_sharded/base`, {
    a: `${d}/hf/experts/a.safetensors`,
    b: `${d}/hf/experts/b.safetensors`,
    c: `${d}/hf/experts/c.safetensors`,
  });
  using oc = await openClipTaskVectors(`${d}/oc/base.pt`, [
    `${d}/oc/experts/a.pt`,
    `${d}/oc/experts/b.safetensors`,
    `${d}/oc/experts/c.pt`,
  ]);
  deepStrictEqual(oc.tasks, ["a", "b", "c"]);
  const proj = "visual_projection.weight";
  assert((await hf.get("c").read(proj)).every((v) => v === 0)); // borrowed from the base
  const mHf = await prepareMerge("ties", hf.vectors);
  const mOc = await prepareMerge("ties", oc.vectors);
  for (const name of hf.names()) {
    assertSameValues(await mOc.read(name), await mHf.read(name), name);
  }
  const norms = await oc.norms();
  assert(norms.toString().length > 0);
}

/** Pictures through our folder reader and ViT vs PIL's preprocessing and the PyTorch forward. */
async function pictures(d: string): Promise<void> {
  const c = SMALL_CLIP;
  await runScript("images.py", [`${d}/pictures`, String(c.imageSize)]);
  // The reference's pixels: PIL's preprocessing of each picture, in the folder's file order.
  const folder = await clipImageFolder(`${d}/pictures/imgs`, { size: c.imageSize });
  const names = folder.files.map((f) => f.split("/").pop()!);
  await runPython(
    `import sys, json, torch, st
ref = st.load(sys.argv[1])[0]
st.save(sys.argv[2], {"pixels": torch.stack([ref["clip." + n] for n in json.loads(sys.argv[3])])})`,
    [`${d}/pictures/ref.safetensors`, `${d}/pictures/pixels.safetensors`, JSON.stringify(names)],
  );
  const jobs = clipSetJobs(d);
  const { config, host } = await loadClipVision(`${d}/oc/experts/a.pt`);
  await referenceFeatures(
    { a: { ...jobs["oc/a"], cfg: config } },
    `${d}/pictures/pixels.safetensors`,
    `${d}/pictures/ref_features.safetensors`,
  );
  const params = hostToParams(host);
  const set = await folder.images(0, folder.count);
  const x = tf.tensor4d(set.pixels, [set.count, 3, c.imageSize, c.imageSize]);
  const f = imageFeatures(params, config, x);
  const ours = (await f.data()) as Float32Array;
  tf.dispose([f, x]);
  disposeParams(params);
  using ref = await SafetensorsReader.open(`${d}/pictures/ref_features.safetensors`);
  const want = await ref.read("features.0");
  deepStrictEqual(ours.length, folder.count * c.projectionDim);
  // PNG pixels are identical to PIL's, so their features agree to float32 rounding; JPEG
  // decoders differ by a few levels (clip_images_test.ts), which this random tower amplifies.
  const e = c.projectionDim;
  for (const [i, name] of names.entries()) {
    const err = relError(ours.subarray(i * e, (i + 1) * e), want.subarray(i * e, (i + 1) * e));
    const limit = name.endsWith(".png") ? 1e-4 : 1e-2;
    assert(err < limit, `${name}: relative error ${err} against PIL + PyTorch (limit ${limit})`);
  }
}
