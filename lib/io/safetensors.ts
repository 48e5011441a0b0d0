/**
 * Safetensors files: strict header validation, lazy reads of one tensor at a time by file
 * offset, and atomic streaming writes (temporary file, then rename).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`),
 * then the data section; offsets are relative to the data section, which the tensors cover
 * without gaps or overlaps. Offsets need not be aligned to the element size (other writers
 * do not always align them), since every read copies the bytes into a fresh buffer.
 *
 * @module
 */
import { decodeToFloat32, type DType, DTYPE_SIZES, encodeFromFloat32, isDType } from "./dtype.ts";
import type { WritableDType } from "./dtype.ts";
import { numel, shapeText } from "../tensor/host.ts";
import { tempPathBeside } from "./atomic.ts";
import { foreignFormatProblem, formatOfBytes, SNIFF_BYTES } from "./format.ts";
import { CheckpointError } from "./errors.ts";
import { assertFinite, type ReadOptions } from "./checkpoint.ts";

/** Tensors up to this size are read and written without a trip through the I/O threads. */
const SYNC_READ_BYTES = 65_536;

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Where one tensor lives in a safetensors file. */
export interface TensorInfo {
  /** Tensor name. */
  readonly name: string;
  /** Stored dtype. */
  readonly dtype: DType;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Absolute byte offset of its first byte in the file. */
  readonly start: number;
  /** Byte length. */
  readonly byteLength: number;
}

/**
 * A safetensors file opened for lazy reading: only the header is read on open; each
 * {@linkcode SafetensorsReader.read} reads exactly one tensor's bytes from its offset.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { SafetensorsReader, writeSafetensors } from "./safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensors(path, [{ name: "w", shape: [2], data: new Float32Array([1, 2]) }]);
 * const file = await SafetensorsReader.open(path);
 * deepEqual(file.names(), ["w"]);
 * deepEqual(await file.read("w"), new Float32Array([1, 2]));
 * file.close();
 * ```
 */
export class SafetensorsReader {
  readonly #file: Deno.FsFile;
  readonly #tensors: Map<string, TensorInfo>;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    /** Path the file was opened from. */
    readonly path: string,
    file: Deno.FsFile,
    tensors: Map<string, TensorInfo>,
    /** The header's `__metadata__` (string to string), or `{}`. */
    readonly metadata: Readonly<Record<string, string>>,
  ) {
    this.#file = file;
    this.#tensors = tensors;
  }

  /** Opens `path`, reads and validates its header; throws {@linkcode CheckpointError}. */
  static async open(path: string): Promise<SafetensorsReader> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (err) {
      throw new CheckpointError(path, undefined, `cannot open: ${(err as Error).message}`);
    }
    try {
      const size = (await file.stat()).size;
      const { tensors, metadata } = await readHeader(path, file, size);
      return new SafetensorsReader(path, file, tensors, metadata);
    } catch (err) {
      file.close();
      throw asCheckpointError(err, path, undefined);
    }
  }

  /** Tensor names in file order (by offset). */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  /** True when the file holds `name`. */
  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** Where `name` lives, its dtype and shape; throws when absent. */
  info(name: string): TensorInfo {
    const info = this.#tensors.get(name);
    if (!info) throw new CheckpointError(this.path, name, "no such tensor in this file");
    return info;
  }

  /**
   * Reads the raw bytes of one tensor (and nothing else). Concurrent calls are queued: a read
   * is a seek followed by reads on the one file handle, which must not interleave.
   */
  readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const task = this.#queue.then(() => this.#readAt(info));
    this.#queue = task.catch(() => {});
    return task;
  }

  async #readAt(info: TensorInfo): Promise<Uint8Array> {
    const name = info.name;
    const bytes = new Uint8Array(info.byteLength);
    try {
      // A seek never blocks: done synchronously it saves one trip through the runtime's I/O
      // threads per tensor (on a loaded machine those trips made a streaming merge of 8
      // ViT-B/32 experts ~20% slower). The read stays asynchronous: it lets the event loop
      // turn, which keeps garbage collection, and so peak memory, as prompt as before.
      this.#file.seekSync(info.start, Deno.SeekMode.Start);
      // A small tensor is read synchronously too: the trip through the I/O threads would cost
      // more than the read (most of a merge of 200 000 tiny tensors), and there is no garbage
      // to collect meanwhile.
      const small = bytes.length <= SYNC_READ_BYTES;
      let done = 0;
      while (done < bytes.length) {
        const rest = bytes.subarray(done);
        const n = small ? this.#file.readSync(rest) : await this.#file.read(rest);
        if (n === null) {
          throw new CheckpointError(this.path, name, "file ended while reading (truncated?)");
        }
        done += n;
      }
    } catch (err) {
      throw asCheckpointError(err, this.path, name);
    }
    return bytes;
  }

  /** Reads one tensor as float32, failing on NaN or ±Infinity unless allowed. */
  async read(name: string, options: ReadOptions = {}): Promise<Float32Array> {
    const info = this.info(name);
    const data = decodeToFloat32(await this.readBytes(name), info.dtype);
    if (!options.allowNonFinite) assertFinite(this.path, name, data);
    return data;
  }

  /** Closes the file handle. */
  close(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }

  /** Closes the file handle (`using` support). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** An I/O error (a directory, a closed handle, EIO) as a CheckpointError naming the file. */
