/**
 * Seeded mutation fuzzing of the safetensors reader: valid files (built byte by byte here, and
 * one from the project's writer) are mutated (bit flips, truncations, splices, lying length
 * fields, header edits, non-finite values) and each result is opened and read in full. Every
 * case must end in a {@linkcode CheckpointError} that names the file (and the tensor when the
 * specification blames one) or in a read whose names, dtypes, shapes and values equal what the
 * independent reading of the specification (`safetensors_oracle.ts`) finds in the bytes.
 *
 * Case `i` of seed `s` depends only on `(s, i)`, so a failing case is re-run alone with
 * `runFuzz(s, i, i + 1, …)`.
 *
 * @module
 */
import { SafetensorsReader, writeSafetensors } from "../../lib/io/safetensors.ts";
import { CheckpointError } from "../../lib/io/errors.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { judge, SPEC_DTYPES, specDecode, type SpecTensor } from "./safetensors_oracle.ts";
import type { AllocationProbe } from "./alloc_probe.ts";

/** One tensor of a hand-built file: name, dtype, shape and its raw little-endian bytes. */
export interface RawTensor {
  /** Name. */
  name: string;
  /** dtype name as written in the header. */
  dtype: string;
  /** Dimensions. */
  shape: number[];
  /** Stored bytes. */
  bytes: Uint8Array;
}

/**
 * A safetensors file laid out exactly as given: tensors back to back in `order` (default:
 * as listed; entries stay in list order in the JSON), no alignment padding unless `pad`.
 *
 * @example
 * ```ts
 * import { buildFile } from "./safetensors_fuzz.ts";
 * const bytes = buildFile([{ name: "w", dtype: "U8", shape: [2], bytes: new Uint8Array([1, 2]) }]);
 * console.log(bytes.length); // 8 + header + 2
 * ```
 */
export function buildFile(
  tensors: readonly RawTensor[],
  options: { metadata?: Record<string, string>; order?: readonly number[]; pad?: boolean } = {},
): Uint8Array {
  const order = options.order ?? tensors.map((_, i) => i);
  const offsets = new Map<string, [number, number]>();
  let at = 0;
  for (const i of order) {
    offsets.set(tensors[i].name, [at, at + tensors[i].bytes.length]);
    at += tensors[i].bytes.length;
  }
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: offsets.get(t.name) };
  }
  let text = JSON.stringify(header);
  if (options.pad) text = text.padEnd(Math.ceil(text.length / 8) * 8, " ");
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (const i of order) {
    out.set(tensors[i].bytes, 8 + json.length + offsets.get(tensors[i].name)![0]);
  }
  return out;
}

/** Random finite values of a dtype as raw bytes (floats: normal, subnormal, ±0, large). */
function randomBytes(rng: Rng, dtype: string, count: number): Uint8Array {
  const size = SPEC_DTYPES[dtype];
  const out = new Uint8Array(count * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    const special = [0, -0, 1e-42, -3.5e38, 65504][rng.int(12)];
    const value = special ?? rng.normal() * 10;
    const at = i * size;
    if (dtype === "F64") view.setFloat64(at, value, true);
    else if (dtype === "F32") view.setFloat32(at, value, true);
    else if (dtype === "F16") view.setUint16(at, finiteHalf(rng), true);
    else if (dtype === "BF16") view.setUint16(at, finiteBf16(rng), true);
    else for (let b = 0; b < size; b++) out[at + b] = rng.int(256);
  }
  return out;
}

function finiteHalf(rng: Rng): number {
  const bits = rng.int(65536);
  return ((bits >> 10) & 31) === 31 ? bits & 0x83ff : bits;
}

function finiteBf16(rng: Rng): number {
  const bits = rng.int(65536);
  return ((bits >> 7) & 255) === 255 ? bits & 0x807f : bits;
}

/**
 * The valid files every case starts from: every dtype, a 0-dim and a zero-size tensor,
 * misaligned offsets (an odd-length U8 tensor first), names that need JSON escapes, offsets in
 * another order than the header's entries, and files with no tensors.
 *
 * @example
 * ```ts
 * import { seedFiles } from "./safetensors_fuzz.ts";
 * console.log((await seedFiles()).map((f) => f.name));
 * ```
 */
