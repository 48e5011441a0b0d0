/**
 * What every checkpoint on disk is, whatever its format: a lazy {@linkcode TensorSource} of
 * named tensors with a stored dtype, read one at a time as float32, checked for NaN and
 * ±Infinity, and closed when done. Each format's reader (safetensors, sharded safetensors,
 * PyTorch ZIP, sharded PyTorch) extends {@linkcode Checkpoint} and supplies only how one
 * tensor's values are read; `openCheckpoint` (open.ts) picks the reader from the file's bytes.
 *
 * @module
 */
import { type DType, DTYPE_SIZES } from "./dtype.ts";
import { CheckpointError } from "./errors.ts";
import type { TensorSource } from "../tensor/source.ts";
import { firstNonFinite, numel } from "../tensor/host.ts";

/** Options for opening a checkpoint (`openCheckpoint`). */
export interface OpenCheckpointOptions {
  /** Most shard files held open at once (default 4); others are reopened when read. */
  maxOpenFiles?: number;
  /** Accept NaN and ±Infinity values instead of failing on read (default false). */
  allowNonFinite?: boolean;
}

/** Options for reading a tensor. */
export interface ReadOptions {
  /** Accept NaN and ±Infinity values instead of failing (default false). */
  allowNonFinite?: boolean;
}

/** What every format knows about a stored tensor: its name, dtype and shape. */
export interface StoredTensorInfo {
  /** Tensor name. */
  readonly name: string;
  /** Stored dtype. */
  readonly dtype: DType;
  /** Dimensions. */
  readonly shape: readonly number[];
}

/** The formats {@linkcode Checkpoint} readers exist for. */
export type CheckpointFormat = "safetensors" | "pytorch";

/**
 * A checkpoint opened for lazy reading, in any supported format (see `openCheckpoint`). Reads
 * return fresh float32 arrays and fail on NaN or ±Infinity unless allowed; close it (or
 * `using`) to release its file handles.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { Checkpoint } from "./checkpoint.ts";
 * import { openCheckpoint } from "./open.ts";
 * import { writeSafetensors } from "./safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensors(path, [{ name: "w", shape: [2], data: new Float32Array([1, 2]) }]);
 * using ckpt = await openCheckpoint(path);
 * equal(ckpt instanceof Checkpoint, true);
 * deepStrictEqual([ckpt.format, ckpt.names(), ckpt.dtype("w")], ["safetensors", ["w"], "F32"]);
 * deepStrictEqual(await ckpt.read("w"), new Float32Array([1, 2]));
 * ```
 */
export abstract class Checkpoint<Info extends StoredTensorInfo = StoredTensorInfo>
  implements TensorSource, Disposable {
  /** The tensors by name, in the checkpoint's order. */
  protected readonly tensors: ReadonlyMap<string, Info>;
  readonly #names: readonly string[];
  readonly #allowNonFinite: boolean;

  /** Wraps tensors already read from validated headers. */
  protected constructor(
    /** The file opened: the checkpoint file, or the index of a sharded one. */
    readonly path: string,
    tensors: ReadonlyMap<string, Info>,
    options: OpenCheckpointOptions = {},
  ) {
    this.tensors = tensors;
    // One frozen list, so that asking for the names per tensor costs nothing.
    this.#names = Object.freeze([...tensors.keys()]);
    this.#allowNonFinite = options.allowNonFinite ?? false;
  }

  /** The format of the files. */
  abstract readonly format: CheckpointFormat;

  /** Every file this checkpoint reads (the index file excluded), in order. */
  abstract readonly files: readonly string[];

  /** String metadata stored with the tensors (`{}` where the format has none). */
  abstract readonly metadata: Readonly<Record<string, string>>;

  /**
   * Always true: reads are independent (every format's reader queues its reads on each file
   * handle, and each returns a fresh array), so readers may overlap them across files.
   */
  get concurrentReads(): boolean {
    return true;
  }

  /** The path, for messages. */
  get label(): string {
    return this.path;
  }

  /** Tensor names, in the checkpoint's order (one shared, frozen list). */
  names(): readonly string[] {
    return this.#names;
  }

  /** True when the checkpoint holds `name`. */
  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** What is stored about `name`; throws naming the checkpoint when absent. */
  info(name: string): Info {
    const info = this.tensors.get(name);
    if (!info) throw new CheckpointError(this.path, name, "no such tensor in this checkpoint");
    return info;
  }

  /** Shape of `name`. */
  shape(name: string): readonly number[] {
    return this.info(name).shape;
  }

  /** Stored dtype of `name`. */
  dtype(name: string): DType {
    return this.info(name).dtype;
  }

  /** Total bytes of stored tensor data. */
  get byteSize(): number {
    let total = 0;
    for (const info of this.tensors.values()) total += numel(info.shape) * DTYPE_SIZES[info.dtype];
    return total;
  }

  /**
   * Reads one tensor as float32 (a fresh array), failing on NaN or ±Infinity unless allowed
   * here or when opened.
   */
  async read(name: string, options: ReadOptions = {}): Promise<Float32Array> {
    const info = this.info(name);
    const data = await this.readValues(info);
    if (!(options.allowNonFinite ?? this.#allowNonFinite)) {
      assertFinite(this.fileOf(info), name, data);
    }
    return data;
  }

  /** Reads `info`'s values as float32, in row-major order. */
  protected abstract readValues(info: Info): Promise<Float32Array>;

  /** The file holding `info`'s bytes, for messages (the checkpoint's path by default). */
  protected fileOf(_info: Info): string {
    return this.path;
  }

  /** Releases every file handle. */
  abstract close(): void;

  /** Releases every file handle (`using` support). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** One line: format, path and size. */
  toString(): string {
    return `${this.constructor.name}(${this.path}: ${this.#names.length} tensors, ` +
      `${this.files.length} file(s))`;
  }
}

/**
 * Throws a {@linkcode CheckpointError} naming `file`, `tensor` and the first NaN or ±Infinity
 * in `data`, if there is one.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { assertFinite } from "./checkpoint.ts";
 * assertFinite("m.safetensors", "w", new Float32Array([1, 2]));
 * throws(() => assertFinite("m.safetensors", "w", new Float32Array([1, NaN])), /value NaN at flat index 1/);
 * ```
 */
export function assertFinite(file: string, tensor: string, data: Float32Array): void {
  const bad = firstNonFinite(data);
  if (bad >= 0) {
    throw new CheckpointError(
      file,
      tensor,
      `value ${data[bad]} at flat index ${bad} (expected finite weights)`,
    );
  }
}
