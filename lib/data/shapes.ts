/**
 * Procedurally drawn shapes (the analogue of the paper's Shapes21k auxiliary set): lines,
 * quadratic curves, polygons and ellipses, outlined or filled, on a dark background, drawn by
 * a small anti-aliased rasteriser (each pixel's coverage is measured on a 4×4 grid of
 * sub-samples). Image i of a seed is always the same picture.
 *
 * @module
 */
import { Rng } from "../tensor/random.ts";

type Point = [number, number];

/** One shape in unit coordinates ([0, 1]², x to the right, y down). */
interface Shape {
  /** Closed outline or open path. */
  points: Point[];
  closed: boolean;
  /** Filled (closed shapes only) or stroked. */
  filled: boolean;
  /** Stroke width in unit coordinates. */
  width: number;
  /** Colour per channel in [0, 1]. */
  colour: number[];
}

const SUBSAMPLES = 4;

/**
 * Draws image `index` of the shapes source for `seed`: [channels, size, size], values in
 * [0, 1].
 *
 * @example
 * ```ts
 * import { deepEqual, equal, notDeepEqual, ok } from "node:assert/strict";
 * import { drawShapesImage } from "./shapes.ts";
 * const img = drawShapesImage(0, 7, 1, 28);
 * equal(img.length, 28 * 28);
 * ok(img.every((v) => v >= 0 && v <= 1));
 * deepEqual(drawShapesImage(0, 7, 1, 28), img); // image 7 of seed 0 is always the same picture
 * notDeepEqual(drawShapesImage(0, 8, 1, 28), img);
 * ```
 */
export function drawShapesImage(
  seed: number,
  index: number,
  channels: number,
  size: number,
): Float32Array {
  const rng = new Rng(seed, `shapes/${index}`);
  const background = Array.from({ length: channels }, () => rng.range(0, 0.25));
  const out = new Float32Array(channels * size * size);
  for (let c = 0; c < channels; c++) {
    out.fill(background[c], c * size * size, (c + 1) * size * size);
  }
  const count = 1 + rng.int(4);
  for (let k = 0; k < count; k++) paint(out, randomShape(rng, channels), channels, size);
  return out;
}

function randomShape(rng: Rng, channels: number): Shape {
  const point = (): Point => [rng.range(0.1, 0.9), rng.range(0.1, 0.9)];
  const colour = Array.from({ length: channels }, () => rng.range(0.45, 1));
  const width = rng.range(0.04, 0.12);
  const kind = rng.int(4);
  if (kind === 0) {
    return { points: [point(), point()], closed: false, filled: false, width, colour };
  }
  if (kind === 1) {
    const [a, control, b] = [point(), point(), point()];
    return { points: bezier(a, control, b, 16), closed: false, filled: false, width, colour };
  }
  const filled = rng.uniform() < 0.5;
  if (kind === 2) {
    // A polygon with vertices at sorted angles around a centre: simple (no self-crossing).
    const [cx, cy] = point();
    const n = 3 + rng.int(4);
    const angles = Array.from({ length: n }, () => rng.range(0, 2 * Math.PI)).sort((a, b) => a - b);
    const points = angles.map((t): Point => {
      const r = rng.range(0.12, 0.35);
      return [cx + r * Math.cos(t), cy + r * Math.sin(t)];
    });
    return { points, closed: true, filled, width, colour };
  }
  const [cx, cy] = point();
  const [ra, rb, tilt] = [rng.range(0.08, 0.35), rng.range(0.05, 0.3), rng.range(0, Math.PI)];
  const points = Array.from({ length: 32 }, (_, i): Point => {
    const t = (2 * Math.PI * i) / 32;
    const [x, y] = [ra * Math.cos(t), rb * Math.sin(t)];
    return [
      cx + x * Math.cos(tilt) - y * Math.sin(tilt),
      cy + x * Math.sin(tilt) + y * Math.cos(tilt),
    ];
  });
  return { points, closed: true, filled, width, colour };
}

