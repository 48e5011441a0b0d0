/**
 * Resolving Interference (RI) for model merging: checkpoint I/O, task vectors, merge methods,
 * the interference measure ξ, RI adaptation and evaluation, as values that show themselves in
 * Deno's Jupyter kernel.
 *
 * @example
 * ```ts
 * import { describeEngine, initEngine } from "./mod.ts";
 * console.log(describeEngine(await initEngine({ backend: "wasm" })));
 * ```
 *
 * @module
 */
import { inKernel } from "./lib/display/jupyter.ts";
import { installKernelInterrupts } from "./lib/train/interrupt.ts";

export * from "./lib/engine/backend.ts";
export {
  fastKernelCounts,
  fastKernelsActive,
  type FastKernelsInfo,
  registerFastKernels,
  unregisterFastKernels,
} from "./lib/engine/kernels.ts";
export * from "./lib/io/atomic.ts";
export * from "./lib/io/checkpoint.ts";
export * from "./lib/io/errors.ts";
export * from "./lib/io/find.ts";
export * from "./lib/io/open.ts";
export {
  type CheckpointTensorInfo,
  openSafetensors,
  SafetensorsCheckpoint,
} from "./lib/io/safetensors_checkpoint.ts";
export * from "./lib/io/dtype.ts";
export * from "./lib/io/safetensors.ts";
export * from "./lib/io/write_checkpoint.ts";
export * from "./lib/io/zip_store.ts";
export * from "./lib/io/pickle.ts";
export {
  ShardedTorchCheckpoint,
  type ShardedTorchTensorInfo,
  TorchCheckpoint,
  type TorchTensorInfo,
} from "./lib/io/torch_zip.ts";
export {
  blasThreads,
  type LinalgInfo,
  linalgInfo,
  setLinalgFallback,
} from "./lib/linalg/openblas.ts";
export { matmul, type MatmulOptions } from "./lib/linalg/matmul.ts";
export { polarFactor, svd, type SvdResult } from "./lib/linalg/svd.ts";
export * from "./lib/tensor/host.ts";
export * from "./lib/tensor/source.ts";
export * from "./lib/taskvec/base_check.ts";
export * from "./lib/taskvec/set.ts";
export * from "./lib/taskvec/stats.ts";
export * from "./lib/taskvec/task_vector.ts";
export * from "./lib/taskvec/weighted_sum.ts";
export * from "./lib/display/mod.ts";
export * from "./lib/data/random.ts";
export * from "./lib/models/tf_types.ts";
export * from "./lib/models/config.ts";
export * from "./lib/models/vit.ts";
export * from "./lib/models/params.ts";
export * from "./lib/models/head.ts";
export * from "./lib/models/store.ts";
export * from "./lib/models/ops.ts";
export * from "./lib/models/clip_layouts.ts";
export * from "./lib/models/clip_checkpoint.ts";
export * from "./lib/models/heads_file.ts";
export * from "./lib/models/clip_experts.ts";
export * from "./lib/merge/method.ts";
export * from "./lib/merge/params.ts";
export * from "./lib/merge/registry.ts";
export * from "./lib/merge/merge.ts";
export * from "./lib/merge/files.ts";
export * from "./lib/merge/rules.ts";
export * from "./lib/merge/select.ts";
export * from "./lib/merge/stream.ts";
export * from "./lib/merge/average.ts";
export * from "./lib/merge/task_arithmetic.ts";
export * from "./lib/merge/ties.ts";
export * from "./lib/merge/dare.ts";
export * from "./lib/merge/consensus.ts";
export * from "./lib/data/sources.ts";
export * from "./lib/data/transforms.ts";
export * from "./lib/data/tasks.ts";
export * from "./lib/data/dataset.ts";
export * from "./lib/data/batches.ts";
export * from "./lib/data/shapes.ts";
export * from "./lib/data/images.ts";
export * from "./lib/data/auxiliary.ts";
export * from "./lib/data/clip_preprocess.ts";
export * from "./lib/data/image_folder.ts";
export * from "./lib/data/jpeg_color.ts";
export * from "./lib/merge/spectral.ts";
export * from "./lib/merge/tsv_m.ts";
export * from "./lib/merge/iso_c.ts";
export * from "./lib/merge/iso_cts.ts";
export * from "./lib/merge/wudi.ts";
export * from "./lib/train/adamw.ts";
export * from "./lib/train/schedule.ts";
export * from "./lib/train/losses.ts";
export * from "./lib/train/step.ts";
export * from "./lib/train/evaluate.ts";
export * from "./lib/train/fit.ts";
export * from "./lib/train/finite.ts";
export * from "./lib/train/interrupt.ts";
export * from "./lib/zoo/config.ts";
export * from "./lib/zoo/properties.ts";
export * from "./lib/zoo/zoo.ts";
export * from "./lib/interference/distance.ts";
export * from "./lib/interference/predict.ts";
export * from "./lib/interference/measure.ts";
export * from "./lib/ri/loss.ts";
export * from "./lib/ri/curve.ts";
export * from "./lib/ri/state.ts";
export * from "./lib/ri/trainer.ts";
export * from "./lib/ri/adapt.ts";
export * from "./lib/ri/distill.ts";
export * from "./lib/pipeline/config.ts";
export * from "./lib/pipeline/cli.ts";
export * from "./lib/pipeline/evaluate.ts";
export * from "./lib/pipeline/bench.ts";
export * from "./lib/pipeline/results.ts";
export * from "./lib/pipeline/report.ts";
export * from "./lib/pipeline/study.ts";
export * from "./lib/pipeline/sweep.ts";
export * from "./lib/pipeline/reproduce.ts";
export * from "./lib/pipeline/models.ts";
export * from "./lib/pipeline/real.ts";

// In a notebook, Interrupt (SIGINT under the project's kernelspec) must stop this kit's
// training loops between steps and never end the kernel.
if (inKernel()) installKernelInterrupts();
