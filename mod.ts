/**
 * Resolving Interference (RI) for model merging: checkpoints and task vectors, the merge
 * methods, the interference measure ξ, RI adaptation, and the evaluation that ties them
 * together, as values that show themselves in Deno's Jupyter kernel.
 *
 * The names below are grouped by the stage of the work they belong to, in the order a
 * notebook meets them. Everything else in `lib/` is an implementation detail: import it from
 * its module when you need it (the tests and benchmarks do), but it may change without notice.
 *
 * ## 1. Engine
 *
 * Start every notebook with {@linkcode setupNotebook}: it puts plotly.js on the page, starts
 * the engine ({@linkcode initEngine} picks the tfjs backend: WebGPU when a hardware adapter is
 * present, else wasm with OpenBLAS kernels) and states the engine and the checkout's cache and
 * runs folders. Every function that computes also starts the engine itself when none is.
 *
 * ```ts ignore
 * import { setupNotebook } from "@ri-merge/ri";
 * await setupNotebook()
 * ```
 *
 * ## 2. Checkpoints and tensors (I/O)
 *
 * {@linkcode openCheckpoint} opens a checkpoint file or folder as a {@linkcode TensorSource}:
 * named tensors read one at a time, so nothing has to fit in memory. Models held in memory are
 * {@linkcode MemorySource}s; {@linkcode writeCheckpoint} writes any source atomically.
 *
 * ```ts ignore
 * import { openCheckpoint } from "@ri-merge/ri";
 * using base = await openCheckpoint("ckpts/base.safetensors");
 * console.log(base.names().length, base.metadata);
 * ```
 *
 * ## 3. Task vectors
 *
 * A task vector τᵢ = θᵢ − θ0 is what fine-tuning added to the pretrained weights.
 * {@linkcode openTaskVectors} builds them lazily from a base and experts on disk; a
 * {@linkcode TaskVectorSet} shows its norms and cosine similarities and applies
 * θ0 + Σ λᵢ·τᵢ.
 *
 * ```ts ignore
 * import { openTaskVectors } from "@ri-merge/ri";
 * using set = await openTaskVectors("ckpts/base.safetensors", "ckpts/experts");
 * const { norms, cosine } = await set.stats();
 * ```
 *
 * ## 4. Merging
 *
 * {@linkcode merge} runs a registered method on task vectors in memory and returns α·M;
 * {@linkcode mergeCheckpoints} streams θ0 + α·M from checkpoint files to disk. Methods are
 * named by their registry key (`"ties"`, `"tsv_m"`, …): {@linkcode MERGE_METHODS} lists
 * them, {@linkcode getMethod} returns one, {@linkcode describeMethod} says where each default
 * came from. `docs/METHODS.md` describes every method.
 *
 * ```ts ignore
 * import { merge, openTaskVectors } from "@ri-merge/ri";
 * using set = await openTaskVectors("ckpts/base.safetensors", "ckpts/experts");
 * const m = await merge("ties", set.vectors, { params: { k: 20 } });
 * ```
 *
 * ## 5. Interference
 *
 * ξ(θ_M) = Σᵢ E_{x∼Dᵢ} KL(pᵢ(x; θᵢ) ‖ pᵢ(x; θ_M)) ({@linkcode interference}) and the pairwise
 * matrix I[i][j] = E_x d(pⱼ(x; θ0), pⱼ(x; θ0 + τᵢ)) (an {@linkcode InterferenceMatrix}, which
 * {@linkcode MergeBench}'s `pairwise` measures).
 *
 * ## 6. Resolving Interference
 *
 * {@linkcode adaptExpert} adapts one expert on unlabeled auxiliary images
 * ({@linkcode auxSource}) so that it keeps its own task's outputs and leaves the other tasks'
 * outputs as θ0 gave them; {@linkcode adaptWithRI} does it for one expert of a zoo in one call,
 * at the study's defaults; {@linkcode adaptExperts} does every expert of a study.
 *
 * ## 7. Evaluation and the study
 *
 * {@linkcode loadZoo} builds or loads the built-in benchmark (θ0, heads, experts);
 * {@linkcode MergeBench} merges and scores any task vectors on it (accuracy, normalised
 * accuracy, ξ); {@linkcode runStudy} runs the whole study `deno task merge` runs, resumably;
 * {@linkcode collectResults} puts many runs' results into one tidy table.
 *
 * ```ts ignore
 * import { loadZoo, MergeBench, resolveStudyConfig, runStudy } from "@ri-merge/ri";
 * const results = await runStudy(resolveStudyConfig({ suite: "mf4", steps: 50 }));
 * const bench = await MergeBench.open(await loadZoo({ suite: "mf4" }));
 * const merged = await bench.merge("tsv_m", bench.taus);
 * console.log(await bench.evaluate(merged.theta, "tsv_m"));
 * ```
 *
 * ## 8. Display
 *
 * Every value above shows itself in a notebook (weights as a summary, never raw arrays).
 * {@linkcode display} shows anything ({@linkcode setupNotebook} has put plotly.js on the page),
 * and {@linkcode heatmap}, {@linkcode heatmaps}, {@linkcode bars}, {@linkcode lines},
 * {@linkcode table} and {@linkcode stack} draw figures of your own; a {@linkcode Figure} saves
 * as SVG, PNG or a standalone HTML page.
 *
 * @example
 * ```ts
 * import { getMethod, MERGE_METHODS } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 * equal(MERGE_METHODS.some((m) => m.name === "ties"), true);
 * equal(getMethod("ties").title, "TIES-Merging");
 * ```
 *
 * @module
 */
