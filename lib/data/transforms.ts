/**
 * Image transforms that turn one source into distinct task domains: rotations, flips,
 * inversion, a fixed shuffle of patches, edge maps, zooming out. Each works on one square
 * grey image (row-major, values in [0, 1]) and is deterministic.
 *
 * @module
 */

/** A transform's name. */
export type TransformName =
  | "identity"
  | "rot90"
  | "rot180"
  | "rot270"
  | "hflip"
  | "vflip"
  | "transpose"
  | "invert"
  | "shuffle"
  | "edges"
  | "zoomout";

/** The transforms a task may apply, by name (rotations are clockwise). */
export const TRANSFORMS: Readonly<
  Record<TransformName, (x: Float32Array, side: number) => Float32Array>
> = {
  identity: (x: Float32Array) => x.slice(),
  rot90: (x: Float32Array, s: number) => remap(x, s, (r, c) => [s - 1 - c, r]),
  rot180: (x: Float32Array, s: number) => remap(x, s, (r, c) => [s - 1 - r, s - 1 - c]),
  rot270: (x: Float32Array, s: number) => remap(x, s, (r, c) => [c, s - 1 - r]),
  hflip: (x: Float32Array, s: number) => remap(x, s, (r, c) => [r, s - 1 - c]),
  vflip: (x: Float32Array, s: number) => remap(x, s, (r, c) => [s - 1 - r, c]),
  transpose: (x: Float32Array, s: number) => remap(x, s, (r, c) => [c, r]),
  invert: (x: Float32Array) => x.map((v) => 1 - v),
  shuffle: (x: Float32Array, s: number) => shufflePatches(x, s, 7),
  edges: (x: Float32Array, s: number) => edgeMap(x, s),
  zoomout: (x: Float32Array, s: number) => zoomOut(x, s),
};

/**
 * Applies transforms left to right to one image of side `side`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { applyTransforms } from "./transforms.ts";
 * const img = new Float32Array([1, 0, 0, 0]); // 2×2, top-left lit
 * deepEqual(applyTransforms(img, 2, ["rot90"]), new Float32Array([0, 1, 0, 0])); // top-right lit
 * deepEqual(applyTransforms(img, 2, ["invert"]), new Float32Array([0, 1, 1, 1]));
 * ```
 */
export function applyTransforms(
  image: Float32Array,
  side: number,
  names: readonly TransformName[],
): Float32Array {
  if (image.length !== side * side) {
    throw new Error(`transform: image has ${image.length} values, expected ${side}×${side}`);
  }
  let x = image;
  for (const name of names) {
    const f = TRANSFORMS[name];
    if (!f) {
      throw new Error(
        `unknown transform "${name}": expected one of ${Object.keys(TRANSFORMS).join(", ")}`,
      );
    }
    x = f(x, side);
  }
  return x === image ? image.slice() : x;
}

/** out[r][c] = x[src(r, c)]: rotations and flips as index maps (rot90 is clockwise). */
function remap(
  x: Float32Array,
  s: number,
  source: (r: number, c: number) => [number, number],
): Float32Array {
  const out = new Float32Array(s * s);
  for (let r = 0; r < s; r++) {
    for (let c = 0; c < s; c++) {
      const [sr, sc] = source(r, c);
      out[r * s + c] = x[sr * s + sc];
    }
  }
  return out;
}

/**
 * The image cut into p×p patches laid back in a fixed scrambled order (the same for every
 * image): local strokes survive, the global layout does not.
 */
