/**
 * Mutation fuzzing of the PyTorch ZIP reader (lib/io/torch_zip.ts): a `torch.save` file is
 * mutated byte by byte, blind to the format, and each result is opened and read in full. Every
 * case must end in a {@linkcode CheckpointError} naming the file, or in reads that succeed
 * (with non-finite values refused naming the tensor). There is no independent oracle of the
 * format here, so values are not compared; what is checked is that nothing else happens: no
 * other kind of error, no hang, no allocation above the file's size.
 *
 * @module
 */
import { CheckpointError } from "../../lib/io/errors.ts";
import { openTorchCheckpoint } from "../../lib/io/torch_zip.ts";
import { Rng } from "../../lib/tensor/random.ts";
import type { AllocationProbe } from "./alloc_probe.ts";
import { type FuzzFailure, type FuzzSummary, mutateBytes, overwrite } from "./safetensors_fuzz.ts";

/** Opens and reads every tensor; returns how it ended or throws describing a wrong ending. */
async function checkTorchFile(path: string): Promise<"open error" | "read error" | "read"> {
  let ckpt;
  try {
    ckpt = await openTorchCheckpoint(path);
  } catch (err) {
    expectCheckpointError(err, path);
    return "open error";
  }
  try {
    let outcome: "read error" | "read" = "read";
    for (const name of ckpt.names()) {
      try {
        await ckpt.read(name);
      } catch (err) {
        expectCheckpointError(err, path);
        outcome = "read error";
      }
    }
    return outcome;
  } finally {
    ckpt.close();
  }
}

function expectCheckpointError(err: unknown, path: string): void {
  if (err instanceof CheckpointError && err.file === path && err.message.startsWith(path)) return;
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  throw new Error(`expected a CheckpointError naming ${path}, got ${text}`);
}

/**
 * Runs cases `from` … `to − 1` of `seed` over mutations of `original` (1–3 blind byte
 * mutations each), with the same probe and progress cell as the safetensors fuzzer.
 *
 * @example
 * ```ts ignore
 * const summary = await runTorchFuzz(1, 0, 100, dir, await Deno.readFile("model.pt"));
 * ```
 */
export async function runTorchFuzz(
  seed: number,
  from: number,
  to: number,
  dir: string,
  original: Uint8Array,
  probe?: AllocationProbe,
  progress?: Int32Array,
): Promise<FuzzSummary> {
  const path = `${dir}/case.pt`;
  const summary: FuzzSummary = {
    cases: 0,
    outcomes: { "open error": 0, "read error": 0, read: 0 },
    intact: 0,
    largestAllocationRatio: 0,
    failures: [] as FuzzFailure[],
  };
  using out = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let index = from; index < to; index++) {
    if (progress) Atomics.store(progress, 0, index);
    const rng = new Rng(seed, `torch/${index}`);
    let bytes = original, what = "";
    for (let r = rng.int(3); r >= 0; r--) {
      const step = mutateBytes(rng, bytes);
      [bytes, what] = [step.bytes, what ? `${what}; ${step.what}` : step.what];
    }
    overwrite(out, bytes);
    if (probe) {
      probe.reset();
      probe.limit = bytes.length;
    }
    try {
      summary.outcomes[await checkTorchFile(path)]++;
    } catch (err) {
      if (summary.failures.length < 20) {
        const problem = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        summary.failures.push({ index, file: "torch", what, problem });
      }
    } finally {
      if (probe) {
        const ratio = probe.stats.largest / Math.max(1, bytes.length);
        summary.largestAllocationRatio = Math.max(summary.largestAllocationRatio, ratio);
        probe.limit = Infinity;
      }
    }
    summary.cases++;
  }
  return summary;
}
