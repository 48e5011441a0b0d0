/**
 * The kinds of merge methods beyond "one merged model from the task vectors": methods that build
 * one model per task, methods limited in how many task vectors they take, methods that read θ0
 * itself, and list-valued parameters. Each is exercised with a small method defined here.
 */
import { deepStrictEqual, equal, ok as assert, rejects, throws } from "node:assert/strict";
import { mergeCheckpoints } from "../../lib/merge/files.ts";
import { checkTaskCount, merge, prepareMerge } from "../../lib/merge/merge.ts";
import type { MergeMethod } from "../../lib/merge/method.ts";
import { numbersParam, resolveParams, scalingParam } from "../../lib/merge/params.ts";
import { describeMethod, taskCountText } from "../../lib/merge/registry.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { openCheckpoint } from "../../lib/io/open.ts";
import { TaskVector } from "../../lib/taskvec/task_vector.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { checkStudyMethods } from "../../lib/pipeline/study.ts";
import { tempDir } from "../helpers/temp.ts";

const vec = (label: string, v: number[]) =>
  new MemorySource(label, { w: { shape: [v.length], data: new Float32Array(v) } });

/** Task t's model keeps only τ_t's entries of largest magnitude among the tasks (a toy mask). */
const perTask: MergeMethod = {
  name: "toy_per_task",
  title: "toy per-task",
  paper: "-",
  code: "-",
  summary: "task t keeps the entries where |τ_t| is largest",
  tensorRule: "every tensor",
  output: "per-task",
  params: [scalingParam(1, "test")],
  treatment: () => "elementwise",
  prepare: () =>
    Promise.resolve({
      tensor: () => {
        throw new Error("per-task only");
      },
      taskTensor: (task, _name, _shape, taus) =>
        taus[task].map((v, i) => taus.every((o) => Math.abs(o[i]) <= Math.abs(v)) ? v : 0),
    }),
};

/** θ = θ0 + mean of the experts, computed from θ0 and the task vectors (needs θ0). */
const readsBase: MergeMethod = {
  name: "toy_base",
  title: "toy base",
  paper: "-",
  code: "-",
  summary: "M = (θ0 + Σ τ_t) − θ0",
  tensorRule: "every tensor",
  needsBase: true,
  taskCount: { min: 2, max: 2 },
  params: [scalingParam(1, "test"), {
    name: "weights",
    type: "numbers",
    default: [],
    min: 0,
    source: "test",
    meaning: "weights",
  }],
  treatment: () => "elementwise",
  prepare: () =>
    Promise.resolve({
      tensor: (_name, _shape, taus, base) => {
        if (!base) throw new Error("no base");
        return base.map((b, i) => b + taus[0][i] + taus[1][i] - b);
      },
    }),
};

Deno.test("a per-task method gives one task vector per task, and no single merged one", async () => {
  const taus = [vec("a", [1, -3, 0]), vec("b", [2, 1, -1])];
  const m = await merge(perTask, taus);
  equal(m.perTask?.length, 2);
  deepStrictEqual([...m.perTask![0].get("w").data], [0, -3, 0]);
  deepStrictEqual([...m.perTask![1].get("w").data], [2, 0, -1]);
  throws(() => m.get("w"), /one model per task/);
  throws(() => m.names(), /perTask\[t\]/);
  const prepared = await prepareMerge(perTask, taus, { scaling: 2 });
  await rejects(prepared.read("w"), /one model per task/);
  deepStrictEqual([...await prepared.task(1).read("w")], [4, 0, -2]);
  throws(() => prepared.task(2), /no task 2/);
  assert(String(m).includes("one model per task"));
});

Deno.test("a per-task method writes one checkpoint per task", async () => {
  await using dir = await tempDir();
  const model = (v: number[]) => vec("m", v);
  await writeCheckpoint(`${dir.path}/base.safetensors`, model([1, 1, 1]));
  await writeCheckpoint(`${dir.path}/a.safetensors`, model([2, -2, 1]));
  await writeCheckpoint(`${dir.path}/b.safetensors`, model([3, 2, 0]));
  const out = await mergeCheckpoints({
    method: perTask,
    base: `${dir.path}/base.safetensors`,
    experts: [`${dir.path}/a.safetensors`, `${dir.path}/b.safetensors`],
    out: `${dir.path}/toy.safetensors`,
    checkBase: false,
  });
  deepStrictEqual(out.perTask?.map((t) => t.task), ["a", "b"]);
  using a = await openCheckpoint(`${dir.path}/toy.a.safetensors`);
  using b = await openCheckpoint(`${dir.path}/toy.b.safetensors`);
  deepStrictEqual([...await a.read("w")], [1, -2, 1]); // θ0 + (0, −3, 0)
  deepStrictEqual([...await b.read("w")], [3, 1, 0]); // θ0 + (2, 0, −1)
});

Deno.test("task-count limits and θ0 are enforced, lists of numbers are parameters", async () => {
  const base = vec("θ0", [10, 20]);
  const experts = [vec("x", [11, 18]), vec("y", [12, 21])];
  const taus = experts.map((e, i) => new TaskVector(`τ${i}`, base, e));
  // θ0 comes from the task vectors' common base, or is given.
  deepStrictEqual([...(await merge(readsBase, taus)).get("w").data], [3, -1]);
  const plain = [vec("a", [1, -2]), vec("b", [2, 1])];
  await rejects(merge(readsBase, plain), /reads θ0 itself/);
  deepStrictEqual(
    [...(await merge(readsBase, plain, { baseModel: base })).get("w").data],
    [3, -1],
  );
  throws(() => checkTaskCount(readsBase, 3), /merges exactly 2 task vectors, not 3/);
  await rejects(merge(readsBase, [...plain, plain[0]], { baseModel: base }), /exactly 2/);
  equal(taskCountText({ min: 2 }), "at least 2");
  assert(describeMethod(readsBase).includes("task vectors: exactly 2"));
  // numbers: text or arrays, each entry range-checked
  const p = resolveParams(readsBase, { weights: "0.25, 0.75" });
  deepStrictEqual(numbersParam(p, "weights"), [0.25, 0.75]);
  deepStrictEqual(resolveParams(readsBase, {}).weights, []);
  throws(() => resolveParams(readsBase, { weights: "1,-1" }), /each in \[0, ∞\)/);
  throws(() => resolveParams(readsBase, { weights: "1,x" }), /list of numbers/);
});

Deno.test("the study refuses methods that cannot apply before any work", () => {
  checkStudyMethods(["ties"], [], 8);
  throws(() => checkStudyMethods(["nope"], [], 8), /unknown merge method "nope"/);
});
