/**
 * Task vectors τ = θ − θ0 (an expert's weights minus the pretrained base's), computed lazily
 * tensor by tensor, and the way back: θ0 + Σ λᵢ·τᵢ.
 *
 * {@linkcode readTaskVectors} is the one way the library reads tensor `name` of T task vectors
 * at once (merges, statistics and single reads all go through it), with as few live copies as
 * possible: a {@linkcode TaskVector}'s expert tensor is read and the base's subtracted in place,
 * the base tensor read once per name and shared by every task built on it, so a pass holds
 * T + 1 arrays per tensor and makes no intermediate garbage. When every source allows
 * concurrent reads (`TensorSource.concurrentReads`: checkpoints on disk, and sums of them), the
 * T + 1 files are read concurrently (by the runtime's I/O threads) while the differences are
 * formed in task order; otherwise each read is awaited before the next starts. The streaming
 * passes of lib/merge read one tensor ahead under the same condition (their module docs state
 * the memory bound). The differences are the correctly rounded float32 θ − θ0, as in PyTorch.
 * Checkpoints' NaN/±Infinity check runs on the differences, in the same pass as the
 * subtraction, rather than as a scan of every input tensor: the inputs are read again the
 * checked way only when a difference is not finite, which throws the checkpoint's own error
 * (naming the file, the tensor and the value) unless it allows non-finite values.
 *
 * @module
 */
import { Checkpoint } from "../io/checkpoint.ts";
import { readsOverlap, type TensorSource } from "../tensor/source.ts";
import { cachedReader, type LeafReader, WeightedSum } from "./weighted_sum.ts";
import { subtractFinite } from "../linalg/vector.ts";

/**
 * τ = θ − θ0 for one task, read lazily: each read reads the expert's and the base's tensor and
 * subtracts. Building it checks that both have the same tensor names and shapes; the error
 * names both sources (file paths for checkpoints) and the tensor.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { TaskVector } from "./task_vector.ts";
 * const base = new MemorySource("base", { w: { shape: [2], data: new Float32Array([1, 1]) } });
 * const expert = new MemorySource("mnist", { w: { shape: [2], data: new Float32Array([1.5, 0]) } });
 * const tau = new TaskVector("mnist", base, expert);
 * equal(tau.label, "τ(mnist)");
 * deepStrictEqual(await tau.read("w"), new Float32Array([0.5, -1]));
 * ```
 */
export class TaskVector extends WeightedSum {
  /** Builds θ − θ0 for `task` from the expert θ and the base θ0. */
  constructor(
    /** The task's name. */
    readonly task: string,
    /** The pretrained weights θ0. */
    readonly base: TensorSource,
    /** The fine-tuned weights θ. */
    readonly expert: TensorSource,
  ) {
    super([{ source: expert, weight: 1 }, { source: base, weight: -1 }], `τ(${task})`);
  }

  /** θ − θ0 for tensor `name` (a fresh array), through {@linkcode readTaskVectors}. */
  override async read(name: string): Promise<Float32Array> {
    return (await readTaskVectors([this], name))[0];
  }
}

/**
 * Reads tensor `name` of every task vector (fresh arrays, the caller's to keep or modify).
 * A {@linkcode TaskVector}'s base tensor is read once for all the vectors built on it; a
 * vector scaled by `scaleSource` (a one-term {@linkcode WeightedSum}) is read the same way and
 * multiplied in place; leaves shared by other sums are read once.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { readTaskVectors, TaskVector } from "./task_vector.ts";
 * import { scaleSource } from "./weighted_sum.ts";
 * import { MemorySource } from "../tensor/source.ts";
 * const m = (v: number) => new MemorySource("m", { w: { shape: [1], data: new Float32Array([v]) } });
 * const base = m(1);
 * const taus = [new TaskVector("a", base, m(3)), scaleSource(new TaskVector("b", base, m(0)), 2)];
 * deepStrictEqual(await readTaskVectors(taus, "w"), [new Float32Array([2]), new Float32Array([-2])]);
 * ```
 */
export async function readTaskVectors(
  vectors: readonly TensorSource[],
  name: string,
): Promise<Float32Array[]> {
  return readsOverlap(vectors) ? await readAtOnce(vectors, name) : await readInTurn(vectors, name);
}

/** {@linkcode readTaskVectors} one read at a time, each awaited before the next starts. */
async function readInTurn(
  vectors: readonly TensorSource[],
  name: string,
): Promise<Float32Array[]> {
  const bases = new Map<TensorSource, Float32Array>();
  let leaves: LeafReader | undefined;
  const out: Float32Array[] = [];
  for (const vector of vectors) {
    const inner = innerOf(vector);
    let data: Float32Array;
    if (inner instanceof TaskVector) {
      data = await readUnchecked(inner.expert, name);
      let base = bases.get(inner.base);
      if (!base) bases.set(inner.base, base = await readUnchecked(inner.base, name));
      data = await difference(inner, name, data, base);
    } else if (inner instanceof WeightedSum) {
      data = await inner.evaluate(name, leaves ??= cachedReader(name));
    } else {
      data = await inner.read(name);
    }
    out.push(scaled(vector, data));
  }
  return out;
}

