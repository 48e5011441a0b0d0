import { deepStrictEqual, ok as assert, throws } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../mod.ts";
import { CLIP_VIT_B32 } from "../../lib/models/config.ts";
import { disposeParams, initParams } from "../../lib/models/weights.ts";
import { imageFeatures } from "../../lib/models/vit.ts";
import { crossCheck } from "./crosscheck.ts";
import { SMALL_VIT } from "../helpers/small_models.ts";

Deno.test("ViT features, logits and gradients match PyTorch (quick-GELU)", async () => {
  await crossCheck(SMALL_VIT);
});

Deno.test("ViT features, logits and gradients match PyTorch (GELU, one channel)", async () => {
  await crossCheck({
    ...SMALL_VIT,
    activation: "gelu",
    channels: 1,
    heads: 4,
    imageSize: 8,
    patchSize: 2,
  });
});

Deno.test("a ViT-B/32-geometry forward pass gives [batch, 512] features", async () => {
  await initEngine({ backend: "wasm" });
  const before = tf.memory().numTensors;
  const params = initParams(CLIP_VIT_B32, 0);
  const pixels = tf.randomUniform([2, 3, 224, 224], -1, 1, "float32", 1);
  const f = imageFeatures(params, CLIP_VIT_B32, pixels);
  deepStrictEqual(f.shape, [2, 512]);
  assert(f.dataSync().every(Number.isFinite));
  tf.dispose([f, pixels]);
  disposeParams(params);
  deepStrictEqual(tf.memory().numTensors, before);
});

Deno.test("a wrong input shape names what was expected", async () => {
  await initEngine({ backend: "wasm" });
  const params = initParams(SMALL_VIT, 0);
  const x = tf.zeros([2, 1, 12, 12]);
  throws(() => imageFeatures(params, SMALL_VIT, x), /expected \[batch, 3, 12, 12\]/);
  x.dispose();
  disposeParams(params);
});
