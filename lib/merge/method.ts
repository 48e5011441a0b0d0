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
 * @module
 */
import type { TensorSource } from "../tensor/source.ts";

/** A hyperparameter value: numbers, enumerated strings or flags. */
export type ParamValue = number | string | boolean;

/** Effective hyperparameters of one merge (every parameter of the method, validated). */
export type Params = Readonly<Record<string, ParamValue>>;

/** The schema of one hyperparameter: type, range, meaning, default and where it comes from. */
export interface ParamSpec {
  /** Name as written in `--param name=value`. */
  readonly name: string;
  /** `number` (real), `integer`, `boolean`, or `choice` (one of {@linkcode ParamSpec.choices}). */
  readonly type: "number" | "integer" | "boolean" | "choice";
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
   * t's values; a merger does not modify them, and returns a fresh array.
   */
  tensor(
    name: string,
    shape: readonly number[],
    taus: readonly Float32Array[],
  ): Float32Array | Promise<Float32Array>;
  /** Facts found while preparing (thresholds, counts) to record with the result. */
  readonly notes?: Readonly<Record<string, unknown>>;
}

/** Everything {@linkcode MergeMethod.prepare} receives. */
export interface PrepareContext {
  /** The task vectors, all with the same layout. */
  readonly tasks: readonly TensorSource[];
  /** Effective hyperparameters (validated, defaults filled in). */
  readonly params: Params;
  /** Reports the progress of whole-model passes. */
  readonly progress?: ProgressCallback;
}

/** Where a method comes from and how to cite it. */
export interface MethodReference {
  /** Paper (authors, venue, year). */
  readonly paper: string;
  /** The official code (repository and file) this implementation follows. */
  readonly code: string;
}

/** A merge method: its registry entry (documentation, schema, tensor rule) and its algorithm. */
export interface MergeMethod extends MethodReference {
  /** Registry key, e.g. `ties`. */
  readonly name: string;
  /** Human-readable name, e.g. "TIES-Merging". */
  readonly title: string;
  /** One-paragraph summary of the algorithm. */
  readonly summary: string;
  /** Hyperparameters; every method has `scaling` (α in θ0 + α·M). */
  readonly params: readonly ParamSpec[];
  /** The tensor rule in words: which tensors get which {@linkcode Treatment}. */
  readonly tensorRule: string;
  /** True when the method calls host linear algebra (SVD, matrix products: `lib/linalg`). */
  readonly usesLinalg?: boolean;
  /** Where the published code searches α on validation data, if it does. */
  readonly scalingSearch?: { readonly grid: readonly number[]; readonly source: string };
  /** The treatment of one tensor under `params`. */
  treatment(name: string, shape: readonly number[], params: Params): Treatment;
  /** Runs any whole-model passes and returns the per-tensor merger. */
  prepare(context: PrepareContext): Promise<TensorMerger>;
}