import { inKernel } from "./lib/display/jupyter.ts";
import { installOutputOrdering } from "./lib/display/outputs.ts";
import { installKernelInterrupts } from "./lib/train/interrupt.ts";
// The notebook display of tfjs tensors, installed on import (lib/display/mod.ts loads no tfjs).
import "./lib/display/tensor.ts";

// 1. Engine
export {
  type BackendName,
  describeEngine,
  type EngineInfo,
  initEngine,
} from "./lib/engine/backend.ts";
export type { Tensor, Tensor2D } from "./lib/engine/tf_types.ts";

// 2. Checkpoints and tensors (I/O). The io rework (issue #17) owns this group.
export type { HostTensor } from "./lib/tensor/host.ts";
export { MemorySource, type TensorSource } from "./lib/tensor/source.ts";
export {
  Checkpoint,
  type CheckpointFormat,
  type OpenCheckpointOptions,
  type ReadOptions,
  type StoredTensorInfo,
} from "./lib/io/checkpoint.ts";
export { openCheckpoint } from "./lib/io/open.ts";
export { CheckpointError } from "./lib/io/errors.ts";
export type { DType, WritableDType } from "./lib/io/dtype.ts";
export {
  writeCheckpoint,
  type WriteCheckpointOptions,
  type WrittenCheckpoint,
} from "./lib/io/write_checkpoint.ts";
export {
  type ClipVisionCheckpoint,
  loadClipVision,
  openClipTaskVectors,
  openClipVision,
  type OpenClipVisionOptions,
} from "./lib/models/clip_checkpoint.ts";
export type { ClipLayout } from "./lib/models/clip_layouts.ts";
export { readHeadsFile, type ReadHeadsOptions } from "./lib/models/heads_file.ts";
export {
  type ClipImageFolder,
  clipImageFolder,
  clipLabelledFolder,
  type FolderBatch,
  type ImageFolderOptions,
} from "./lib/data/image_folder.ts";
export type { ClipPreprocessOptions } from "./lib/data/clip_preprocess.ts";

// 3. Task vectors
export {
  type ExpertPaths,
  openTaskVectors,
  type OpenTaskVectorsOptions,
  TaskVectorSet,
} from "./lib/taskvec/set.ts";
export {
  CosineSimilarity,
  type PassOptions,
  TaskVectorNorms,
  type TaskVectorStats,
} from "./lib/taskvec/stats.ts";

// 4. Merging. Methods are reached through the registry, by name.
export {
  merge,
  MergedTaskVector,
  type MergeOptions,
  type MergeSummary,
  PreparedMerge,
  prepareMerge,
} from "./lib/merge/merge.ts";
export {
  type MergeCheckpointOptions,
  mergeCheckpoints,
  type MergedCheckpoint,
} from "./lib/merge/files.ts";
export {
  defaultStudyMethods,
  describeMethod,
  describeRegistry,
  getMethod,
  MERGE_METHODS,
} from "./lib/merge/registry.ts";
export type {
  DataSourceName,
  DataUse,
  MergeData,
  MergeMethod,
  MergeModel,
  MergeProgress,
  Params,
  ParamSpec,
  ParamValue,
  PrepareContext,
  ProgressCallback,
  TensorMerger,
  Treatment,
} from "./lib/merge/method.ts";

