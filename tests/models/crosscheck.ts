/**
 * Cross-check of the ViT against the independent PyTorch reference (clip_vision_ref.py):
 * same weights and inputs, features, head logits and every parameter's gradient compared.
 *
 * @module
 */
import { ok as assert } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { type BackendName, type HostParams, initEngine, type ViTConfig } from "../../mod.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { writeSafetensors } from "../../lib/io/safetensors.ts";
import { parameterShapes } from "../../lib/models/config.ts";
import { headLogits, makeHead } from "../../lib/models/head.ts";
import { disposeParams, toVariables } from "../../lib/models/weights.ts";
import { saveModel } from "../../lib/models/store.ts";
import { imageFeatures } from "../../lib/models/vit.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { randomViTParams } from "../helpers/small_models.ts";

const REF = new URL("./clip_vision_ref.py", import.meta.url).pathname;

/** Every tensor random (LayerNorm scales near 1), so every parameter matters to the output. */
function randomHost(config: ViTConfig, seed: number): HostParams {
  const rng = new Rng(seed);
  return randomViTParams(config, () => rng);
}

/** ‖a − b‖ / ‖scale‖ (scale defaults to b). */
function relError(a: Float32Array, b: Float32Array, scale = b): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) num += (a[i] - b[i]) ** 2;
  for (let i = 0; i < scale.length; i++) den += scale[i] ** 2;
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/**
 * Runs the same weights and inputs through our ViT (on `backend`) and the PyTorch reference,
 * and asserts features, head logits and every parameter's gradient agree.
 */
export async function crossCheck(config: ViTConfig, backend: BackendName = "wasm") {
  await initEngine({ backend });
  await using dir = await tempDir();
  const rng = new Rng(7);
  const batch = 3, classes = 5;
  const host = randomHost(config, 11);
  const pixels = rng.normals(batch * config.channels * config.imageSize ** 2);
  const probe = rng.normals(batch * config.projectionDim);
  const head = rng.normals(classes * config.projectionDim);
  const labels = Float32Array.from({ length: batch }, () => rng.int(classes));
  const scale = 7;
  await saveModel(`${dir.path}/params.safetensors`, config, host);
  await writeSafetensors(`${dir.path}/inputs.safetensors`, [
    {
      name: "pixels",
      shape: [batch, config.channels, config.imageSize, config.imageSize],
      data: pixels,
    },
    { name: "probe", shape: [batch, config.projectionDim], data: probe },
    { name: "head", shape: [classes, config.projectionDim], data: head },
    { name: "labels", shape: [batch], data: labels },
    { name: "scale", shape: [], data: new Float32Array([scale]) },
  ]);
  await runPython(`exec(open(${JSON.stringify(REF)}).read())`, [
    `${dir.path}/params.safetensors`,
    `${dir.path}/inputs.safetensors`,
    `${dir.path}/out.safetensors`,
    JSON.stringify(config),
  ]);
  using ref = await SafetensorsReader.open(`${dir.path}/out.safetensors`);

  const params: Record<string, tf.Tensor> = {};
  for (const [name, t] of host) params[name] = tf.tensor(t.data, [...t.shape]);
  const vars = toVariables(params);
  disposeParams(params);
  const x = tf.tensor4d(pixels, [batch, config.channels, config.imageSize, config.imageSize]);
  const p = tf.tensor2d(probe, [batch, config.projectionDim]);
  const h = makeHead(
    "t",
    ["a", "b", "c", "d", "e"],
    tf.tensor2d(head, [classes, config.projectionDim]),
    scale,
  );
  const onehot = tf.oneHot(tf.tensor1d(labels, "int32"), classes);
  const { value, grads } = tf.variableGrads(() => {
    const f = imageFeatures(vars, config, x);
    const ce = tf.losses.softmaxCrossEntropy(onehot, headLogits(h, f));
    return f.mul(p).sum().add(ce) as tf.Scalar;
  });
  value.dispose();
  const features = imageFeatures(vars, config, x);
  const logits = headLogits(h, features);
  const errors: Record<string, number> = {
    features: relError((await features.data()) as Float32Array, await ref.read("features")),
    logits: relError((await logits.data()) as Float32Array, await ref.read("logits")),
  };
  for (const name of parameterShapes(config).keys()) {
    const g = grads[vars[name].name];
    const want = await ref.read(`grad.${name}`);
    // The key bias's gradient is zero in exact arithmetic (softmax ignores a shift of a whole
    // row of scores), so its error is measured against the query bias's gradient.
    const scale = name.endsWith("k_proj.bias")
      ? await ref.read(`grad.${name.replace("k_proj", "q_proj")}`)
      : want;
    errors[name] = relError((await g.data()) as Float32Array, want, scale);
  }
  tf.dispose([features, logits, x, p, onehot, h.weight, ...Object.values(grads)]);
  disposeParams(vars);
  const worst = Object.entries(errors).sort((a, b) => b[1] - a[1])[0];
  assert(worst[1] < 1e-4, `relative error ${worst[1]} on ${worst[0]} (limit 1e-4)`);
  assert(Object.keys(errors).length === parameterShapes(config).size + 2);
}
