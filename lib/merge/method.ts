/**
 * The interface every merge method implements, and the vocabulary its registry entry uses.
 *
 * A method turns task vectors τ_1..τ_T (each a {@linkcode TensorSource}) into one merged task
 * vector M, tensor by tensor; the merged model is θ0 + α·M with α the method's `scaling`
 * parameter (applied by the driver, not by the method). A method that needs a whole-model
 * statistic (TIES's global threshold per task) computes it in {@linkcode MergeMethod.prepare}
 * by streaming over the task vectors, and then merges each tensor from that tensor's T values
 * alone, so memory stays near (T + 2) × the largest tensor.
 *
 * A data-using method (AdaMerging, RegMean, Fisher merging) declares `needs: "data"` and the
 * data source it reads ({@linkcode MergeMethod.dataSource}); its {@linkcode PrepareContext}
 * then carries a {@linkcode MergeData}: θ0 and the model geometry, the tasks' heads (in the
 * order of the task vectors) and the named data sources of {@linkcode DATA_SOURCES}. It says
 * what it read in {@linkcode TensorMerger.dataUse}, which the driver records with the result,
 * so that no table mixes data assumptions without saying so.
 *
 * @module
 */
import type { TensorSource } from "../tensor/source.ts";
import type { ViTConfig } from "../models/config.ts";
import type { Head } from "../models/head.ts";
import type { HostParams } from "../models/weights.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";

/** A hyperparameter value: numbers, enumerated strings, flags or lists of numbers. */
export type ParamValue = number | string | boolean | readonly number[];

/** Effective hyperparameters of one merge (every parameter of the method, validated). */
export type Params = Readonly<Record<string, ParamValue>>;

/** The schema of one hyperparameter: type, range, meaning, default and where it comes from. */
export interface ParamSpec {
  /** Name as written in `--param name=value`. */
  readonly name: string;
  /**
   * `number` (real), `integer`, `boolean`, `choice` (one of {@linkcode ParamSpec.choices}), or
   * `numbers` (a list of reals, written `a,b,c`; `min`/`max` bound each entry).
   */
  readonly type: "number" | "integer" | "boolean" | "choice" | "numbers";
  /** Default value. */
  readonly default: ParamValue;
  /** Where the default comes from (repository and file, or the reason for our choice). */
  readonly source: string;
  /** What the parameter means. */
  readonly meaning: string;
  /** Smallest allowed value (numbers). */
  readonly min?: number;
  /** Largest allowed value (numbers). */
  readonly max?: number;
  /** True when `min` itself is not allowed. */
  readonly minExclusive?: boolean;
  /** True when `max` itself is not allowed. */
  readonly maxExclusive?: boolean;
  /** Allowed values (`choice`). */
  readonly choices?: readonly string[];
}

/**
 * How a method treats one tensor:
 * - `matrix`: a per-matrix (spectral or optimised) merge;
 * - `mean`: the elementwise mean over tasks;
 * - `elementwise`: the method's elementwise rule (sum, trimmed sign-elected merge, masks);
 * - `pretrained`: left out of M (the merged model keeps θ0's value).
 */
export type Treatment = "matrix" | "mean" | "elementwise" | "pretrained";

/** Progress of a merge: which pass, how many tensors of it are done. */
export interface MergeProgress {
  /** What the pass computes, e.g. "TIES thresholds (1/2)" or "merge". */
  readonly phase: string;
  /** Tensors finished in this pass. */
  readonly done: number;
  /** Tensors in this pass. */
  readonly total: number;
  /** The tensor just finished. */
  readonly tensor?: string;
}

/** Receives progress events. */
export type ProgressCallback = (progress: MergeProgress) => void;

/** Merges one tensor from the T task vectors' values for it (after {@linkcode MergeMethod.prepare}). */
export interface TensorMerger {
  /**
   * The merged task vector for tensor `name` (before the global scaling α). `taus[t]` holds task
   * t's values; a merger does not modify them, and returns a fresh array. `base` is θ0's values
   * of the tensor, given only to methods with {@linkcode MergeMethod.needsBase}. Methods with
   * `output: "per-task"` have no single merged vector: theirs throws (read `taskTensor`).
   */
  tensor(
    name: string,
    shape: readonly number[],
    taus: readonly Float32Array[],
    base?: Float32Array,
  ): Float32Array | Promise<Float32Array>;
  /**
   * Methods with `output: "per-task"`: task `task`'s reconstructed task vector M_t for tensor
   * `name` (before α), from the same inputs as {@linkcode TensorMerger.tensor}.
   */
  taskTensor?(
    task: number,
    name: string,
    shape: readonly number[],
    taus: readonly Float32Array[],
    base?: Float32Array,
  ): Float32Array | Promise<Float32Array>;
  /**
   * True when {@linkcode TensorMerger.tensor} (and `taskTensor`) depend only on their arguments
   * and on state fixed when preparing (no random stream drawn per call, nothing learnt from
   * earlier tensors): calls for different tensors may then overlap or come in any order, and
   * the prepared merge allows concurrent reads when its task vectors do
   * (`TensorSource.concurrentReads`). Absent: one call at a time, in the order of the reads.
   */
  readonly concurrentReads?: boolean;
  /** Facts found while preparing (thresholds, counts) to record with the result. */
  readonly notes?: Readonly<Record<string, unknown>>;
  /** What a data-using method read (absent for data-free methods). */
  readonly dataUse?: DataUse;
}

