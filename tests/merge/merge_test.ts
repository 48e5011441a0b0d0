import { deepStrictEqual, equal, rejects } from "node:assert/strict";
import { merge, prepareMerge } from "../../lib/merge/merge.ts";
import type { MergeProgress } from "../../lib/merge/method.ts";
import { MemorySource } from "../../lib/tensor/source.ts";

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
