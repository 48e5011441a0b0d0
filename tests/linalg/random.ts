/**
 * Seeded random matrices and comparisons for the linear-algebra tests.
 *
 * @module
 */

/**
 * A rows×cols row-major matrix of standard normal values from a seeded generator
 * (mulberry32 + Box–Muller), the same for the same seed on every machine.
 *
 * @example
 * ```ts
 * import { gaussianMatrix } from "./random.ts";
 * const a = gaussianMatrix(3, 4, 7); // Float32Array of 12 values
 * ```
 */
export function gaussianMatrix(rows: number, cols: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // in (0, 1)
  };
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  }
  return out;
}

/**
 * Largest absolute difference between two equally long arrays (throws on a length mismatch).
 *
 * @example
 * ```ts
 * import { maxAbsDiff } from "./random.ts";
 * maxAbsDiff([1, 2], [1, 2.5]); // 0.5
 * ```
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = d; // NaN propagates as the worst
  }
  return worst;
}
