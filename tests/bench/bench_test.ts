/**
 * Smoke test of `deno task bench` at tiny sizes (nothing is timed here): the model workloads
 * (lib/train's step, lib/ri's trainer with riLoss, lib/train's accuracy) and two merges (one
 * elementwise with a whole-model threshold, one spectral) run on both sides in child
 * processes, the summary has a ratio and peak memory for each, and the two sides computed the
 * same thing on the same data (losses, predictions, merged checkpoints). Every process loads
 * tfjs or PyTorch, so the merges whose streaming the merge tests already cover are left out.
 */
import { equal, ok as assert, throws } from "node:assert/strict";
import { MERGE_METHODS, MODEL_WORKLOADS, runBench } from "../../bench/harness.ts";
import { formatText, workloadTitle } from "../../bench/report.ts";
import { benchOptions } from "../../tasks/bench.ts";

Deno.test("deno task bench --quick: the model workloads and two merges agree across sides", async () => {
  const all = [...MODEL_WORKLOADS, "merge_ties", "merge_iso_cts"];
  const options = benchOptions(["--quick", "--only", all.join()]);
  const result = await runBench({ ...options, log: () => {} });
  equal(result.workloads.length, all.length);
  for (const w of result.workloads) {
    equal(w.ours.length, 1, w.workload);
    equal(w.torch.length, 1, w.workload);
    for (const side of [...w.ours, ...w.torch]) {
      equal(side.workload, w.workload);
      assert(side.times_ms.length >= 1 && side.times_ms.every((t) => t > 0), w.workload);
      assert((side.peak_mib ?? 0) > 10, `${w.workload}: peak memory ${side.peak_mib}`);
    }
    assert(Number.isFinite(w.ratio) && w.ratio > 0, `${w.workload}: ratio ${w.ratio}`);
    assert(Number.isFinite(w.cpuRatio) && w.cpuRatio > 0, `${w.workload}: CPU ratio`);
    // one process per side: the spread is that process's median; others' load is measured
    equal(w.spread.ours[0], w.spread.ours[1]);
    assert(w.spread.ours[0] > 0 && w.spread.torch[0] > 0, `${w.workload}: spread`);
    assert(typeof w.othersCores === "number" && w.othersCores >= 0, `${w.workload}: others`);
    equal(w.loaded, w.othersCores! > 0.25);
    if (w.workload.startsWith("merge_")) {
      // float32 streams in both; the SVD methods agree to rounding of their factors
      assert(w.mismatch < 1e-4, `${w.workload}: ${w.agreement}`);
    } else {
      // the same first loss (or predictions) from the same parameters and batch
      const ours = w.ours[0].check!.first, torch = w.torch[0].check!.first;
      assert(Math.abs(ours - torch) <= 1e-5 * Math.max(1, Math.abs(torch)), w.agreement);
    }
  }
  const text = formatText(result);
  for (const w of all) assert(text.includes(workloadTitle(w)), `${w} missing from the table`);
  // WebGPU runs only on a hardware adapter by default, and the run says when it did not.
  if (result.webgpu && !result.webgpu.ran) {
    assert(text.includes(`WebGPU: skipped: ${result.webgpu.skipped}`), text);
  }
});

Deno.test("bench options: five processes per side by default; bad input is one line", async () => {
  const full = benchOptions(["--full"]);
  equal(full.mergeLayers, 12);
  equal(full.mergeReps, 5);
  equal(full.reps, 5);
  equal(benchOptions(["--quick"]).reps, 1);
  equal(benchOptions([]).mergeLayers, 2);
  equal(
    benchOptions([]).workloads.join(),
    [...MODEL_WORKLOADS, ...MERGE_METHODS.map((m) => `merge_${m}`)].join(),
  );
  equal(benchOptions(["--no-merges"]).workloads.join(), MODEL_WORKLOADS.join());
  throws(
    () => benchOptions(["--only", "vit_trian"]),
    /unknown workload "vit_trian" \(valid: vit_train, /,
  );
  throws(() => benchOptions(["--threads", "0"]), /--threads 0: expected an integer/);
  const cli = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../tasks/bench.ts", import.meta.url).pathname,
      "--only",
      "nope",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(cli.stderr).trim();
  equal(cli.code, 2);
  equal(stderr.split("\n").length, 1, stderr);
  assert(stderr.includes('unknown workload "nope"') && stderr.includes("merge_read"), stderr);
});
