/**
 * Fixtures of the publication tests: toy checkpoints whose every value says which write made
 * it, a reader that says which write a checkpoint holds (or that it mixes several), and a child
 * process killed at a chosen moment of a write.
 *
 * @module
 */
import { MemorySource } from "../../lib/tensor/source.ts";
import { openCheckpoint } from "../../lib/io/open.ts";

/** Tensors in a toy checkpoint (16 bytes each: with 32-byte shards, 4 shards). */
export const TOY_TENSORS = 8;

/**
 * A toy checkpoint of write `value`: tensor i holds [value, i, value, i].
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { toyCheckpoint } from "./publish_fixtures.ts";
 * deepStrictEqual(await toyCheckpoint(7).read("t3"), new Float32Array([7, 3, 7, 3]));
 * ```
 */
export function toyCheckpoint(value: number): MemorySource {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (let i = 0; i < TOY_TENSORS; i++) {
    tensors[`t${i}`] = { shape: [4], data: new Float32Array([value, i, value, i]) };
  }
  return new MemorySource(`write ${value}`, tensors);
}

/**
 * Which write the checkpoint at `path` holds, read in full: its value when every tensor is a
 * whole, correct tensor of one write; throws when it does not open or mixes writes.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { toyCheckpoint, writeOf } from "./publish_fixtures.ts";
 * import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * await writeCheckpoint(dir, toyCheckpoint(3));
 * equal(await writeOf(dir), 3);
 * ```
 */
export async function writeOf(path: string): Promise<number> {
  using ckpt = await openCheckpoint(path);
  const values = new Set<number>();
  if (ckpt.names().length !== TOY_TENSORS) throw new Error(`${ckpt.names().length} tensors`);
  for (let i = 0; i < TOY_TENSORS; i++) {
    const [a, b, c, d] = await ckpt.read(`t${i}`);
    if (b !== i || d !== i || a !== c) throw new Error(`t${i} holds [${a}, ${b}, ${c}, ${d}]`);
    values.add(a);
  }
  if (values.size !== 1) throw new Error(`tensors of writes ${[...values].join(" and ")} mixed`);
  return [...values][0];
}

const CHILD = new URL("./write_child.ts", import.meta.url).pathname;

/**
 * Runs write_child.ts writing `toyCheckpoint(value)` to `out`, waits until it holds at `hold`
 * (see write_child.ts), kills it with SIGKILL and returns what it was doing when killed.
 */
export async function killWriteAt(
  out: string,
  value: number,
  maxShardBytes: number | undefined,
  hold: string,
): Promise<string> {
  const marker = await Deno.makeTempFile({ prefix: "ri-hold-" });
  await Deno.remove(marker);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, out, String(value), String(maxShardBytes ?? "none"), hold, marker],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    for (;;) {
      const held = await Deno.readTextFile(marker).catch(() => undefined);
      if (held) return held;
      const done = await Promise.race([child.status, Promise.resolve(undefined)]);
      if (done) throw new Error(`the writer ended (${done.code}) before holding at ${hold}`);
      await new Promise((resolve) => setTimeout(resolve, 20)); // polling, not ordering
    }
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await child.stderr.cancel();
    await Deno.remove(marker).catch(() => {});
  }
}
