/**
 * `deno task gpu-check` and `deno task bench --webgpu on`, on Mesa's software adapter here: the
 * check refuses a software adapter unless `--software`; with it, it runs every workload on both
 * backends, they agree, and the report is written.
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { runBench } from "../../bench/harness.ts";
import { formatText } from "../../bench/report.ts";
import type { GpuCheckReport } from "../../bench/gpu_check.ts";
import { benchOptions } from "../../tasks/bench.ts";
import { gpuCheckOptions } from "../../tasks/gpu_check.ts";
import { tempDir } from "../helpers/temp.ts";
import { probeGpuAdapter } from "../../lib/engine/backend.ts";
import { webGpuTestsRun } from "./webgpu.ts";

const ignore = !(await webGpuTestsRun());
const task = new URL("../../tasks/gpu_check.ts", import.meta.url).pathname;

Deno.test({
  name: "deno task gpu-check without a GPU: refuses the software adapter, saying so, exit 1",
  ignore: ignore || (await probeGpuAdapter()).hardware,
  async fn() {
    await using dir = await tempDir();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", task, "--quick", "--out", dir.path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    equal(out.code, 1, stderr);
    assert(stderr.includes("gpu-check: no hardware WebGPU adapter: the adapter found is "), stderr);
    assert(stderr.includes("docs/GPU.md") && stderr.includes("--software"), stderr);
    // Refused before computing anything: no report.
    equal((await Array.fromAsync(Deno.readDir(dir.path))).length, 0);
  },
});

Deno.test({
  name: "deno task gpu-check --quick --software: wasm and WebGPU agree on every workload; report",
  ignore,
  async fn() {
    await using dir = await tempDir();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", task, "--quick", "--software", "--steps", "1", "--warmup", "1"],
        ...["--out", dir.path],
      ],
      env: { RI_BLAS_THREADS: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
    const report = JSON.parse(
      await Deno.readTextFile(`${dir.path}/gpu-check.json`),
    ) as GpuCheckReport;
    deepStrictEqual(report.workloads.map((w) => w.workload), ["vit_train", "ri_step", "eval"]);
    assert(report.ok);
    for (const w of report.workloads) {
      assert(w.agrees, w.agreement);
      assert(w.wasm.imagesPerSecond > 0 && w.webgpu.imagesPerSecond > 0 && w.speedup > 0);
    }
    assert(report.engines.webgpu.startsWith("backend webgpu on "), report.engines.webgpu);
    const text = await Deno.readTextFile(`${dir.path}/gpu-check.txt`);
    assert(text.includes("WebGPU and wasm agree.") && stdout.includes(text.trim()));
    if (!report.adapter.hardware) assert(text.includes("software adapter (no GPU)"));
  },
});

Deno.test("gpu-check options: quick defaults, bad counts named", () => {
  equal(gpuCheckOptions([]).steps, 10);
  equal(gpuCheckOptions(["--quick"]).warmup, 1);
  equal(gpuCheckOptions([]).software, false);
  equal(gpuCheckOptions(["--software"]).software, true);
  let message = "";
  try {
    gpuCheckOptions(["--steps", "0"]);
  } catch (err) {
    message = (err as Error).message;
  }
  assert(message.includes("--steps 0: expected an integer"), message);
});

Deno.test({
  name: "deno task bench --webgpu on: the model workloads run on WebGPU as a third side",
  ignore,
  async fn() {
    const options = benchOptions(["--quick", "--only", "vit_train", "--webgpu", "on"]);
    const result = await runBench({ ...options, log: () => {} });
    assert(result.webgpu?.ran, JSON.stringify(result.webgpu));
    const [w] = result.workloads;
    equal(w.webgpu?.length, 1);
    assert(w.gpu && w.gpu.mismatch < 1e-4, w.gpu?.agreement);
    assert(formatText(result).includes(`WebGPU on ${result.webgpu!.adapter}`));
  },
});