export async function seedFiles(): Promise<{ name: string; bytes: Uint8Array }[]> {
  const rng = new Rng(7, "seed-files");
  const t = (name: string, dtype: string, shape: number[]): RawTensor => ({
    name,
    dtype,
    shape,
    bytes: randomBytes(rng, dtype, shape.reduce((a, b) => a * b, 1)),
  });
  const mixed = [
    t("odd.u8", "U8", [3]),
    t("layer.0/weight", "F32", [2, 3]),
    t("h", "F16", [5]),
    t('é"quoted\\', "BF16", [3]),
    t("d", "F64", [2]),
    t("i64", "I64", [2]),
    t("i32", "I32", [1]),
    t("i16", "I16", [3]),
    t("i8", "I8", [3]),
    t("mask", "BOOL", [2]),
    t("empty", "F32", [0, 4]),
    t("scalar", "F32", []),
  ];
  const floats = [t("a", "F32", [4]), t("b", "F32", [4]), t("c", "F16", [2, 2])];
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await writeSafetensors(path, [
      { name: "w", shape: [3, 2], data: new Float32Array([1, -2, 3.5, 0, 1e-3, 7]) },
      { name: "h", shape: [2], data: new Float32Array([0.5, -8]), dtype: "F16" },
      { name: "b", shape: [3], data: new Float32Array([1, 2, 3]), dtype: "BF16" },
      { name: "x", shape: [1], data: new Float32Array([9]), dtype: "F64" },
    ], { metadata: { format: "pt", note: "seed" } });
    const written = await Deno.readFile(path);
    return [
      { name: "mixed", bytes: buildFile(mixed, { metadata: { format: "pt", 'k"': "v\u00e9" } }) },
      { name: "reordered", bytes: buildFile(floats, { order: [2, 0, 1], pad: true }) },
      { name: "writer", bytes: written },
      { name: "no tensors", bytes: buildFile([]) },
      { name: "metadata only", bytes: buildFile([], { metadata: { a: "b" } }) },
    ];
  } finally {
    await Deno.remove(path);
  }
}

/** A mutation applied to a file, described for the report. */
interface Mutated {
  bytes: Uint8Array;
  what: string;
}

/** The header (parsed) and the data section of a file, when the header is JSON. */
function split(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } | null {
  if (bytes.length < 8) return null;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (n > bytes.length - 8) return null;
  try {
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    if (typeof header !== "object" || header === null || Array.isArray(header)) return null;
    return { header, data: bytes.subarray(8 + n) };
  } catch {
    return null;
  }
}

/** Reassembles a file from header text and data, with the true length or `length`. */
function join(text: string | Uint8Array, data: Uint8Array, length?: bigint): Uint8Array {
  const json = typeof text === "string" ? new TextEncoder().encode(text) : text;
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)];

/** Values a header field may be replaced with: plausible, off by one, absurd, wrong type. */
const FIELD_VALUES: Record<string, (rng: Rng, old: unknown) => unknown> = {
  dtype: (rng) => pick(rng, [...Object.keys(SPEC_DTYPES), "F8_E4M3", "f32", "", 5, null]),
  shape: (rng, old) => {
    const s = Array.isArray(old) ? [...old] : [];
    const i = s.length ? rng.int(s.length) : 0;
    switch (rng.int(8)) {
      case 0:
        return [...s, pick(rng, [1, 2, 0])];
      case 1:
        return s.slice(1);
      case 2:
        s[i] = (s[i] ?? 1) + pick(rng, [1, -1]);
        return s;
      case 3:
        s[i] = pick(rng, [2 ** 31, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER, 2 ** 53, 1e300]);
        return s;
      case 4:
        s[i] = pick(rng, [-1, 1.5, "2", null]);
        return s;
      case 5:
        return [2 ** 40, 2 ** 40, 0];
      case 6:
        return "4";
      default:
        return s.reverse();
    }
  },
  data_offsets: (rng, old) => {
    const o = Array.isArray(old) ? [...old] : [0, 0];
    switch (rng.int(7)) {
      case 0:
        o[rng.int(2)] += pick(rng, [1, -1, 2, 4, -4, 8]);
        return o;
      case 1:
        return [o[1], o[0]];
      case 2:
        return [o[0], pick(rng, [2 ** 32, Number.MAX_SAFE_INTEGER, 2 ** 63, 1e300])];
      case 3:
        return [o[0] + 1, o[1] + 1];
      case 4:
        return [o[0], o[1], o[1]];
      case 5:
        return [String(o[0]), o[1]];
      default:
        return [-o[1] - 1, o[1]];
    }
  },
};

