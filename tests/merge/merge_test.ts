import { deepStrictEqual, equal, rejects } from "node:assert/strict";
import { merge, prepareMerge } from "../../lib/merge/merge.ts";
import type { MergeProgress } from "../../lib/merge/method.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { readTaskTensors } from "../../lib/merge/stream.ts";
import { openCheckpoint } from "../../lib/io/open.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { TaskVector } from "../../lib/taskvec/task_vector.ts";

const tau = (a: number[], b: number[]) =>
  new MemorySource("τ", {
    a: { shape: [a.length], data: Float32Array.from(a) },
    b: { shape: [b.length], data: Float32Array.from(b) },
  });

Deno.test("scaling override, per-task weights and progress events", async () => {
  const events: MergeProgress[] = [];
  const m = await merge("task_arithmetic", [tau([1, 2], [3]), tau([1, 0], [1])], {
    scaling: 2,
    taskScales: [1, 0.5],
    progress: (e) => events.push(e),
  });
  deepStrictEqual(m.get("a").data, Float32Array.from([3, 4]));
  deepStrictEqual(m.get("b").data, Float32Array.from([7]));
  equal(m.summary.params.scaling, 2);
  deepStrictEqual(m.summary.taskScales, [1, 0.5]);
  deepStrictEqual(events.map((e) => `${e.phase} ${e.done}/${e.total} ${e.tensor}`), [
    "merge 1/2 a",
    "merge 2/2 b",
  ]);
});

Deno.test("TIES reports its whole-model passes before merging", async () => {
  const phases = new Set<string>();
  await prepareMerge("ties", [tau([1, 2], [3]), tau([1, 0], [1])], {
    progress: (e) => phases.add(e.phase),
  });
  deepStrictEqual([...phases], [
    "TIES thresholds (1/2)",
    "TIES thresholds (2/2)",
    "TIES majority sign",
  ]);
});

Deno.test("task vectors with different layouts are refused, naming the tensor", async () => {
  const other = new MemorySource("τ'", { a: { shape: [3], data: new Float32Array(3) } });
  await rejects(
    merge("average", [tau([1, 2], [3]), other]),
    /tensor "a" has shape \[2\] in τ but \[3\] in τ'/,
  );
  await rejects(merge("average", []), /at least one task vector/);
  await rejects(merge("average", [tau([1], [1])], { taskScales: [1, 2] }), /2 values for 1 task/);
});

Deno.test("task vectors from checkpoints: NaN/Infinity in an expert or the base is still refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const write = (name: string, w: number[]) =>
      writeCheckpoint(
        `${dir}/${name}.safetensors`,
        new MemorySource(name, { w: { shape: [w.length], data: Float32Array.from(w) } }),
        { allowNonFinite: true },
      );
    await write("base", [1, 2, 3]);
    await write("good", [1.5, 2, 2]);
    await write("nan", [1, NaN, 3]);
    await write("inf", [1, 2, -Infinity]);
    await write("base_inf", [Infinity, 2, 3]);
    const taus = async (base: string, experts: string[], allowNonFinite = false) => {
      const open = (n: string) => openCheckpoint(`${dir}/${n}.safetensors`, { allowNonFinite });
      const b = await open(base);
      return Promise.all(experts.map(async (e) => new TaskVector(e, b, await open(e))));
    };
    deepStrictEqual(
      await readTaskTensors(await taus("base", ["good"]), "w"),
      [Float32Array.from([0.5, 0, -1])],
    );
    await rejects(
      readTaskTensors(await taus("base", ["good", "nan"]), "w"),
      /nan.safetensors.*NaN/,
    );
    await rejects(readTaskTensors(await taus("base", ["inf"]), "w"), /inf.safetensors.*-Infinity/);
    await rejects(readTaskTensors(await taus("base_inf", ["good"]), "w"), /base_inf.*Infinity/);
    // opened with allowNonFinite: the values pass through, as the checkpoint allows
    const [a, b] = await readTaskTensors(await taus("base", ["good", "nan"], true), "w");
    deepStrictEqual(a, Float32Array.from([0.5, 0, -1]));
    equal(Number.isNaN(b[1]), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
