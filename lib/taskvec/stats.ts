/**
 * Norms of task vectors and the cosine similarities between them, computed in one streaming
 * pass: for each tensor name, every vector's tensor is read (a shared base only once), the dot
 * products between all pairs are accumulated in float64, and the tensors are dropped.
 *
 * @module
 */
import type { TensorSource } from "../tensor/source.ts";
import { assertSameLayout } from "../tensor/source.ts";
import { readTaskVectors } from "./task_vector.ts";
// figure.ts and jupyter.ts, not display/mod.ts: that one loads TensorFlow.js, which the
// streaming merge CLI never needs.
import { bars, type Figure, heatmap } from "../display/figure.ts";
import { displayWith } from "../display/jupyter.ts";

/** Options for a streaming pass. */
export interface PassOptions {
  /** Called after each tensor name is done (for progress bars). */
  onTensor?: (name: string, done: number, total: number) => void;
}

/**
 * L2 norms of N task vectors: per tensor and over the whole model.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { TaskVectorNorms } from "../../mod.ts";
 * const norms = new TaskVectorNorms(["a"], ["w", "b"], [[3, 4]], [5]);
 * equal(norms.toString(), "Task-vector norms over 2 tensors\na     ‖τ‖ = 5.0000, largest b 4.0000");
 * ```
 */
export class TaskVectorNorms {
  /** Wraps computed norms (see {@linkcode taskVectorStats}). */
  constructor(
    /** Task names, one per vector. */
    readonly tasks: readonly string[],
    /** Tensor names, in the vectors' order. */
    readonly tensors: readonly string[],
    /** `perTensor[t][k]`: the L2 norm of task t's tensor k. */
    readonly perTensor: readonly (readonly number[])[],
    /** `global[t]`: the L2 norm of task t's whole vector, √(Σₖ perTensor[t][k]²). */
    readonly global: readonly number[],
  ) {}

  /** One line per task: its global norm and its largest tensor. */
  toString(): string {
    const width = Math.max(4, ...this.tasks.map((t) => t.length));
    const lines = this.tasks.map((task, t) => {
      const row = this.perTensor[t];
      let k = 0;
      for (let i = 1; i < row.length; i++) if (row[i] > row[k]) k = i;
      const largest = row.length ? `, largest ${this.tensors[k]} ${fmt(row[k])}` : "";
      return `${task.padEnd(width)}  ‖τ‖ = ${fmt(this.global[t])}${largest}`;
    });
    return [`Task-vector norms over ${this.tensors.length} tensors`, ...lines].join("\n");
  }

  /** The global norms as bars, one per task. */
  figure(): Figure {
    return bars({
      categories: [...this.tasks],
      series: [{ name: "‖τ‖", values: [...this.global] }],
      title: `Task-vector norms ‖τ‖ (L2 over ${this.tensors.length} tensors)`,
      yTitle: "‖τ‖",
    });
  }
}
displayWith(TaskVectorNorms.prototype, (n) => n.figure());

/**
 * Cosine similarities between N task vectors (whole-model, flattened): `matrix[i][j]` =
 * ⟨τᵢ, τⱼ⟩ / (‖τᵢ‖·‖τⱼ‖); NaN where a vector is all zeros.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { CosineSimilarity } from "../../mod.ts";
 * const text = new CosineSimilarity(["a", "b"], [[1, 0.2], [0.2, 1]]).toString();
 * ok(text.startsWith("Cosine similarity of task vectors\n"));
 * ok(text.includes("a       1.0000  0.2000"));
 * ```
 */
export class CosineSimilarity {
  /** Wraps a computed matrix (see {@linkcode taskVectorStats}). */
  constructor(
    /** Task names, labelling rows and columns. */
    readonly tasks: readonly string[],
    /** Symmetric N×N matrix with ones on the diagonal. */
    readonly matrix: readonly (readonly number[])[],
  ) {}

