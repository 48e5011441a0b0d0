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
 * import { tempPathBeside } from "./atomic.ts";
 * tempPathBeside("/out/model.safetensors"); // "/out/model.safetensors.1234-ab12cd34.tmp"
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
 * import { writeFileAtomic } from "./atomic.ts";
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await writeFileAtomic(path, JSON.stringify({ ok: true }));
 * console.log(await Deno.readTextFile(path)); // {"ok":true}
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
