/**
 * Task vectors τ = θ − θ0 (an expert's weights minus the pretrained base's), computed lazily
 * tensor by tensor, and the way back: θ0 + Σ λᵢ·τᵢ.
 *
 * @module
 */
import type { TensorSource } from "../tensor/source.ts";
import { WeightedSum } from "./weighted_sum.ts";

/**
 * τ = θ − θ0 for one task, read lazily: each read reads the expert's and the base's tensor and
 * subtracts. Building it checks that both have the same tensor names and shapes; the error
 * names both sources (file paths for checkpoints) and the tensor.
 *
 * @example
 * ```ts
 * import { MemorySource, TaskVector } from "../../mod.ts";
 * const base = new MemorySource("base", { w: { shape: [2], data: new Float32Array([1, 1]) } });
 * const expert = new MemorySource("mnist", { w: { shape: [2], data: new Float32Array([1.5, 0]) } });
 * const tau = new TaskVector("mnist", base, expert);
 * console.log(tau.label, await tau.read("w")); // "τ(mnist)" Float32Array [0.5, -1]
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
}

/**
 * The merged model θ0 + Σ λᵢ·τᵢ as a lazy source (write it with `writeCheckpoint`). `lambdas`
 * is one scaling coefficient for every task vector or one per vector. The base tensor is read
 * once per tensor even when the task vectors are built on it.
 *
 * @example
 * ```ts
 * import { applyTaskVectors, MemorySource, TaskVector } from "../../mod.ts";
 * const base = new MemorySource("base", { w: { shape: [1], data: new Float32Array([1]) } });
 * const a = new TaskVector("a", base, new MemorySource("a", { w: { shape: [1], data: new Float32Array([3]) } }));
 * const b = new TaskVector("b", base, new MemorySource("b", { w: { shape: [1], data: new Float32Array([0]) } }));
 * console.log(await applyTaskVectors(base, [a, b], 0.5).read("w")); // Float32Array [1.5]
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