/**
 * The data sources a study offers data-using methods, per task:
 * - `test_inputs`: the task's test images without their labels (test-time adaptation, as
 *   AdaMerging does);
 * - `train`: the task's training images with their labels (RegMean's and Fisher merging's
 *   statistics; the labels are there for methods that read them);
 * - `aux`: the study's task-agnostic auxiliary images without labels, the data RI reads (the
 *   same set for every task).
 */
export type DataSourceName = "test_inputs" | "train" | "aux";

/** Every data source, with what it holds. */
export const DATA_SOURCES: Readonly<Record<DataSourceName, string>> = Object.freeze({
  test_inputs: "the task's test inputs, without labels",
  train: "the task's training inputs and labels",
  aux: "the study's task-agnostic auxiliary inputs (RI's data), without labels",
});

/** The model a data-using method runs: θ0, its geometry, the heads and the pixel normalisation. */
export interface MergeModel {
  /** Backbone geometry. */
  readonly config: ViTConfig;
  /** θ0 (the task vectors are differences from it). */
  readonly base: HostParams;
  /** One frozen head per task, in the order of the task vectors. */
  readonly heads: readonly Head[];
  /** Pixel normalisation the model expects (none for CLIP-preprocessed pictures). */
  readonly norm?: PixelNorm;
}

/** What a data-using method reads besides the task vectors. */
export interface MergeData {
  /** θ0, geometry, heads. */
  readonly model: MergeModel;
  /** The sources this context can give (others throw). */
  readonly sources: readonly DataSourceName[];
  /**
   * Task `task`'s images of `source` (index into the task vectors and heads). `test_inputs`
   * and `aux` come without labels. Throws, naming the source, when it is not available.
   */
  images(source: DataSourceName, task: number): Promise<ImageSet>;
  /** A short description of a source's origin (e.g. the auxiliary source `shapes`), if any. */
  describe?(source: DataSourceName): string | undefined;
}

/** What data one merge read: recorded with the merge and in study results. */
export interface DataUse {
  /** The source. */
  readonly source: DataSourceName;
  /** Images read per task (the largest count when tasks differ). */
  readonly perTask: number;
  /** Whether the method read labels. */
  readonly labels: boolean;
  /** Where the source came from, when the context says (e.g. `aux shapes`). */
  readonly origin?: string;
}

/** Everything {@linkcode MergeMethod.prepare} receives. */
export interface PrepareContext {
  /** The task vectors, all with the same layout. */
  readonly tasks: readonly TensorSource[];
  /** Effective hyperparameters (validated, defaults filled in). */
  readonly params: Params;
  /** Reports the progress of whole-model passes. */
  readonly progress?: ProgressCallback;
  /** The model, heads and data: given to methods with `needs: "data"` (and only to them). */
  readonly data?: MergeData;
  /** θ0 itself, given only to methods with {@linkcode MergeMethod.needsBase}. */
  readonly base?: TensorSource;
}

/** A merge method: its registry entry (documentation, schema, tensor rule) and its algorithm. */
export interface MergeMethod {
  /** Registry key, e.g. `ties`. */
  readonly name: string;
  /** Human-readable name, e.g. "TIES-Merging". */
  readonly title: string;
  /** One-paragraph summary of the algorithm. */
  readonly summary: string;
  /** Paper (authors, venue, year). */
  readonly paper: string;
  /** The official code (repository and file) this implementation follows. */
  readonly code: string;
  /** Hyperparameters; every method has `scaling` (α in θ0 + α·M). */
  readonly params: readonly ParamSpec[];
  /** The tensor rule in words: which tensors get which {@linkcode Treatment}. */
  readonly tensorRule: string;
  /** True when the method calls host linear algebra (SVD, matrix products: `lib/linalg`). */
  readonly usesLinalg?: boolean;
  /**
   * `data` when the method reads the model, the heads and data (see {@linkcode MergeData});
   * absent for data-free methods, which read only the task vectors.
   */
  readonly needs?: "data";
  /** The data source a data-using method reads under `params`. */
  dataSource?(params: Params): DataSourceName;
  /**
   * What the method produces: `merged` (the default), one model θ0 + α·M for every task; or
   * `per-task`, one reconstructed model θ0 + α·M_t per task (compression methods, EMR's
   * modulators), each evaluated on its own task (task identity is known at test time).
   */
  readonly output?: "merged" | "per-task";
  /** How many task vectors the method accepts (SLERP: exactly 2), when it is limited. */
  readonly taskCount?: { readonly min?: number; readonly max?: number };
  /**
   * Why the method is left out of the study's default set (`deno task merge`, `--methods
   * all`); absent for methods in it. Name it in `--methods` to run it.
   */
  readonly notInDefaultStudy?: string;
  /** True when the method reads θ0's values (e.g. SLERP between the models θ_t themselves). */
  readonly needsBase?: boolean;
  /**
   * Where the method's defaults differ by design from FusionBench's: the parameter values that
   * reproduce FusionBench's configuration, and why ours differ.
   */
  readonly fusionBench?: {
    readonly params: Readonly<Record<string, ParamValue>>;
    readonly note: string;
  };
  /** Where the published code searches α on validation data, if it does. */
  readonly scalingSearch?: { readonly grid: readonly number[]; readonly source: string };
  /** The treatment of one tensor under `params`. */
  treatment(name: string, shape: readonly number[], params: Params): Treatment;
  /** Runs any whole-model passes and returns the per-tensor merger. */
  prepare(context: PrepareContext): Promise<TensorMerger>;
}
