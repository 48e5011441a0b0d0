/**
 * A child process for interrupted_zoo_test.ts: builds (or resumes) a small zoo in the cache
 * root given as its argument, with progress printed as lines.
 *
 * @module
 */
import { initEngine } from "../../lib/engine/backend.ts";
import { defaultZooConfig, type ZooConfig } from "../../lib/zoo/config.ts";
import { loadZoo } from "../../lib/zoo/zoo.ts";

/**
 * mf4 cut down to a few seconds of building: the stages and files are those of any zoo.
 *
 * @example
 * ```ts
 * import { smallZoo } from "./zoo_child.ts";
 * console.log(smallZoo().model.width); // 32
 * ```
 */
export function smallZoo(): ZooConfig {
  const c = defaultZooConfig("mf4", 5);
  return {
    ...c,
    model: { ...c.model, width: 32, layers: 2, heads: 2, mlpDim: 64, projectionDim: 32 },
    splits: { train: 128, val: 16, test: 64 },
    pretrain: { ...c.pretrain, perSource: 256, epochs: 1, batchSize: 64 },
    heads: { ...c.heads, steps: 30 },
    experts: { ...c.experts, epochs: 1, batchSize: 32 },
  };
}

if (import.meta.main) {
  await initEngine({ backend: "wasm" });
  (await loadZoo({ config: smallZoo(), root: Deno.args[0], progress: "lines" })).dispose();
}
