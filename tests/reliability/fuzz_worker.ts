/**
 * Worker body of the safetensors fuzz test: installs the allocation probe (globals are this
 * worker's own), runs the cases it is sent and posts the summary back. Running in a worker lets
 * the test terminate a case that hangs and say which one it was.
 *
 * @module
 */
import { installAllocationProbe } from "./alloc_probe.ts";
import { runFuzz } from "./safetensors_fuzz.ts";
import { runTorchFuzz } from "./torch_fuzz.ts";
import { decodeToFloat32 } from "../../lib/io/dtype.ts";

/** What the test sends: cases `from` … `to − 1` of `seed`, a folder, a progress cell. */
export interface FuzzRequest {
  /** Seed of the case generator. */
  seed: number;
  /** First case. */
  from: number;
  /** One past the last case. */
  to: number;
  /** Folder for the case file. */
  dir: string;
  /** One Int32 cell: the case being run. */
  progress: SharedArrayBuffer;
  /** A torch.save file to mutate instead of the safetensors seed files. */
  torchFile?: string;
}

/**
 * Runs a request in this worker (the worker's message handler calls it).
 *
 * @example
 * ```ts ignore
 * self.postMessage(await handle(request));
 * ```
 */
export async function handle(request: FuzzRequest) {
  decodeToFloat32(new Uint8Array(2), "F16"); // builds the F16 table before the probe watches
  using probe = installAllocationProbe();
  const progress = new Int32Array(request.progress);
  const { seed, from, to, dir, torchFile } = request;
  if (torchFile) {
    const original = await Deno.readFile(torchFile);
    return await runTorchFuzz(seed, from, to, dir, original, probe, progress);
  }
  return await runFuzz(seed, from, to, dir, probe, progress);
}

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<FuzzRequest>) => void) | null;
  postMessage?: (message: unknown) => void;
};
if (scope.postMessage && "WorkerGlobalScope" in globalThis) {
  scope.onmessage = async (e) => {
    try {
      scope.postMessage!({ summary: await handle(e.data) });
    } catch (err) {
      scope.postMessage!({ error: `${(err as Error).stack ?? err}` });
    }
  };
}