/**
 * {@linkcode readTaskVectors} for sources that all allow concurrent reads: every leaf read that
 * lands in an output array (an expert's tensor, a plain source's) and every base tensor starts
 * now, so the files are read concurrently by the runtime's I/O threads while the differences
 * are formed in task order as the reads arrive. These are the same T + (number of bases)
 * arrays {@linkcode readInTurn} holds; sums of several terms are evaluated afterwards, one at a
 * time. A failure waits for the reads still running, then throws the error a read in turn
 * would have met first: no read outlives the call.
 */
async function readAtOnce(
  vectors: readonly TensorSource[],
  name: string,
): Promise<Float32Array[]> {
  const bases = new Map<TensorSource, Promise<Float32Array>>();
  const started: Promise<Float32Array>[] = [];
  const start = (read: () => Promise<Float32Array>) => {
    const pending = (async () => await read())(); // a synchronous throw becomes the rejection
    pending.catch(() => {}); // consumed (and its error thrown) in order below
    started.push(pending);
    return pending;
  };
  const reads = vectors.map((vector) => {
    const inner = innerOf(vector);
    if (inner instanceof TaskVector) {
      const expert = start(() => readUnchecked(inner.expert, name));
      if (!bases.has(inner.base)) {
        bases.set(inner.base, start(() => readUnchecked(inner.base, name)));
      }
      return expert;
    }
    return inner instanceof WeightedSum ? undefined : start(() => inner.read(name));
  });
  let leaves: LeafReader | undefined;
  const out: Float32Array[] = [];
  try {
    for (let t = 0; t < vectors.length; t++) {
      const inner = innerOf(vectors[t]);
      let data: Float32Array;
      if (inner instanceof TaskVector) {
        data = await difference(inner, name, await reads[t]!, await bases.get(inner.base)!);
      } else if (inner instanceof WeightedSum) {
        data = await inner.evaluate(name, leaves ??= cachedReader(name));
      } else {
        data = await reads[t]!;
      }
      out.push(scaled(vectors[t], data));
    }
  } catch (err) {
    await Promise.allSettled(started);
    throw err;
  }
  return out;
}

/** `data` multiplied in place by the weight of a one-term sum w·s (unchanged otherwise). */
function scaled(vector: TensorSource, data: Float32Array): Float32Array {
  const weight = isScaled(vector) ? vector.terms[0].weight : 1;
  if (weight !== 1) { for (let i = 0; i < data.length; i++) data[i] *= weight; }
  return data;
}

/** The source read for `vector`: s of a one-term sum w·s, else the vector itself. */
function innerOf(vector: TensorSource): TensorSource {
  return isScaled(vector) ? vector.terms[0].source : vector;
}

/** A one-term weighted sum w·s (what `scaleSource` builds), read as s then scaled in place. */
function isScaled(source: TensorSource): source is WeightedSum {
  return source instanceof WeightedSum && !(source instanceof TaskVector) &&
    source.terms.length === 1;
}

/**
 * θ − θ0 of one task vector from its tensors as read unchecked (`data` becomes the
 * difference). A NaN or ±Infinity in either input makes the difference non-finite: both are
 * then read again the checked way, which throws the checkpoint's usual error (naming the file,
 * the tensor and the value) unless it allows them.
 */
async function difference(
  tau: TaskVector,
  name: string,
  data: Float32Array,
  base: Float32Array,
): Promise<Float32Array> {
  if (!subtractFinite(data, base)) {
    await tau.expert.read(name);
    await tau.base.read(name);
  }
  return data;
}

/**
 * A checkpoint's tensor without the finiteness scan (the caller checks the values it derives);
 * other sources as they read.
 */
function readUnchecked(source: TensorSource, name: string): Promise<Float32Array> {
  return source instanceof Checkpoint
    ? source.read(name, { allowNonFinite: true })
    : source.read(name);
}

/**
 * The merged model θ0 + Σ λᵢ·τᵢ as a lazy source (write it with `writeCheckpoint`). `lambdas`
 * is one scaling coefficient for every task vector or one per vector. The base tensor is read
 * once per tensor even when the task vectors are built on it.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { applyTaskVectors, TaskVector } from "./task_vector.ts";
 * const base = new MemorySource("base", { w: { shape: [1], data: new Float32Array([1]) } });
 * const a = new TaskVector("a", base, new MemorySource("a", { w: { shape: [1], data: new Float32Array([3]) } }));
 * const b = new TaskVector("b", base, new MemorySource("b", { w: { shape: [1], data: new Float32Array([0]) } }));
 * // 1 + 0.5·(3 − 1) + 0.5·(0 − 1)
 * deepStrictEqual(await applyTaskVectors(base, [a, b], 0.5).read("w"), new Float32Array([1.5]));
 * ```
 */
export function applyTaskVectors(
  base: TensorSource,
  vectors: readonly TensorSource[],
  lambdas: number | readonly number[],
): WeightedSum {
  const weights = typeof lambdas === "number" ? vectors.map(() => lambdas) : lambdas;
  if (weights.length !== vectors.length) {
    throw new Error(`${weights.length} lambdas for ${vectors.length} task vectors`);
  }
  const terms = [
    { source: base, weight: 1 },
    ...vectors.map((source, i) => ({ source, weight: weights[i] })),
  ];
  return new WeightedSum(terms);
}
