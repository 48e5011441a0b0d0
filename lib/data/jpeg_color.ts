/**
 * JPEG colour the way libjpeg (and so PIL, and so CLIP's PyTorch pipelines) produces it, on
 * top of jpeg-js's decoding. jpeg-js upsamples subsampled chroma by repeating samples and
 * converts YCbCr to RGB in floating point; libjpeg interpolates chroma ("fancy upsampling",
 * a triangle filter) and converts with 16-bit fixed-point tables. On 4:2:0 pictures the two
 * differ by several levels at colour edges. Here jpeg-js gives the raw Y, Cb and Cr samples,
 * the chroma planes are recovered from its repeated samples, upsampled with libjpeg's filter
 * and rounding, and converted with libjpeg's tables. What remains is the inverse DCT's
 * rounding (within a level or two; see docs/REAL_CHECKPOINTS.md).
 *
 * @module
 */
import jpeg from "jpeg-js";
import type { DecodedImage } from "./images.ts";

/** The frame facts that decide how a JPEG's colour is reconstructed. */
export interface JpegLayout {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Horizontal and vertical sampling factors of each component, in frame order. */
  sampling: [number, number][];
  /** True when an Adobe APP14 marker says how the colour is coded (left to jpeg-js). */
  adobe: boolean;
}

/**
 * Reads a JPEG's frame header (SOF) and notes an Adobe marker; undefined when not found.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { jpegLayout } from "./jpeg_color.ts";
 * // SOI, then SOF0 for a 16×8 picture with Y at 2×2 and Cb, Cr at 1×1 (4:2:0)
 * const sof = [0xff, 0xc0, 0, 17, 8, 0, 8, 0, 16, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
 * deepEqual(jpegLayout(new Uint8Array([0xff, 0xd8, ...sof])), {
 *   width: 16,
 *   height: 8,
 *   sampling: [[2, 2], [1, 1], [1, 1]],
 *   adobe: false,
 * });
 * equal(jpegLayout(new Uint8Array([0xff, 0xd8])), undefined); // no frame header
 * ```
 */
export function jpegLayout(bytes: Uint8Array): JpegLayout | undefined {
  let adobe = false;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    const body = at + 4;
    if (marker === 0xee && bytes[body] === 0x41 && bytes[body + 1] === 0x64) adobe = true;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (body + 6 > bytes.length) return undefined;
      const height = (bytes[body + 1] << 8) | bytes[body + 2];
      const width = (bytes[body + 3] << 8) | bytes[body + 4];
      const n = bytes[body + 5];
      const sampling: [number, number][] = [];
      for (let i = 0; i < n; i++) {
        const hv = bytes[body + 7 + 3 * i];
        sampling.push([hv >> 4, hv & 15]);
      }
      return { width, height, sampling, adobe };
    }
    at = body + length - 2;
  }
  return undefined;
}

/**
 * Decodes a JPEG with libjpeg's chroma upsampling and colour conversion for the usual YCbCr
 * layouts (4:4:4, 4:2:2, 4:2:0 without an Adobe marker); other pictures (grey, CMYK, Adobe
 * RGB, unusual sampling) are decoded by jpeg-js as they are.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import jpeg from "jpeg-js";
 * import { decodeJpegLibjpeg } from "./jpeg_color.ts";
 * const rgba = new Uint8Array(16 * 16 * 4).fill(200);
 * const file = jpeg.encode({ width: 16, height: 16, data: rgba }, 90).data;
 * const image = decodeJpegLibjpeg(new Uint8Array(file), "grey.jpg");
 * equal(image.width, 16);
 * deepEqual(image.rgba.subarray(0, 4), new Uint8Array([200, 200, 200, 255]));
 * ```
 */
export function decodeJpegLibjpeg(bytes: Uint8Array, path: string): DecodedImage {
  const layout = jpegLayout(bytes);
  const factors = layout?.sampling.map(([h, v]) => `${h}${v}`).join(",");
  const chroma = factors === "22,11,11"
    ? [2, 2]
    : factors === "21,11,11"
    ? [2, 1]
    : factors === "11,11,11"
    ? [1, 1]
    : undefined;
  const decode = (colorTransform?: boolean) => {
    try {
      return jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, colorTransform });
    } catch (err) {
      throw new Error(`${path}: cannot decode: ${(err as Error).message}`);
    }
  };
  if (!layout || layout.adobe || !chroma) {
    const img = decode();
    return { width: img.width, height: img.height, rgba: img.data };
  }
  const raw = decode(false); // Y, Cb, Cr, with chroma samples repeated
  const { width, height } = raw;
  const planes = [1, 2].map((c) =>
    upsample(chromaPlane(raw.data, width, height, c, chroma), chroma)
  );
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const o = planes[0].width * y + x;
      ycbcrToRgb(raw.data[4 * i], planes[0].data[o], planes[1].data[o], rgba, 4 * i);
    }
  }
  return { width, height, rgba };
}

