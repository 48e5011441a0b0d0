/**
 * Hugging Face shard indexes (`model.safetensors.index.json`, `pytorch_model.bin.index.json`):
 * `{"metadata": {...}, "weight_map": {tensor: shard file}}`, the shard files named relative to
 * the index's folder. One parser for every sharded format, and one check that a shard holds
 * exactly the tensors the index puts in it.
 *
 * @module
 */
import { dirname, isAbsolute, join } from "node:path";
import { CheckpointError } from "./errors.ts";

/** A parsed shard index. */
export interface ShardIndex {
  /** The index file. */
  readonly path: string;
  /** Its `metadata` object (e.g. `total_size`), or undefined. */
  readonly metadata: Readonly<Record<string, unknown>> | undefined;
  /** Tensor → shard file (as written in the index). */
  readonly weightMap: ReadonlyMap<string, string>;
  /** Shard file → its tensors, shards in first-seen order. */
  readonly shards: ReadonlyMap<string, readonly string[]>;
}

/**
 * Reads and checks an index: JSON with a `weight_map` object of relative file names and an
 * optional `metadata` object. Linear in the number of tensors.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { readShardIndex } from "./hf_index.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors.index.json" });
 * await Deno.writeTextFile(path, JSON.stringify({ weight_map: { a: "s1.safetensors", b: "s2.safetensors", c: "s1.safetensors" } }));
 * const index = await readShardIndex(path);
 * deepStrictEqual([...index.shards], [["s1.safetensors", ["a", "c"]], ["s2.safetensors", ["b"]]]);
 * ```
 */
export async function readShardIndex(path: string): Promise<ShardIndex> {
  const fail = (problem: string, tensor?: string) => new CheckpointError(path, tensor, problem);
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    throw fail(`not a readable JSON index (${(err as Error).message})`);
  }
  const { metadata, weight_map: map } = (json ?? {}) as Record<string, unknown>;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw fail(`expected {"weight_map": {tensor: shard file}} (no weight_map object found)`);
  }
  if (metadata !== undefined && (typeof metadata !== "object" || Array.isArray(metadata))) {
    throw fail(`"metadata" is not an object`);
  }
  const weightMap = new Map<string, string>();
  const shards = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== "string" || shard === "" || isAbsolute(shard)) {
      throw fail(`weight_map value ${JSON.stringify(shard)} is not a relative file name`, name);
    }
    weightMap.set(name, shard);
    const names = shards.get(shard);
    if (names) names.push(name);
    else shards.set(shard, [name]);
  }
  return {
    path,
    metadata: (metadata ?? undefined) as Record<string, unknown> | undefined,
    weightMap,
    shards,
  };
}

/**
 * The path of `shard` (a name from the index) beside the index.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { shardPath } from "./hf_index.ts";
 * equal(shardPath({ path: "/m/model.safetensors.index.json" }, "a.safetensors"), "/m/a.safetensors");
 * ```
 */
export function shardPath(index: Pick<ShardIndex, "path">, shard: string): string {
  return join(dirname(index.path), shard);
}

/**
 * Fails unless every shard the index names exists, naming the first missing one and how many
 * tensors the index puts in it.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { assertShardsExist } from "./hf_index.ts";
 * const index = { path: "/no/where/i.json", weightMap: new Map([["a", "s.safetensors"]]), metadata: undefined,
 *   shards: new Map([["s.safetensors", ["a"]]]) };
 * await rejects(assertShardsExist(index), /shard "s.safetensors" .* does not exist/);
 * ```
 */
export async function assertShardsExist(index: ShardIndex): Promise<void> {
  for (const [shard, names] of index.shards) {
    const file = shardPath(index, shard);
    try {
      await Deno.stat(file);
    } catch {
      throw new CheckpointError(
        index.path,
        names[0],
        `shard "${shard}" (${file}) does not exist; the index lists ${names.length} tensor(s) in it`,
      );
    }
  }
}

/**
 * Fails unless the opened shard `shard` (at `file`) holds exactly the tensors the index puts in
 * it: each listed one, and none the index lists elsewhere or not at all.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { checkShardAgainstIndex } from "./hf_index.ts";
 * const index = { path: "i.json", metadata: undefined, weightMap: new Map([["a", "s1"], ["b", "s2"]]),
 *   shards: new Map([["s1", ["a"]], ["s2", ["b"]]]) };
 * checkShardAgainstIndex(index, "s1", "/m/s1", ["a"]);
 * throws(() => checkShardAgainstIndex(index, "s1", "/m/s1", ["a", "b"]), /the index says "s2"/);
 * ```
 */
export function checkShardAgainstIndex(
  index: ShardIndex,
  shard: string,
  file: string,
  holds: readonly string[],
): void {
  const held = new Set(holds);
  for (const name of index.shards.get(shard) ?? []) {
    if (!held.has(name)) {
      throw new CheckpointError(
        index.path,
        name,
        `the index puts it in shard "${shard}", but ${file} has no such tensor`,
      );
    }
  }
  for (const name of holds) {
    const listed = index.weightMap.get(name);
    if (listed !== shard) {
      const where = listed === undefined
        ? "the index does not list it"
        : `the index says "${listed}"`;
      throw new CheckpointError(
        index.path,
        name,
        `found in shard "${shard}" (${file}) but ${where}`,
      );
    }
  }
}