function asCheckpointError(err: unknown, path: string, tensor: string | undefined): Error {
  if (err instanceof CheckpointError) return err;
  return new CheckpointError(path, tensor, `cannot read: ${(err as Error).message}`);
}

async function readExactly(file: Deno.FsFile, at: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await file.seek(at, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = await file.read(bytes.subarray(done));
    if (n === null) break;
    done += n;
  }
  return bytes.subarray(0, done);
}

async function readHeader(path: string, file: Deno.FsFile, size: number) {
  const fail = (problem: string, tensor?: string) => new CheckpointError(path, tensor, problem);
  const head = await readExactly(file, 0, Math.min(size, SNIFF_BYTES));
  // Another format's first bytes would read as an absurd header length: name the format.
  const foreign = foreignFormatProblem(formatOfBytes(head, size, path));
  if (foreign) throw fail(foreign);
  if (size < 8) throw fail(`file is ${size} bytes, shorter than the 8-byte header length`);
  // Compared as a BigInt and printed whole: a double would round lengths above 2^53.
  const claimed = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (claimed > BigInt(size - 8)) {
    throw fail(`header length ${claimed} runs past the end of the file (${size} bytes)`);
  }
  const headerLength = Number(claimed);
  if (headerLength > MAX_HEADER_BYTES) {
    throw fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerBytes = await readExactly(file, 8, headerLength);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw fail("header is not a JSON object");
  }
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== undefined) throw fail("name appears twice in the header", duplicate);
  // Messages print header values as the file wrote them: parsed again (only when one is
  // needed, since keeping every number's text costs far more than the parse itself).
  let exact: Record<string, unknown> | undefined;
  const show = (tensor: string, field: string) => {
    exact ??= parseExact(text) as Record<string, unknown>;
    const entry = Object.hasOwn(exact, tensor) ? exact[tensor] : undefined;
    return jsonText((entry as Record<string, unknown> | undefined)?.[field]);
  };
  return validateEntries(header as Record<string, unknown>, 8 + headerLength, size, fail, show);
}

/** A header field of a tensor as JSON text, exactly as the file wrote it. */
type ShowField = (tensor: string, field: string) => string;

/**
 * A JSON number that a double does not hold as written (an integer beyond 2^53, a value beyond
 * the double range, more digits than a double keeps), kept as its text so that messages print
 * exactly what the file says. It is not a number, so no check accepts it.
 */
class ExactNumber {
  constructor(readonly text: string) {}
}

