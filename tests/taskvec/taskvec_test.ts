import { deepStrictEqual, equal, ok as assert, rejects, throws } from "node:assert/strict";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { openCheckpoint } from "../../lib/io/open.ts";
import { MemorySource, type TensorSource } from "../../lib/tensor/source.ts";
import type { HostTensor } from "../../lib/tensor/host.ts";
import {
  addSources,
  scaleSource,
  subtractSources,
  WeightedSum,
} from "../../lib/taskvec/weighted_sum.ts";
import { applyTaskVectors, TaskVector } from "../../lib/taskvec/task_vector.ts";
import { openTaskVectors, TaskVectorSet } from "../../lib/taskvec/set.ts";
import { taskVectorStats } from "../../lib/taskvec/stats.ts";
import { tempDir } from "../helpers/temp.ts";

const f32 = (values: number[]) => new Float32Array(values);

/** A two-tensor model: w (2×2) and b (2). */
function model(label: string, w: number[], b: number[]): MemorySource {
  return new MemorySource(label, {
    w: { shape: [2, 2], data: f32(w) },
    b: { shape: [2], data: f32(b) },
  });
}

/** Wraps a source and logs every read as "label:name". */
function logged(source: TensorSource, log: string[]): TensorSource {
  return {
    label: source.label,
    names: () => source.names(),
    shape: (name) => source.shape(name),
    read: (name) => {
      log.push(`${source.label}:${name}`);
      return source.read(name);
    },
  };
}

Deno.test("algebra: add, subtract, scale and nested sums are lazy and exact", async () => {
  const a = model("a", [1, 2, 3, 4], [5, 6]);
  const b = model("b", [0.5, 0.25, -1, 2], [1, 1]);
  deepStrictEqual(await addSources(a, b).read("w"), f32([1.5, 2.25, 2, 6]));
  deepStrictEqual(await subtractSources(a, b).read("b"), f32([4, 5]));
  deepStrictEqual(await scaleSource(a, -0.5).read("w"), f32([-0.5, -1, -1.5, -2]));
  const nested = subtractSources(addSources(a, b), scaleSource(b, 2)); // a − b
  deepStrictEqual(await nested.read("w"), await subtractSources(a, b).read("w"));
  equal(nested.label, "(a + b) − 2·b");
  deepStrictEqual(nested.names(), ["w", "b"]);
  deepStrictEqual(nested.shape("w"), [2, 2]);
  // Reading returns fresh arrays: changing one does not change the sources.
  const out = await addSources(a, b).read("b");
  out[0] = 100;
  deepStrictEqual(await a.read("b"), f32([5, 6]));
});

Deno.test("algebra: θ − θ0 is the correctly rounded float32 difference", async () => {
  const base = new MemorySource("base", { x: { shape: [3], data: f32([1, 1e8, 0.1]) } });
  const expert = new MemorySource("exp", {
    x: { shape: [3], data: f32([1 + 2 ** -23, 1e8 + 8, 0.3]) },
  });
  const tau = await new TaskVector("t", base, expert).read("x");
  deepStrictEqual(tau, f32([2 ** -23, 8, Math.fround(Math.fround(0.3) - Math.fround(0.1))]));
});

Deno.test("algebra: mismatched names or shapes name both sources and the tensor", () => {
  const base = model("/ckpt/base.safetensors", [1, 2, 3, 4], [5, 6]);
  const missing = new MemorySource("/ckpt/mnist.safetensors", {
    w: { shape: [2, 2], data: f32([1, 2, 3, 4]) },
  });
  throws(() => new TaskVector("mnist", base, missing), {
    message: 'tensor "b" is in /ckpt/base.safetensors but not in /ckpt/mnist.safetensors',
  });
  const reshaped = new MemorySource("/ckpt/svhn.safetensors", {
    w: { shape: [4], data: f32([1, 2, 3, 4]) },
    b: { shape: [2], data: f32([5, 6]) },
  });
  throws(() => new TaskVector("svhn", base, reshaped), {
    message:
      'tensor "w" has shape [4] in /ckpt/svhn.safetensors but [2, 2] in /ckpt/base.safetensors',
  });
  const extra = new MemorySource("/ckpt/extra.safetensors", {
    w: { shape: [2, 2], data: f32([1, 2, 3, 4]) },
    b: { shape: [2], data: f32([5, 6]) },
    head: { shape: [1], data: f32([0]) },
  });
  throws(
    () => addSources(base, extra),
    /tensor "head" is in \/ckpt\/extra.safetensors but not in \/ckpt\/base/,
  );
  throws(() => scaleSource(base, NaN), /weight NaN for \/ckpt\/base.safetensors/);
  throws(() => new WeightedSum([]), /at least one term/);
});