function bezier(a: Point, c: Point, b: Point, segments: number): Point[] {
  return Array.from({ length: segments + 1 }, (_, i): Point => {
    const t = i / segments, u = 1 - t;
    return [
      u * u * a[0] + 2 * u * t * c[0] + t * t * b[0],
      u * u * a[1] + 2 * u * t * c[1] + t * t * b[1],
    ];
  });
}

/** Blends `shape` over `image` with each pixel's sub-sample coverage as opacity. */
function paint(image: Float32Array, shape: Shape, channels: number, size: number): void {
  const pad = shape.width;
  const xs = shape.points.map((p) => p[0]), ys = shape.points.map((p) => p[1]);
  const lo = (v: number) => Math.max(0, Math.floor((v - pad) * size));
  const hi = (v: number) => Math.min(size - 1, Math.ceil((v + pad) * size));
  const inside = shape.filled ? (x: number, y: number) => inPolygon(shape.points, x, y) : null;
  const half = shape.width / 2;
  for (let row = lo(Math.min(...ys)); row <= hi(Math.max(...ys)); row++) {
    for (let col = lo(Math.min(...xs)); col <= hi(Math.max(...xs)); col++) {
      const hits = inside
        ? fillHits(inside, row, col, size)
        : strokeHits(shape, row, col, size, half);
      if (hits === 0) continue;
      const alpha = hits / (SUBSAMPLES * SUBSAMPLES);
      for (let c = 0; c < channels; c++) {
        const at = c * size * size + row * size + col;
        image[at] = image[at] * (1 - alpha) + shape.colour[c] * alpha;
      }
    }
  }
}

/**
 * Squared distance from (x, y) to the shape's path (closing segment included for closed
 * shapes). No square roots: this is the bulk of drawing an auxiliary set.
 */
function pathDistance2(shape: Shape, x: number, y: number): number {
  const p = shape.points;
  let best = Infinity;
  const n = shape.closed ? p.length : p.length - 1;
  for (let i = 0; i < n; i++) {
    const a = p[i], b = p[(i + 1) % p.length];
    const dx = b[0] - a[0], dy = b[1] - a[1];
    const len2 = dx * dx + dy * dy;
    const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / len2));
    const ex = x - (a[0] + t * dx), ey = y - (a[1] + t * dy);
    best = Math.min(best, ex * ex + ey * ey);
  }
  return best;
}

/**
 * Sub-samples of pixel (row, col) within `half` of a stroked path. Every sub-sample lies
 * within `reach` of the pixel's centre, so a centre farther than half + reach has none and
 * one nearer than half − reach has all (triangle inequality); only pixels on the stroke's
 * edge are sampled one by one.
 */
function strokeHits(shape: Shape, row: number, col: number, size: number, half: number): number {
  const reach = (Math.SQRT2 * (SUBSAMPLES - 1)) / (2 * SUBSAMPLES * size);
  const centre = Math.sqrt(pathDistance2(shape, (col + 0.5) / size, (row + 0.5) / size));
  if (centre - reach > half) return 0;
  if (centre + reach < half) return SUBSAMPLES * SUBSAMPLES;
  let hits = 0;
  for (let sy = 0; sy < SUBSAMPLES; sy++) {
    for (let sx = 0; sx < SUBSAMPLES; sx++) {
      const x = (col + (sx + 0.5) / SUBSAMPLES) / size;
      const y = (row + (sy + 0.5) / SUBSAMPLES) / size;
      if (pathDistance2(shape, x, y) <= half * half) hits++;
    }
  }
  return hits;
}

/** Sub-samples of pixel (row, col) inside a filled shape. */
function fillHits(
  inside: (x: number, y: number) => boolean,
  row: number,
  col: number,
  size: number,
): number {
  let hits = 0;
  for (let sy = 0; sy < SUBSAMPLES; sy++) {
    for (let sx = 0; sx < SUBSAMPLES; sx++) {
      if (inside((col + (sx + 0.5) / SUBSAMPLES) / size, (row + (sy + 0.5) / SUBSAMPLES) / size)) {
        hits++;
      }
    }
  }
  return hits;
}

/** Even–odd rule. */
function inPolygon(p: Point[], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = p.length - 1; i < p.length; j = i++) {
    const [xi, yi] = p[i], [xj, yj] = p[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