/** JSON.parse, keeping numbers a double would change as {@linkcode ExactNumber}s. */
function parseExact(text: string): unknown {
  type Reviver = (key: string, value: unknown, context: { source?: string }) => unknown;
  const revive: Reviver = (_key, value, context) =>
    typeof value === "number" && !Number.isSafeInteger(value) && context.source !== undefined &&
      String(value) !== context.source
      ? new ExactNumber(context.source)
      : value;
  return JSON.parse(text, revive as (key: string, value: unknown) => unknown);
}

/** JSON text of a header value, {@linkcode ExactNumber}s written as the file wrote them. */
function jsonText(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_key, v) => {
    if (!(v instanceof ExactNumber)) return v;
    marks.push(v.text);
    return `\u0000${marks.length - 1}\u0000`;
  }) ?? String(value);
  return text.replace(/"\\u0000(\d+)\\u0000"/g, (_m, i) => marks[Number(i)]);
}

function validateEntries(
  header: Record<string, unknown>,
  dataStart: number,
  size: number,
  fail: (problem: string, tensor?: string) => CheckpointError,
  show: ShowField,
) {
  const metadata = validateMetadata(header.__metadata__, fail);
  const entries: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    entries.push(validateEntry(name, entry, dataStart, fail, show));
  }
  entries.sort((a, b) => a.start - b.start || a.byteLength - b.byteLength);
  const dataLength = size - dataStart;
  const offsets = (e: TensorInfo) =>
    `data_offsets [${e.start - dataStart}, ${e.start - dataStart + e.byteLength}]`;
  let cursor = dataStart;
  let previous: TensorInfo | undefined;
  for (const e of entries) {
    if (e.start + e.byteLength > size) {
      throw fail(
        `${offsets(e)} run past the end of the data section (${dataLength} bytes; ` +
          `file truncated?)`,
        e.name,
      );
    }
    if (e.start < cursor) {
      throw fail(
        `${offsets(e)} overlap tensor "${previous?.name}" (${offsets(previous!)})`,
        e.name,
      );
    }
    if (e.start > cursor) {
      throw fail(
        `${offsets(e)} leave a gap in the data section (expected it to start at ` +
          `${cursor - dataStart})`,
        e.name,
      );
    }
    cursor = e.start + e.byteLength;
    previous = e;
  }
  if (cursor - dataStart !== dataLength) {
    throw fail(
      `tensors cover ${cursor - dataStart} bytes but the data section has ${dataLength}: ` +
        `${dataLength - (cursor - dataStart)} bytes at the end belong to no tensor`,
    );
  }
  return { tensors: new Map(entries.map((e) => [e.name, e])), metadata };
}

function validateMetadata(
  value: unknown,
  fail: (problem: string, tensor?: string) => CheckpointError,
): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw fail("__metadata__ is not an object of strings");
  }
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") throw fail(`__metadata__ entry "${k}" is not a string`);
  }
  return value as Record<string, string>;
}

function validateEntry(
  name: string,
  entry: unknown,
  dataStart: number,
  fail: (problem: string, tensor?: string) => CheckpointError,
  show: ShowField,
): TensorInfo {
  if (typeof entry !== "object" || entry === null) throw fail("entry is not an object", name);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isDType(dtype)) {
    throw fail(
      `unknown dtype ${show(name, "dtype")} (expected one of ${Object.keys(DTYPE_SIZES)})`,
      name,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw fail(`shape ${show(name, "shape")} is not a list of non-negative integers`, name);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    throw fail(
      `data_offsets ${show(name, "data_offsets")} is not [begin, end] with integers ` +
        `0 ≤ begin ≤ end < 2^53`,
      name,
    );
  }
  const [begin, end] = offsets as number[];
  const itemSize = DTYPE_SIZES[dtype];
  const expected = countElements(shape, (problem) => fail(problem, name)) * itemSize;
  if (end - begin !== expected) {
    throw fail(
      `holds ${end - begin} bytes but shape ${shapeText(shape)} × ${dtype} (${itemSize} B) ` +
        `needs ${expected}`,
      name,
    );
  }
  return { name, dtype, shape, start: dataStart + begin, byteLength: expected };
}

