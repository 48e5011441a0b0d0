/**
 * A checkpoint is published as one unit (lib/io/write_checkpoint.ts): a write killed at any
 * moment leaves the previous checkpoint or the new one, whole, never a mix; leftovers of a
 * killed write are named as such and removed by the next write; a second writer to the same
 * destination fails at once while the first holds it; a folder mixing two writes is refused.
 * Every interleaving is forced: the writer holds at a chosen stage (a hook), nothing sleeps.
 */
import { deepStrictEqual, equal, ok as assert, rejects } from "node:assert/strict";
import { basename, join } from "node:path";
import { tempDir } from "../helpers/temp.ts";
import { writeCheckpoint, writeCheckpointStaged } from "../../lib/io/write_checkpoint.ts";
import { WriteLock } from "../../lib/io/write_lock.ts";
import { killWriteAt, TOY_TENSORS, toyCheckpoint, writeOf } from "./publish_fixtures.ts";
import { randomModel, runMergeTask, tinyVitLayout, writeSource } from "../merge/fixtures.ts";
import { filesUnder } from "./files.ts";

/** 32-byte shards: two toy tensors per shard, four shards. */
const SHARD = 32;
const SHARDS = TOY_TENSORS / 2;

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("a sharded write killed at any stage leaves the old checkpoint or the new, whole", async (t) => {
  // Stages of a 4-shard write: 1 locked, 2–5 each shard in place, 6 published, 7 done.
  for (let stage = 1; stage <= SHARDS + 3; stage++) {
    await t.step(`killed at stage ${stage}`, async () => {
      await using dir = await tempDir();
      await writeCheckpoint(dir.path, toyCheckpoint(1), { maxShardBytes: SHARD });
      const held = await killWriteAt(dir.path, 2, SHARD, `stage:${stage}`);
      const published = stage >= SHARDS + 2;
      equal(await writeOf(dir.path), published ? 2 : 1, `killed at ${held}`);
      // The next write removes what the killed one left, names it, and publishes whole.
      const next = await writeCheckpoint(dir.path, toyCheckpoint(3), { maxShardBytes: SHARD });
      const orphans = stage - 1; // shards of write 2 under their final names, never indexed
      if (!published) equal(next.leftovers.length, Math.min(orphans, SHARDS), held);
      equal(await writeOf(dir.path), 3);
      deepStrictEqual(await listDir(dir.path), [
        ...next.files.map((f) => basename(f)),
        "model.safetensors.index.json",
      ]);
    });
  }
});

Deno.test("a write killed inside a shard leaves the old checkpoint; its temporary file is named later", async () => {
  await using dir = await tempDir();
  await writeCheckpoint(dir.path, toyCheckpoint(1), { maxShardBytes: SHARD });
  await killWriteAt(dir.path, 2, SHARD, "tensor:3"); // shard 1 in place, shard 2 half written
  const left = await listDir(dir.path);
  assert(left.some((n) => n.endsWith(".tmp")), `no temporary file in ${left}`);
  equal(await writeOf(dir.path), 1);
  const next = await writeCheckpoint(dir.path, toyCheckpoint(3), { maxShardBytes: SHARD });
  equal(next.leftovers.length, 2, `leftovers: ${next.leftovers}`);
  assert(next.leftovers.some((f) => f.endsWith(".tmp")));
  assert(!(await listDir(dir.path)).some((n) => n.endsWith(".tmp") || n.endsWith(".lock")));
});

Deno.test("shards of a killed first write are refused as leftovers, with what to do", async () => {
  await using dir = await tempDir();
  await killWriteAt(dir.path, 2, SHARD, "stage:3"); // two shards in place, no index yet
  await rejects(writeOf(dir.path), (err: Error) => {
    assert(err.message.startsWith(dir.path), err.message);
    assert(err.message.includes("holds 2 shard(s)"), err.message);
    assert(err.message.includes("leftovers of an interrupted write"), err.message);
    assert(err.message.includes("write the checkpoint again"), err.message);
    return true;
  });
  await writeCheckpoint(dir.path, toyCheckpoint(3), { maxShardBytes: SHARD });
  equal(await writeOf(dir.path), 3);
});

