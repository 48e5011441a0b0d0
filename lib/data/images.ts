/**
 * Image files to model input: PNG (pngjs) and JPEG (jpeg-js) decoding, conversion to the
 * model's channels (luminance for grey, replication for colour, alpha composited over black),
 * and CLIP-style geometry: centre crop to a square, then resize (area averaging when
 * shrinking, bilinear when enlarging).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import pngjs from "pngjs";
import jpeg from "jpeg-js";

/** A decoded picture: `channels` interleaved 8-bit values per pixel (RGBA from the decoders). */
export interface DecodedImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** RGBA bytes, row-major, 4 per pixel. */
  rgba: Uint8Array;
}

/**
 * Decodes a PNG or JPEG file's bytes (the format is told by the bytes, not the name).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import pngjs from "pngjs";
 * import { decodeImage } from "./images.ts";
 * const png = new pngjs.PNG({ width: 2, height: 1 });
 * png.data.set([255, 0, 0, 255, 0, 0, 255, 255]); // red, blue
 * deepEqual(decodeImage(new Uint8Array(pngjs.PNG.sync.write(png)), "two.png"), {
 *   width: 2,
 *   height: 1,
 *   rgba: new Uint8Array([255, 0, 0, 255, 0, 0, 255, 255]),
 * });
 * ```
 */
export function decodeImage(bytes: Uint8Array, path: string): DecodedImage {
  const isPng = bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  try {
    if (isPng) {
      const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data) };
    }
    if (isJpeg) {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
      return { width: img.width, height: img.height, rgba: img.data };
    }
  } catch (err) {
    throw new Error(`${path}: cannot decode: ${(err as Error).message}`);
  }
  throw new Error(`${path}: neither a PNG nor a JPEG file (by its first bytes)`);
}

/**
 * Converts a decoded picture to [channels, size, size] values in [0, 1]: alpha over black,
 * grey as ITU-R 601 luminance, centre crop to a square, resize.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { toModelImage } from "./images.ts";
 * const white = { width: 4, height: 2, rgba: new Uint8Array(32).fill(255) };
 * deepEqual(toModelImage(white, 1, 2), new Float32Array([1, 1, 1, 1]));
 * const clear = { width: 1, height: 1, rgba: new Uint8Array([255, 255, 255, 0]) };
 * deepEqual(toModelImage(clear, 3, 1), new Float32Array([0, 0, 0])); // alpha over black
 * ```
 */
export function toModelImage(image: DecodedImage, channels: number, size: number): Float32Array {
  if (channels !== 1 && channels !== 3) {
    throw new Error(`images: channels must be 1 or 3, got ${channels}`);
  }
  const { width: w, height: h, rgba } = image;
  const side = Math.min(w, h);
  const [x0, y0] = [Math.floor((w - side) / 2), Math.floor((h - side) / 2)];
  const planes: Float32Array[] = Array.from({ length: 3 }, () => new Float32Array(side * side));
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const at = ((y + y0) * w + x + x0) * 4;
      const alpha = rgba[at + 3] / 255;
      for (let c = 0; c < 3; c++) planes[c][y * side + x] = (rgba[at + c] / 255) * alpha;
    }
  }
  let chans = planes;
  if (channels === 1) {
    const grey = new Float32Array(side * side);
    for (let i = 0; i < grey.length; i++) {
      grey[i] = 0.299 * planes[0][i] + 0.587 * planes[1][i] + 0.114 * planes[2][i];
    }
    chans = [grey];
  }
  const out = new Float32Array(channels * size * size);
  chans.forEach((plane, c) => out.set(resizeSquare(plane, side, size), c * size * size));
  return out;
}

/**
 * Resizes one square plane (row-major, side `from`) to side `to`, separably: each output
 * sample averages the source interval it covers when shrinking (no aliasing), and
 * interpolates bilinearly (half-pixel centres) when enlarging.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { resizeSquare } from "./images.ts";
 * deepEqual(resizeSquare(new Float32Array([0, 1, 1, 0]), 2, 1), new Float32Array([0.5]));
 * deepEqual(resizeSquare(new Float32Array([2]), 1, 2), new Float32Array([2, 2, 2, 2]));
 * ```
 */
export function resizeSquare(plane: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return plane.slice();
  const weights = resampleWeights(from, to);
  const rows = new Float32Array(from * to); // resized along x: from rows × to cols
  for (let y = 0; y < from; y++) {
    for (let o = 0; o < to; o++) {
      let v = 0;
      for (const [i, wt] of weights[o]) v += wt * plane[y * from + i];
      rows[y * to + o] = v;
    }
  }
  const out = new Float32Array(to * to);
  for (let o = 0; o < to; o++) {
    for (let x = 0; x < to; x++) {
      let v = 0;
      for (const [i, wt] of weights[o]) v += wt * rows[i * to + x];
      out[o * to + x] = v;
    }
  }
  return out;
}

/** For each output index, the source indices and weights (summing to 1) that make it. */
function resampleWeights(from: number, to: number): [number, number][][] {
  const scale = from / to;
  return Array.from({ length: to }, (_, o) => {
    if (to < from) {
      const [a, b] = [o * scale, (o + 1) * scale];
      const taps: [number, number][] = [];
      for (let i = Math.floor(a); i < Math.ceil(b); i++) {
        const overlap = Math.min(b, i + 1) - Math.max(a, i);
        if (overlap > 0) taps.push([i, overlap / scale]);
      }
      return taps;
    }
    const pos = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), from - 1);
    const i = Math.floor(pos), t = pos - i;
    return t > 0 ? [[i, 1 - t], [i + 1, t]] : [[i, 1]];
  });
}