function tensorNames(header: Record<string, unknown>): string[] {
  return Object.keys(header).filter((k) => k !== "__metadata__");
}

/** One header edit; null when the file has no JSON header to edit. */
function editHeader(rng: Rng, bytes: Uint8Array): Mutated | null {
  const parts = split(bytes);
  if (!parts) return null;
  const { header, data } = parts;
  const names = tensorNames(header);
  const name = names.length ? pick(rng, names) : undefined;
  const entry = name === undefined ? undefined : header[name] as Record<string, unknown>;
  const keepLength = rng.int(10) === 0;
  const finish = (text: string, what: string): Mutated => {
    const json = new TextEncoder().encode(text);
    const length = keepLength ? BigInt(bytes.length - 8 - data.length) : undefined;
    return { bytes: join(json, data, length), what: what + (keepLength ? " (old length)" : "") };
  };
  const kind = rng.int(10);
  if (kind <= 2 && entry && typeof entry === "object") {
    const field = pick(rng, ["dtype", "shape", "data_offsets"]);
    entry[field] = FIELD_VALUES[field](rng, entry[field]);
    return finish(JSON.stringify(header), `${name}.${field} = ${JSON.stringify(entry[field])}`);
  }
  if (kind === 3 && entry && typeof entry === "object") {
    const field = pick(rng, ["dtype", "shape", "data_offsets"]);
    delete entry[field];
    return finish(JSON.stringify(header), `delete ${name}.${field}`);
  }
  if (kind === 4 && name !== undefined) {
    delete header[name];
    return finish(JSON.stringify(header), `drop entry ${name}`);
  }
  if (kind === 5 && name !== undefined) {
    const text = JSON.stringify(header);
    const copy = `${JSON.stringify(name)}:${JSON.stringify(entry)}`;
    return finish(`${text.slice(0, -1)},${copy}}`, `repeat entry ${name}`);
  }
  if (kind === 6 && names.length >= 2) {
    const [a, b] = [pick(rng, names), pick(rng, names)];
    const ea = header[a] as Record<string, unknown>, eb = header[b] as Record<string, unknown>;
    [ea.data_offsets, eb.data_offsets] = [eb.data_offsets, ea.data_offsets];
    return finish(JSON.stringify(header), `swap offsets of ${a} and ${b}`);
  }
  if (kind === 7) {
    const meta = pick(rng, [{ a: 1 }, ["x"], "text", null, { k: "v", n: "w" }, {}]);
    header.__metadata__ = meta;
    return finish(JSON.stringify(header), `__metadata__ = ${JSON.stringify(meta)}`);
  }
  if (kind === 8) {
    const entries = Object.entries(header);
    rng.shuffle(entries);
    const spaced = rng.int(2) === 0;
    const text = JSON.stringify(Object.fromEntries(entries), null, spaced ? 1 : undefined);
    return finish(text, `reorder entries${spaced ? ", indented" : ""}`);
  }
  const text = JSON.stringify(header);
  const whole = pick(rng, [
    "[]",
    "null",
    '"x"',
    text.slice(0, rng.int(text.length)),
    `${text}   `,
    `\ufeff${text}`,
    `{"__metadata__": {}}`,
  ]);
  return finish(whole, `header text = ${JSON.stringify(whole.slice(0, 24))}`);
}

/** Writes a NaN or ±Infinity into one element of a float tensor of a valid file. */
function injectNonFinite(rng: Rng, bytes: Uint8Array): Mutated | null {
  const verdict = judge(bytes);
  if (!verdict.valid) return null;
  const floats = verdict.tensors.filter((t) => t.dtype.startsWith("F") || t.dtype === "BF16")
    .filter((t) => t.end > t.start);
  if (floats.length === 0) return null;
  const t = pick(rng, floats);
  const size = SPEC_DTYPES[t.dtype];
  const index = rng.int((t.end - t.start) / size);
  const value = pick(rng, [NaN, Infinity, -Infinity]);
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  const at = t.start + index * size;
  if (t.dtype === "F64") view.setFloat64(at, value, true);
  else if (t.dtype === "F32") view.setFloat32(at, value, true);
  else if (t.dtype === "F16") {
    view.setUint16(at, value !== value ? 0x7e00 : value > 0 ? 0x7c00 : 0xfc00, true);
  } else view.setUint16(at, value !== value ? 0x7fc0 : value > 0 ? 0x7f80 : 0xff80, true);
  return { bytes: out, what: `${value} into ${t.name}[${index}]` };
}