/**
 * The element count of a shape, refusing one whose running product passes 2^53 (as the
 * reference implementation refuses an overflow even before a zero dimension): a double would
 * round it, or turn it into Infinity × 0 = NaN.
 */
function countElements(
  shape: readonly number[],
  fail: (problem: string) => CheckpointError,
): number {
  let elements = 1;
  for (const d of shape) {
    elements *= d;
    if (!Number.isSafeInteger(elements)) {
      throw fail(`shape ${shapeText(shape)} has more than 2^53 elements`);
    }
  }
  return elements;
}

/** Returns the first top-level key that occurs twice in a JSON object text (JSON.parse hides it). */
function firstDuplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === "}" || c === "]") depth--;
    else if (c === "," && depth === 1) expectKey = true;
  }
  return undefined;
}

/** One tensor to write: its name, shape and float32 values (or a function producing them). */
export interface TensorToWrite {
  /** Tensor name. */
  name: string;
  /** Dimensions. */
  shape: readonly number[];
  /** Values, or a function that reads/computes them when the writer reaches this tensor. */
  data: Float32Array | (() => Float32Array | Promise<Float32Array>);
  /** Stored dtype for this tensor; defaults to the file's dtype. */
  dtype?: WritableDType;
}

/** Options for writing a safetensors file. */
export interface WriteOptions {
  /** `__metadata__` strings to store. */
  metadata?: Record<string, string>;
  /** Stored dtype for tensors that name none (default F32). */
  dtype?: WritableDType;
}

/** A tensor's place in a file being written: name, shape and stored dtype. */
export interface TensorSpec {
  /** Tensor name. */
  name: string;
  /** Dimensions. */
  shape: readonly number[];
  /** Stored dtype. */
  dtype: WritableDType;
}

/**
 * Writes a safetensors file tensor by tensor: the header (all names, shapes and offsets) is
 * written first, then each tensor's bytes as {@linkcode SafetensorsWriter.write} receives them,
 * into a temporary file beside `path` that {@linkcode SafetensorsWriter.commit} renames into
 * place. Only one tensor's bytes are held at a time.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { SafetensorsReader, SafetensorsWriter } from "./safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * const w = await SafetensorsWriter.create(path, [{ name: "b", shape: [3], dtype: "F16" }]);
 * await w.write("b", new Float32Array([1, 2, 3]));
 * await w.commit();
 * const file = await SafetensorsReader.open(path);
 * equal(file.info("b").dtype, "F16");
 * equal(file.info("b").byteLength, 6);
 * deepEqual(await file.read("b"), new Float32Array([1, 2, 3])); // exact in half precision
 * file.close();
 * ```
 */
export class SafetensorsWriter {
  #next = 0;
  #file: Deno.FsFile | undefined;

  private constructor(
    /** Final path. */
    readonly path: string,
    /** Temporary path written until commit. */
    readonly tempPath: string,
    file: Deno.FsFile,
    readonly specs: readonly TensorSpec[],
  ) {
    this.#file = file;
  }

