import { deepStrictEqual, equal, rejects, throws } from "node:assert/strict";
import { openCheckpoint } from "../../lib/io/open.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { MemorySource, type TensorSource } from "../../lib/tensor/source.ts";
import { applyTaskVectors, readTaskVectors, TaskVector } from "../../lib/taskvec/task_vector.ts";
import { scaleSource, WeightedSum } from "../../lib/taskvec/weighted_sum.ts";
import { addTaskVector, subtractBase } from "../../lib/taskvec/host.ts";
import { merge } from "../../lib/merge/merge.ts";
import { tempDir } from "../helpers/temp.ts";

const f32 = (values: number[]) => Float32Array.from(values);
const one = (label: string, w: number[]) =>
  new MemorySource(label, { w: { shape: [w.length], data: f32(w) } });

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

Deno.test("readTaskVectors: the base is read once per tensor for every task built on it", async () => {
  const log: string[] = [];
  const base = logged(one("base", [1, 2]), log);
  const taus = ["a", "b", "c"].map((t, i) =>
    new TaskVector(t, base, logged(one(t, [1 + i, 2 - i]), log))
  );
  deepStrictEqual(await readTaskVectors(taus, "w"), [f32([0, 0]), f32([1, -1]), f32([2, -2])]);
  deepStrictEqual(log, ["a:w", "base:w", "b:w", "c:w"]);
});

Deno.test("readTaskVectors: scaled, nested and plain sources give what their own read gives", async () => {
  const base = one("base", [1, 1e8, 0.1]);
  const tau = new TaskVector("a", base, one("a", [1 + 2 ** -23, 1e8 + 8, 0.3]));
  const sources: TensorSource[] = [
    tau,
    scaleSource(tau, 0.3),
    scaleSource(tau, -1),
    applyTaskVectors(base, [tau, tau], [0.5, 2]),
    new WeightedSum([{ source: tau, weight: 2 }, { source: base, weight: 1 }]),
    one("plain", [1, 2, 3]),
  ];
  const together = await readTaskVectors(sources, "w");
  for (const [i, source] of sources.entries()) {
    // WeightedSum.read evaluates the sum itself, term by term, without readTaskVectors.
    const own = source instanceof TaskVector
      ? await new WeightedSum(source.terms).read("w")
      : await source.read("w");
    deepStrictEqual(together[i], own, source.label);
  }
  // θ − θ0 rounded once to float32 (1e8 + 8 − 1e8 is exactly 8; 0.3 − 0.1 rounds)
  deepStrictEqual(together[0], f32([2 ** -23, 8, Math.fround(0.3) - Math.fround(0.1)]));
  deepStrictEqual(together[1], together[0].map((v) => Math.fround(v * 0.3)));
});

Deno.test("readTaskVectors: arrays are fresh, so a caller may change them", async () => {
  const base = one("base", [1, 2]);
  const expert = one("a", [3, 4]);
  const [first] = await readTaskVectors([new TaskVector("a", base, expert)], "w");
  first.fill(100);
  deepStrictEqual(await base.read("w"), f32([1, 2]));
  deepStrictEqual(await expert.read("w"), f32([3, 4]));
  const plain = one("p", [5]);
  const [copy] = await readTaskVectors([plain], "w");
  copy[0] = 0;
  deepStrictEqual(await plain.read("w"), f32([5]));
});

Deno.test("readTaskVectors: NaN/Infinity in an expert or the base is refused, naming the file", async () => {
  await using dir = await tempDir();
  const write = (name: string, w: number[]) =>
    writeCheckpoint(`${dir.path}/${name}.safetensors`, one(name, w), { allowNonFinite: true });
  await write("base", [1, 2, 3]);
  await write("good", [1.5, 2, 2]);
  await write("nan", [1, NaN, 3]);
  await write("inf", [1, 2, -Infinity]);
  await write("base_inf", [Infinity, 2, 3]);
  const taus = async (base: string, experts: string[], allowNonFinite = false) => {
    const open = (n: string) => openCheckpoint(`${dir.path}/${n}.safetensors`, { allowNonFinite });
    const b = await open(base);
    return Promise.all(experts.map(async (e) => new TaskVector(e, b, await open(e))));
  };
  deepStrictEqual(await readTaskVectors(await taus("base", ["good"]), "w"), [f32([0.5, 0, -1])]);
  await rejects(readTaskVectors(await taus("base", ["good", "nan"]), "w"), /nan.safetensors.*NaN/);
  await rejects(readTaskVectors(await taus("base", ["inf"]), "w"), /inf.safetensors.*-Infinity/);
  await rejects(readTaskVectors(await taus("base_inf", ["good"]), "w"), /base_inf.*Infinity/);
  // a single task vector's own read goes the same way
  await rejects((await taus("base", ["nan"]))[0].read("w"), /nan.safetensors.*NaN/);
  // opened with allowNonFinite: the values pass through, as the checkpoint allows
  const [a, b] = await readTaskVectors(await taus("base", ["good", "nan"], true), "w");
  deepStrictEqual(a, f32([0.5, 0, -1]));
  equal(Number.isNaN(b[1]), true);
});

