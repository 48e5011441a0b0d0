import { deepStrictEqual, equal, ok as assert, rejects } from "node:assert/strict";
import { SafetensorsReader, writeSafetensors } from "../../lib/io/safetensors.ts";
import { CheckpointError } from "../../lib/io/errors.ts";
import { listCheckpoints } from "../../lib/io/find.ts";
import { openCheckpoint } from "../../lib/io/open.ts";
import type { OpenCheckpointOptions } from "../../lib/io/checkpoint.ts";
import { SafetensorsCheckpoint } from "../../lib/io/safetensors_checkpoint.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { MemorySource, type TensorSource } from "../../lib/tensor/source.ts";
import type { HostTensor } from "../../lib/tensor/host.ts";
import { tempDir } from "../helpers/temp.ts";

/** A source of `count` tensors of shape [rows, 4]; tensor i holds i*100 + its flat index. */
function toySource(count: number, rows = 2): MemorySource {
  const tensors: Record<string, HostTensor> = {};
  for (let i = 0; i < count; i++) {
    const data = Float32Array.from({ length: rows * 4 }, (_, j) => i * 100 + j);
    tensors[`layer.${i}.weight`] = { shape: [rows, 4], data };
  }
  return new MemorySource("toy", tensors);
}

/** openCheckpoint, checking that it picked the safetensors reader. */
async function openSt(
  path: string,
  options?: OpenCheckpointOptions,
): Promise<SafetensorsCheckpoint> {
  const ckpt = await openCheckpoint(path, options);
  assert(ckpt instanceof SafetensorsCheckpoint, `${path} opened as ${ckpt.constructor.name}`);
  return ckpt;
}

