/**
 * An independent reading of the safetensors rules, written from the format's specification
 * (huggingface/safetensors: 8-byte little-endian header length, a JSON object header with no
 * repeated names, known dtypes, offsets that cover the data section exactly) and not from
 * lib/io: the fuzz tests compare the reader's verdict and values with this one's.
 *
 * It is deliberately plain (BigInt arithmetic, a hand-written scan of the top-level keys, a
 * per-element decoder) so that it shares no code or shortcut with the reader under test.
 *
 * @module
 */

const SIZES = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** The dtypes and their sizes in bytes, as the specification lists them (reader's subset). */
export const SPEC_DTYPES: Readonly<Record<string, number>> = SIZES;

/** The largest header the reader accepts (the reference implementation's limit). */
export const SPEC_MAX_HEADER = 100_000_000;

/** One tensor of a valid file: dtype, shape and absolute byte range. */
export interface SpecTensor {
  /** Name in the header. */
  name: string;
  /** dtype name. */
  dtype: string;
  /** Dimensions. */
  shape: number[];
  /** First byte, from the start of the file. */
  start: number;
  /** One past the last byte, from the start of the file. */
  end: number;
}

/**
 * The verdict on a file: valid with its tensors, or invalid at file level (no tensor is to
 * blame) or at tensor level (one of the header's entries or their layout is wrong).
 */
export type SpecVerdict =
  | { valid: true; tensors: SpecTensor[] }
  | { valid: false; level: "file" | "tensor"; reason: string };

const invalid = (level: "file" | "tensor", reason: string): SpecVerdict => ({
  valid: false,
  level,
  reason,
});

/**
 * Judges a whole file's bytes.
 *
 * @example
 * ```ts
 * import { judge } from "./safetensors_oracle.ts";
 * const header = new TextEncoder().encode('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}');
 * const file = new Uint8Array(8 + header.length + 1);
 * new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
 * file.set(header, 8);
 * judge(file).valid; // true
 * ```
 */
export function judge(bytes: Uint8Array): SpecVerdict {
  if (bytes.length < 8) return invalid("file", "shorter than the length field");
  const n = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) return invalid("file", "header length past the end");
  if (n > BigInt(SPEC_MAX_HEADER)) return invalid("file", "header too long");
  const dataStart = 8 + Number(n);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    return invalid("file", "header not UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    return invalid("file", "header not JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    return invalid("file", "header not an object");
  }
  const keys = topLevelKeys(text);
  if (new Set(keys).size !== keys.length) return invalid("tensor", "a name repeats");
  const record = header as Record<string, unknown>;
  const meta = record.__metadata__;
  if (meta !== undefined) {
    if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
      return invalid("file", "metadata not an object");
    }
    if (Object.values(meta).some((v) => typeof v !== "string")) {
      return invalid("file", "metadata value not a string");
    }
  }
  const tensors: SpecTensor[] = [];
  for (const [name, entry] of Object.entries(record)) {
    if (name === "__metadata__") continue;
    const t = specTensor(name, entry, dataStart);
    if (typeof t === "string") return invalid("tensor", t);
    tensors.push(t);
  }
  return layout(tensors, dataStart, bytes.length);
}

function specTensor(name: string, entry: unknown, dataStart: number): SpecTensor | string {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return "not an object";
  const e = entry as Record<string, unknown>;
  if (typeof e.dtype !== "string" || !Object.hasOwn(SPEC_DTYPES, e.dtype)) return "dtype";
  const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!Array.isArray(e.shape) || !e.shape.every(isCount)) return "shape";
  const o = e.data_offsets;
  if (!Array.isArray(o) || o.length !== 2 || !o.every(isCount) || o[0] > o[1]) return "offsets";
  // The reference implementation multiplies the dimensions with overflow checks, so a shape
  // whose running product passes 2^53 is refused even when a later dimension is zero.
  let elements = 1n;
  for (const d of e.shape as number[]) {
    elements *= BigInt(d);
    if (elements > BigInt(Number.MAX_SAFE_INTEGER)) return "element count overflows";
  }
  if (BigInt(o[1] - o[0]) !== elements * BigInt(SPEC_DTYPES[e.dtype])) return "byte count";
  return {
    name,
    dtype: e.dtype,
    shape: e.shape as number[],
    start: dataStart + o[0],
    end: dataStart + o[1],
  };
}

function layout(tensors: SpecTensor[], dataStart: number, size: number): SpecVerdict {
  const sorted = [...tensors].sort((a, b) => a.start - b.start || a.end - b.end);
  let cursor = dataStart;
  for (const t of sorted) {
    if (t.end > size) return invalid("tensor", "past the end");
    if (t.start !== cursor) return invalid("tensor", t.start < cursor ? "overlap" : "gap");
    cursor = t.end;
  }
  if (cursor !== size) return invalid("file", "trailing bytes");
  return { valid: true, tensors };
}

/** The top-level keys of a valid JSON object text, repeats included, by a recursive scan. */
function topLevelKeys(text: string): string[] {
  let i = 0;
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const string = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i));
  };
  /** Skips one value; the keys of an object go to `keys` when given. */
  const value = (keys?: string[]): void => {
    space();
    const c = text[i];
    if (c === '"') string();
    else if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      space();
      while (text[i] !== close) {
        if (c === "{") {
          const key = string();
          keys?.push(key);
          space();
          i++; // ':'
        }
        value();
        space();
        if (text[i] === ",") i++;
        space();
      }
      i++;
    } else {
      while (i < text.length && !",]} \t\n\r".includes(text[i])) i++;
    }
  };
  const keys: string[] = [];
  value(keys);
  return keys;
}

/**
 * Decodes one tensor's bytes element by element from the dtype's definition (IEEE 754
 * binary16 and binary64, bfloat16 as the top half of binary32, little-endian integers),
 * rounded to float32 as the reader's output is.
 *
 * @example
 * ```ts
 * import { specDecode } from "./safetensors_oracle.ts";
 * specDecode(new Uint8Array([0x00, 0x3c]), "F16"); // [1]
 * ```
 */
export function specDecode(bytes: Uint8Array, dtype: string): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = SPEC_DTYPES[dtype];
  const out: number[] = [];
  for (let at = 0; at + size <= bytes.length; at += size) {
    out.push(Math.fround(element(view, at, dtype)));
  }
  return out;
}

function element(view: DataView, at: number, dtype: string): number {
  switch (dtype) {
    case "F64":
      return view.getFloat64(at, true);
    case "F32":
      return view.getFloat32(at, true);
    case "F16":
      return binary16(view.getUint16(at, true));
    case "BF16": {
      const wide = new DataView(new ArrayBuffer(4));
      wide.setUint32(0, view.getUint16(at, true) << 16);
      return wide.getFloat32(0);
    }
    case "I64":
      return Number(view.getBigInt64(at, true));
    case "I32":
      return view.getInt32(at, true);
    case "I16":
      return view.getInt16(at, true);
    case "I8":
      return view.getInt8(at);
    default: // U8, BOOL
      return view.getUint8(at);
  }
}

function binary16(bits: number): number {
  const sign = bits >> 15 ? -1 : 1;
  const exponent = (bits >> 10) & 31;
  const fraction = bits & 1023;
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * fraction / 1024 * 2 ** -14;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