Deno.test("apply: θ0 + Σλτ with one λ or one per task, reading the base once", async () => {
  const log: string[] = [];
  const base = logged(model("base", [1, 1, 1, 1], [0, 0]), log);
  const a = new TaskVector("a", base, logged(model("A", [2, 1, 1, 1], [1, 0]), log));
  const b = new TaskVector("b", base, logged(model("B", [1, 3, 1, 1], [0, -2]), log));
  deepStrictEqual(await applyTaskVectors(base, [a, b], 0.5).read("w"), f32([1.5, 2, 1, 1]));
  deepStrictEqual(log, ["base:w", "A:w", "B:w"]);
  deepStrictEqual(await applyTaskVectors(base, [a, b], [2, -1]).read("b"), f32([2, 2]));
  throws(() => applyTaskVectors(base, [a, b], [1]), /1 lambdas for 2 task vectors/);
});

Deno.test("stats: one streaming pass, tensor by tensor, base read once per tensor", async () => {
  const log: string[] = [];
  const base = logged(model("base", [1, 1, 1, 1], [1, 1]), log);
  const experts = [
    model("A", [2, 1, 1, 1], [1, 1]), // τ = e1 in w
    model("B", [1, 2, 1, 1], [1, 1]), // τ = e2 in w
    model("C", [3, 1, 1, 1], [1, 4]), // τ = 2·e1 in w, 3·e1 in b
  ].map((e) => logged(e, log));
  const tasks = ["A", "B", "C"];
  const set = new TaskVectorSet(
    tasks,
    experts.map((e, i) => new TaskVector(tasks[i], base, e)),
    base,
  );
  const progress: string[] = [];
  const { norms, cosine } = await set.stats({
    onTensor: (n, done, total) => progress.push(`${n} ${done}/${total}`),
  });
  deepStrictEqual(log, ["A:w", "base:w", "B:w", "C:w", "A:b", "base:b", "B:b", "C:b"]);
  deepStrictEqual(progress, ["w 1/2", "b 2/2"]);
  deepStrictEqual(norms.tensors, ["w", "b"]);
  deepStrictEqual(norms.perTensor, [[1, 0], [1, 0], [2, 3]]);
  deepStrictEqual(norms.global, [1, 1, Math.sqrt(13)]);
  const c = 2 / Math.sqrt(13);
  deepStrictEqual(cosine.matrix, [[1, 0, c], [0, 1, 0], [c, 0, 1]]);
  deepStrictEqual(cosine.tasks, tasks);
  assert(cosine.toString().includes("0.5547"), cosine.toString());
  assert(norms.toString().includes("C     ‖τ‖ = 3.6056, largest b 3.0000"), norms.toString());
});

Deno.test("stats: a zero task vector has norm 0 and NaN similarities", async () => {
  const base = model("base", [1, 2, 3, 4], [5, 6]);
  const same = new TaskVector("same", base, base);
  const other = new TaskVector("other", base, model("o", [2, 2, 3, 4], [5, 6]));
  const { norms, cosine } = await taskVectorStats(["same", "other"], [same, other]);
  deepStrictEqual(norms.global, [0, 1]);
  assert(Number.isNaN(cosine.matrix[0][0]) && Number.isNaN(cosine.matrix[0][1]));
  equal(cosine.matrix[1][1], 1);
  await rejects(taskVectorStats(["a"], [same, other]), /1 task names for 2 task vectors/);
});