interface Plane {
  width: number;
  height: number;
  data: Uint8Array;
}

/** The subsampled plane of channel `c`, read back from jpeg-js's repeated samples. */
function chromaPlane(
  rgba: Uint8Array,
  width: number,
  height: number,
  c: number,
  [h, v]: number[],
): Plane {
  const w = Math.ceil(width / h), hh = Math.ceil(height / v);
  const data = new Uint8Array(w * hh);
  for (let y = 0; y < hh; y++) {
    for (let x = 0; x < w; x++) data[y * w + x] = rgba[4 * (y * v * width + x * h) + c];
  }
  return { width: w, height: hh, data };
}

/** libjpeg's fancy upsampling (jdsample.c: h2v1 and h2v2 triangle filters), or a copy. */
function upsample(plane: Plane, [h, v]: number[]): Plane {
  if (h === 1 && v === 1) return plane;
  const { width: w, height: hh, data } = plane;
  const out = new Uint8Array(2 * w * v * hh);
  const ow = 2 * w;
  for (let y = 0; y < hh; y++) {
    for (let half = 0; half < v; half++) {
      // h2v2: each output row mixes its nearest input row (×3) with the next nearest (×1),
      // the row above for the upper half and below for the lower, edges repeated.
      const near = data.subarray(y * w, (y + 1) * w);
      const farRow = v === 2 ? Math.min(Math.max(y + (half === 0 ? -1 : 1), 0), hh - 1) : y;
      const far = data.subarray(farRow * w, (farRow + 1) * w);
      const col = (x: number) => v === 2 ? near[x] * 3 + far[x] : near[x];
      const row = out.subarray((y * v + half) * ow, (y * v + half + 1) * ow);
      fancyRow(col, w, row, v === 2 ? [8, 7, 4] : [1, 2, 2]);
    }
  }
  return { width: ow, height: v * hh, data: out };
}

/**
 * One row of horizontal triangle filtering: each input column gives two outputs,
 * (3·this + neighbour + bias) >> shift, with libjpeg's alternating rounding biases.
 * `bias` holds [bias for the left output, bias for the right output, shift].
 */
function fancyRow(col: (x: number) => number, w: number, out: Uint8Array, bias: number[]): void {
  const [left, right, shift] = bias;
  if (w === 1) {
    out[0] = out[1] = (col(0) * 4 + left) >> shift;
    return;
  }
  for (let x = 0; x < w; x++) {
    const here = col(x);
    const before = x === 0 ? here : col(x - 1);
    const after = x === w - 1 ? here : col(x + 1);
    out[2 * x] = (here * 3 + before + left) >> shift;
    out[2 * x + 1] = (here * 3 + after + right) >> shift;
  }
}

const SCALE = 16;
const HALF = 1 << (SCALE - 1);
const fix = (x: number) => Math.trunc(x * (1 << SCALE) + 0.5);
/** libjpeg's YCbCr → RGB tables (jdcolor.c), indexed by the 8-bit chroma sample. */
const TABLES = (() => {
  const crR = new Int32Array(256), cbB = new Int32Array(256);
  const crG = new Int32Array(256), cbG = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    crR[i] = (fix(1.402) * x + HALF) >> SCALE;
    cbB[i] = (fix(1.772) * x + HALF) >> SCALE;
    crG[i] = -fix(0.71414) * x;
    cbG[i] = -fix(0.34414) * x + HALF;
  }
  return { crR, cbB, crG, cbG };
})();

function ycbcrToRgb(y: number, cb: number, cr: number, out: Uint8Array, at: number): void {
  const clamp = (v: number) => v < 0 ? 0 : v > 255 ? 255 : v;
  out[at] = clamp(y + TABLES.crR[cr]);
  out[at + 1] = clamp(y + ((TABLES.cbG[cb] + TABLES.crG[cr]) >> SCALE));
  out[at + 2] = clamp(y + TABLES.cbB[cb]);
  out[at + 3] = 255;
}
