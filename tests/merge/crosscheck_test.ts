/**
 * Every merge method against an independent PyTorch reference written from docs/METHODS.md
 * (tests/merge/reference.py), on random task vectors with tiny-ViT shapes and HF names
 * (3 to 8 tasks). All cases run in one Python process; each is one test step.
 */
import { ok as assert } from "node:assert/strict";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { dareKeepMask } from "../../lib/merge/dare.ts";
import { merge, type MergedTaskVector } from "../../lib/merge/merge.ts";
import { MERGE_METHODS } from "../../lib/merge/registry.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { tempDir } from "../helpers/temp.ts";
import {
  maxAbsDiff,
  randomTaskVectors,
  type ReferenceSpec,
  runReference,
  tinyVitLayout,
  writeSource,
} from "./fixtures.ts";

const TOLERANCE = 1e-4;

interface Case {
  method: string;
  tasks: number;
  params?: Record<string, unknown>;
  quantized?: boolean;
}

const CASES: Case[] = [
  { method: "average", tasks: 3 },
  { method: "task_arithmetic", tasks: 4 },
  { method: "ties", tasks: 5, quantized: true },
  { method: "ties", tasks: 8, params: { k: 30, merge: "mean", scaling: 1 }, quantized: true },
  { method: "ties", tasks: 3, params: { k: 100, merge: "mean" } },
  { method: "dare_ta", tasks: 4, params: { p: 0.3, seed: 11 } },
  { method: "dare_ties", tasks: 6, quantized: true },
  { method: "dare_ties", tasks: 3, params: { k: 100, merge: "mean", p: 0.7, seed: 5 } },
  { method: "consensus_ta", tasks: 5 },
  { method: "consensus_ta", tasks: 4, params: { lambda: 0.3, prune_k: 1 }, quantized: true },
  { method: "consensus_ties", tasks: 8, quantized: true },
  { method: "tsv_m", tasks: 3 },
  { method: "tsv_m", tasks: 8 },
  { method: "tsv_m", tasks: 5, params: { svd: "exact" } },
  { method: "iso_c", tasks: 4 },
  { method: "iso_cts", tasks: 3 },
  { method: "iso_cts", tasks: 8 }, // r = 17 and 16: round(0.5) = 0, all common
  { method: "iso_cts", tasks: 5, params: { common_fraction: 0.7, scaling: 1.5 } },
  { method: "iso_cts", tasks: 4, params: { svd: "exact" } },
  { method: "wudi", tasks: 4 },
  { method: "wudi", tasks: 8, params: { tensors: "all2d", iterations: 100 } },
];

/** Writes the keep masks DARE drew (as 0/1 float32 tensors), one file per task. */
async function writeDareMasks(dir: string, tasks: MemorySource[], p: number, seed: number) {
  const paths: string[] = [];
  for (let t = 0; t < tasks.length; t++) {
    const tensors: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
    for (const name of tasks[t].names()) {
      const mask = dareKeepMask(seed, t, name, tasks[t].get(name).data.length, p);
      tensors[name] = { shape: tasks[t].shape(name), data: Float32Array.from(mask) };
    }
    paths.push(`${dir}/mask${t}.safetensors`);
    await writeSource(paths[t], new MemorySource(`mask${t}`, tensors));
  }
  return paths;
}

/** Merges one case here and writes what the reference needs into `dir`. */
async function prepareCase(c: Case, dir: string) {
  await Deno.mkdir(dir);
  const tasks = randomTaskVectors(tinyVitLayout(), c.tasks, 7, { quantized: c.quantized });
  const paths = tasks.map((_, t) => `${dir}/tau${t}.safetensors`);
  for (let t = 0; t < tasks.length; t++) await writeSource(paths[t], tasks[t]);
  const ours = await merge(c.method, tasks, { params: c.params });
  const params = ours.summary.params;
  const masks = c.method.startsWith("dare")
    ? await writeDareMasks(dir, tasks, params.p as number, params.seed as number)
    : undefined;
  const spec: ReferenceSpec = {
    method: c.method,
    params,
    tasks: paths,
    masks,
    out: `${dir}/ref.safetensors`,
  };
  const ta = c.method === "wudi"
    ? await merge("task_arithmetic", tasks, { scaling: 1 })
    : undefined;
  return { ours, spec, ta };
}

function largest(m: MergedTaskVector): number {
  let worst = 0;
  for (const name of m.names()) {
    for (const v of m.get(name).data) worst = Math.max(worst, Math.abs(v));
  }
  return worst;
}

Deno.test("every merge method matches its PyTorch reference (max |diff| < 1e-4)", async (t) => {
  await using dir = await tempDir();
  const prepared = [];
  for (let i = 0; i < CASES.length; i++) {
    prepared.push(await prepareCase(CASES[i], `${dir.path}/case${i}`));
  }
  await runReference(prepared.map((p) => p.spec), dir.path);
  for (const [i, c] of CASES.entries()) {
    const { ours, spec, ta } = prepared[i];
    await t.step(`${c.method} T=${c.tasks} ${JSON.stringify(spec.params)}`, async () => {
      using ref = await SafetensorsReader.open(spec.out);
      const diff = await maxAbsDiff(ours, ref);
      console.log(
        `${c.method} T=${c.tasks}: max |diff| = ${diff.toExponential(2)} (max |α·M| = ${
          largest(ours).toFixed(3)
        })`,
      );
      assert(largest(ours) > 0.01, `${c.method}: merged result is (nearly) all zero`);
      assert(diff < TOLERANCE, `${c.method}: max |diff| ${diff} ≥ ${TOLERANCE}`);
      // WUDI's Adam steps must have moved M away from its TA-sum start by more than the tolerance
      if (ta) {
        assert(await maxAbsDiff(ours, ta) > 10 * TOLERANCE, "WUDI did not move from the TA sum");
      }
    });
  }
  const covered = new Set(CASES.map((c) => c.method));
  // Data-using methods are checked against their own references in data_crosscheck_test.ts.
  for (const m of MERGE_METHODS.filter((m) => m.needs !== "data")) {
    assert(covered.has(m.name), `no cross-check for ${m.name}`);
  }
});