/**
 * One byte-level mutation, blind to the format: a bit flip, a byte set, a truncation, an
 * append, a cut or repeated run of bytes, or a new value of the first 8 bytes read as a
 * little-endian length.
 *
 * @example
 * ```ts
 * import { mutateBytes } from "./safetensors_fuzz.ts";
 * import { Rng } from "../../lib/tensor/random.ts";
 * console.log(mutateBytes(new Rng(0), new Uint8Array(16)).what);
 * ```
 */
export function mutateBytes(rng: Rng, bytes: Uint8Array): Mutated {
  const size = bytes.length;
  const at = rng.int(Math.max(1, size));
  switch (rng.int(7)) {
    case 0: {
      const out = bytes.slice();
      const bit = rng.int(8);
      if (size) out[at] ^= 1 << bit;
      return { bytes: out, what: `flip bit ${bit} of byte ${at}` };
    }
    case 1: {
      const out = bytes.slice();
      const value = rng.int(256);
      if (size) out[at] = value;
      return { bytes: out, what: `byte ${at} = ${value}` };
    }
    case 2:
      return { bytes: bytes.slice(0, at), what: `truncate to ${at}` };
    case 3: {
      const extra = Uint8Array.from({ length: 1 + rng.int(16) }, () => rng.int(256));
      return { bytes: new Uint8Array([...bytes, ...extra]), what: `append ${extra.length}` };
    }
    case 4: {
      const k = 1 + rng.int(8);
      return {
        bytes: new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + k)]),
        what: `cut ${k} at ${at}`,
      };
    }
    case 5: {
      const k = 1 + rng.int(8);
      const copy = bytes.subarray(at, at + k);
      return {
        bytes: new Uint8Array([...bytes.subarray(0, at), ...copy, ...bytes.subarray(at)]),
        what: `repeat ${copy.length} at ${at}`,
      };
    }
    default: {
      const n = size >= 8 ? new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true) : 0n;
      const value = pick(rng, [
        0n,
        1n,
        n - 1n,
        n + 1n,
        n + 8n,
        BigInt(Math.max(0, size - 8)),
        BigInt(Math.max(0, size - 7)),
        2n ** 32n,
        2n ** 53n + 1n,
        2n ** 64n - 1n,
        BigInt(rng.int(2 ** 31)),
      ]);
      const out = size >= 8 ? bytes.slice() : new Uint8Array(8);
      new DataView(out.buffer).setBigUint64(0, value < 0n ? 0n : value, true);
      return { bytes: out, what: `length field = ${value}` };
    }
  }
}

/**
 * Mutates `bytes` once or a few times; the description lists the mutations in order.
 *
 * @example
 * ```ts
 * import { mutate, seedFiles } from "./safetensors_fuzz.ts";
 * import { Rng } from "../../lib/tensor/random.ts";
 * const [seed] = await seedFiles();
 * console.log(mutate(new Rng(1), seed.bytes).what);
 * ```
 */
export function mutate(rng: Rng, bytes: Uint8Array): Mutated {
  const rounds = rng.int(4) === 0 ? 2 + rng.int(2) : 1;
  let current: Mutated = { bytes, what: "" };
  for (let r = 0; r < rounds; r++) {
    const kind = rng.int(10);
    const next = kind < 4
      ? editHeader(rng, current.bytes)
      : kind === 4
      ? injectNonFinite(rng, current.bytes)
      : null;
    const step = next ?? mutateBytes(rng, current.bytes);
    current = {
      bytes: step.bytes,
      what: current.what ? `${current.what}; ${step.what}` : step.what,
    };
  }
  return current;
}

/** How one case ended, for the tally. */
export type Outcome = "open error" | "read error" | "read";

/** How one case ended, and how many of its tensors were compared with the unmutated file. */
export interface Checked {
  /** How it ended. */
  outcome: Outcome;
  /** Tensors compared with the original file's values. */
  intact: number;
}

/**
 * Opens and reads the file at `path` (holding `bytes`) and checks the outcome against the
 * specification (and, for tensors the mutation left intact, against `original`); returns how it
 * ended, or throws an Error describing the disagreement.
 *
 * @example
 * ```ts
 * import { checkFile, seedFiles } from "./safetensors_fuzz.ts";
 * import { Rng } from "../../lib/tensor/random.ts";
 * const [seed] = await seedFiles();
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, seed.bytes);
 * console.log(await checkFile(path, seed.bytes, new Rng(0))); // { outcome: "read", intact: 0 }
 * ```
 */
