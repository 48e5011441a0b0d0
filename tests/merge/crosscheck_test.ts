/**
 * Every merge method against an independent PyTorch reference written from docs/METHODS.md
 * (tests/merge/reference.py), on random task vectors with tiny-ViT shapes and HF names
 * (3 to 8 tasks). All cases run in one Python process; each is one test step.
 */
import { ok as assert } from "node:assert/strict";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { dareKeepMask } from "../../lib/merge/dare.ts";
import { merge, type MergedTaskVector } from "../../lib/merge/merge.ts";
import { getMethod, MERGE_METHODS } from "../../lib/merge/registry.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { tempDir } from "../helpers/temp.ts";
import {
  maxAbsDiff,
  randomTaskVectors,
  type Readable,
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
  /** The fraction of outputs allowed past the tolerance (threshold effects; see the case). */
  mostly?: number;
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
  { method: "ties", tasks: 4, params: { merge: "max" }, quantized: true },
  { method: "ties_max", tasks: 5, quantized: true },
  { method: "ties_max", tasks: 3, params: { k: 100, scaling: 1 } },
  { method: "dare_average", tasks: 4, params: { p: 0.3, seed: 2 } },
  { method: "weighted_average", tasks: 3, params: { weights: [1, 2, 3] } },
  {
    method: "weighted_average",
    tasks: 4,
    params: { weights: [0.5, 0.25, 1, 2], normalize: false },
  },
  { method: "magmax", tasks: 5 },
  { method: "magmax", tasks: 6, quantized: true }, // magnitude ties: the later task wins
  { method: "model_stock", tasks: 2 },
  { method: "model_stock", tasks: 8 },
  { method: "emr", tasks: 4 },
  { method: "emr", tasks: 5, quantized: true }, // zero sums count as negative
  { method: "tsv_c", tasks: 3 },
  { method: "tsv_c", tasks: 8 },
  { method: "tall_mask", tasks: 4 },
  { method: "tall_mask", tasks: 5, params: { mtl: "ties", lambda: 0.4 }, quantized: true },
  { method: "slerp", tasks: 2 }, // between θ0 + τ_1 and θ0 + τ_2
  { method: "slerp", tasks: 2, params: { space: "task_vectors", t: 0.3 } },
  { method: "slerp", tasks: 2, params: { dot_threshold: 0, t: 0.7 } }, // always linear
  { method: "model_stock", tasks: 4, quantized: true }, // correlated task vectors: t far from 0
  { method: "svc_task_arithmetic", tasks: 4 },
  { method: "svc_task_arithmetic", tasks: 5, params: { alpha: 0.5, base_scaling: 1 } },
  { method: "svc_ties", tasks: 4 },
  { method: "svc_tsv_m", tasks: 3 },
  { method: "svc_average", tasks: 3 },
  { method: "svc_dare_ta", tasks: 3, params: { p: 0.2, seed: 9 } },
  { method: "svc_wudi", tasks: 3, params: { iterations: 30 } },
  { method: "knots", tasks: 4 },
  { method: "knots", tasks: 8 },
  // KnOTS trims its SVD coordinates at a magnitude threshold; ours takes the SVD in float32
  // (LAPACK sgesdd), the reference in float64 as KnOTS does, so a coordinate within float32
  // rounding of the threshold can fall on either side. On this fixture at T = 3 one does: one
  // column of one layer (60 of 19 840 outputs) differs, by up to 0.03. Allowed: 1 % of outputs.
  { method: "knots", tasks: 3, mostly: 0.01 },
  { method: "knots", tasks: 5, params: { k: 100, merge: "sum" } }, // no trim: everything agrees
  { method: "trust_region", tasks: 4 },
  { method: "trust_region", tasks: 6, params: { quantile: 0.7, scaling: 1 } },
  { method: "doge_ta", tasks: 4 },
  { method: "doge_ta", tasks: 8 },
  // DOP: fewer Adam steps than its 200 to keep this test short (the reference runs three
  // autograd passes per step); the default count is checked outside CI (docs/METHODS.md).
  { method: "dop", tasks: 3, params: { iterations: 60 } },
  { method: "dop", tasks: 4, params: { mgda: false, iterations: 20 } },
  { method: "dop", tasks: 3, params: { ema: false, svd_proj_space: "v", iterations: 20 } },
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
  // θ0 for the methods that read it: weights of unit scale, like a pretrained model's.
  const needsBase = getMethod(c.method).needsBase;
  const base = needsBase ? randomTaskVectors(tinyVitLayout(), 1, 99, { scale: 1 })[0] : undefined;
  if (base) await writeSource(`${dir}/base.safetensors`, base);
  const ours = await merge(c.method, tasks, { params: c.params, baseModel: base });
  const params = ours.summary.params;
  const masks = c.method.startsWith("dare") || c.method === "svc_dare_ta"
    ? await writeDareMasks(dir, tasks, params.p as number, params.seed as number)
    : undefined;
  const spec: ReferenceSpec = {
    method: c.method,
    params,
    tasks: paths,
    masks,
    base: base ? `${dir}/base.safetensors` : undefined,
    out: `${dir}/ref.safetensors`,
  };
  // The optimising methods must move away from where their optimisation starts.
  const start = c.method === "wudi"
    ? await merge("task_arithmetic", tasks, { scaling: 1 })
    : c.method === "doge_ta" || c.method === "dop"
    ? await merge(c.method, tasks, { params: { ...c.params, iterations: 0 } })
    : undefined;
  return { ours, spec, start };
}

