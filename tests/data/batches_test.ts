import { deepStrictEqual, equal, notDeepStrictEqual, throws } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { type ImageSet, initEngine } from "../../mod.ts";
import { batches } from "../../lib/data/batches.ts";

const set: ImageSet = {
  count: 10,
  channels: 1,
  size: 2,
  pixels: Float32Array.from({ length: 40 }, (_, i) => Math.floor(i / 4) / 10),
  labels: Int32Array.from({ length: 10 }, (_, i) => i),
  classes: Array.from({ length: 10 }, (_, i) => `${i}`),
};

Deno.test("seeded batches visit every image once, in an order fixed by seed and epoch", async () => {
  await initEngine({ backend: "wasm" });
  const visit = (seed?: number, epoch?: number) => {
    const order: number[] = [];
    for (const b of batches(set, { batchSize: 3, seed, epoch })) order.push(...b.y.dataSync());
    return order;
  };
  deepStrictEqual(visit(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  deepStrictEqual(visit(1).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  deepStrictEqual(visit(1), visit(1));
  notDeepStrictEqual(visit(1, 0), visit(1, 1));
});

Deno.test("batches carry normalised pixels with their labels, shaped [n, c, h, w]", async () => {
  await initEngine({ backend: "wasm" });
  const shapes: number[][] = [];
  for (
    const { x, y, indices } of batches(set, {
      batchSize: 4,
      seed: 3,
      norm: { mean: 0.5, std: 0.5 },
    })
  ) {
    shapes.push(x.shape);
    const px = x.dataSync();
    const labels = y.dataSync();
    indices.forEach((k, i) => {
      equal(labels[i], k);
      equal(px[i * 4], Math.fround((Math.fround(k / 10) - 0.5) / 0.5));
    });
  }
  deepStrictEqual(shapes, [[4, 1, 2, 2], [4, 1, 2, 2], [2, 1, 2, 2]]);
  let n = 0;
  for (const _ of batches(set, { batchSize: 4, dropLast: true })) n++;
  equal(n, 2);
});

Deno.test("augment replaces each image, by its index, before normalisation", async () => {
  await initEngine({ backend: "wasm" });
  const seen: number[] = [];
  const augment = (image: Float32Array, index: number) => {
    seen.push(index);
    return image.map((v) => (index % 2 ? 1 - v : v));
  };
  for (
    const { x, indices } of batches(set, {
      batchSize: 4,
      seed: 2,
      norm: { mean: 0.5, std: 0.5 },
      augment,
    })
  ) {
    const px = x.dataSync();
    indices.forEach((k, i) => {
      const v = Math.fround(k / 10);
      equal(px[i * 4], Math.fround((Math.fround(k % 2 ? 1 - v : v) - 0.5) / 0.5));
    });
  }
  deepStrictEqual(seen.sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  deepStrictEqual(set.pixels[4], Math.fround(0.1)); // the set itself is untouched
  const bad = () => new Float32Array(3);
  throws(
    () => [...batches(set, { batchSize: 2, augment: bad })],
    /augment returned 3 values, expected 4/,
  );
});

Deno.test("batch tensors are freed as the loop moves on, and when it stops early", async () => {
  await initEngine({ backend: "wasm" });
  const before = tf.memory().numTensors;
  for (const _ of batches(set, { batchSize: 2, seed: 0 })) {
    equal(tf.memory().numTensors, before + 2);
  }
  equal(tf.memory().numTensors, before);
  for (const _ of batches(set, { batchSize: 2 })) break;
  equal(tf.memory().numTensors, before);
});
