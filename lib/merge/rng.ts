/**
 * A small seeded random generator (xoshiro128**) whose stream is a pure function of
 * (seed, task index, tensor name), so DARE's masks do not depend on the order tensors are read
 * in, on how many passes read them, or on the platform.
 *
 * @module
 */

/** 32-bit hash of a string (FNV-1a over UTF-16 code units, then a murmur3 finaliser). */
function hashString(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** splitmix32: expands one 32-bit seed into well-mixed state words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  return mix32(state.s);
}

/**
 * xoshiro128** seeded from (seed, stream index, stream name).
 *
 * @example
 * ```ts
 * import { StreamRandom } from "./rng.ts";
 * const a = new StreamRandom(0, 1, "layer.weight");
 * const b = new StreamRandom(0, 1, "layer.weight");
 * console.log(a.next() === b.next()); // true
 * ```
 */
export class StreamRandom {
  #s = new Uint32Array(4);

  /** A generator for stream (`index`, `name`) under `seed` (integers; seed ≥ 0). */
  constructor(seed: number, index: number, name: string) {
    const state = { s: hashString(name, mix32((seed >>> 0) ^ Math.imul(index + 1, 0x9e3779b1))) };
    for (let i = 0; i < 4; i++) this.#s[i] = splitmix32(state);
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }

  /** The next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** The next uniform number in [0, 1) (32 random bits). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