Deno.test("set: experts by directory, list or record; the base is left out of a directory", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await writeCheckpoint(`${d}/base.safetensors`, model("base", [0, 0, 0, 0], [0, 0]));
  await writeCheckpoint(`${d}/mnist.safetensors`, model("m", [1, 0, 0, 0], [0, 0]));
  await writeCheckpoint(`${d}/svhn`, model("s", [0, 2, 0, 0], [0, 0]), { maxShardBytes: 16 });
  await writeCheckpoint(`${d}/gtsrb.safetensors.index.json`, model("g", [0, 0, 3, 0], [0, 0]));
  using fromDir = await openTaskVectors(`${d}/base.safetensors`, d);
  deepStrictEqual(fromDir.tasks, ["gtsrb", "mnist", "svhn"]); // shards of gtsrb are not experts
  deepStrictEqual((await fromDir.norms()).global, [3, 1, 2]);
  deepStrictEqual(await fromDir.get("svhn").read("w"), f32([0, 2, 0, 0]));
  equal(fromDir.get("mnist").label, "τ(mnist)");
  using fromList = await openTaskVectors(`${d}/base.safetensors`, [
    `${d}/svhn`,
    `${d}/mnist.safetensors`,
  ]);
  deepStrictEqual(fromList.tasks, ["svhn", "mnist"]);
  using fromRecord = await openTaskVectors(`${d}/base.safetensors`, {
    digits: `${d}/mnist.safetensors`,
  });
  deepStrictEqual(fromRecord.tasks, ["digits"]);
  using single = await openTaskVectors(`${d}/base.safetensors`, `${d}/svhn`);
  deepStrictEqual(single.tasks, ["svhn"]); // a directory that is one checkpoint
  throws(() => fromDir.get("cars"), /no task "cars" \(tasks: gtsrb, mnist, svhn\)/);
  assert(fromDir.toString().startsWith("TaskVectorSet(3 tasks: gtsrb, mnist, svhn; 2 tensors"));
  await rejects(
    openTaskVectors(`${d}/base.safetensors`, [
      `${d}/mnist.safetensors`,
      `${d}/x/mnist.safetensors`,
    ]),
    /task "mnist" named twice/,
  );
  await Deno.mkdir(`${d}/empty`);
  await rejects(openTaskVectors(`${d}/base.safetensors`, `${d}/empty`), /no expert checkpoints/);
});

Deno.test("set: an expert whose layout differs fails on open, naming both files and the tensor", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await writeCheckpoint(`${d}/base.safetensors`, model("base", [0, 0, 0, 0], [0, 0]));
  const tensors: Record<string, HostTensor> = { w: { shape: [2, 2], data: f32([1, 2, 3, 4]) } };
  tensors.b = { shape: [1, 2], data: f32([0, 0]) };
  await writeCheckpoint(`${d}/experts/bad.safetensors`, new MemorySource("bad", tensors));
  await rejects(openTaskVectors(`${d}/base.safetensors`, `${d}/experts`), {
    message:
      `tensor "b" has shape [1, 2] in ${d}/experts/bad.safetensors but [2] in ${d}/base.safetensors`,
  });
});

Deno.test("set: apply gives a source that writeCheckpoint streams to disk", async () => {
  await using dir = await tempDir();
  const base = model("base", [1, 1, 1, 1], [0, 0]);
  const set = new TaskVectorSet(["a"], [
    new TaskVector("a", base, model("a", [3, 1, 1, 1], [2, 0])),
  ], base);
  const out = await writeCheckpoint(`${dir.path}/merged.safetensors`, set.apply(0.25), {
    dtype: "F16",
  });
  using merged = await openCheckpoint(out.path);
  equal(merged.dtype("w"), "F16");
  deepStrictEqual(await merged.read("w"), f32([1.5, 1, 1, 1]));
  deepStrictEqual(await merged.read("b"), f32([0.5, 0]));
  throws(() => new TaskVectorSet(["a"], []).apply(1), /1 task names for 0 task vectors/);
  throws(() => new TaskVectorSet([], []).apply(1), /no base model/);
  throws(() => new TaskVectorSet(["a", "a"], [base, base]), /task "a" appears twice/);
});
