/**
 * A small seeded random number generator (xoshiro128**, seeded through SplitMix32) used for
 * everything that must repeat exactly from a seed: weight initialisation, data splits,
 * shuffling, noise and drawn shapes. Independent streams come from {@linkcode Rng.fork} with a
 * label, so adding a new consumer never shifts the numbers an existing one sees.
 *
 * @module
 */

/** FNV-1a hash of a string to a 32-bit unsigned integer (labels of forked streams). */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** One SplitMix32 step: turns a counter into a well-mixed 32-bit value. */
function splitMix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A seeded generator of uniform, normal and integer variates.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, ok } from "node:assert/strict";
 * import { Rng } from "./random.ts";
 * const rng = new Rng(42);
 * const a = rng.uniform(), b = rng.normal(), k = rng.int(10);
 * ok(a >= 0 && a < 1 && Number.isFinite(b) && Number.isInteger(k) && k >= 0 && k < 10);
 * // the same seed and label give the same stream, however much the parent drew
 * const order = rng.fork("shuffle").permutation(5);
 * deepStrictEqual(new Rng(42).fork("shuffle").permutation(5), order);
 * deepStrictEqual([...order].sort(), [0, 1, 2, 3, 4]);
 * ```
 */
export class Rng {
  #s: Uint32Array;
  #spare: number | undefined;

  /** A generator whose whole sequence is fixed by `seed` (any finite number) and `label`. */
  constructor(readonly seed: number, readonly label = "") {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    let x = (hashLabel(`${seed}/${label}`) ^ (Math.floor(seed) >>> 0)) >>> 0;
    this.#s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) {
      x = splitMix32(x);
      this.#s[i] = x;
    }
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1; // xoshiro's one forbidden state
  }

  /** An independent stream for one purpose, fixed by this generator's seed and `label`. */
  fork(label: string): Rng {
    return new Rng(this.seed, this.label ? `${this.label}/${label}` : label);
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform variate in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform variate in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new Error(`Rng.int: n must be ≥ 1, got ${n}`);
    return Math.floor(this.uniform() * n);
  }

  /** A standard normal variate (Box–Muller; the second value of each pair is kept). */
  normal(): number {
    if (this.#spare !== undefined) {
      const v = this.#spare;
      this.#spare = undefined;
      return v;
    }
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * this.uniform();
    this.#spare = r * Math.sin(a);
    return r * Math.cos(a);
  }

  /**
   * `n` normal variates with standard deviation `std` as a Float32Array (Marsaglia's polar
   * method in one tight loop: this fills ViT-B/32-sized tensors, so speed matters).
   */
  normals(n: number, std = 1): Float32Array {
    const out = new Float32Array(n);
    let i = 0;
    while (i < n) {
      const u = 2 * this.uniform() - 1;
      const v = 2 * this.uniform() - 1;
      const s = u * u + v * v;
      if (s >= 1 || s === 0) continue;
      const m = std * Math.sqrt(-2 * Math.log(s) / s);
      out[i++] = u * m;
      if (i < n) out[i++] = v * m;
    }
    return out;
  }

  /** Shuffles `array` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
