import { deepStrictEqual, equal, ok as assert, rejects } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine, loadZoo } from "../../mod.ts";
import { configHash, zooDirectory } from "../../lib/zoo/config.ts";
import { propertyMethods } from "../../lib/zoo/properties.ts";
import { tempDir } from "../helpers/temp.ts";
import { smallZooConfig } from "../helpers/small_models.ts";

async function bytes(path: string): Promise<Uint8Array> {
  return await Deno.readFile(path);
}

Deno.test("a zoo rebuilt from the same seed, or resumed after an interruption, is identical", async () => {
  await initEngine({ backend: "wasm" });
  await using a = await tempDir();
  await using b = await tempDir();
  const before = tf.memory().numTensors;
  const config = smallZooConfig(3);
  const first = await loadZoo({ config, root: a.path, progress: "off" });
  const files = [
    "base.safetensors",
    ...first.taskNames.flatMap((t) => [`heads/${t}.safetensors`, `experts/${t}.safetensors`]),
  ];
  // A second build elsewhere gives the same bits and the same numbers.
  const second = await loadZoo({ config, root: b.path, progress: "off" });
  for (const f of files) {
    deepStrictEqual(await bytes(`${second.dir}/${f}`), await bytes(`${first.dir}/${f}`), f);
  }
  deepStrictEqual(second.properties.toJSON(), first.properties.toJSON());
  // An interrupted build (an expert and the properties missing) resumes to the same result.
  await Deno.remove(`${second.dir}/experts/${first.taskNames[2]}.safetensors`);
  await Deno.remove(`${second.dir}/zoo-mf4.json`);
  const resumed = await loadZoo({ config, root: b.path, progress: "off" });
  for (const f of files) {
    deepStrictEqual(await bytes(`${resumed.dir}/${f}`), await bytes(`${first.dir}/${f}`), f);
  }
  deepStrictEqual(resumed.properties.toJSON(), first.properties.toJSON());
  equal(resumed.times.pretrain, 0); // reused, not retrained
  assert(resumed.times.experts > 0);
  // A reused zoo reads its properties back.
  const reused = await loadZoo({ config, root: a.path, progress: "off", build: false });
  deepStrictEqual(reused.properties.toJSON(), first.properties.toJSON());
  for (const z of [first, second, resumed, reused]) z.dispose();
  equal(tf.memory().numTensors, before);
});

Deno.test("a zoo exposes its models, heads, data and properties", async () => {
  await initEngine({ backend: "wasm" });
  await using dir = await tempDir();
  const config = smallZooConfig(4);
  const zoo = await loadZoo({ config, root: dir.path, progress: "off" });
  deepStrictEqual(zoo.taskNames, ["mnist", "fashion", "mnist_rot90", "fashion_inv"]);
  equal(zoo.dir, await zooDirectory(config, dir.path));
  assert(zoo.dir.endsWith(`seed4-${await configHash(config)}`));
  equal(zoo.head("fashion_inv").classes.length, 10);
  const expert = await zoo.expert("mnist_rot90");
  equal(expert.size, zoo.base.size);
  const data = await zoo.data("mnist");
  equal(data.test.count, 64);
  const p = zoo.properties;
  equal(p.tasks.length, 4);
  for (const v of [...p.expert, ...p.base, ...p.taskArithmetic]) assert(v >= 0 && v <= 1);
  assert(zoo.toString().includes("best merge"));
  equal(p.data.merges.length, propertyMethods().length);
  const saved = JSON.parse(await Deno.readTextFile(`${zoo.dir}/zoo-mf4.json`));
  deepStrictEqual(saved.properties.expert, p.expert);
  // A larger suite of the same recipe shares the directory and the four tasks' artefacts.
  const before = await Deno.readFile(zoo.expertPath("mnist_rot90"));
  const mf8 = await loadZoo({
    config: { ...config, suite: "mf8" },
    root: dir.path,
    progress: "off",
  });
  equal(mf8.dir, zoo.dir);
  equal(mf8.times.pretrain, 0);
  deepStrictEqual(await Deno.readFile(mf8.expertPath("mnist_rot90")), before);
  deepStrictEqual(mf8.properties.expert.slice(0, 4), p.expert);
  equal(mf8.taskNames.length, 8);
  zoo.dispose();
  mf8.dispose();
  await rejects(
    loadZoo({ config: smallZooConfig(5), root: dir.path, progress: "off", build: false }),
    /base.safetensors is missing/,
  );
});
