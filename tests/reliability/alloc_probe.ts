/**
 * Watches the typed-array allocations that library code makes: while installed, the global
 * typed-array constructors are replaced by subclasses that check every fresh buffer (a length,
 * or a copy of an array) against a limit before it is allocated, so a reader that trusts a
 * lying header fails with {@linkcode AllocationLimitError} instead of allocating gigabytes.
 *
 * Only code that looks the constructors up on the global object at call time is seen (all of
 * this project's code); Deno's own internals keep the originals. Install it in a worker or a
 * process of its own: it changes globals for everything running there.
 *
 * @module
 */

/** Thrown, before allocating, by an allocation above the limit. */
export class AllocationLimitError extends Error {
  /**
   * @param elements elements asked for
   * @param kind the constructor's name
   * @param limit the largest element count allowed
   */
  constructor(readonly elements: number, kind: string, readonly limit: number) {
    super(`allocation of ${elements} elements (${kind}) above the limit of ${limit}`);
    this.name = "AllocationLimitError";
  }
}

const KINDS = [
  "Uint8Array",
  "Int8Array",
  "Uint16Array",
  "Int16Array",
  "Uint32Array",
  "Int32Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
] as const;

/** What the probe saw since it was last reset. */
export interface AllocationStats {
  /** Largest element count of one fresh typed array. */
  largest: number;
  /** Fresh typed arrays seen. */
  count: number;
}

/** The probe: set a limit, run code, read what it allocated; uninstall when done. */
export interface AllocationProbe extends Disposable {
  /** Elements one fresh typed array may hold (Infinity: no limit). */
  limit: number;
  /** Allocations since the last reset. */
  readonly stats: AllocationStats;
  /** Clears the statistics. */
  reset(): void;
}

/** Element count of a fresh buffer that `new Ctor(...args)` makes, or -1 for a view. */
function freshElements(args: unknown[]): number {
  const [first] = args;
  if (args.length === 0) return 0;
  if (typeof first === "number") return first;
  if (first instanceof ArrayBuffer || first instanceof SharedArrayBuffer) return -1;
  const length = (first as { length?: unknown } | null)?.length;
  return typeof length === "number" ? length : -1;
}

/**
 * Installs the probe; dispose it to restore the original constructors.
 *
 * @example
 * ```ts
 * import { installAllocationProbe } from "./alloc_probe.ts";
 * using probe = installAllocationProbe();
 * probe.limit = 100;
 * new Float32Array(10);
 * console.log(probe.stats.largest); // 10
 * ```
 */
export function installAllocationProbe(): AllocationProbe {
  const g = globalThis as unknown as Record<string, unknown>;
  const originals = new Map<string, unknown>();
  const state = { limit: Infinity, stats: { largest: 0, count: 0 } };
  for (const kind of KINDS) {
    // deno-lint-ignore no-explicit-any
    const Base = g[kind] as any;
    originals.set(kind, Base);
    g[kind] = class extends Base {
      constructor(...args: unknown[]) {
        const n = freshElements(args);
        if (n >= 0) {
          if (n > state.limit) throw new AllocationLimitError(n, kind, state.limit);
          state.stats.largest = Math.max(state.stats.largest, n);
          state.stats.count++;
        }
        super(...args);
      }
    };
  }
  return {
    get limit() {
      return state.limit;
    },
    set limit(value: number) {
      state.limit = value;
    },
    get stats() {
      return state.stats;
    },
    reset() {
      state.stats = { largest: 0, count: 0 };
    },
    [Symbol.dispose]() {
      for (const [kind, original] of originals) g[kind] = original;
    },
  };
}
