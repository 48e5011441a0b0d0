/**
 * Every merge method against an independent PyTorch reference written from MERGING.md
 * (tests/merge/reference.py), on random task vectors with tiny-ViT shapes and HF names.
 */
import { ok as assert } from "node:assert/strict";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { dareKeepMask } from "../../lib/merge/dare.ts";
import { merge } from "../../lib/merge/merge.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { tempDir } from "../helpers/python.ts";
import {
  maxAbsDiff,
  randomTaskVectors,
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
  seed?: number;
}

/** Writes the keep masks DARE drew (as 0/1 float32 tensors), one file per task. */
async function writeDareMasks(dir: string, tasks: MemorySource[], p: number, seed: number) {
  const paths: string[] = [];
  for (let t = 0; t < tasks.length; t++) {
    const tensors: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
    for (const name of tasks[t].names()) {
      const shape = tasks[t].shape(name);
      const mask = dareKeepMask(seed, t, name, tasks[t].get(name).data.length, p);
      tensors[name] = { shape, data: Float32Array.from(mask) };
    }
    paths.push(`${dir}/mask${t}.safetensors`);
    await writeSource(paths[t], new MemorySource(`mask${t}`, tensors));
  }
  return paths;
}

async function crossCheck(c: Case): Promise<number> {
  await using dir = await tempDir();
  const tasks = randomTaskVectors(tinyVitLayout(), c.tasks, c.seed ?? 7, {
    quantized: c.quantized,
  });
  const paths = tasks.map((_, t) => `${dir.path}/tau${t}.safetensors`);
  for (let t = 0; t < tasks.length; t++) await writeSource(paths[t], tasks[t]);
  const ours = await merge(c.method, tasks, { params: c.params });
  const params = ours.summary.params;
  const masks = c.method.startsWith("dare")
    ? await writeDareMasks(dir.path, tasks, params.p as number, params.seed as number)
    : undefined;
  const out = `${dir.path}/ref.safetensors`;
  await runReference({ method: c.method, params, tasks: paths, out, masks });
  using ref = await SafetensorsReader.open(out);
  const diff = await maxAbsDiff(ours, ref);
  let largest = 0;
  for (const name of ours.names()) {
    for (const v of ours.get(name).data) largest = Math.max(largest, Math.abs(v));
  }
  console.log(
    `${c.method} T=${c.tasks} ${JSON.stringify(params)}: max |diff| = ${diff.toExponential(2)}` +
      ` (max |α·M| = ${largest.toFixed(3)})`,
  );
  assert(largest > 0.01, `${c.method}: merged result is (nearly) all zero`);
  assert(diff < TOLERANCE, `${c.method}: max |diff| ${diff} ≥ ${TOLERANCE}`);
  return diff;
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
];

for (const c of CASES) {
  Deno.test(`${c.method} (T=${c.tasks}, ${JSON.stringify(c.params ?? {})}) matches PyTorch`, async () => {
    await crossCheck(c);
  });
}
