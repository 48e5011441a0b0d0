/**
 * The data-using side of the merge interface: the driver gives `needs: "data"` methods the
 * data context, refuses them without one (or with the wrong heads or sources), records what
 * they read, and keeps data-free methods unaware of any data.
 */
import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import { merge } from "../../lib/merge/merge.ts";
import type { DataSourceName, MergeData, MergeMethod } from "../../lib/merge/method.ts";
import { describeDataUse, pickImages } from "../../lib/merge/data.ts";
import { scalingParam } from "../../lib/merge/params.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import type { Head } from "../../lib/models/head.ts";
import { VIT_TINY } from "../../lib/models/config.ts";
import type { ImageSet } from "../../lib/data/dataset.ts";
import { getMethod, MERGE_METHODS } from "../../lib/merge/registry.ts";

const tau = (v: number) =>
  new MemorySource(`τ${v}`, { w: { shape: [2], data: Float32Array.from([v, -v]) } });

/** A data-using method for the test: M = Σ_t (images of task t) · τ_t. */
const probe: MergeMethod = {
  name: "probe",
  title: "probe",
  summary: "weights each task by its number of training images",
  paper: "-",
  code: "-",
  params: [scalingParam(1, "test")],
  tensorRule: "every tensor",
  needs: "data",
  dataSource: () => "train",
  treatment: () => "elementwise",
  async prepare({ tasks, data }) {
    const counts: number[] = [];
    for (let t = 0; t < tasks.length; t++) counts.push((await data!.images("train", t)).count);
    return {
      tensor: (_name, _shape, taus) =>
        taus.reduce((acc, v, t) => acc.map((a, i) => a + counts[t] * v[i]), new Float32Array(2)),
      dataUse: { source: "train", perTask: Math.max(...counts), labels: true },
    };
  },
};

const head = (task: string) => ({ task, classes: ["a"], logitScale: 1 }) as unknown as Head;
const images = (count: number): ImageSet => ({
  count,
  channels: 1,
  size: 1,
  pixels: new Float32Array(count),
  labels: new Int32Array(count),
  classes: ["a"],
});

function context(sources: DataSourceName[], heads = 2): MergeData {
  return {
    model: {
      config: VIT_TINY,
      base: new Map(),
      heads: Array.from({ length: heads }, (_, i) => head(`t${i}`)),
    },
    sources,
    images: (_source, task) => Promise.resolve(images(task + 3)),
  };
}

Deno.test("a data-using method reads the context and the summary records what it read", async () => {
  const m = await merge(probe, [tau(1), tau(2)], { data: context(["train"]) });
  deepStrictEqual(m.get("w").data, Float32Array.from([3 + 8, -(3 + 8)]));
  deepStrictEqual(m.summary.data, { source: "train", perTask: 4, labels: true });
  ok(m.toString().includes("train inputs 4/task, with labels"));
});

Deno.test("a data-using method is refused without data, with other heads or sources", async () => {
  await rejects(merge(probe, [tau(1), tau(2)]), /method "probe" reads data .*run it in a study/);
  await rejects(
    merge(probe, [tau(1), tau(2)], { data: context(["train"], 3) }),
    /3 heads for 2 task vectors/,
  );
  await rejects(
    merge(probe, [tau(1), tau(2)], { data: context(["test_inputs"]) }),
    /reads train .*offer test_inputs/,
  );
});

Deno.test("data-free methods ignore a data context and record no data", async () => {
  const m = await merge("task_arithmetic", [tau(1), tau(2)], { data: context([]) });
  equal(m.summary.data, undefined);
});

Deno.test("every data-using method names its source; data-free ones name none", () => {
  for (const m of MERGE_METHODS) {
    equal(typeof m.dataSource === "function", m.needs === "data", m.name);
  }
  ok(getMethod("adamerging").needs === "data");
});

Deno.test("describeDataUse and pickImages", () => {
  equal(describeDataUse(undefined), "none");
  equal(
    describeDataUse({ source: "aux", perTask: 2048, labels: false, origin: "shapes" }),
    "aux (shapes) 2048/task, no labels",
  );
  deepStrictEqual(pickImages(3, 0, 0, "x"), Int32Array.from([0, 1, 2]));
  const pick = pickImages(100, 10, 5, "x");
  equal(new Set(pick).size, 10);
  deepStrictEqual(pick, pickImages(100, 10, 5, "x"));
  ok(pick.some((v, i) => v !== pickImages(100, 10, 6, "x")[i]));
});
