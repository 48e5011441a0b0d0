/**
 * CLIP's image preprocessing, as OpenAI's `clip` and open_clip apply it through torchvision on
 * PIL images: resize so the shorter side is 224 with bicubic resampling (the longer side
 * truncated to an integer, aspect kept), centre crop 224×224 (offsets rounded half to even, as
 * Python's `round`), RGB, values / 255, then CLIP's per-channel mean and standard deviation.
 *
 * The resampling reproduces Pillow's 8-bit bicubic `resize` exactly: a separable filter
 * (a = −0.5, support widened by the scale when shrinking, so shrinking is antialiased),
 * coefficients in 22-bit fixed point, horizontal pass first, each pass rounded and clamped to
 * 8 bits. On PNG images it matches Pillow byte for byte (checked in tests/real); the remaining
 * difference to a PyTorch pipeline on JPEG files comes from the JPEG decoder (jpeg-js here,
 * libjpeg there), see docs/REAL_CHECKPOINTS.md.
 *
 * Colour: images are converted to RGB first (grey replicated; alpha dropped, as PIL's
 * `convert("RGB")` does). For RGB and grey files this equals CLIP's order (resize, crop,
 * convert); for palette or transparent PNGs CLIP's own pipeline resizes before converting.
 *
 * @module
 */
import type { DecodedImage } from "./images.ts";

/** CLIP's per-channel mean (R, G, B) of pixel values in [0, 1]. */
export const CLIP_MEAN: readonly number[] = Object.freeze([0.48145466, 0.4578275, 0.40821073]);

/** CLIP's per-channel standard deviation (R, G, B). */
export const CLIP_STD: readonly number[] = Object.freeze([0.26862954, 0.26130258, 0.27577711]);

/** CLIP's input side in pixels (ViT-B/32, ViT-B/16, ViT-L/14). */
export const CLIP_IMAGE_SIZE = 224;

/** An 8-bit image with `channels` interleaved values per pixel. */
export interface ByteImage {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Values per pixel. */
  readonly channels: number;
  /** Row-major interleaved bytes. */
  readonly data: Uint8Array;
}

/** Options of {@linkcode clipPreprocess}. */
export interface ClipPreprocessOptions {
  /** Output side (default 224). */
  size?: number;
  /** Per-channel mean (default CLIP's). */
  mean?: readonly number[];
  /** Per-channel standard deviation (default CLIP's). */
  std?: readonly number[];
}

/**
 * A decoded image to CLIP's input: [3, size, size] float32, normalised (see the module doc).
 *
 * @example
 * ```ts
 * import { equal, ok } from "node:assert/strict";
 * import { CLIP_MEAN, CLIP_STD, clipPreprocess } from "./clip_preprocess.ts";
 * const white = { width: 4, height: 2, rgba: new Uint8Array(32).fill(255) };
 * const x = clipPreprocess(white, { size: 2 });
 * equal(x.length, 3 * 2 * 2);
 * equal(x[0].toFixed(4), "1.9303"); // white in the red channel: (1 − 0.4815) / 0.2686
 * ok(Math.abs(x[8] - (1 - CLIP_MEAN[2]) / CLIP_STD[2]) < 1e-6); // blue
 * ```
 */
export function clipPreprocess(
  image: DecodedImage,
  options: ClipPreprocessOptions = {},
): Float32Array {
  const size = options.size ?? CLIP_IMAGE_SIZE;
  const rgb = toRgb(image);
  const [w, h] = resizedSize(rgb.width, rgb.height, size);
  const cropped = centerCrop(resizeBicubic(rgb, w, h), size);
  return normalizePlanes(cropped, options.mean ?? CLIP_MEAN, options.std ?? CLIP_STD);
}

/**
 * RGB bytes from a decoder's RGBA (alpha dropped, as PIL's `convert("RGB")`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { toRgb } from "./clip_preprocess.ts";
 * const rgb = toRgb({ width: 1, height: 1, rgba: new Uint8Array([1, 2, 3, 0]) });
 * deepEqual(rgb, { width: 1, height: 1, channels: 3, data: new Uint8Array([1, 2, 3]) });
 * ```
 */
export function toRgb(image: DecodedImage): ByteImage {
  const { width, height, rgba } = image;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < data.length; i += 3, j += 4) {
    data[i] = rgba[j];
    data[i + 1] = rgba[j + 1];
    data[i + 2] = rgba[j + 2];
  }
  return { width, height, channels: 3, data };
}

/**
 * torchvision's `Resize(size)` target: the shorter side becomes `size`, the longer side
 * `int(size · long / short)`. Returns [width, height].
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { resizedSize } from "./clip_preprocess.ts";
 * deepEqual(resizedSize(500, 375, 224), [298, 224]); // int(224 · 500 / 375) = 298
 * ```
 */
export function resizedSize(width: number, height: number, size: number): [number, number] {
  if (width <= height) return [size, Math.trunc((size * height) / width)];
  return [Math.trunc((size * width) / height), size];
}