async function assertSameTensors(a: TensorSource, b: TensorSource): Promise<void> {
  deepStrictEqual(b.names(), a.names());
  for (const name of a.names()) {
    deepStrictEqual(b.shape(name), a.shape(name), name);
    deepStrictEqual(await b.read(name), await a.read(name), name);
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function failsWith(work: Promise<unknown>, fragments: string[]): Promise<void> {
  await rejects(work, (err: Error) => {
    for (const f of fragments) assert(err.message.includes(f), `"${f}" not in: ${err.message}`);
    return true;
  });
}

Deno.test("checkpoint: a single file round-trips with its metadata", async () => {
  await using dir = await tempDir();
  const src = toySource(3);
  const out = await writeCheckpoint(`${dir.path}/m.safetensors`, src, {
    metadata: { format: "pt", task: "mnist" },
  });
  deepStrictEqual(out, {
    path: `${dir.path}/m.safetensors`,
    files: [`${dir.path}/m.safetensors`],
    totalBytes: 3 * 8 * 4,
    writeId: undefined,
    leftovers: [],
  });
  using ckpt = await openSt(out.path);
  deepStrictEqual(ckpt.metadata, { format: "pt", task: "mnist" });
  equal(ckpt.indexMetadata, undefined);
  equal(ckpt.byteSize, 96);
  equal(ckpt.dtype("layer.0.weight"), "F32");
  await assertSameTensors(src, ckpt);
  deepStrictEqual(await listDir(dir.path), ["m.safetensors"]); // no temporary file left
});

Deno.test("checkpoint: the source's metadata is kept when none is given", async () => {
  await using dir = await tempDir();
  await writeCheckpoint(`${dir.path}/a.safetensors`, toySource(1), { metadata: { k: "v" } });
  using a = await openSt(`${dir.path}/a.safetensors`);
  await writeCheckpoint(`${dir.path}/b.safetensors`, a, { dtype: "F16" });
  using b = await openSt(`${dir.path}/b.safetensors`);
  deepStrictEqual(b.metadata, { k: "v" });
  equal(b.dtype("layer.0.weight"), "F16");
  await assertSameTensors(a, b); // small integers are exact in F16
});

Deno.test("checkpoint: output over maxShardBytes is sharded with an index", async () => {
  await using dir = await tempDir();
  const src = toySource(5); // 5 tensors of 32 bytes
  const out = await writeCheckpoint(dir.path, src, { maxShardBytes: 70, metadata: { a: "b" } });
  const id = out.writeId!;
  assert(/^[0-9a-f]{8}$/.test(id), `write id ${id}`);
  const shards = [1, 2, 3].map((i) => `model-${id}-0000${i}-of-00003.safetensors`);
  deepStrictEqual(await listDir(dir.path), [...shards, "model.safetensors.index.json"]);
  equal(out.path, `${dir.path}/model.safetensors.index.json`);
  equal(out.totalBytes, 160);
  const index = JSON.parse(await Deno.readTextFile(out.path));
  deepStrictEqual(index.metadata, { a: "b", write_id: id, total_size: 160 });
  deepStrictEqual(index.weight_map, {
    "layer.0.weight": shards[0],
    "layer.1.weight": shards[0],
    "layer.2.weight": shards[1],
    "layer.3.weight": shards[1],
    "layer.4.weight": shards[2],
  });
  for (const shard of shards) {
    using file = await SafetensorsReader.open(`${dir.path}/${shard}`);
    deepStrictEqual(file.metadata, { a: "b", write_id: id });
  }
  using ckpt = await openSt(dir.path);
  deepStrictEqual(ckpt.files, shards.map((s) => `${dir.path}/${s}`));
  deepStrictEqual(ckpt.indexMetadata, { a: "b", write_id: id, total_size: 160 });
  deepStrictEqual(ckpt.metadata, { a: "b" }); // the write id is the write's, not the model's
  equal(ckpt.info("layer.3.weight").file, `${dir.path}/${shards[1]}`);
  await assertSameTensors(src, ckpt);
});

Deno.test("checkpoint: a tensor larger than maxShardBytes gets a shard of its own", async () => {
  await using dir = await tempDir();
  const src = new MemorySource("m", {
    small: { shape: [1], data: new Float32Array([1]) },
    big: { shape: [10], data: new Float32Array(10).fill(2) },
    tail: { shape: [1], data: new Float32Array([3]) },
  });
  const out = await writeCheckpoint(`${dir.path}/x.safetensors`, src, { maxShardBytes: 8 });
  deepStrictEqual(out.files.map((f) => f.slice(dir.path.length + 1)), [
    `x-${out.writeId}-00001-of-00003.safetensors`,
    `x-${out.writeId}-00002-of-00003.safetensors`,
    `x-${out.writeId}-00003-of-00003.safetensors`,
  ]);
  using ckpt = await openSt(`${dir.path}/x.safetensors.index.json`);
  await assertSameTensors(src, ckpt);
});

Deno.test("checkpoint: an index path forces the sharded layout even for one shard", async () => {
  await using dir = await tempDir();
  const out = await writeCheckpoint(`${dir.path}/one.safetensors.index.json`, toySource(2));
  deepStrictEqual(await listDir(dir.path), [
    `one-${out.writeId}-00001-of-00001.safetensors`,
    "one.safetensors.index.json",
  ]);
  using ckpt = await openSt(out.path);
  await assertSameTensors(toySource(2), ckpt);
});

Deno.test("checkpoint: shards are opened lazily through a bounded set of handles", async () => {
  await using dir = await tempDir();
  const src = toySource(8);
  await writeCheckpoint(dir.path, src, { maxShardBytes: 32 }); // one tensor per shard
  using ckpt = await openSt(dir.path, { maxOpenFiles: 2 });
  equal(ckpt.files.length, 8);
  assert(ckpt.openFiles <= 2);
  const order = [5, 0, 7, 5, 2, 2, 6, 1, 3, 4, 0];
  for (const i of order) {
    deepStrictEqual(await ckpt.read(`layer.${i}.weight`), await src.read(`layer.${i}.weight`));
    assert(ckpt.openFiles <= 2, `${ckpt.openFiles} files open`);
  }
  // Concurrent reads are queued, so they neither interleave nor open more files.
  const names = src.names();
  const all = await Promise.all([...names, ...names].map((n) => ckpt.read(n)));
  for (let i = 0; i < all.length; i++) {
    deepStrictEqual(all[i], await src.read(names[i % names.length]));
  }
  assert(ckpt.openFiles <= 2);
  ckpt.close();
  equal(ckpt.openFiles, 0);
});

Deno.test("checkpoint: concurrent reads of one file do not interleave", async () => {
  await using dir = await tempDir();
  const src = toySource(16, 64);
  await writeSafetensors(
    `${dir.path}/c.safetensors`,
    src.names().map((name) => ({ name, shape: src.shape(name), data: src.get(name).data })),
  );
  using file = await SafetensorsReader.open(`${dir.path}/c.safetensors`);
  const got = await Promise.all(src.names().map((n) => file.read(n)));
  got.forEach((data, i) => deepStrictEqual(data, src.get(src.names()[i]).data));
});

Deno.test("checkpoint: writing streams one tensor at a time, in order", async () => {
  await using dir = await tempDir();
  const inner = toySource(6);
  let active = 0;
  const reads: string[] = [];
  const counting: TensorSource = {
    label: "counting",
    names: () => inner.names(),
    shape: (name) => inner.shape(name),
    read: async (name) => {
      active++;
      assert(active === 1, "two tensors read at once");
      reads.push(name);
      await new Promise((resolve) => setTimeout(resolve, 1));
      active--;
      return inner.read(name);
    },
  };
  const done: number[] = [];
  await writeCheckpoint(dir.path, counting, {
    maxShardBytes: 64,
    onTensor: (_name, n, total) => done.push(n * 10 + total),
  });
  deepStrictEqual(reads, inner.names());
  deepStrictEqual(done, [16, 26, 36, 46, 56, 66]);
});

Deno.test("checkpoint: rewriting a directory removes the other layout's files", async () => {
  await using dir = await tempDir();
  await writeCheckpoint(dir.path, toySource(4), { maxShardBytes: 32 });
  await writeSafetensors(`${dir.path}/notes.safetensors`, []); // not ours: must survive
  await writeCheckpoint(dir.path, toySource(2));
  deepStrictEqual(await listDir(dir.path), ["model.safetensors", "notes.safetensors"]);
  const out = await writeCheckpoint(dir.path, toySource(3), { maxShardBytes: 64 });
  deepStrictEqual(await listDir(dir.path), [
    `model-${out.writeId}-00001-of-00002.safetensors`,
    `model-${out.writeId}-00002-of-00002.safetensors`,
    "model.safetensors.index.json",
    "notes.safetensors",
  ]);
  using ckpt = await openSt(dir.path);
  await assertSameTensors(toySource(3), ckpt);
});

Deno.test("checkpoint: a failed write leaves the previous file untouched", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/keep.safetensors`;
  await writeCheckpoint(path, toySource(2));
  const before = await Deno.readFile(path);
  const inner = toySource(3);
  const failing: TensorSource = {
    label: "failing",
    names: () => inner.names(),
    shape: (name) => inner.shape(name),
    read: (name) =>
      name.includes("2") ? Promise.reject(new Error("disk on fire")) : inner.read(name),
  };
  await failsWith(writeCheckpoint(path, failing), ["disk on fire"]);
  deepStrictEqual(await Deno.readFile(path), before);
  deepStrictEqual(await listDir(dir.path), ["keep.safetensors"]);
  await failsWith(writeCheckpoint(dir.path, failing, { maxShardBytes: 32 }), ["disk on fire"]);
  deepStrictEqual(await listDir(dir.path), ["keep.safetensors"]);
});

Deno.test("checkpoint: non-finite values and dtype overflow are refused when writing", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/bad.safetensors`;
  const nan = new MemorySource("m", { w: { shape: [3], data: new Float32Array([1, NaN, 2]) } });
  await failsWith(writeCheckpoint(path, nan), [path, 'tensor "w"', "NaN at flat index 1"]);
  const big = new MemorySource("m", { w: { shape: [2], data: new Float32Array([1, 70000]) } });
  await failsWith(writeCheckpoint(path, big, { dtype: "F16" }), [
    path,
    'tensor "w"',
    "70000 at flat index 1 overflows F16",
  ]);
  await writeCheckpoint(path, big, { dtype: "BF16" }); // in range for BF16
  await writeCheckpoint(path, nan, { allowNonFinite: true });
  using strict = await openSt(path);
  await failsWith(strict.read("w"), [path, 'tensor "w"', "NaN"]);
  using lenient = await openSt(path, { allowNonFinite: true });
  assert(Number.isNaN((await lenient.read("w"))[1]));
});

Deno.test("checkpoint: a directory resolves to its one checkpoint or says what it found", async () => {
  await using dir = await tempDir();
  await failsWith(openCheckpoint(dir.path), [dir.path, "found none"]);
  await writeCheckpoint(`${dir.path}/mnist.safetensors`, toySource(1));
  using one = await openSt(dir.path);
  equal(one.path, `${dir.path}/mnist.safetensors`);
  await writeCheckpoint(`${dir.path}/svhn.safetensors`, toySource(1));
  await failsWith(openCheckpoint(dir.path), [dir.path, "mnist.safetensors, svhn.safetensors"]);
  await writeCheckpoint(dir.path, toySource(2));
  using model = await openSt(dir.path);
  equal(model.path, `${dir.path}/model.safetensors`);
  await failsWith(openCheckpoint(`${dir.path}/nothing`), [`${dir.path}/nothing`, "cannot open"]);
});

Deno.test("checkpoint: an index is checked against its shards", async () => {
  await using dir = await tempDir();
  const out = await writeCheckpoint(dir.path, toySource(4), { maxShardBytes: 64 });
  const indexPath = `${dir.path}/model.safetensors.index.json`;
  const [shard1, shard2] = out.files.map((f) => f.slice(dir.path.length + 1));
  const good = JSON.parse(await Deno.readTextFile(indexPath));
  const tryIndex = async (weightMap: Record<string, string>, fragments: string[]) => {
    await Deno.writeTextFile(indexPath, JSON.stringify({ weight_map: weightMap }));
    await rejects(openCheckpoint(indexPath), (err: Error) => {
      assert(err instanceof CheckpointError, String(err));
      for (const f of [indexPath, ...fragments]) assert(err.message.includes(f), err.message);
      return true;
    });
  };
  await tryIndex({ ...good.weight_map, "layer.3.weight": "model-00009-of-00009.safetensors" }, [
    'tensor "layer.3.weight"',
    'shard "model-00009-of-00009.safetensors"',
    "does not exist",
  ]);
  await tryIndex({ ...good.weight_map, "extra.bias": shard2 }, [
    'tensor "extra.bias"',
    `shard "${shard2}"`,
    "has no such tensor",
  ]);
  const { "layer.1.weight": _, ...missing } = good.weight_map;
  await tryIndex(missing, ['tensor "layer.1.weight"', `shard "${shard1}"`, "does not list it"]);
  await tryIndex({ ...good.weight_map, "layer.1.weight": shard2 }, [
    'tensor "layer.1.weight"',
    `shard "${shard1}"`,
    `the index says "${shard2}"`,
  ]);
  await tryIndex({ ...good.weight_map, "layer.0.weight": "/etc/passwd" }, [
    'tensor "layer.0.weight"',
    "not a relative file name",
  ]);
  await Deno.writeTextFile(indexPath, "{ not json");
  await failsWith(openCheckpoint(indexPath), [indexPath, "not a readable JSON index"]);
  await Deno.writeTextFile(indexPath, JSON.stringify({ metadata: {} }));
  await failsWith(openCheckpoint(indexPath), [indexPath, "no weight_map"]);
  await Deno.writeTextFile(indexPath, JSON.stringify(good));
  using ckpt = await openSt(indexPath);
  await assertSameTensors(toySource(4), ckpt);
});

Deno.test("checkpoint: a broken shard is named in the error", async () => {
  await using dir = await tempDir();
  const out = await writeCheckpoint(dir.path, toySource(4), { maxShardBytes: 64 });
  const shard = out.files[1];
  await Deno.truncate(shard, (await Deno.stat(shard)).size - 4);
  await failsWith(openCheckpoint(dir.path), [shard, 'tensor "layer.3.weight"', "truncated"]);
});

Deno.test("checkpoint: unknown tensors are named", async () => {
  await using dir = await tempDir();
  await writeCheckpoint(dir.path, toySource(1));
  using ckpt = await openSt(dir.path);
  assert(!ckpt.has("nope"));
  await failsWith(Promise.resolve().then(() => ckpt.shape("nope")), [
    `${dir.path}/model.safetensors`,
    'tensor "nope"',
    "no such tensor",
  ]);
});

Deno.test("checkpoint: listCheckpoints finds experts and refuses two for one task", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await writeCheckpoint(`${d}/base.safetensors`, toySource(1));
  await writeCheckpoint(`${d}/a.safetensors`, toySource(1));
  await writeCheckpoint(`${d}/b`, toySource(2), { maxShardBytes: 32 });
  await Deno.mkdir(`${d}/notes`); // a directory without a checkpoint is not an expert
  deepStrictEqual(await listCheckpoints(d, [`${d}/base.safetensors`]), {
    a: `${d}/a.safetensors`,
    b: `${d}/b`,
  });
  await writeCheckpoint(`${d}/b.safetensors`, toySource(1));
  await failsWith(listCheckpoints(d), [d, 'two checkpoints for task "b"']);
  await failsWith(listCheckpoints(`${d}/none`), [`${d}/none`, "cannot list"]);
});
