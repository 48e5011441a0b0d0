/**
 * What is on disk, for tests that check that a failed or interrupted command left nothing
 * partial and changed no input.
 *
 * @module
 */
import { join } from "node:path";

/**
 * Every file under `dir` (relative paths, sorted), or [] when it does not exist.
 *
 * @example
 * ```ts
 * import { filesUnder } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.json`, "{}");
 * console.log(await filesUnder(dir)); // ["a.json"]
 * ```
 */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string) => {
    for await (const e of Deno.readDir(join(dir, sub))) {
      if (e.isDirectory) await walk(join(sub, e.name));
      else out.push(join(sub, e.name));
    }
  };
  await walk("").catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
  return out.sort();
}

/**
 * SHA-256 of every file under `dir`, by relative path.
 *
 * @example
 * ```ts
 * import { digests } from "./files.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "");
 * console.log(await digests(dir)); // { "a.txt": "e3b0c442…" }
 * ```
 */
export async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const file of await filesUnder(dir)) {
    const hash = await crypto.subtle.digest("SHA-256", await Deno.readFile(join(dir, file)));
    out[file] = [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  return out;
}
