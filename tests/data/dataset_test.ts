import {
  deepStrictEqual,
  equal,
  notDeepStrictEqual,
  ok as assert,
  rejects,
  throws,
} from "node:assert/strict";
import {
  PRETRAIN_REGION,
  pretrainSplits,
  sourceOrder,
  taskIndices,
  taskSplits,
} from "../../lib/data/dataset.ts";
import { loadSource } from "../../lib/data/sources.ts";
import { SUITES, suiteTasks, taskByName, TASKS } from "../../lib/data/tasks.ts";

const FULL = { train: 3000, val: 500, test: 1000 };

Deno.test("no image is shared between tasks, splits or pretraining (largest suite, full sizes)", async () => {
  for (const name of ["mnist", "fashion"] as const) {
    const order = sourceOrder(await loadSource(name), 0);
    const seen = new Set<number>(order.subarray(0, PRETRAIN_REGION));
    let expected = PRETRAIN_REGION;
    for (const task of suiteTasks("mf20").filter((t) => t.source === name)) {
      const idx = taskIndices(task, FULL, order);
      for (const split of [idx.train, idx.val, idx.test]) {
        split.forEach((i) => seen.add(i));
        expected += split.length;
      }
    }
    equal(seen.size, expected, `${name}: some image is used twice`);
  }
});

Deno.test("a task's splits are fixed by the data seed and relabelled by its label map", async () => {
  const task = taskByName("mnist_parity");
  const sizes = { train: 50, val: 10, test: 20 };
  const a = await taskSplits(task, sizes, 0);
  const b = await taskSplits(task, sizes, 0);
  const c = await taskSplits(task, sizes, 1);
  deepStrictEqual(a.train.pixels, b.train.pixels);
  notDeepStrictEqual(a.train.pixels, c.train.pixels);
  const mnist = await loadSource("mnist");
  const idx = taskIndices(task, sizes, sourceOrder(mnist, 0));
  deepStrictEqual([...a.test.labels], [...idx.test].map((i) => mnist.labels[i] % 2));
  deepStrictEqual(a.train.classes, ["even", "odd"]);
  equal(a.train.pixels.length, 50 * 784);
  assert(a.train.pixels.every((v) => v >= 0 && v <= 1));
});

Deno.test("a task's images do not depend on the suite it is in", () => {
  const mf4 = suiteTasks("mf4"), mf20 = suiteTasks("mf20");
  deepStrictEqual(mf20.slice(0, 4), mf4);
  equal(mf20.length, SUITES.mf20);
  equal(new Set(TASKS.map((t) => t.name)).size, TASKS.length);
  equal(new Set(TASKS.map((t) => `${t.source}/${t.slot}`)).size, TASKS.length);
  for (const t of TASKS) equal(t.labels.map.length, 10);
  deepStrictEqual(suiteTasks("mf8").map((t) => t.name).sort(), [
    "fashion",
    "fashion_coarse",
    "fashion_inv",
    "fashion_vflip",
    "mnist",
    "mnist_inv",
    "mnist_parity",
    "mnist_rot90",
  ]);
  throws(() => suiteTasks("mf5"), /unknown suite "mf5": expected one of mf4, mf8, mf14, mf20/);
});

Deno.test("pretraining data: 20-way, both sources, from the reserved region", async () => {
  const { train, val } = await pretrainSplits(300, 50, 0);
  equal(train.count, 600);
  equal(val.count, 100);
  equal(train.classes.length, 20);
  const counts = [0, 0];
  train.labels.forEach((y) => counts[y < 10 ? 0 : 1]++);
  deepStrictEqual(counts, [300, 300]);
  await rejects(pretrainSplits(PRETRAIN_REGION, 1, 0), /exceed/);
});
