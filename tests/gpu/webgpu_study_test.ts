/**
 * The whole study on WebGPU equals the study on wasm: a reduced zoo (tinyZooConfig) built,
 * adapted with RI, merged, distilled and measured with every stage on WebGPU — here Mesa's
 * software Vulkan adapter (llvmpipe), the same WebGPU code path a hardware GPU takes, about
 * 250× slower than a GPU, so the zoo is tiny. Tolerance: tests/gpu/compare_results.ts and
 * docs/GPU.md.
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { initEngine } from "../../lib/engine/backend.ts";
import { tinyStudyConfig } from "../helpers/tiny_runs.ts";
import { runPaths, runStudy } from "../../lib/pipeline/study.ts";
import type { StudyData } from "../../lib/pipeline/results.ts";
import { tempDir } from "../helpers/temp.ts";
import { tinyZooConfig } from "../helpers/small_models.ts";
import { ReadSpy } from "../helpers/reads.ts";
import { compareStudies, GPU_TOLERANCE } from "./compare_results.ts";
import { webGpuTestsRun } from "./webgpu.ts";

Deno.test({
  name: "WebGPU: the study (zoo, RI, merges, distillation, ξ, pairwise) equals wasm's results.json",
  ignore: !(await webGpuTestsRun()),
  sanitizeResources: false,
  async fn() {
    await using dir = await tempDir();
    const zoo = tinyZooConfig(0);
    const run = async (backend: "wasm" | "webgpu") => {
      const config = tinyStudyConfig(`${dir.path}/${backend}`, backend);
      // Each backend builds its own zoo: every stage runs on it.
      const root = `${dir.path}/${backend}/cache`;
      using spy = new ReadSpy({ forbidSync: true });
      await runStudy(config, { progress: "off", log: () => {}, zoo: { config: zoo, root } });
      deepStrictEqual(spy.syncReads, []);
      return JSON.parse(await Deno.readTextFile(runPaths(config).results)) as StudyData;
    };
    try {
      const cpu = await run("wasm");
      const gpu = await run("webgpu");
      equal(cpu.backend, "wasm");
      equal(gpu.backend, "webgpu");
      assert(/GPU/.test(gpu.adapter), gpu.adapter);
      const c = compareStudies(cpu, gpu, { testImages: zoo.splits.test, ...GPU_TOLERANCE });
      deepStrictEqual(c.failures, [], JSON.stringify(c, null, 2));
      // Not vacuous: the losses are not zero, and RI changed ξ by far more than the tolerance.
      const losses = gpu.riCurves!.mnist.total;
      assert(losses.every((l) => l > 0) && Math.max(...losses) > 1e-5, `RI losses ${losses}`);
      const ta = (ri: boolean) =>
        gpu.rows.find((r) => r.method === "task_arithmetic" && r.ri === ri)!;
      assert(Math.abs(ta(true).xi - ta(false).xi) > 0.05 * ta(false).xi);
    } finally {
      await initEngine({ backend: "wasm" });
    }
  },
});