  /** The matrix as an aligned text table. */
  toString(): string {
    const width = Math.max(6, ...this.tasks.map((t) => t.length));
    const head = " ".repeat(width) + this.tasks.map((t) => t.padStart(width + 2)).join("");
    const rows = this.tasks.map((task, i) =>
      task.padEnd(width) + this.matrix[i].map((v) => fmt(v).padStart(width + 2)).join("")
    );
    return ["Cosine similarity of task vectors", head, ...rows].join("\n");
  }

  /**
   * The matrix as a heatmap on a diverging scale centred on 0. The scale is set by the
   * off-diagonal entries (the diagonal is 1 by definition and would wash them out).
   */
  figure(): Figure {
    const off = this.matrix.flatMap((row, i) =>
      row.filter((v, j) => i !== j && Number.isFinite(v)).map(Math.abs)
    );
    const m = Math.max(...off, 1e-3);
    return heatmap({
      values: this.matrix.map((row) => [...row]),
      rowLabels: [...this.tasks],
      columnLabels: [...this.tasks],
      title: "Cosine similarity of task vectors",
      valueLabel: "cos(τi, τj)",
      scale: "diverging",
      range: { min: -m, max: m },
    });
  }
}
displayWith(CosineSimilarity.prototype, (c) => c.figure());

/** Both results of one pass. */
export interface TaskVectorStats {
  /** Per-tensor and global norms. */
  norms: TaskVectorNorms;
  /** Cosine-similarity matrix. */
  cosine: CosineSimilarity;
}

/**
 * Norms and cosine similarities of `vectors` (named by `tasks`) in one streaming pass. Vectors
 * must share tensor names and shapes; task vectors over one base read that base once per
 * tensor.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, ok } from "node:assert/strict";
 * import { MemorySource } from "../../mod.ts";
 * import { taskVectorStats } from "./stats.ts";
 * const a = new MemorySource("a", { w: { shape: [2], data: new Float32Array([3, 4]) } });
 * const b = new MemorySource("b", { w: { shape: [2], data: new Float32Array([4, 3]) } });
 * const { norms, cosine } = await taskVectorStats(["a", "b"], [a, b]);
 * deepStrictEqual(norms.global, [5, 5]);
 * ok(Math.abs(cosine.matrix[0][1] - 24 / 25) < 1e-12); // (3·4 + 4·3) / (5·5)
 * ```
 */
export async function taskVectorStats(
  tasks: readonly string[],
  vectors: readonly TensorSource[],
  options: PassOptions = {},
): Promise<TaskVectorStats> {
  if (tasks.length !== vectors.length) {
    throw new Error(`${tasks.length} task names for ${vectors.length} task vectors`);
  }
  if (vectors.length === 0) throw new Error("no task vectors given");
  for (const v of vectors.slice(1)) assertSameLayout(vectors[0], v);
  const names = vectors[0].names();
  const n = vectors.length;
  const gram = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const squares = Array.from({ length: n }, () => new Array<number>(names.length).fill(0));
  for (let k = 0; k < names.length; k++) {
    const data = await readTaskVectors(vectors, names[k]);
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        const d = dot(data[i], data[j]);
        gram[i][j] += d;
        if (i === j) squares[i][k] = d;
      }
    }
    options.onTensor?.(names[k], k + 1, names.length);
  }
  const global = gram.map((row, i) => Math.sqrt(row[i]));
  const matrix = gram.map((row, i) =>
    row.map((_, j) => {
      const g = j >= i ? gram[i][j] : gram[j][i];
      const denominator = global[i] * global[j];
      if (denominator === 0) return NaN;
      return i === j ? 1 : Math.max(-1, Math.min(1, g / denominator));
    })
  );
  const perTensor = squares.map((row) => row.map(Math.sqrt));
  return {
    norms: new TaskVectorNorms([...tasks], [...names], perTensor, global),
    cosine: new CosineSimilarity([...tasks], matrix),
  };
}

/** ⟨a, b⟩ accumulated in float64 (four partial sums, for speed and a little accuracy). */
function dot(a: Float32Array, b: Float32Array): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n = a.length - (a.length % 4);
  for (let i = 0; i < n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (let i = n; i < a.length; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

function fmt(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  const abs = Math.abs(v);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e5) ? v.toExponential(3) : v.toFixed(4);
}
