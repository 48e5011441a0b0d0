/**
 * Lazy linear algebra over {@linkcode TensorSource}s: Σ wᵢ·sᵢ evaluated one tensor at a time
 * when read, so adding, subtracting and scaling whole models (or task vectors) never holds
 * more than one tensor name's worth of data.
 *
 * @module
 */
import { assertSameLayout, readsOverlap, type TensorSource } from "../tensor/source.ts";
import { numel } from "../tensor/host.ts";

/** One term of a {@linkcode WeightedSum}: a source and its weight. */
export interface WeightedTerm {
  /** The tensors. */
  readonly source: TensorSource;
  /** The factor they are multiplied by. */
  readonly weight: number;
}

/** Reads a leaf source's tensor; a pass over many sums shares one so each leaf is read once. */
export type LeafReader = (source: TensorSource) => Promise<Float32Array>;

/**
 * The lazy sum Σ wᵢ·sᵢ of sources with the same tensor names and shapes (checked when built;
 * the error names both sources and the tensor). Reading a tensor reads it from every term in
 * turn and accumulates in float32 in the order given, so `θ − θ0` is the correctly rounded
 * float32 difference, as in PyTorch. A source used by several terms (or nested sums) is read
 * once per tensor.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { WeightedSum } from "./weighted_sum.ts";
 * const a = new MemorySource("a", { w: { shape: [2], data: new Float32Array([1, 2]) } });
 * const b = new MemorySource("b", { w: { shape: [2], data: new Float32Array([10, 20]) } });
 * const sum = new WeightedSum([{ source: a, weight: 2 }, { source: b, weight: -1 }]);
 * deepStrictEqual(await sum.read("w"), new Float32Array([-8, -16]));
 * equal(sum.label, "2·a − b");
 * ```
 */
export class WeightedSum implements TensorSource {
  /** The terms, in evaluation order. */
  readonly terms: readonly WeightedTerm[];
  /** What this is, for messages. */
  readonly label: string;
  /**
   * True when every term's source allows concurrent reads: a read evaluates one tensor with
   * its own state, so the sum's reads are then independent too.
   */
  readonly concurrentReads: boolean;

  /** Builds Σ wᵢ·sᵢ; `label` defaults to a formula of the terms' labels. */
  constructor(terms: readonly WeightedTerm[], label?: string) {
    if (terms.length === 0) throw new Error("a weighted sum needs at least one term");
    for (const t of terms) {
      if (!Number.isFinite(t.weight)) {
        throw new Error(`weight ${t.weight} for ${t.source.label} is not a finite number`);
      }
    }
    for (const t of terms.slice(1)) assertSameLayout(terms[0].source, t.source);
    this.terms = terms;
    this.label = label ?? formula(terms);
    this.concurrentReads = readsOverlap(terms.map((t) => t.source));
  }

  /** The tensor names of the first term. */
  names(): readonly string[] {
    return this.terms[0].source.names();
  }

  /** Shape of `name`. */
  shape(name: string): readonly number[] {
    return this.terms[0].source.shape(name);
  }

  /** Computes Σ wᵢ·sᵢ for one tensor (a fresh array). */
  read(name: string): Promise<Float32Array> {
    return this.evaluate(name, cachedReader(name));
  }

  /** Computes one tensor, reading leaf sources through `readLeaf` (which may cache them). */
  async evaluate(name: string, readLeaf: LeafReader): Promise<Float32Array> {
    const out = new Float32Array(numel(this.shape(name)));
    for (const { source, weight } of this.terms) {
      const data = source instanceof WeightedSum
        ? await source.evaluate(name, readLeaf)
        : await readLeaf(source);
      if (weight === 1) { for (let i = 0; i < out.length; i++) out[i] += data[i]; }
      else if (weight === -1) { for (let i = 0; i < out.length; i++) out[i] -= data[i]; }
      // Math.fround rounds the product to float32 before the add, as a float32 axpy does.
      else for (let i = 0; i < out.length; i++) out[i] += Math.fround(weight * data[i]);
    }
    return out;
  }
}

/**
 * A leaf reader for one tensor name that reads each source once and hands the same array to
 * later users (who must not modify it). Its memory is one tensor per distinct leaf source.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { cachedReader } from "./weighted_sum.ts";
 * const a = new MemorySource("a", { w: { shape: [1], data: new Float32Array([5]) } });
 * const read = cachedReader("w");
 * equal(await read(a), await read(a)); // the same array, read once
 * ```
 */
export function cachedReader(name: string): LeafReader {
  const cache = new Map<TensorSource, Promise<Float32Array>>();
  return (source) => {
    let data = cache.get(source);
    if (!data) {
      data = source.read(name);
      cache.set(source, data);
    }
    return data;
  };
}

function formula(terms: readonly WeightedTerm[]): string {
  return terms.map(({ source, weight }, i) => {
    const sign = weight < 0 ? " − " : i === 0 ? "" : " + ";
    const size = Math.abs(weight);
    const factor = size === 1 ? "" : `${size}·`;
    return `${i === 0 && weight < 0 ? "−" : sign}${factor}${wrap(source.label)}`;
  }).join("");
}

function wrap(label: string): string {
  return /[ +−]/.test(label) ? `(${label})` : label;
}

/**
 * `a + b`, lazily.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { addSources } from "./weighted_sum.ts";
 * const a = new MemorySource("a", { w: { shape: [1], data: new Float32Array([1]) } });
 * deepStrictEqual(await addSources(a, a).read("w"), new Float32Array([2]));
 * ```
 */
export function addSources(a: TensorSource, b: TensorSource): WeightedSum {
  return new WeightedSum([{ source: a, weight: 1 }, { source: b, weight: 1 }]);
}

/**
 * `a − b`, lazily.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { subtractSources } from "./weighted_sum.ts";
 * const a = new MemorySource("a", { w: { shape: [1], data: new Float32Array([3]) } });
 * const b = new MemorySource("b", { w: { shape: [1], data: new Float32Array([1]) } });
 * deepStrictEqual(await subtractSources(a, b).read("w"), new Float32Array([2]));
 * ```
 */
export function subtractSources(a: TensorSource, b: TensorSource): WeightedSum {
  return new WeightedSum([{ source: a, weight: 1 }, { source: b, weight: -1 }]);
}

/**
 * `λ·a`, lazily.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { scaleSource } from "./weighted_sum.ts";
 * const a = new MemorySource("a", { w: { shape: [1], data: new Float32Array([3]) } });
 * deepStrictEqual(await scaleSource(a, 0.5).read("w"), new Float32Array([1.5]));
 * ```
 */
export function scaleSource(a: TensorSource, lambda: number): WeightedSum {
  return new WeightedSum([{ source: a, weight: lambda }]);
}