Deno.test("scaleSource refuses a weight that is not a finite number", () => {
  throws(() => scaleSource(one("τ", [1]), NaN), /weight NaN for τ is not a finite number/);
  throws(() => scaleSource(one("τ", [1]), Infinity), /weight Infinity for τ/);
});

Deno.test("host θ ± τ: the same float32 values as the lazy task vector", async () => {
  const theta0 = new Map([["w", { shape: [3], data: f32([1, 1e8, 0.1]) }]]);
  const theta = new Map([["w", { shape: [3], data: f32([1 + 2 ** -23, 1e8 + 8, 0.3]) }]]);
  const tau = subtractBase(theta, theta0);
  const lazy = new TaskVector("t", new MemorySource("θ0", theta0), new MemorySource("θ", theta));
  deepStrictEqual(tau.get("w")!.data, await lazy.read("w"));
  deepStrictEqual(
    addTaskVector(theta0, tau).get("w")!.data,
    await applyTaskVectors(new MemorySource("θ0", theta0), [lazy], 1).read("w"),
  );
  // a tensor τ lacks stays θ0's; a wrong size or a missing tensor is named
  const b = { shape: [1], data: f32([7]) };
  const withB = new Map([...theta0, ["b", b]]);
  equal(addTaskVector(withB, tau).get("b")!.data, b.data);
  throws(
    () => addTaskVector(theta0, new Map([["w", { data: f32([1]) }]])),
    /task vector tensor "w" has 1 values, θ0 has 3/,
  );
  throws(() => subtractBase(theta, withB, "expert x"), /expert x has no tensor "b" that θ0 has/);
});

Deno.test("merge: per-task weights scale each task vector before the method sees it", async () => {
  const base = one("base", [1, 1]);
  const taus = [
    new TaskVector("a", base, one("a", [2, 3])),
    new TaskVector("b", base, one("b", [0, 1])),
  ];
  const m = await merge("task_arithmetic", taus, { scaling: 1, taskScales: [0.5, 3] });
  // 0.5·(1, 2) + 3·(−1, 0)
  deepStrictEqual(m.get("w").data, f32([-2.5, 1]));
  deepStrictEqual(m.summary.tasks, ["0.5·τ(a)", "3·τ(b)"]);
});

Deno.test("readTaskVectors: files allowing concurrent reads are read at once, and a failure waits for every read it started", async () => {
  const log: string[] = [];
  /** A source whose read takes `ms` and then gives `values` or fails. */
  const slow = (label: string, ms: number, values: number[] | Error): TensorSource => ({
    label,
    names: () => ["w"],
    shape: () => [2],
    concurrentReads: true,
    read: (name) => {
      log.push(`start ${label}:${name}`);
      return new Promise((resolve, reject) =>
        setTimeout(() => {
          log.push(`end ${label}`);
          values instanceof Error ? reject(values) : resolve(f32(values));
        }, ms)
      );
    },
  });
  const base = slow("base", 5, [1, 1]);
  const taus = [
    new TaskVector("a", base, slow("a", 5, new Error("a cannot be read"))),
    new TaskVector("b", base, slow("b", 40, [2, 2])),
    new TaskVector("c", base, slow("c", 1, new Error("c cannot be read either"))),
  ];
  await rejects(readTaskVectors(taus, "w"), /^Error: a cannot be read$/); // the first in order
  // every read started before the first ended, and none outlived the call
  deepStrictEqual(log.slice(0, 4), ["start a:w", "start base:w", "start b:w", "start c:w"]);
  deepStrictEqual(log.slice(4).sort(), ["end a", "end b", "end base", "end c"]);
  log.length = 0;
  const ok = [
    new TaskVector("b", base, slow("b", 1, [2, 3])),
    new TaskVector("d", base, slow("d", 1, [0, 1])),
  ];
  deepStrictEqual(await readTaskVectors(ok, "w"), [f32([1, 2]), f32([-1, 0])]);
});

Deno.test("readTaskVectors: sources that do not allow concurrent reads are read one at a time", async () => {
  const log: string[] = [];
  const slow = (label: string, values: number[], concurrentReads?: boolean): TensorSource => ({
    label,
    names: () => ["w"],
    shape: () => [2],
    concurrentReads,
    read: () => {
      log.push(`start ${label}`);
      return new Promise((resolve) =>
        setTimeout(() => {
          log.push(`end ${label}`);
          resolve(f32(values));
        }, 1)
      );
    },
  });
  // one source without the capability (b's expert) keeps the whole read in turn
  const base = slow("base", [1, 1], true);
  const taus = [
    new TaskVector("a", base, slow("a", [2, 2], true)),
    new TaskVector("b", base, slow("b", [0, 3])),
  ];
  deepStrictEqual(taus.map((t) => t.concurrentReads), [true, false]);
  deepStrictEqual(await readTaskVectors(taus, "w"), [f32([1, 1]), f32([-1, 2])]);
  deepStrictEqual(log, ["start a", "end a", "start base", "end base", "start b", "end b"]);
});