Deno.test("a layout change killed between its two renames is refused in the folder, both named", async () => {
  await using dir = await tempDir();
  await writeCheckpoint(dir.path, toyCheckpoint(1)); // model.safetensors
  await killWriteAt(dir.path, 2, SHARD, `stage:${SHARDS + 2}`); // index in place, old file not yet removed
  await rejects(writeOf(dir.path), (err: Error) => {
    assert(err.message.includes("holds both model.safetensors and model.safetensors.index.json"));
    assert(err.message.includes("model.safetensors.index.json is the newer"), err.message);
    return true;
  });
  equal(await writeOf(join(dir.path, "model.safetensors.index.json")), 2);
  equal(await writeOf(join(dir.path, "model.safetensors")), 1);
  await writeCheckpoint(dir.path, toyCheckpoint(3));
  deepStrictEqual(await listDir(dir.path), ["model.safetensors"]);
});

Deno.test("two writers to one checkpoint: the second fails at once, naming the first", async () => {
  await using dir = await tempDir();
  let holding!: () => void, release!: () => void;
  const held = new Promise<void>((resolve) => holding = resolve);
  const gate = new Promise<void>((resolve) => release = resolve);
  // The first writer stops after its first shard, lock held, until the test lets it go on.
  const first = writeCheckpointStaged(dir.path, toyCheckpoint(1), {
    maxShardBytes: SHARD,
    onStage: async (stage) => {
      if (stage !== "file") return;
      holding();
      await gate;
    },
  });
  await held;
  for (const target of [dir.path, join(dir.path, "model.safetensors")]) {
    await rejects(
      writeCheckpoint(target, toyCheckpoint(2), { maxShardBytes: SHARD }),
      (err: Error) => {
        assert(
          err.message.includes("another write to this checkpoint is in progress"),
          err.message,
        );
        assert(
          err.message.includes(`held by process ${Deno.pid} on ${Deno.hostname()}`),
          err.message,
        );
        assert(err.message.includes("wait for it to finish, or write elsewhere"), err.message);
        return true;
      },
    );
  }
  release();
  await first;
  equal(await writeOf(dir.path), 1); // the refused writers changed nothing
  await writeCheckpoint(dir.path, toyCheckpoint(2), { maxShardBytes: SHARD }); // then it is free
  equal(await writeOf(dir.path), 2);
});

Deno.test("deno task merge into a checkpoint another process is writing: one error line, nothing written", async () => {
  await using dir = await tempDir();
  const layout = tinyVitLayout();
  await writeSource(join(dir.path, "base.safetensors"), randomModel(layout, 1));
  for (const e of [0, 1]) {
    await writeSource(join(dir.path, `e${e}.safetensors`), randomModel(layout, 1, e, 0.05));
  }
  const out = join(dir.path, "out");
  await Deno.mkdir(out);
  using _other = await WriteLock.acquire(join(out, ".model.safetensors.lock"), "test");
  const run = await runMergeTask([
    "--method",
    "task_arithmetic",
    "--base",
    join(dir.path, "base.safetensors"),
    "--experts",
    join(dir.path, "e0.safetensors"),
    join(dir.path, "e1.safetensors"),
    "--out",
    out,
    "--max-shard-bytes",
    "20000",
  ]);
  equal(run.code, 1, run.stdout);
  const lines = run.stderr.trim().split("\n");
  equal(lines.length, 1, run.stderr);
  assert(
    lines[0].startsWith(`error: ${out}/model.safetensors.index.json: another write`),
    lines[0],
  );
  deepStrictEqual(await filesUnder(out), [".model.safetensors.lock"]); // only the holder's lock
});

Deno.test("a folder mixing shards of two writes is refused, naming the shard and both ids", async () => {
  await using dir = await tempDir();
  const a = await writeCheckpoint(join(dir.path, "a"), toyCheckpoint(1), { maxShardBytes: SHARD });
  const b = await writeCheckpoint(join(dir.path, "b"), toyCheckpoint(2), { maxShardBytes: SHARD });
  await Deno.copyFile(b.files[2], a.files[2]); // same tensors, another write's values
  await rejects(writeOf(join(dir.path, "a")), (err: Error) => {
    assert(err.message.startsWith(a.path), err.message);
    assert(err.message.includes(`shard "${basename(a.files[2])}"`), err.message);
    assert(err.message.includes(`write id "${b.writeId}", the index's is "${a.writeId}"`));
    assert(err.message.includes("mixes two writes"), err.message);
    return true;
  });
});
