import { deepStrictEqual, equal, rejects } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine, loadModel, type ViTConfig } from "../../mod.ts";
import { writeSafetensors } from "../../lib/io/safetensors.ts";
import { parameterShapes } from "../../lib/models/config.ts";
import { disposeHead, makeHead } from "../../lib/models/head.ts";
import { initHostParams } from "../../lib/models/weights.ts";
import { loadHeads, saveHeads, saveModel } from "../../lib/models/store.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { SMALL_VIT } from "../helpers/small_models.ts";

Deno.test("a saved model reads back bit for bit with its configuration", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/m.safetensors`;
  const host = initHostParams(SMALL_VIT, 3);
  await saveModel(path, SMALL_VIT, host, { note: "x" });
  const model = await loadModel(path);
  deepStrictEqual(model.config, SMALL_VIT);
  equal(model.metadata.note, "x");
  deepStrictEqual([...model.host.keys()], [...parameterShapes(SMALL_VIT).keys()]);
  for (const [name, t] of host) deepStrictEqual(model.host.get(name)!.data, t.data);
});

Deno.test("a CLIPModel-style file written by PyTorch loads, its geometry inferred", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/clip.safetensors`;
  const shapes = Object.fromEntries(parameterShapes(SMALL_VIT));
  // A whole CLIP checkpoint also holds the text tower and logit_scale: they must be ignored.
  await runPython(
    `import sys, json, st, torch
torch.manual_seed(0)
shapes = json.loads(sys.argv[2])
t = {k: torch.randn(*s) for k, s in shapes.items()}
t["text_model.embeddings.token_embedding.weight"] = torch.randn(10, 4)
t["logit_scale"] = torch.tensor([4.6052])
st.save(sys.argv[1], t, {"format": "pt"})`,
    [path, JSON.stringify(shapes)],
  );
  const model = await loadModel(path);
  const want: ViTConfig = { ...SMALL_VIT, heads: 1 }; // width 16 / 64 rounds up to one head
  deepStrictEqual(model.config, want);
  equal(model.host.size, parameterShapes(SMALL_VIT).size);
});

Deno.test("a missing or misshapen tensor is named in the error", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/bad.safetensors`;
  const name = "vision_model.encoder.layers.1.mlp.fc2.bias";
  const tensors = [...initHostParams(SMALL_VIT, 0)].filter(([n]) => n !== name)
    .map(([n, t]) => ({ name: n, shape: t.shape, data: t.data }));
  await writeSafetensors(path, tensors);
  await rejects(
    loadModel(path, SMALL_VIT),
    new RegExp(`"${name}": missing \\(expected shape \\[16\\]\\)`),
  );
  await rejects(loadModel(path, { ...SMALL_VIT, width: 24 }), /has shape \[16\], expected \[24\]/);
});

Deno.test("heads save and load with class names, scale and exact weights", async () => {
  await initEngine({ backend: "wasm" });
  await using dir = await tempDir();
  const path = `${dir.path}/heads.safetensors`;
  const a = makeHead("parity", ["even", "odd"], tf.tensor2d([[3, 4, 0], [0, 0, 2]]), 20);
  const b = makeHead("digits", ["0", "1", "2"], tf.randomNormal([3, 3], 0, 1, "float32", 5), 30);
  await saveHeads(path, [a, b]);
  const [a2, b2] = await loadHeads(path);
  deepStrictEqual([a2.task, a2.classes, a2.logitScale], ["parity", ["even", "odd"], 20]);
  deepStrictEqual([b2.task, b2.logitScale], ["digits", 30]);
  deepStrictEqual(await a2.weight.data(), new Float32Array([0.6, 0.8, 0, 0, 0, 1]));
  deepStrictEqual(await b2.weight.data(), await b.weight.data());
  [a, b, a2, b2].forEach(disposeHead);
});