function largest(m: MergedTaskVector): number {
  let worst = 0;
  for (const source of m.perTask ?? [m]) {
    for (const name of source.names()) {
      for (const v of source.get(name).data) worst = Math.max(worst, Math.abs(v));
    }
  }
  return worst;
}

/** Differences to the reference (every task's model for per-task methods): the largest, and
 * how many outputs exceed the tolerance. */
async function referenceDiff(ours: MergedTaskVector, ref: Readable) {
  const pairs: [Readable, Readable][] = ours.perTask
    ? ours.perTask.map((task, t) => [task, {
      names: () => task.names(),
      read: (name: string) => ref.read(`t${t}::${name}`),
    }])
    : [[ours, ref]];
  let worst = 0, over = 0, total = 0;
  for (const [a, b] of pairs) {
    for (const name of a.names()) {
      const x = await a.read(name), y = await b.read(name);
      for (let i = 0; i < x.length; i++) {
        const d = Math.abs(x[i] - y[i]);
        worst = Math.max(worst, d);
        if (d >= TOLERANCE) over++;
        total++;
      }
    }
  }
  return { worst, over, total };
}

Deno.test("every merge method matches its PyTorch reference (max |diff| < 1e-4)", async (t) => {
  await using dir = await tempDir();
  const prepared = [];
  for (let i = 0; i < CASES.length; i++) {
    prepared.push(await prepareCase(CASES[i], `${dir.path}/case${i}`));
  }
  await runReference(prepared.map((p) => p.spec), dir.path);
  for (const [i, c] of CASES.entries()) {
    const { ours, spec, start } = prepared[i];
    await t.step(`${c.method} T=${c.tasks} ${JSON.stringify(spec.params)}`, async () => {
      using ref = await SafetensorsReader.open(spec.out);
      const { worst: diff, over, total } = await referenceDiff(ours, ref);
      console.log(
        `${c.method} T=${c.tasks}: max |diff| = ${diff.toExponential(2)} (max |α·M| = ${
          largest(ours).toFixed(3)
        })` + (over ? `, ${over} of ${total} outputs past ${TOLERANCE}` : ""),
      );
      assert(largest(ours) > 0.01, `${c.method}: merged result is (nearly) all zero`);
      if (c.mostly === undefined) {
        assert(diff < TOLERANCE, `${c.method}: max |diff| ${diff} ≥ ${TOLERANCE}`);
      } else {
        assert(over <= c.mostly * total, `${c.method}: ${over} of ${total} outputs differ`);
      }
      // WUDI's, DOGE-TA's and DOP's Adam steps must have moved M from their start (the TA sum;
      // δ = 0; the pairwise averages)
      // by more than the tolerance
      if (start) {
        assert(await maxAbsDiff(ours, start) > 10 * TOLERANCE, `${c.method} did not move`);
      }
    });
  }
  const covered = new Set(CASES.map((c) => c.method));
  // Data-using methods are checked against their own references in data_crosscheck_test.ts.
  for (const m of MERGE_METHODS.filter((m) => m.needs !== "data")) {
    assert(covered.has(m.name), `no cross-check for ${m.name}`);
  }
});
