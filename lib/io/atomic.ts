/**
 * Atomic file writes: the bytes go to a temporary file beside the target, which is synced and
 * then renamed over it, so a reader sees the old file or the new one and never a partial one.
 *
 * @module
 */

/**
 * A fresh temporary path beside `path` (same directory, so the final rename stays on one file
 * system), ending in `.tmp` so stray ones are easy to recognise and ignore.
 *
 * @example
 * ```ts
 * import { match, notEqual } from "node:assert/strict";
 * import { tempPathBeside } from "./atomic.ts";
 * const temp = tempPathBeside("/out/model.safetensors"); // /out/model.safetensors.PID-8HEX.tmp
 * match(temp, new RegExp(`^/out/model\\.safetensors\\.${Deno.pid}-[0-9a-f]{8}\\.tmp$`));
 * notEqual(tempPathBeside("/out/model.safetensors"), temp); // fresh each time
 * ```
 */
export function tempPathBeside(path: string): string {
  return `${path}.${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.tmp`;
}

/**
 * Writes `content` (text as UTF-8, or bytes) to `path` atomically.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.json`, JSON.stringify({ ok: true }));
 * equal(await Deno.readTextFile(`${dir}/a.json`), '{"ok":true}');
 * deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.json"]); // no temporary file left
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(path: string, content: string | Uint8Array): Promise<void> {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  const temp = tempPathBeside(path);
  try {
    const file = await Deno.open(temp, { write: true, createNew: true });
    try {
      let done = 0;
      while (done < bytes.length) done += await file.write(bytes.subarray(done));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(`cannot write ${path}: ${(err as Error).message}`);
  }
}