// 5. Interference
export type { DistanceName } from "./lib/interference/distance.ts";
export {
  Interference,
  interference,
  InterferenceMatrix,
  type MeasuredOn,
} from "./lib/interference/measure.ts";
export type { HeadLogits } from "./lib/interference/predict.ts";

// 6. Resolving Interference
export { adaptExpert, type RiInputs, type RiSettings } from "./lib/ri/adapt.ts";
export type { TrainOptions, TrainResult } from "./lib/ri/trainer.ts";
export type { TrainSettings } from "./lib/ri/job.ts";
export {
  AdaptedExpert,
  adaptWithRI,
  type RiOverrides,
  setupNotebook,
  type Workspace,
} from "./lib/pipeline/setup.ts";
export { LossCurve, type LossCurveData, type LossPoint } from "./lib/ri/curve.ts";
export { type AuxGeometry, type AuxSource, auxSource } from "./lib/data/auxiliary.ts";

// 7. Evaluation and the study: the built-in benchmark (or real checkpoints), merges scored on
// it, the whole study.
export { type BuildTimes, loadZoo, type LoadZooOptions, Zoo, ZooContents } from "./lib/zoo/zoo.ts";
export type { StageConfig, ZooConfig } from "./lib/zoo/config.ts";
export type {
  CriteriaMeans,
  Criterion,
  CriterionKey,
  MergeProperty,
  ZooProperties,
  ZooPropertiesData,
} from "./lib/zoo/properties.ts";
export type { StudyModels, StudyZoo } from "./lib/pipeline/models.ts";
export type { RealModels } from "./lib/pipeline/real.ts";
export { Evaluation, MergeBench, MergedModel, type TaskScore } from "./lib/pipeline/merge_bench.ts";
export { collectResults, type TidyRow } from "./lib/pipeline/collect.ts";
export { resolveStudyConfig, type RiMode, type StudyConfig } from "./lib/pipeline/config.ts";
export {
  adaptExperts,
  type RunPaths,
  runPaths,
  runStudy,
  type StudyOptions,
} from "./lib/pipeline/study.ts";
export {
  type StudyData,
  StudyResults,
  type StudyRow,
  type UnseenData,
  type UnseenRow,
} from "./lib/pipeline/results.ts";
export { ScalingSweep, scalingSweep, sweepFigure, sweepSlider } from "./lib/pipeline/sweep.ts";
export { type LoadedModel, loadModel } from "./lib/models/store.ts";
export type { HostParams } from "./lib/models/weights.ts";
export type { ParamMap } from "./lib/models/vit.ts";
export type { Activation, ViTConfig } from "./lib/models/config.ts";
export type { Head } from "./lib/models/head.ts";
export type { PixelNorm } from "./lib/data/batches.ts";
export type { ImageSet, SplitSizes, TaskSplits } from "./lib/data/dataset.ts";
export type { LabelMap, SuiteName, TaskSpec } from "./lib/data/tasks.ts";
export type { SourceName } from "./lib/data/sources.ts";
export type { TransformName } from "./lib/data/transforms.ts";

// 8. Display. The display rework (issue #15) owns this group.
export {
  bars,
  display,
  Figure,
  heatmap,
  heatmaps,
  lines,
  progress,
  sharedColorRange,
  stack,
  table,
} from "./lib/display/mod.ts";
export type {
  BarsOptions,
  ColorRange,
  ColorScaleName,
  DisplayOptions,
  HeatmapOptions,
  HeatmapsOptions,
  HtmlOptions,
  LibraryMode,
  LinesOptions,
  Metrics,
  MimeBundle,
  PlotlyFigure,
  Progress,
  ProgressMode,
  ProgressOptions,
  TableCell,
  TableOptions,
} from "./lib/display/mod.ts";

// In a notebook, Interrupt (SIGINT under the project's kernelspec) must stop this kit's
// training loops between steps and never end the kernel; and no cell may end before its
// outputs are published (Deno's kernel can otherwise report it idle first).
if (inKernel()) {
  installKernelInterrupts();
  installOutputOrdering();
}
