/**
 * Overlapped reads only where every source allows them (`TensorSource.concurrentReads`).
 *
 * The streaming passes, `writeCheckpoint` and `readTaskVectors` read ahead (the next tensor while
 * the current one is worked on; every file's tensor at once) only when all the sources involved
 * say their reads are independent: checkpoints on disk, and sums and merges of them. Any other
 * source is read as it always was, one tensor after the caller is done with the previous one.
 * The source here is deliberately not reentrant: it decodes every read into one buffer of its
 * own and hands out a view of it, valid until its next read starts. Read in turn it gives the
 * right values; reading ahead (starting the next read before the caller has used the current
 * tensor) overwrites the tensor being used, so each test below fails if its code path reads
 * such a source ahead.
 */
import { deepStrictEqual, equal } from "node:assert/strict";
import { openCheckpoint } from "../../lib/io/open.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { forEachTensor } from "../../lib/merge/stream.ts";
import { merge, prepareMerge } from "../../lib/merge/merge.ts";
import { openTaskVectors } from "../../lib/taskvec/set.ts";
import { TaskVector } from "../../lib/taskvec/task_vector.ts";
import { scaleSource } from "../../lib/taskvec/weighted_sum.ts";
import { numel } from "../../lib/tensor/host.ts";
import { MemorySource, readsOverlap, type TensorSource } from "../../lib/tensor/source.ts";
import { tempDir } from "../helpers/temp.ts";

const LAYOUT: [string, number[]][] = [["a", [3, 4]], ["b", [7]], ["c", [2, 5]], ["d", [4]]];

/** Deterministic values for model `seed` (0: the base). */
function model(seed: number): MemorySource {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  let state = 1000 + 77 * seed;
  for (const [name, shape] of LAYOUT) {
    const data = new Float32Array(numel(shape));
    for (let i = 0; i < data.length; i++) {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      data[i] = state / 2 ** 30 - 1;
    }
    tensors[name] = { shape, data };
  }
  return new MemorySource(`m${seed}`, tensors);
}

/** Not reentrant: every read lands in one buffer, valid only until the next read starts. */
class OneBufferSource implements TensorSource {
  readonly #buffer: Float32Array;
  constructor(readonly memory: MemorySource) {
    this.#buffer = new Float32Array(Math.max(...LAYOUT.map(([, s]) => numel(s))));
  }
  get label(): string {
    return `one buffer(${this.memory.label})`;
  }
  names(): readonly string[] {
    return this.memory.names();
  }
  shape(name: string): readonly number[] {
    return this.memory.shape(name);
  }
  read(name: string): Promise<Float32Array> {
    const data = this.memory.get(name).data;
    const view = this.#buffer.subarray(0, data.length);
    view.set(data);
    return Promise.resolve(view);
  }
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.slice().buffer));

Deno.test("the capability: checkpoints on disk allow concurrent reads, memory and derived sources only through their inputs", async () => {
  await using dir = await tempDir();
  const paths = [0, 1, 2].map((s) => `${dir.path}/m${s}.safetensors`);
  for (let s = 0; s < 3; s++) await writeCheckpoint(paths[s], model(s));
  using set = await openTaskVectors(paths[0], paths.slice(1));
  equal(set.base?.concurrentReads, true);
  deepStrictEqual(set.vectors.map((v) => v.concurrentReads), [true, true]);
  equal(scaleSource(set.vectors[0], 2).concurrentReads, true);
  const fromDisk = await prepareMerge("task_arithmetic", set.vectors);
  equal(fromDisk.concurrentReads, true);
  equal((await prepareMerge("ties", set.vectors)).concurrentReads, true);
  // a method whose merger does not declare the capability (DARE's) keeps reads in turn
  equal(
    (await prepareMerge("dare_ties", set.vectors, { params: { seed: 1 } })).concurrentReads,
    false,
  );
  // in memory, or any one input without the capability: no overlap
  const inMemory = new TaskVector("m", model(0), model(1));
  equal((model(0) as TensorSource).concurrentReads, undefined);
  equal(inMemory.concurrentReads, false);
  equal(new TaskVector("mixed", set.base!, model(1)).concurrentReads, false);
  equal((await prepareMerge("task_arithmetic", [inMemory])).concurrentReads, false);
  equal(readsOverlap([...set.vectors, inMemory]), false);
});

Deno.test("writeCheckpoint reads a non-reentrant source in turn: the file holds its values", async () => {
  await using dir = await tempDir();
  const out = `${dir.path}/out.safetensors`;
  await writeCheckpoint(out, new OneBufferSource(model(1)));
  using written = await openCheckpoint(out);
  for (const [name] of LAYOUT) {
    deepStrictEqual(bits(await written.read(name)), bits(model(1).get(name).data), name);
  }
});

Deno.test("forEachTensor reads non-reentrant sources in turn: each visit sees its own tensor", async () => {
  const tasks = [new OneBufferSource(model(1)), new OneBufferSource(model(2))];
  const seen: Record<string, number[][]> = {};
  await forEachTensor(tasks, "check", async (name, _shape, taus) => {
    await new Promise((resolve) => setTimeout(resolve, 1)); // a visitor that awaits
    seen[name] = taus.map(bits);
  });
  for (const [name] of LAYOUT) {
    deepStrictEqual(seen[name], [bits(model(1).get(name).data), bits(model(2).get(name).data)]);
  }
});

Deno.test("merges of non-reentrant sources equal those of the same values held in memory", async () => {
  const vectors = (wrap: (m: MemorySource) => TensorSource) => {
    const base = wrap(model(0));
    return [1, 2, 3].map((s) => new TaskVector(`t${s}`, base, wrap(model(s))));
  };
  for (const method of ["task_arithmetic", "ties", "dare_ties"]) {
    const options = { params: method === "dare_ties" ? { seed: 3 } : {} };
    const expected = await merge(method, vectors((m) => m), options);
    const got = await merge(method, vectors((m) => new OneBufferSource(m)), options);
    for (const [name] of LAYOUT) {
      deepStrictEqual(bits(got.get(name).data), bits(expected.get(name).data), `${method} ${name}`);
    }
  }
});

Deno.test("forEachTensor over checkpoints reads ahead and visits each tensor under its own name, with or without progress", async () => {
  // (The first overlapped version counted tensors inside `progress?.(…)`, so without a
  // progress callback every visit got the first tensor's name.)
  await using dir = await tempDir();
  const paths = [0, 1, 2].map((s) => `${dir.path}/m${s}.safetensors`);
  for (let s = 0; s < 3; s++) await writeCheckpoint(paths[s], model(s));
  using set = await openTaskVectors(paths[0], paths.slice(1));
  const expected = [1, 2].map((s) => {
    const m = model(s), b = model(0);
    return LAYOUT.map(([name]) => {
      const tau = m.get(name).data.slice();
      for (let i = 0; i < tau.length; i++) tau[i] -= b.get(name).data[i];
      return [name, tau.length, bits(tau)];
    });
  });
  for (const progress of [undefined, () => {}]) {
    const seen: [string, number, number[]][][] = [[], []];
    await forEachTensor(set.vectors, "check", (name, shape, taus) => {
      taus.forEach((tau, t) => seen[t].push([name, numel(shape), bits(tau)]));
    }, progress);
    deepStrictEqual(seen, expected);
  }
});
