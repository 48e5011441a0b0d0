/**
 * Named weights in host memory (θ, a task vector τ, a merged model) that show a summary of
 * themselves instead of their raw arrays: a {@linkcode Weights} is a `Map` of tensors like any
 * `HostParams`, so every function taking weights takes it unchanged.
 *
 * @module
 */
import { displayWith } from "../display/jupyter.ts";
import { table } from "../display/figure.ts";
import type { HostTensor } from "../tensor/host.ts";

/** Summary numbers of a set of weights. */
export interface WeightsSummary {
  /** Number of tensors. */
  tensors: number;
  /** Number of values. */
  values: number;
  /** Global L2 norm (all values as one vector). */
  norm: number;
  /** Largest absolute value. */
  maxAbs: number;
  /** Count of NaN or infinite values. */
  nonFinite: number;
  /** The tensors with the largest L2 norms, largest first. */
  largest: { name: string; shape: readonly number[]; norm: number }[];
}

/**
 * Weights by name, with a label (`θ0`, `τ mnist`, `τ' mnist`, `task_arithmetic`), shown in a
 * notebook and a terminal as a summary table (tensor count, values, norm, largest tensors).
 *
 * @example
 * ```ts
 * import { equal, match } from "node:assert/strict";
 * import { Weights } from "./named_weights.ts";
 * const w = new Weights([["a", { shape: [2], data: new Float32Array([3, 4]) }]], "τ demo");
 * equal(w.summary().norm, 5);
 * match(String(w), /^τ demo: 1 tensor, 2 values, ‖·‖ 5/);
 * equal(w.get("a")!.data[1], 4); // still a Map of tensors
 * ```
 */
export class Weights extends Map<string, HostTensor> {
  /** What these weights are. */
  readonly label: string;

  /** Wraps entries (or another Map) with a label. */
  constructor(entries: Iterable<readonly [string, HostTensor]> = [], label = "weights") {
    super(entries);
    this.label = label;
  }

  /** Tensor count, value count, global norm, largest |value|, non-finite count, top tensors. */
  summary(top = 5): WeightsSummary {
    let values = 0, sum = 0, maxAbs = 0, nonFinite = 0;
    const norms: WeightsSummary["largest"] = [];
    for (const [name, t] of this) {
      let s = 0;
      for (const v of t.data) {
        if (!Number.isFinite(v)) {
          nonFinite++;
          continue;
        }
        s += v * v;
        const a = Math.abs(v);
        if (a > maxAbs) maxAbs = a;
      }
      values += t.data.length;
      sum += s;
      norms.push({ name, shape: t.shape, norm: Math.sqrt(s) });
    }
    norms.sort((a, b) => b.norm - a.norm);
    return {
      tensors: this.size,
      values,
      norm: Math.sqrt(sum),
      maxAbs,
      nonFinite,
      largest: norms.slice(0, top),
    };
  }

  /** One line: label, counts and norm. */
  headline(): string {
    const s = this.summary(0);
    const plural = (n: number, w: string) =>
      `${n.toLocaleString("en-US")} ${w}${n === 1 ? "" : "s"}`;
    return `${this.label}: ${plural(s.tensors, "tensor")}, ${plural(s.values, "value")}, ` +
      `‖·‖ ${fmt(s.norm)}, max |v| ${fmt(s.maxAbs)}` +
      (s.nonFinite ? `, ${s.nonFinite} NaN/Inf` : "");
  }
}
displayWith(Weights.prototype, (w) =>
  table({
    title: w.headline(),
    columns: ["largest tensors", "shape", "‖·‖"],
    rows: w.summary().largest.map((t) => [t.name, `[${t.shape.join(", ")}]`, t.norm]),
  }));

/**
 * `params` as {@linkcode Weights} with `label` (the same tensors, not copied).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { asWeights } from "./named_weights.ts";
 * equal(asWeights(new Map(), "θ0").label, "θ0");
 * ```
 */
export function asWeights(params: Map<string, HostTensor>, label: string): Weights {
  return params instanceof Weights && params.label === label ? params : new Weights(params, label);
}

function fmt(v: number): string {
  return v === 0
    ? "0"
    : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3
    ? v.toExponential(3)
    : v.toPrecision(4);
}
