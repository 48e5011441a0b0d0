import { deepStrictEqual, equal, rejects } from "node:assert/strict";
import { readAhead } from "../../lib/io/read_ahead.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import type { TensorSource } from "../../lib/tensor/source.ts";

/** A read of item `i` that resolves (or fails) when told to, logging when it starts and ends. */
function controlledReads(log: string[]) {
  const pending = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();
  let running = 0, most = 0;
  const read = (i: number) =>
    new Promise<number>((resolve, reject) => {
      running++;
      most = Math.max(most, running);
      log.push(`start ${i}`);
      const done = () => {
        running--;
        log.push(`end ${i}`);
      };
      pending.set(i, {
        resolve: (v) => (done(), resolve(v)),
        reject: (e) => (done(), reject(e)),
      });
    });
  /** Lets item i's read (when it was started) finish a little later. */
  const finish = (i: number, error?: Error) =>
    setTimeout(() => error ? pending.get(i)?.reject(error) : pending.get(i)?.resolve(i * 10), 5);
  return { read, finish, most: () => most };
}

Deno.test("readAhead: items in order, the next read started before the current item is used, never two reads at once", async () => {
  const log: string[] = [];
  const reads = controlledReads(log);
  const got: number[] = [];
  reads.finish(0);
  for await (const value of readAhead(3, reads.read)) {
    log.push(`use ${value}`);
    got.push(value);
    if (got.length < 3) reads.finish(got.length); // the next item's read is running here
  }
  deepStrictEqual(got, [0, 10, 20]);
  deepStrictEqual(log, [
    "start 0",
    "end 0",
    "start 1",
    "use 0",
    "end 1",
    "start 2",
    "use 10",
    "end 2",
    "use 20",
  ]);
  equal(reads.most(), 1);
});

Deno.test("readAhead: a read's error is thrown in its turn, after the items before it", async () => {
  const log: string[] = [];
  const reads = controlledReads(log);
  reads.finish(0);
  reads.finish(1, new Error("item 1 is bad"));
  await rejects(async () => {
    for await (const value of readAhead(3, reads.read)) log.push(`use ${value}`);
  }, /item 1 is bad/);
  deepStrictEqual(log, ["start 0", "end 0", "start 1", "use 0", "end 1"]); // item 2 never read
});

Deno.test("readAhead: a loop that fails waits for the read it started before the error goes on", async () => {
  const log: string[] = [];
  const reads = controlledReads(log);
  reads.finish(0);
  await rejects(async () => {
    for await (const value of readAhead(3, reads.read)) {
      reads.finish(1, new Error("never thrown: item 1 is not used"));
      throw new Error(`failed on ${value}`);
    }
  }, /failed on 0/);
  log.push("caught");
  // the read ahead of item 1 ended before the error reached the caller (no read outlives it)
  deepStrictEqual(log, ["start 0", "end 0", "start 1", "end 1", "caught"]);
});

Deno.test("readAhead: a read that throws synchronously fails in its turn; no items, no reads", async () => {
  let reads = 0;
  for await (const _ of readAhead(0, () => Promise.resolve(reads++))) throw new Error("no item");
  equal(reads, 0);
  const got: number[] = [];
  await rejects(async () => {
    for await (
      const v of readAhead(2, (i) => {
        if (i === 1) throw new Error("sync throw");
        return Promise.resolve(i);
      })
    ) got.push(v);
  }, /sync throw/);
  deepStrictEqual(got, [0]);
});

Deno.test("writeCheckpoint reads the next tensor while it writes (sources allowing it), and a failed write waits for that read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log: string[] = [];
    const values: Record<string, number[]> = { a: [1, 2], b: [NaN, 1], c: [3, 4] };
    const source: TensorSource = {
      label: "slow",
      names: () => ["a", "b", "c"],
      shape: () => [2],
      concurrentReads: true,
      read: (name) => {
        log.push(`start ${name}`);
        return new Promise((resolve) =>
          setTimeout(() => {
            log.push(`end ${name}`);
            resolve(new Float32Array(values[name]));
          }, name === "c" ? 40 : 1)
        );
      },
    };
    const out = `${dir}/m.safetensors`;
    const onTensor = (name: string) => log.push(`wrote ${name}`);
    await rejects(
      writeCheckpoint(out, source, { onTensor }),
      /tensor "b": value NaN at flat index 0/,
    );
    // c was being read while b was checked; the write failed only after that read ended
    deepStrictEqual(log, ["start a", "end a", "start b", "wrote a", "end b", "start c", "end c"]);
    await rejects(Deno.stat(out), Deno.errors.NotFound);
    values.b = [5, 6];
    log.length = 0;
    await writeCheckpoint(out, source, { onTensor });
    deepStrictEqual(log, [
      "start a",
      "end a",
      "start b",
      "wrote a",
      "end b",
      "start c",
      "wrote b",
      "end c",
      "wrote c",
    ]);
    // without the capability, each tensor is read after the previous one is written
    log.length = 0;
    await writeCheckpoint(out, { ...source, concurrentReads: undefined }, { onTensor });
    deepStrictEqual(log, [
      "start a",
      "end a",
      "wrote a",
      "start b",
      "end b",
      "wrote b",
      "start c",
      "end c",
      "wrote c",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
