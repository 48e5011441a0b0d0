/**
 * θ0 + τ and τ = θ − θ0 on whole models held in host memory (maps from tensor name to
 * {@linkcode HostTensor}, the shape the model store and RI use), computed in float32 as the
 * lazy {@linkcode TaskVector} does: each value is the correctly rounded float32 sum or
 * difference.
 *
 * @module
 */
import type { HostTensor } from "../tensor/host.ts";

/**
 * θ0 + τ (a tensor τ lacks stays at θ0's values, shared rather than copied).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { addTaskVector } from "./host.ts";
 * const base = new Map([["w", { shape: [2], data: new Float32Array([1, 2]) }]]);
 * const tau = new Map([["w", { shape: [2], data: new Float32Array([0.5, -1]) }]]);
 * deepStrictEqual(addTaskVector(base, tau).get("w")!.data, new Float32Array([1.5, 1]));
 * ```
 */
export function addTaskVector(
  base: ReadonlyMap<string, HostTensor>,
  tau: ReadonlyMap<string, { readonly data: Float32Array }>,
): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, b] of base) {
    const t = tau.get(name);
    if (t && t.data.length !== b.data.length) {
      throw new Error(
        `task vector tensor "${name}" has ${t.data.length} values, θ0 has ${b.data.length}`,
      );
    }
    out.set(name, { shape: b.shape, data: t ? b.data.map((v, i) => v + t.data[i]) : b.data });
  }
  return out;
}

/**
 * τ = θ − θ0 over θ0's tensors; `label` names θ in the error for a tensor it lacks.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, throws } from "node:assert/strict";
 * import { subtractBase } from "./host.ts";
 * const base = new Map([["w", { shape: [1], data: new Float32Array([1]) }]]);
 * const theta = new Map([["w", { shape: [1], data: new Float32Array([3]) }]]);
 * deepStrictEqual(subtractBase(theta, base).get("w")!.data, new Float32Array([2]));
 * throws(() => subtractBase(new Map(), base, "expert mnist"), /expert mnist has no tensor "w"/);
 * ```
 */
export function subtractBase(
  theta: ReadonlyMap<string, HostTensor>,
  base: ReadonlyMap<string, HostTensor>,
  label = "model",
): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, b] of base) {
    const t = theta.get(name);
    if (!t) throw new Error(`${label} has no tensor "${name}" that θ0 has`);
    out.set(name, { shape: b.shape, data: t.data.map((v, i) => v - b.data[i]) });
  }
  return out;
}