/**
 * Pillow's 8-bit bicubic resize (Image.resize with BICUBIC), bit for bit.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { resizeBicubic } from "./clip_preprocess.ts";
 * const img = { width: 2, height: 1, channels: 1, data: new Uint8Array([0, 255]) };
 * deepEqual(resizeBicubic(img, 4, 1).data, new Uint8Array([0, 53, 202, 255])); // as Pillow
 * ```
 */
export function resizeBicubic(image: ByteImage, width: number, height: number): ByteImage {
  if (!(width > 0 && height > 0 && image.width > 0 && image.height > 0)) {
    throw new Error(`resize: cannot resize ${image.width}×${image.height} to ${width}×${height}`);
  }
  let out = image;
  if (width !== image.width) out = resamplePass(out, width, true);
  if (height !== image.height) out = resamplePass(out, height, false);
  return out === image ? { ...image, data: image.data.slice() } : out;
}

/**
 * The centre `size`×`size` crop, offsets as torchvision's `CenterCrop`
 * (`round((side − size) / 2)`, halves to even).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { centerCrop } from "./clip_preprocess.ts";
 * const img = { width: 3, height: 1, channels: 1, data: new Uint8Array([1, 2, 3]) };
 * deepEqual(centerCrop(img, 1).data, new Uint8Array([2]));
 * ```
 */
export function centerCrop(image: ByteImage, size: number): ByteImage {
  const { width, height, channels: c } = image;
  if (width < size || height < size) {
    throw new Error(`centre crop: a ${width}×${height} image is smaller than ${size}×${size}`);
  }
  const top = roundHalfEven((height - size) / 2), left = roundHalfEven((width - size) / 2);
  const data = new Uint8Array(size * size * c);
  for (let y = 0; y < size; y++) {
    const from = ((top + y) * width + left) * c;
    data.set(image.data.subarray(from, from + size * c), y * size * c);
  }
  return { width: size, height: size, channels: c, data };
}

/**
 * Interleaved bytes to normalised planes [channels, height, width]: (v / 255 − mean) / std,
 * each step rounded to float32 as torchvision's `ToTensor` and `Normalize` compute it.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { normalizePlanes } from "./clip_preprocess.ts";
 * const img = { width: 2, height: 1, channels: 1, data: new Uint8Array([255, 0]) };
 * deepEqual(normalizePlanes(img, [0.5], [0.5]), new Float32Array([1, -1])); // (v / 255 − ½) / ½
 * ```
 */
export function normalizePlanes(
  image: ByteImage,
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const { width, height, channels: c, data } = image;
  if (mean.length !== c || std.length !== c) {
    throw new Error(`normalise: ${c} channels but ${mean.length} means and ${std.length} stds`);
  }
  const plane = width * height;
  const out = new Float32Array(c * plane);
  const f = Math.fround;
  for (let ch = 0; ch < c; ch++) {
    const m = f(mean[ch]), s = f(std[ch]);
    for (let i = 0; i < plane; i++) out[ch * plane + i] = f(f(f(data[i * c + ch] / 255) - m) / s);
  }
  return out;
}

const PRECISION_BITS = 22; // Pillow's 8-bit coefficient precision: 32 − 8 − 2
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Pillow's bicubic kernel (a = −0.5), support 2. */
function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** For each output index: the first source index and fixed-point weights (Pillow's rules). */
function coefficients(inSize: number, outSize: number): { first: number; weights: Int32Array }[] {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  return Array.from({ length: outSize }, (_, o) => {
    const center = (o + 0.5) * scale;
    const first = Math.max(Math.trunc(center - support + 0.5), 0);
    const end = Math.min(Math.trunc(center + support + 0.5), inSize);
    const raw = Array.from(
      { length: end - first },
      (_, k) => bicubic((k + first - center + 0.5) / filterScale),
    );
    const total = raw.reduce((a, b) => a + b, 0);
    const weights = Int32Array.from(raw, (w) => {
      const v = (total !== 0 ? w / total : w) * ONE;
      return Math.trunc(v < 0 ? v - 0.5 : v + 0.5);
    });
    return { first, weights };
  });
}

/** One separable pass along x (horizontal) or y, rounding and clamping to 8 bits. */
function resamplePass(image: ByteImage, outSize: number, horizontal: boolean): ByteImage {
  const { width, height, channels: c, data } = image;
  const coeffs = coefficients(horizontal ? width : height, outSize);
  const [w, h] = horizontal ? [outSize, height] : [width, outSize];
  const out = new Uint8Array(w * h * c);
  // Distance in bytes between neighbouring source samples along the pass.
  const step = horizontal ? c : width * c;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const { first, weights } = coeffs[horizontal ? x : y];
      const base = horizontal ? (y * width + first) * c : (first * width + x) * c;
      for (let ch = 0; ch < c; ch++) {
        let sum = HALF;
        for (let k = 0; k < weights.length; k++) sum += data[base + k * step + ch] * weights[k];
        const v = Math.floor(sum / ONE);
        out[(y * w + x) * c + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { width: w, height: h, channels: c, data: out };
}

/** Python's round() for halves: to the even neighbour. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
