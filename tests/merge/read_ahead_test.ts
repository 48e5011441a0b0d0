/**
 * A streaming merge of checkpoints on disk (sources that allow concurrent reads) reads ahead
 * (`readAhead`: the next tensor while the current one is merged and written; every file's
 * tensor at once in `readTaskVectors`). These tests hold it to
 * the sequential path's guarantees: the merged checkpoint's bytes are those of a plain
 * sequential float32 computation, a bad tensor late in the model still fails with the error
 * naming its file and tensor (the first in task order when several are bad), and a read failing
 * mid-merge leaves no file handle open, no read running and no output behind.
 */
import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import { CheckpointError } from "../../lib/io/errors.ts";
import { openCheckpoint } from "../../lib/io/open.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { mergeCheckpoints } from "../../lib/merge/files.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { numel } from "../../lib/tensor/host.ts";
import { openBlas } from "../../lib/linalg/openblas.ts";
import { tempDir } from "../helpers/temp.ts";

// OpenBLAS stays loaded for the process: loaded here, so that the tests' resource sanitizers
// (which find every file handle a merge leaves open) do not count it.
openBlas();

const T = 3;
/** Small and large tensors (above and below the OpenBLAS threshold), more than two of them. */
const LAYOUT: [string, number[]][] = [
  ["a.weight", [64, 96]],
  ["a.bias", [96]],
  ["b.weight", [130, 70]],
  ["c.weight", [5]],
  ["d.weight", [100, 100]],
];

/** Deterministic values: θ0 in [-1, 1), experts θ0 + small changes of varied magnitude. */
function model(expert: number, bad?: { tensor: string; value: number }) {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  let state = 12345;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 30 - 1;
  for (const [name, shape] of LAYOUT) {
    const data = new Float32Array(numel(shape));
    for (let i = 0; i < data.length; i++) {
      const theta0 = next(), change = next() * 10 ** -(1 + (i % 4));
      data[i] = expert < 0 ? theta0 : theta0 + (expert + 1) * change;
    }
    if (bad?.tensor === name) data[data.length - 1] = bad.value;
    tensors[name] = { shape, data };
  }
  return new MemorySource(expert < 0 ? "base" : `expert${expert}`, tensors);
}

async function writeInputs(
  dir: string,
  bad: Record<number, { tensor: string; value: number }> = {},
) {
  const base = `${dir}/base.safetensors`;
  await writeCheckpoint(base, model(-1));
  const experts: string[] = [];
  for (let t = 0; t < T; t++) {
    experts.push(`${dir}/expert${t}.safetensors`);
    await writeCheckpoint(experts[t], model(t, bad[t]), { allowNonFinite: true });
  }
  return { base, experts };
}

/** File descriptors of this process open on files under `dir` (Linux: /proc/self/fd). */
function openUnder(dir: string): string[] {
  const open: string[] = [];
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // the descriptor readDir itself used, closed by now
    }
  }
  return open;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

Deno.test({
  name: "read ahead: the Task Arithmetic checkpoint holds exactly the sequential float32 values",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using dir = await tempDir();
    const { base, experts } = await writeInputs(dir.path);
    const out = `${dir.path}/merged.safetensors`;
    await mergeCheckpoints({ method: "task_arithmetic", base, experts, out, scaling: 0.3 });
    using merged = await openCheckpoint(out);
    deepStrictEqual(merged.names(), LAYOUT.map(([n]) => n));
    const theta0 = model(-1), thetas = Array.from({ length: T }, (_, t) => model(t));
    for (const [name] of LAYOUT) {
      // θ0 + α·Σ_t (θ_t − θ0), one float32 rounding per operation, tasks in order
      const b = await theta0.read(name), ts = await Promise.all(thetas.map((m) => m.read(name)));
      const expected = b.map((b0, i) => {
        let sum = 0;
        for (const theta of ts) sum = Math.fround(sum + Math.fround(theta[i] - b0));
        return Math.fround(b0 + Math.fround(0.3 * sum));
      });
      deepStrictEqual(bits(await merged.read(name)), bits(expected), name);
    }
  },
});

Deno.test({
  name:
    "read ahead: a bad value in a late tensor fails naming the first bad expert's file and the tensor",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using dir = await tempDir();
    const last = LAYOUT[LAYOUT.length - 1][0];
    // experts 1 and 2 both bad in the last tensor: the error is expert 1's, as read in order
    const { base, experts } = await writeInputs(dir.path, {
      1: { tensor: last, value: NaN },
      2: { tensor: last, value: Infinity },
    });
    for (const method of ["task_arithmetic", "ties"]) {
      const out = `${dir.path}/${method}.safetensors`;
      await rejects(
        mergeCheckpoints({ method, base, experts, out, checkBase: false }),
        (err: Error) => {
          ok(err instanceof CheckpointError, `${method}: ${err.stack}`);
          equal(
            err.message,
            `${experts[1]}: tensor "${last}": value NaN at flat index 9999 ` +
              `(expected finite weights)`,
          );
          return true;
        },
      );
      await rejects(Deno.stat(out), Deno.errors.NotFound);
      deepStrictEqual(openUnder(dir.path), [], `${method}: file handles left open`);
    }
  },
});

Deno.test({
  name: "read ahead: a read failing mid-merge leaves no file handle, no running read and no output",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using dir = await tempDir();
    for (const method of ["task_arithmetic", "ties"]) {
      const { base, experts } = await writeInputs(dir.path);
      const out = `${dir.path}/${method}.safetensors`;
      // once the first pass (TIES: its threshold pass) is past its first tensor, expert 0 loses
      // the data of the later tensors
      const cut = 8 + 4 * numel(LAYOUT[0][1]) + 1024;
      let truncated = false;
      const progress = (p: { done: number }) => {
        if (p.done === 1 && !truncated) {
          truncated = true;
          Deno.truncateSync(experts[0], cut);
        }
      };
      const before = openUnder(dir.path).length;
      equal(before, 0);
      await rejects(
        mergeCheckpoints({ method, base, experts, out, checkBase: false, progress }),
        (err: Error) => {
          ok(err instanceof CheckpointError, `${method}: ${err.stack}`);
          ok(err.message.startsWith(`${experts[0]}: tensor "`), err.message);
          ok(/file ended while reading \(truncated\?\)/.test(err.message), err.message);
          return true;
        },
      );
      ok(truncated, `${method}: no pass reported progress`);
      await rejects(Deno.stat(out), Deno.errors.NotFound);
      deepStrictEqual(openUnder(dir.path), [], `${method}: file handles left open`);
    }
  },
});