function shufflePatches(x: Float32Array, s: number, p: number): Float32Array {
  if (s % p !== 0) throw new Error(`transform shuffle: patch ${p} does not divide side ${s}`);
  const g = s / p;
  // A fixed derangement-like order: patch k goes to (k·5 + 3) mod g² (5 is coprime to 16).
  const n = g * g;
  let step = 5;
  while (gcd(step, n) !== 1) step++;
  const out = new Float32Array(s * s);
  for (let k = 0; k < n; k++) {
    const to = (k * step + 3) % n;
    const [kr, kc] = [Math.floor(k / g) * p, (k % g) * p];
    const [tr, tc] = [Math.floor(to / g) * p, (to % g) * p];
    for (let r = 0; r < p; r++) {
      for (let c = 0; c < p; c++) out[(tr + r) * s + tc + c] = x[(kr + r) * s + kc + c];
    }
  }
  return out;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Sobel gradient magnitude, scaled so the strongest edge is 1 (a blank image stays blank). */
function edgeMap(x: Float32Array, s: number): Float32Array {
  const at = (r: number, c: number) => r < 0 || c < 0 || r >= s || c >= s ? 0 : x[r * s + c];
  const out = new Float32Array(s * s);
  let max = 0;
  for (let r = 0; r < s; r++) {
    for (let c = 0; c < s; c++) {
      const gx = at(r - 1, c + 1) + 2 * at(r, c + 1) + at(r + 1, c + 1) -
        at(r - 1, c - 1) - 2 * at(r, c - 1) - at(r + 1, c - 1);
      const gy = at(r + 1, c - 1) + 2 * at(r + 1, c) + at(r + 1, c + 1) -
        at(r - 1, c - 1) - 2 * at(r - 1, c) - at(r - 1, c + 1);
      const m = Math.hypot(gx, gy);
      out[r * s + c] = m;
      if (m > max) max = m;
    }
  }
  if (max > 0) { for (let i = 0; i < out.length; i++) out[i] /= max; }
  return out;
}

/** The image shrunk to half size (2×2 averages) in the centre of a blank canvas. */
function zoomOut(x: Float32Array, s: number): Float32Array {
  const h = Math.floor(s / 2);
  const off = Math.floor((s - h) / 2);
  const out = new Float32Array(s * s);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < h; c++) {
      const v = x[2 * r * s + 2 * c] + x[2 * r * s + 2 * c + 1] +
        x[(2 * r + 1) * s + 2 * c] + x[(2 * r + 1) * s + 2 * c + 1];
      out[(off + r) * s + off + c] = v / 4;
    }
  }
  return out;
}

/**
 * Domain augmentation: each image of each epoch is shown in one domain (a transform chain)
 * drawn uniformly from `domains`, the draw fixed by `seed`, the epoch and the image's
 * position in its set. Returns `(image, index, epoch) => transformed image` for
 * `batches`' and `fitLoop`'s `augment` option; images have side `side`.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { domainAugmentation } from "./transforms.ts";
 * const augment = domainAugmentation([[], ["invert"]], 1, 0);
 * const shown = [0, 1, 2, 3, 4, 5].map((i) => augment(new Float32Array([0.25]), i, 0)[0]);
 * deepEqual(shown, [0.25, 0.75, 0.25, 0.75, 0.75, 0.75]); // each image upright or inverted
 * const again = [0, 1, 2, 3, 4, 5].map((i) => augment(new Float32Array([0.25]), i, 0)[0]);
 * deepEqual(again, shown); // the seed fixes the draw
 * ```
 */
export function domainAugmentation(
  domains: readonly (readonly TransformName[])[],
  side: number,
  seed: number,
): (image: Float32Array, index: number, epoch: number) => Float32Array {
  if (domains.length === 0) throw new Error("domainAugmentation: no domains given");
  for (const chain of domains) {
    for (const name of chain) {
      if (!(name in TRANSFORMS)) {
        throw new Error(
          `domainAugmentation: unknown transform "${name}": expected one of ` +
            Object.keys(TRANSFORMS).join(", "),
        );
      }
    }
  }
  return (image, index, epoch) => {
    // A hash of (seed, epoch, index): no per-epoch table, and any image can be drawn alone.
    const k = mix32(mix32(mix32(seed >>> 0) ^ epoch) ^ index) % domains.length;
    return applyTransforms(image, side, domains[k]);
  };
}

/** A 32-bit integer hash (the murmur3 finaliser): well-mixed bits from nearby inputs. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}
