/**
 * Safetensors dtypes: their sizes and conversions to and from float32 (all math here is
 * float32; files may store F64, F32, F16 or BF16, and integer or boolean buffers are read as
 * float32 values).
 *
 * @module
 */

/** A dtype name as written in a safetensors header. */
export type DType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Byte size of each dtype this module reads. */
export const DTYPE_SIZES: Readonly<Record<DType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** A dtype this module writes (floating point only). */
export type WritableDType = "F32" | "F16" | "BF16" | "F64";

/** The dtypes this module can write. */
export const WRITABLE_DTYPES: readonly WritableDType[] = ["F32", "F16", "BF16", "F64"];

/**
 * True when `name` is a dtype this module knows.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isDType } from "./dtype.ts";
 * equal(isDType("BF16"), true);
 * equal(isDType("F8_E4M3"), false);
 * ```
 */
export function isDType(name: unknown): name is DType {
  return typeof name === "string" && Object.hasOwn(DTYPE_SIZES, name);
}

/**
 * Checks a dtype asked for when writing, with an error listing the valid ones.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import { parseWritableDType } from "./dtype.ts";
 * equal(parseWritableDType("bf16"), "BF16");
 * throws(() => parseWritableDType("I32"), /cannot write dtype "I32": expected one of/);
 * ```
 */
export function parseWritableDType(name: string): WritableDType {
  const upper = name.toUpperCase();
  if ((WRITABLE_DTYPES as readonly string[]).includes(upper)) return upper as WritableDType;
  throw new Error(`cannot write dtype "${name}": expected one of ${WRITABLE_DTYPES.join(", ")}`);
}

const scratch = new DataView(new ArrayBuffer(4));

/**
 * Converts one IEEE half-precision bit pattern to a number.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { halfToFloat } from "./dtype.ts";
 * equal(halfToFloat(0x3c00), 1);
 * equal(halfToFloat(0xc000), -2);
 * equal(halfToFloat(0x7bff), 65504); // the largest half
 * equal(halfToFloat(0x0001), 2 ** -24); // the smallest subnormal
 * ```
 */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Converts a number to the nearest half-precision bit pattern (round to nearest even).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { floatToHalf } from "./dtype.ts";
 * equal(floatToHalf(1), 0x3c00);
 * equal(floatToHalf(1 + 2 ** -11), 0x3c00); // halfway: rounds to the even neighbour
 * equal(floatToHalf(1e6), 0x7c00); // overflow: +∞
 * ```
 */
export function floatToHalf(value: number): number {
  scratch.setFloat32(0, value);
  return halfFromFloatBits(scratch.getUint32(0));
}

/** float32 bit pattern → nearest half bit pattern (round to nearest even). */
function halfFromFloatBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf or NaN
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow to infinity
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mant |= 0x800000; // make the implicit bit explicit, then shift into a subnormal
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  const rest = mant & 0x1fff;
  mant >>>= 13;
  if (rest > 0x1000 || (rest === 0x1000 && (mant & 1))) {
    mant++;
    if (mant === 0x400) {
      mant = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | mant;
}

/**
 * Converts a float to bfloat16 bits (round to nearest even; NaN stays NaN).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { floatToBf16 } from "./dtype.ts";
 * equal(floatToBf16(1), 0x3f80);
 * equal(floatToBf16(-2), 0xc000);
 * ```
 */
export function floatToBf16(value: number): number {
  scratch.setFloat32(0, value);
  return bf16FromFloatBits(scratch.getUint32(0));
}

/** float32 bit pattern → nearest bfloat16 bit pattern (round to nearest even). */
function bf16FromFloatBits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return (x >>> 16) | 0x40;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

let halfTable: Float32Array | undefined;

/** All 65536 half values, built on first use: decoding is then one lookup per element. */
function halfValues(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/**
 * The bytes as little-endian uint16 values (a view when aligned, else a copy). Typed-array views
 * use the host's byte order, little-endian on every machine this runs on (x86-64, ARM64), as
 * the F32 fast paths here already assume.
 */
function uint16s(bytes: Uint8Array): Uint16Array {
  const n = bytes.byteLength >> 1;
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  return new Uint16Array(bytes.slice().buffer, 0, n);
}

/**
 * Decodes little-endian bytes of `dtype` into float32 values.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { decodeToFloat32 } from "./dtype.ts";
 * deepEqual(decodeToFloat32(new Uint8Array([0, 0, 128, 63]), "F32"), new Float32Array([1]));
 * deepEqual(decodeToFloat32(new Uint8Array([0, 60, 0, 192]), "F16"), new Float32Array([1, -2]));
 * ```
 */
export function decodeToFloat32(bytes: Uint8Array, dtype: DType): Float32Array {
  const n = bytes.byteLength / DTYPE_SIZES[dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "F32") {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    return new Float32Array(bytes.slice().buffer);
  }
  const out = new Float32Array(n);
  switch (dtype) {
    case "F64":
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case "F16": {
      const table = halfValues(), halves = uint16s(bytes);
      for (let i = 0; i < n; i++) out[i] = table[halves[i]];
      break;
    }
    case "BF16": {
      const bits = new Uint32Array(out.buffer), halves = uint16s(bytes);
      for (let i = 0; i < n; i++) bits[i] = halves[i] << 16;
      break;
    }
    case "I64":
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      break;
    case "I32":
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
      break;
    case "I16":
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true);
      break;
    case "I8":
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
      break;
    case "U8":
    case "BOOL":
      out.set(bytes);
      break;
  }
  return out;
}

/**
 * Encodes float32 values as little-endian bytes of a floating-point `dtype`. For F32 the result
 * is a view of `data`'s own bytes (no copy: writing a tensor costs no second array), so it
 * changes when `data` does; the other dtypes get fresh bytes.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { encodeFromFloat32 } from "./dtype.ts";
 * deepEqual(encodeFromFloat32(new Float32Array([1]), "BF16"), new Uint8Array([128, 63]));
 * deepEqual(encodeFromFloat32(new Float32Array([1]), "F16"), new Uint8Array([0, 60]));
 * deepEqual(encodeFromFloat32(new Float32Array([1]), "F32"), new Uint8Array([0, 0, 128, 63]));
 * ```
 */
export function encodeFromFloat32(data: Float32Array, dtype: WritableDType): Uint8Array {
  if (dtype === "F32") return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * DTYPE_SIZES[dtype]);
  const view = new DataView(out.buffer);
  switch (dtype) {
    case "F64":
      for (let i = 0; i < data.length; i++) view.setFloat64(8 * i, data[i], true);
      break;
    case "F16": {
      const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
      const halves = new Uint16Array(out.buffer);
      for (let i = 0; i < data.length; i++) halves[i] = halfFromFloatBits(bits[i]);
      break;
    }
    case "BF16": {
      const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
      const halves = new Uint16Array(out.buffer);
      for (let i = 0; i < data.length; i++) halves[i] = bf16FromFloatBits(bits[i]);
      break;
    }
  }
  return out;
}
