/**
 * A child process for interrupted_zoo_test.ts: builds (or resumes) a small zoo in the cache
 * root given as its argument, with progress printed as lines.
 *
 * @module
 */
import { initEngine } from "../../lib/engine/backend.ts";
import type { ZooConfig } from "../../lib/zoo/config.ts";
import { smallZooConfig } from "../helpers/small_models.ts";
import { loadZoo } from "../../lib/zoo/zoo.ts";

/**
 * The zoo the child builds: {@linkcode smallZooConfig} with seed 5.
 *
 * @example
 * ```ts
 * import { smallZoo } from "./zoo_child.ts";
 * console.log(smallZoo().model.width); // 32
 * ```
 */
export function smallZoo(): ZooConfig {
  return smallZooConfig(5);
}

if (import.meta.main) {
  await initEngine({ backend: "wasm" });
  (await loadZoo({ config: smallZoo(), root: Deno.args[0], progress: "lines" })).dispose();
}