  /** Starts a file at `path` holding `specs`, in that order. */
  static async create(
    path: string,
    specs: readonly TensorSpec[],
    metadata: Record<string, string> = {},
  ): Promise<SafetensorsWriter> {
    const header = encodeHeader(path, specs, metadata);
    const tempPath = tempPathBeside(path);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(tempPath, { write: true, createNew: true });
    } catch (err) {
      throw new CheckpointError(path, undefined, `cannot write: ${(err as Error).message}`);
    }
    const writer = new SafetensorsWriter(path, tempPath, file, specs);
    try {
      await writeAll(file, header);
    } catch (err) {
      await writer.abort();
      throw new CheckpointError(path, undefined, `cannot write: ${(err as Error).message}`);
    }
    return writer;
  }

  /** Writes the next tensor, which must be the next spec's name and size. */
  async write(name: string, data: Float32Array): Promise<void> {
    const file = this.#file;
    const spec = this.specs[this.#next];
    if (!file) throw new CheckpointError(this.path, name, "writer already closed");
    if (!spec || spec.name !== name) {
      throw new CheckpointError(this.path, name, `written out of order (expected "${spec?.name}")`);
    }
    if (data.length !== numel(spec.shape)) {
      throw new CheckpointError(
        this.path,
        name,
        `got ${data.length} values for shape ${shapeText(spec.shape)}`,
      );
    }
    try {
      await writeAll(file, encodeFromFloat32(data, spec.dtype));
    } catch (err) {
      await this.abort();
      throw new CheckpointError(this.path, name, `cannot write: ${(err as Error).message}`);
    }
    this.#next++;
  }

  /** Flushes, closes and renames the temporary file into place; all tensors must be written. */
  async commit(): Promise<void> {
    const file = this.#file;
    if (!file) throw new CheckpointError(this.path, undefined, "writer already closed");
    if (this.#next !== this.specs.length) {
      await this.abort();
      throw new CheckpointError(
        this.path,
        this.specs[this.#next].name,
        "commit before every tensor was written",
      );
    }
    try {
      await file.sync();
      file.close();
      this.#file = undefined;
      await Deno.rename(this.tempPath, this.path);
    } catch (err) {
      await this.abort();
      throw new CheckpointError(this.path, undefined, `cannot write: ${(err as Error).message}`);
    }
  }

  /** Abandons the file: closes and deletes the temporary file; the final path is untouched. */
  async abort(): Promise<void> {
    try {
      this.#file?.close();
    } catch {
      // already closed
    }
    this.#file = undefined;
    await Deno.remove(this.tempPath).catch(() => {});
  }
}

/**
 * Writes a whole safetensors file atomically. Tensors given as functions are produced one at
 * a time while writing, so a caller can stream data it reads or computes.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { SafetensorsReader, writeSafetensors } from "./safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensors(path, [
 *   { name: "weight", shape: [2, 2], data: new Float32Array([1, 0, 0, 1]) },
 * ], { metadata: { format: "pt" }, dtype: "BF16" });
 * const file = await SafetensorsReader.open(path);
 * deepEqual(file.metadata, { format: "pt" });
 * equal(file.info("weight").dtype, "BF16");
 * deepEqual(await file.read("weight"), new Float32Array([1, 0, 0, 1]));
 * file.close();
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  options: WriteOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? "F32";
  const specs = tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype ?? dtype }));
  const writer = await SafetensorsWriter.create(path, specs, options.metadata);
  try {
    for (const t of tensors) {
      await writer.write(t.name, typeof t.data === "function" ? await t.data() : t.data);
    }
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writer.commit();
}

function encodeHeader(
  path: string,
  specs: readonly TensorSpec[],
  metadata: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const spec of specs) {
    if (spec.name === "__metadata__" || Object.hasOwn(header, spec.name)) {
      throw new CheckpointError(path, spec.name, "name used twice (or reserved)");
    }
    if (!spec.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(path, spec.name, `invalid shape ${shapeText(spec.shape)}`);
    }
    const bytes = numel(spec.shape) * DTYPE_SIZES[spec.dtype];
    header[spec.name] = {
      dtype: spec.dtype,
      shape: spec.shape,
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // data section starts 8-byte aligned
  if (padded !== json.length) {
    const spaced = new Uint8Array(padded).fill(0x20);
    spaced.set(json);
    json = spaced;
  }
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/** Writes every byte; a small buffer synchronously (as reads do, see `SYNC_READ_BYTES`). */
async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  const small = bytes.length <= SYNC_READ_BYTES;
  let done = 0;
  while (done < bytes.length) {
    const rest = bytes.subarray(done);
    done += small ? file.writeSync(rest) : await file.write(rest);
  }
}
