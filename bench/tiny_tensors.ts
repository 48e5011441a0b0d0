/**
 * Merging checkpoints of many tiny tensors: does time grow with the tensor count alone?
 * For each count N given, writes a base and two experts of N tensors of 8 floats (not timed),
 * then times `mergeCheckpoints` (task arithmetic: open, check, merge, write) in this process,
 * wall and CPU time, and prints one line per N with the time per tensor. Equal times per
 * tensor mean linear growth (docs/BENCHMARKS.md, "Many tiny tensors").
 *
 * ```sh
 * deno run -A bench/tiny_tensors.ts 20000 200000
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { mergeCheckpoints } from "../lib/merge/files.ts";
import { writeCheckpoint } from "../lib/io/write_checkpoint.ts";
import type { TensorSource } from "../lib/tensor/source.ts";
import { cpuMs } from "./machine.ts";

/** N tensors of 8 floats: sin of the position, plus `offset` × a cosine (an expert's change). */
function tinyModel(n: number, offset: number): TensorSource {
  const names = Array.from({ length: n }, (_, i) => `layer.${i}.weight`);
  return {
    label: `tiny(${n}, ${offset})`,
    names: () => names,
    shape: () => [8],
    read: (name) => {
      const i = Number(name.split(".")[1]);
      const data = new Float32Array(8);
      for (let j = 0; j < 8; j++) data[j] = Math.sin(i * 8 + j) + offset * Math.cos(i + j);
      return Promise.resolve(data);
    },
  };
}

/** Writes the inputs for N tensors under `dir`, then times one merge of them. */
async function timeTinyMerge(
  dir: string,
  n: number,
): Promise<{ wall: number; cpu: number }> {
  await writeCheckpoint(join(dir, "base.safetensors"), tinyModel(n, 0));
  await writeCheckpoint(join(dir, "experts", "a.safetensors"), tinyModel(n, 0.01));
  await writeCheckpoint(join(dir, "experts", "b.safetensors"), tinyModel(n, -0.01));
  const [wall0, cpu0] = [performance.now(), cpuMs()];
  await mergeCheckpoints({
    method: "task_arithmetic",
    base: join(dir, "base.safetensors"),
    experts: join(dir, "experts"),
    out: join(dir, "merged.safetensors"),
  });
  return { wall: performance.now() - wall0, cpu: cpuMs() - cpu0 };
}

if (import.meta.main) {
  const counts = Deno.args.length ? Deno.args.map(Number) : [20_000, 200_000];
  const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ")[0];
  console.log(`load average ${load} before the runs`);
  for (const n of counts) {
    const dir = await Deno.makeTempDir({ prefix: "ri-tiny-" });
    try {
      const { wall, cpu } = await timeTinyMerge(dir, n);
      console.log(
        `${n} tensors: ${(wall / 1000).toFixed(2)} s wall, ${(cpu / 1000).toFixed(2)} s CPU, ` +
          `${(wall / n * 1000).toFixed(1)} µs wall per tensor`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
}
