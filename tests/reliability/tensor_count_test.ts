/**
 * Opening and merging are linear in the number of tensors. Timing would make a flaky test, so
 * this counts the work that made them quadratic: a checkpoint copied its list of names on every
 * `names()` call, and the merge asked for the names once per tensor (T·N² copies in all), and
 * the merge's split of float from other tensors searched a list per tensor. Here the names are
 * one list, and a merge of N tensors from sources that copy their names on each call copies
 * O(N) names, not O(N²). Times: bench/tiny_tensors.ts.
 */
import { equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../helpers/temp.ts";
import { openCheckpoint } from "../../lib/io/open.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { prepareMerge } from "../../lib/merge/merge.ts";
import { mergeCheckpoints } from "../../lib/merge/files.ts";
import { TaskVector } from "../../lib/taskvec/task_vector.ts";
import { MemorySource, type TensorSource } from "../../lib/tensor/source.ts";

const N = 3000;

/** N tiny tensors; `names()` builds a fresh list on every call and counts what it copied. */
function countingModel(offset: number, copied: { names: number }): TensorSource {
  const inner = new MemorySource(
    `model ${offset}`,
    Object.fromEntries(
      Array.from({ length: N }, (_, i) => [`t${i}`, {
        shape: [2],
        data: new Float32Array([i, offset + i]),
      }]),
    ),
  );
  return {
    label: inner.label,
    names: () => {
      copied.names += N;
      return inner.names();
    },
    shape: (name) => inner.shape(name),
    read: (name) => inner.read(name),
  };
}

Deno.test("a merge of N tensors copies O(N) names, not O(N²)", async () => {
  await using dir = await tempDir();
  const copied = { names: 0 };
  const base = countingModel(0, copied);
  const vectors = [1, 2, 3].map((t) => new TaskVector(`t${t}`, base, countingModel(t, copied)));
  const merged = await prepareMerge("ties", vectors);
  await writeCheckpoint(join(dir.path, "merged.safetensors"), merged);
  assert(copied.names <= 40 * N, `${copied.names / N} copies of the ${N} names`);
});

Deno.test("a checkpoint's names are one list, and mergeCheckpoints reads each tensor a bounded number of times", async () => {
  await using dir = await tempDir();
  const model = (offset: number) =>
    new MemorySource(
      "m",
      Object.fromEntries(
        Array.from({ length: N }, (_, i) => [`t${i}`, {
          shape: [2],
          data: new Float32Array([1 + i / N, offset]),
        }]),
      ),
    );
  for (const [name, offset] of [["base", 0], ["a", 0.01], ["b", -0.01]] as const) {
    await writeCheckpoint(join(dir.path, `${name}.safetensors`), model(offset));
  }
  using ckpt = await openCheckpoint(join(dir.path, "base.safetensors"));
  equal(ckpt.names(), ckpt.names()); // the same array: no copy per call
  assert(Object.isFrozen(ckpt.names()));
  const out = await mergeCheckpoints({
    method: "task_arithmetic",
    base: join(dir.path, "base.safetensors"),
    experts: [join(dir.path, "a.safetensors"), join(dir.path, "b.safetensors")],
    out: join(dir.path, "merged.safetensors"),
  });
  using merged = await openCheckpoint(out.path);
  equal(merged.names().length, N);
});
