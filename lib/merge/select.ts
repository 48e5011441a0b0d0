/**
 * Exact k-th smallest |x| over a stream of float32 tensors, without holding the stream: radix
 * selection on bit patterns. A non-negative float's IEEE-754 bits, read as an unsigned integer,
 * are ordered like the float itself, so two histogram passes find the k-th value exactly: the
 * first counts the top 16 bits of every |x| and finds the bin holding the k-th; the second
 * counts the low 16 bits of the values in that bin only.
 *
 * @module
 */

const HIGH_BINS = 1 << 15; // the sign bit is cleared, so the top 16 bits are below 2^15
const LOW_BINS = 1 << 16;

function bitsOf(data: Float32Array): Uint32Array {
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

/**
 * Finds, for each of several streams ("tasks"), the k-th smallest absolute value
 * (1-indexed, ties counted, like `torch.kthvalue`). Feed every value of every task to
 * {@linkcode AbsKthSelector.countHigh}, call {@linkcode AbsKthSelector.settleHigh}, feed
 * every value again to {@linkcode AbsKthSelector.countLow}, then read
 * {@linkcode AbsKthSelector.values}.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { AbsKthSelector } from "./select.ts";
 * const data = new Float32Array([-3, 1, 0.5, -2, 7]);
 * const s = new AbsKthSelector([2, 5]); // task 0: the 2nd smallest |x|; task 1: the 5th
 * for (const t of [0, 1]) s.countHigh(t, data);
 * s.settleHigh();
 * for (const t of [0, 1]) s.countLow(t, data);
 * deepEqual(s.values(), [1, 7]); // |x| sorted: 0.5, 1, 2, 3, 7
 * ```
 */
export class AbsKthSelector {
  readonly #k: number[];
  readonly #high: Float64Array[];
  readonly #low: Float64Array[];
  readonly #bin: number[];
  #rank: number[] = [];
  #settled = false;

  /**
   * `ks[t]` is the rank (1-indexed) wanted from task t; it may instead be given to
   * {@linkcode AbsKthSelector.settleHigh} when the count of values is known only after the
   * first pass.
   */
  constructor(ks: readonly number[]) {
    checkRanks(ks);
    this.#k = [...ks];
    this.#high = ks.map(() => new Float64Array(HIGH_BINS));
    this.#low = ks.map(() => new Float64Array(LOW_BINS));
    this.#bin = ks.map(() => -1);
  }

  /** First pass: counts the top bits of task `t`'s values `data`. */
  countHigh(t: number, data: Float32Array): void {
    const hist = this.#high[t];
    const bits = bitsOf(data);
    for (let i = 0; i < bits.length; i++) hist[(bits[i] & 0x7fffffff) >>> 16]++;
  }

  /**
   * Ends the first pass: finds each task's bin (for the ranks `ks`, when given here); throws
   * when a task has fewer than k values.
   */
  settleHigh(ks?: readonly number[]): void {
    if (ks) {
      if (ks.length !== this.#k.length) {
        throw new Error(`${ks.length} ranks for ${this.#k.length} tasks`);
      }
      checkRanks(ks);
      this.#k.splice(0, ks.length, ...ks);
    }
    this.#rank = this.#k.map((k, t) => {
      const { bin, rank } = findBin(this.#high[t], k, `task ${t}`);
      this.#bin[t] = bin;
      return rank;
    });
    this.#settled = true;
  }

  /** Second pass: counts the low bits of task `t`'s values that fall in its bin. */
  countLow(t: number, data: Float32Array): void {
    if (!this.#settled) throw new Error("countLow before settleHigh");
    const hist = this.#low[t];
    const bin = this.#bin[t];
    const bits = bitsOf(data);
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i] & 0x7fffffff;
      if (b >>> 16 === bin) hist[b & 0xffff]++;
    }
  }

  /** The k-th smallest |x| of every task. */
  values(): number[] {
    if (!this.#settled) throw new Error("values before settleHigh");
    const scratch = new Float32Array(1);
    const bits = new Uint32Array(scratch.buffer);
    return this.#low.map((hist, t) => {
      const { bin } = findBin(hist, this.#rank[t], `task ${t}`);
      bits[0] = ((this.#bin[t] << 16) | bin) >>> 0;
      return scratch[0];
    });
  }
}

function checkRanks(ks: readonly number[]): void {
  ks.forEach((k, t) => {
    if (!Number.isInteger(k) || k < 1) throw new Error(`rank for task ${t} is ${k}: expected ≥ 1`);
  });
}

/** The bin holding the k-th counted value, and that value's rank within the bin. */
function findBin(hist: Float64Array, k: number, what: string): { bin: number; rank: number } {
  let below = 0;
  for (let bin = 0; bin < hist.length; bin++) {
    if (below + hist[bin] >= k) return { bin, rank: k - below };
    below += hist[bin];
  }
  throw new Error(`${what}: asked for the ${k}-th smallest of ${below} values`);
}
