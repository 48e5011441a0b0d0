/**
 * A named collection of tensors read one at a time: the common shape of a checkpoint on disk,
 * a task vector computed lazily from two checkpoints, and a model's weights held in memory.
 * Merge methods and task-vector algebra consume this interface so that they stream from disk
 * and work in memory with the same code.
 *
 * @module
 */
import { type HostTensor, numel, sameShape, shapeText } from "./host.ts";

/** Named tensors, read one at a time. */
export interface TensorSource {
  /** What this is, for messages: a file path, or a description such as "τ(mnist)". */
  readonly label: string;
  /** Tensor names, in a stable order. */
  names(): readonly string[];
  /** Shape of one tensor; throws when absent. */
  shape(name: string): readonly number[];
  /** Reads one tensor as float32 (a fresh array the caller may modify). */
  read(name: string): Promise<Float32Array>;
  /**
   * True when reads are independent, so a reader may overlap them: `read` may be called again
   * (for this or another tensor) before an earlier call has settled, and each result depends
   * only on the tensor's name, not on the order of the reads nor on what the caller does with
   * earlier results meanwhile. Checkpoints on disk say so (their readers queue reads on each
   * file handle); a derived source says so only when all its inputs do and its own read is
   * reentrant. Absent or false (the default): every reader awaits each read before starting
   * the next, and reads tensors in the order it uses them.
   */
  readonly concurrentReads?: boolean;
}

/**
 * True when every source in `sources` allows concurrent reads
 * ({@linkcode TensorSource.concurrentReads}): only then may a reader overlap their reads.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { MemorySource, readsOverlap, type TensorSource } from "./source.ts";
 * const memory = new MemorySource("m", {});
 * const disk: TensorSource = { label: "f", names: () => [], shape: () => [],
 *   read: () => Promise.resolve(new Float32Array()), concurrentReads: true };
 * equal(readsOverlap([disk, disk]), true);
 * equal(readsOverlap([disk, memory]), false);
 * equal(readsOverlap([]), true);
 * ```
 */
export function readsOverlap(sources: Iterable<TensorSource>): boolean {
  for (const source of sources) if (source.concurrentReads !== true) return false;
  return true;
}

/**
 * Tensors held in memory, in insertion order.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { MemorySource } from "./source.ts";
 * const src = new MemorySource("toy", { w: { shape: [2], data: new Float32Array([1, 2]) } });
 * deepStrictEqual(src.names(), ["w"]);
 * deepStrictEqual(await src.read("w"), new Float32Array([1, 2]));
 * ```
 */
export class MemorySource implements TensorSource {
  readonly #tensors: Map<string, HostTensor>;

  /** Wraps `tensors` (not copied; reads return copies). */
  constructor(
    /** What this is, for messages. */
    readonly label: string,
    tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  ) {
    this.#tensors = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
    for (const [name, t] of this.#tensors) {
      if (t.data.length !== numel(t.shape)) {
        throw new Error(
          `${label}: tensor "${name}" has ${t.data.length} values for shape ${shapeText(t.shape)}`,
        );
      }
    }
  }

  /** Tensor names in insertion order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  /** Shape of `name`. */
  shape(name: string): readonly number[] {
    return this.get(name).shape;
  }

  /** A copy of `name`'s values. */
  read(name: string): Promise<Float32Array> {
    return Promise.resolve(this.get(name).data.slice());
  }

  /** The stored tensor itself (no copy); throws when absent. */
  get(name: string): HostTensor {
    const t = this.#tensors.get(name);
    if (!t) throw new Error(`${this.label}: no tensor named "${name}"`);
    return t;
  }

  /**
   * The tensors as a new map in insertion order (the tensors themselves are not copied).
   *
   * @example
   * ```ts
   * import { equal } from "node:assert/strict";
   * import { MemorySource } from "./source.ts";
   * const w = { shape: [1], data: new Float32Array([2]) };
   * equal(new MemorySource("m", { w }).tensors().get("w"), w);
   * ```
   */
  tensors(): Map<string, HostTensor> {
    return new Map(this.#tensors);
  }

  /** Number of tensors. */
  get size(): number {
    return this.#tensors.size;
  }
}

/**
 * Reads a whole source into memory (for small models; large ones should stream).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { MemorySource, toMemory } from "./source.ts";
 * const copy = await toMemory(new MemorySource("a", { b: { shape: [], data: new Float32Array([3]) } }));
 * equal(copy.get("b").data[0], 3);
 * ```
 */
export async function toMemory(source: TensorSource, label = source.label): Promise<MemorySource> {
  const tensors = new Map<string, HostTensor>();
  for (const name of source.names()) {
    tensors.set(name, { shape: source.shape(name), data: await source.read(name) });
  }
  return new MemorySource(label, tensors);
}

/**
 * Checks that `other` has exactly `reference`'s tensor names and shapes; the error names both
 * sources and the first tensor that differs.
 *
 * @example
 * ```ts
 * import { throws } from "node:assert/strict";
 * import { assertSameLayout, MemorySource } from "./source.ts";
 * const a = new MemorySource("a", { w: { shape: [1], data: new Float32Array(1) } });
 * const b = new MemorySource("b", { w: { shape: [2], data: new Float32Array(2) } });
 * assertSameLayout(a, a);
 * throws(() => assertSameLayout(a, b), /tensor "w" has shape \[1\] in a but \[2\] in b/);
 * ```
 */
export function assertSameLayout(reference: TensorSource, other: TensorSource): void {
  const names = new Set(other.names());
  for (const name of reference.names()) {
    if (!names.has(name)) {
      throw new Error(`tensor "${name}" is in ${reference.label} but not in ${other.label}`);
    }
    const a = reference.shape(name), b = other.shape(name);
    if (!sameShape(a, b)) {
      throw new Error(
        `tensor "${name}" has shape ${shapeText(a)} in ${reference.label} ` +
          `but ${shapeText(b)} in ${other.label}`,
      );
    }
    names.delete(name);
  }
  if (names.size > 0) {
    const extra = [...names][0];
    throw new Error(`tensor "${extra}" is in ${other.label} but not in ${reference.label}`);
  }
}
