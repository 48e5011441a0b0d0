/**
 * A cheap check that experts were fine-tuned from the base they are given with. Names and shapes
 * are checked when task vectors are built; this catches a base of the same architecture that is
 * not the experts' base (another pretraining run, an untrained initialisation): an expert then
 * sits as far from it as two unrelated models, ‖θ − θ0‖ ≥ ‖θ0‖ roughly, where a fine-tuned
 * expert sits a few percent away. Only a few weight matrices are read, so the check costs a small
 * fraction of one merge pass.
 *
 * What it cannot see: a base that is close to the true one (a fine-tune of it, another
 * checkpoint of the same run), or experts fine-tuned so far that they moved half their norm.
 *
 * @module
 */
import type { TensorSource } from "../tensor/source.ts";

/** Default limit on ‖θ − θ0‖ / ‖θ0‖: far above fine-tuning, far below unrelated models (≥ 1). */
export const BASE_DISTANCE_LIMIT = 0.5;

/** How far one expert is from the base, relative to the base's norm. */
export interface BaseDistance {
  /** The expert's label (its path for a checkpoint). */
  expert: string;
  /** ‖θ − θ0‖ / ‖θ0‖ over `tensors` (NaN when the base is zero there). */
  ratio: number;
  /** The tensors compared. */
  tensors: readonly string[];
}

/**
 * Up to `count` weight tensors (two or more dimensions) spread evenly over the base's names;
 * every tensor when none has two dimensions.
 */
function sampleTensors(base: TensorSource, count: number): string[] {
  const names = base.names();
  const weights = names.filter((n) => base.shape(n).length >= 2);
  const pool = weights.length > 0 ? weights : [...names];
  if (pool.length <= count) return pool;
  return Array.from({ length: count }, (_, i) => pool[Math.floor((i * pool.length) / count)]);
}

/**
 * ‖θᵢ − θ0‖ / ‖θ0‖ for each expert over a few weight tensors of the base (the same ones for
 * every expert; the base's tensors are read once).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { baseDistances } from "./base_check.ts";
 * const m = (v: number[]) => new MemorySource("m", { w: { shape: [1, 2], data: new Float32Array(v) } });
 * const [d] = await baseDistances(m([3, 4]), [m([3, 4.5])]);
 * ok(Math.abs(d.ratio - 0.1) < 1e-12); // ‖(0, 0.5)‖ / ‖(3, 4)‖
 * ```
 */
export async function baseDistances(
  base: TensorSource,
  experts: readonly TensorSource[],
  maxTensors = 4,
): Promise<BaseDistance[]> {
  const tensors = sampleTensors(base, maxTensors);
  const diff = experts.map(() => 0);
  let norm = 0;
  for (const name of tensors) {
    const theta0 = await base.read(name);
    for (let i = 0; i < theta0.length; i++) norm += theta0[i] * theta0[i];
    for (let e = 0; e < experts.length; e++) {
      const theta = await experts[e].read(name);
      let sum = 0;
      for (let i = 0; i < theta0.length; i++) sum += (theta[i] - theta0[i]) ** 2;
      diff[e] += sum;
    }
  }
  return experts.map((expert, e) => ({
    expert: expert.label,
    ratio: norm > 0 ? Math.sqrt(diff[e] / norm) : NaN,
    tensors,
  }));
}

/**
 * Throws when an expert is implausibly far from the base (see the module documentation): the
 * message names the expert and the base, gives the distance and says what to check.
 *
 * @example
 * ```ts
 * import { rejects } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { checkCommonBase } from "./base_check.ts";
 * const m = (v: number[]) => new MemorySource("m", { w: { shape: [1, 2], data: new Float32Array(v) } });
 * await checkCommonBase(m([3, 4]), [m([3.1, 4])]); // fine: 2 % away
 * await rejects(checkCommonBase(m([3, 4]), [m([-4, 3])]), /‖θ − θ0‖ \/ ‖θ0‖ = 1\.41/);
 * ```
 */
export async function checkCommonBase(
  base: TensorSource,
  experts: readonly TensorSource[],
  limit = BASE_DISTANCE_LIMIT,
): Promise<void> {
  for (const d of await baseDistances(base, experts)) {
    if (!(d.ratio > limit)) continue;
    throw new Error(
      `${d.expert}: ‖θ − θ0‖ / ‖θ0‖ = ${d.ratio.toFixed(2)} against the base ${base.label} ` +
        `(over ${d.tensors.join(", ")}); an expert fine-tuned from its base is a few percent ` +
        `away, an unrelated model about 1 or more. Is ${base.label} the model these experts ` +
        `were fine-tuned from? (limit ${limit}; skip this check to merge anyway)`,
    );
  }
}
