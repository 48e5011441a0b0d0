/**
 * What the WebGPU backend needs on top of tfjs-backend-webgpu to compute right, or fail loudly.
 *
 * 1. **AddN within the storage-buffer limit.** tfjs-webgpu's `AddN` binds each of its n inputs,
 *    and its output, as a storage buffer of one shader. A WebGPU device allows
 *    `maxStorageBuffersPerShaderStage` of them (8 unless the device was asked for more, and
 *    tfjs does not ask), so `tf.addN` of 8 or more tensors is a shader the device rejects —
 *    and it rejects it silently: WebGPU reports the error as an event, the command buffer the
 *    kernel was recorded into is invalid, and every kernel batched into it (a training step's
 *    forward pass, backward pass and updates) leaves its output untouched. Gradient clipping
 *    sums one squared norm per parameter tensor, and the loss's report averaged ten steps by
 *    `addN`: on WebGPU the reported loss was 0 and training was corrupted. The kernel
 *    registered here sums in chunks of at most `limit − 1` inputs (a tree of sums).
 * 2. **Errors made loud.** Validation and out-of-memory errors of the device are recorded as
 *    they are reported; {@linkcode throwIfWebGpuFailed} (called after every read of
 *    `lib/engine/read.ts`) turns the first one into an exception naming it, so a kernel the
 *    device refused can never again pass for a result.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The part of tfjs-webgpu's backend this module uses. */
interface WebGpuBackendLike {
  device: GPUDevice;
  disposeData(dataId: object): boolean;
}

const errors: string[] = [];
const watched = new WeakSet<GPUDevice>();
let original: tf.KernelConfig | undefined;

/**
 * Prepares the active `webgpu` backend: the chunked AddN kernel and the error watch. Call once
 * the backend is active (`initEngine` does); calling again changes nothing.
 *
 * @example
 * ```ts ignore
 * import * as tf from "@tensorflow/tfjs";
 * import "@tensorflow/tfjs-backend-webgpu";
 * import { prepareWebGpu } from "./webgpu.ts";
 * await tf.setBackend("webgpu");
 * prepareWebGpu();
 * ```
 */
export function prepareWebGpu(): void {
  const backend = tf.findBackend("webgpu") as unknown as WebGpuBackendLike | null;
  if (!backend?.device) throw new Error("prepareWebGpu: the webgpu backend is not initialised");
  watchDevice(backend.device);
  if (original) return;
  const kernel = tf.getKernel("AddN", "webgpu");
  if (!kernel) throw new Error("prepareWebGpu: tfjs-webgpu registers no AddN kernel");
  original = kernel;
  tf.unregisterKernel("AddN", "webgpu");
  tf.registerKernel({ ...kernel, kernelFunc: chunkedAddN(kernel) });
}

function watchDevice(device: GPUDevice): void {
  if (watched.has(device)) return;
  watched.add(device);
  device.addEventListener("uncapturederror", (event) => {
    const error = (event as GPUUncapturedErrorEvent).error;
    errors.push(`${error.constructor?.name ?? "GPUError"}: ${error.message}`);
  });
}

/** AddN through tfjs-webgpu's kernel, a chunk of at most `limit − 1` inputs at a time. */
function chunkedAddN(kernel: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WebGpuBackendLike;
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const most = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
    const sum = (tensors: tf.TensorInfo[]) =>
      kernel.kernelFunc({ ...args, inputs: tensors } as unknown as Parameters<tf.KernelFunc>[0]);
    if (inputs.length <= most) return sum(inputs);
    let level = [...inputs];
    const made = new Set<tf.TensorInfo>();
    while (level.length > most) {
      const next: tf.TensorInfo[] = [];
      for (let i = 0; i < level.length; i += most) {
        const chunk = level.slice(i, i + most);
        if (chunk.length === 1) next.push(chunk[0]);
        else {
          const partial = sum(chunk) as tf.TensorInfo;
          made.add(partial);
          next.push(partial);
        }
      }
      level = next;
    }
    const out = sum(level);
    for (const t of made) backend.disposeData(t.dataId);
    return out;
  };
}

/**
 * Throws the first error the WebGPU device reported since the last call (and forgets them):
 * a rejected kernel, an out-of-memory. Does nothing on other backends or when all went well.
 *
 * @example
 * ```ts
 * import { doesNotThrow } from "node:assert/strict";
 * import { throwIfWebGpuFailed } from "./webgpu.ts";
 * doesNotThrow(() => throwIfWebGpuFailed()); // nothing was reported
 * ```
 */
export function throwIfWebGpuFailed(): void {
  if (errors.length === 0) return;
  const first = errors[0];
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
  errors.length = 0;
  throw new Error(
    `the WebGPU device rejected work, so the results of the kernels submitted with it are ` +
      `wrong: ${first}${more}`,
  );
}