export async function checkFile(
  path: string,
  bytes: Uint8Array,
  rng: Rng,
  original?: Uint8Array,
): Promise<Checked> {
  const verdict = judge(bytes);
  let reader: SafetensorsReader;
  try {
    reader = await SafetensorsReader.open(path);
  } catch (err) {
    if (verdict.valid) throw new Error(`valid file refused: ${describe(err)}`);
    checkError(err, path, verdict.level === "tensor" ? headerKeys(bytes) : undefined);
    return { outcome: "open error", intact: 0 };
  }
  try {
    if (!verdict.valid) throw new Error(`invalid file (${verdict.reason}) opened`);
    return await readAll(reader, verdict.tensors, bytes, rng, original);
  } finally {
    reader.close();
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function headerKeys(bytes: Uint8Array): Set<string> {
  return new Set(Object.keys(split(bytes)?.header ?? {}));
}

/** The error must be a CheckpointError naming the file, and a tensor of the header if asked. */
function checkError(err: unknown, path: string, tensors?: Set<string>, tensor?: string): void {
  if (!(err instanceof CheckpointError)) throw new Error(`not a CheckpointError: ${describe(err)}`);
  if (err.file !== path || !err.message.startsWith(path)) {
    throw new Error(`error does not name the file: ${err.message}`);
  }
  const blamed = err.tensor;
  if (tensors && (blamed === undefined || !tensors.has(blamed))) {
    throw new Error(`error should name one of the header's tensors: ${err.message}`);
  }
  if (!tensors && tensor === undefined && blamed !== undefined) {
    throw new Error(`error blames tensor "${blamed}" for a file-level fault: ${err.message}`);
  }
  if (tensor !== undefined && blamed !== tensor) {
    throw new Error(`error should name tensor "${tensor}": ${err.message}`);
  }
  if (blamed !== undefined && !err.message.includes(`tensor "${blamed}"`)) {
    throw new Error(`message does not show the tensor's name: ${err.message}`);
  }
}

async function readAll(
  reader: SafetensorsReader,
  tensors: SpecTensor[],
  bytes: Uint8Array,
  rng: Rng,
  original?: Uint8Array,
): Promise<Checked> {
  const names = tensors.map((t) => t.name).sort();
  if (JSON.stringify([...reader.names()].sort()) !== JSON.stringify(names)) {
    throw new Error(`names ${reader.names()} differ from the header's ${names}`);
  }
  const before = original ? judge(original) : undefined;
  let outcome: Outcome = "read", intact = 0;
  for (const t of rng.shuffle([...tensors])) {
    const info = reader.info(t.name);
    if (
      info.dtype !== t.dtype || JSON.stringify(info.shape) !== JSON.stringify(t.shape) ||
      info.start !== t.start || info.byteLength !== t.end - t.start
    ) {
      throw new Error(`tensor "${t.name}": info ${JSON.stringify(info)} differs from the header`);
    }
    const expected = specDecode(bytes.subarray(t.start, t.end), t.dtype);
    const bad = expected.findIndex((v) => !Number.isFinite(v));
    const allow = rng.int(4) === 0;
    let values: Float32Array;
    try {
      values = await reader.read(t.name, { allowNonFinite: allow });
    } catch (err) {
      if (allow || bad < 0) throw new Error(`read of "${t.name}" failed: ${describe(err)}`);
      checkError(err, reader.path, undefined, t.name);
      if (!(err as Error).message.includes(`flat index ${bad}`)) {
        throw new Error(`non-finite error without index ${bad}: ${(err as Error).message}`);
      }
      outcome = "read error";
      continue;
    }
    if (bad >= 0 && !allow) throw new Error(`"${t.name}" read despite a non-finite value`);
    sameValues(t.name, values, expected);
    if (before?.valid && sameAsOriginal(t, before.tensors, values, bytes, original!)) intact++;
  }
  return { outcome, intact };
}

function sameValues(name: string, got: Float32Array, expected: number[]): void {
  if (got.length !== expected.length) {
    throw new Error(`"${name}": ${got.length} values, expected ${expected.length}`);
  }
  for (let i = 0; i < got.length; i++) {
    const same = Object.is(got[i], expected[i]) ||
      (Number.isNaN(got[i]) && Number.isNaN(expected[i]));
    if (!same) throw new Error(`"${name}"[${i}] = ${got[i]}, the bytes say ${expected[i]}`);
  }
}

/**
 * A tensor whose dtype, shape and bytes survived the mutation reads as it did before; returns
 * whether the tensor was such a one.
 */
function sameAsOriginal(
  t: SpecTensor,
  before: SpecTensor[],
  values: Float32Array,
  bytes: Uint8Array,
  original: Uint8Array,
): boolean {
  const old = before.find((o) => o.name === t.name);
  if (!old || old.dtype !== t.dtype || JSON.stringify(old.shape) !== JSON.stringify(t.shape)) {
    return false;
  }
  const a = bytes.subarray(t.start, t.end), b = original.subarray(old.start, old.end);
  if (a.length !== b.length || a.some((x, i) => x !== b[i])) return false;
  sameValues(t.name, values, specDecode(b, old.dtype));
  return true;
}

/**
 * Makes an open file hold exactly `bytes` (written in place: creating a file per case costs
 * about a millisecond, this a few microseconds).
 *
 * @example
 * ```ts
 * import { overwrite } from "./safetensors_fuzz.ts";
 * const path = await Deno.makeTempFile();
 * using file = await Deno.open(path, { write: true });
 * overwrite(file, new Uint8Array([1, 2, 3]));
 * ```
 */
export function overwrite(file: Deno.FsFile, bytes: Uint8Array): void {
  file.seekSync(0, Deno.SeekMode.Start);
  for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
  file.truncateSync(bytes.length);
}

/** A disagreement found by the fuzzer, with what reproduces it. */
export interface FuzzFailure {
  /** Case number. */
  index: number;
  /** The seed file mutated. */
  file: string;
  /** The mutations. */
  what: string;
  /** What went wrong. */
  problem: string;
}

/** What a fuzzing run did. */
export interface FuzzSummary {
  /** Cases run. */
  cases: number;
  /** Outcomes by kind. */
  outcomes: Record<Outcome, number>;
  /** Tensors whose values were compared with the unmutated file's. */
  intact: number;
  /** Largest typed array the reader allocated, relative to the file's size in bytes. */
  largestAllocationRatio: number;
  /** Disagreements (at most 20 kept). */
  failures: FuzzFailure[];
}

/**
 * Runs cases `from` … `to − 1` of `seed`, writing each file to `dir`. `probe` (when given)
 * limits every typed-array allocation to the file's size in elements; `progress[0]` holds the
 * case being run, so a watchdog can say which case hung.
 *
 * @example
 * ```ts
 * import { runFuzz } from "./safetensors_fuzz.ts";
 * const dir = await Deno.makeTempDir();
 * const summary = await runFuzz(1, 0, 20, dir);
 * console.log(summary.outcomes, summary.failures.length); // … 0
 * ```
 */
export async function runFuzz(
  seed: number,
  from: number,
  to: number,
  dir: string,
  probe?: AllocationProbe,
  progress?: Int32Array,
): Promise<FuzzSummary> {
  const seeds = await seedFiles();
  const path = `${dir}/case.safetensors`;
  const summary: FuzzSummary = {
    cases: 0,
    outcomes: { "open error": 0, "read error": 0, read: 0 },
    intact: 0,
    largestAllocationRatio: 0,
    failures: [],
  };
  using out = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let index = from; index < to; index++) {
    if (progress) Atomics.store(progress, 0, index);
    const rng = new Rng(seed, `case/${index}`);
    const source = pick(rng, seeds);
    const { bytes, what } = mutate(rng, source.bytes);
    overwrite(out, bytes);
    if (probe) {
      probe.reset();
      probe.limit = bytes.length;
    }
    try {
      const { outcome, intact } = await checkFile(path, bytes, rng, source.bytes);
      summary.outcomes[outcome]++;
      summary.intact += intact;
    } catch (err) {
      if (summary.failures.length < 20) {
        summary.failures.push({ index, file: source.name, what, problem: describe(err) });
      }
    } finally {
      if (probe) {
        const ratio = probe.stats.largest / Math.max(1, bytes.length);
        summary.largestAllocationRatio = Math.max(summary.largestAllocationRatio, ratio);
        probe.limit = Infinity;
      }
    }
    summary.cases++;
  }
  return summary;
}
