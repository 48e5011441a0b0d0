/**
 * Scratch space for tests.
 *
 * @module
 */

/**
 * A fresh temporary directory, removed when the returned object is disposed.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { tempDir } from "./temp.ts";
 * let path: string;
 * {
 *   await using dir = await tempDir();
 *   path = dir.path;
 *   ok((await Deno.stat(path)).isDirectory);
 * }
 * ok(!(await Deno.stat(path).then(() => true, () => false)));
 * ```
 */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "ri-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}
