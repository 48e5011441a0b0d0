/**
 * Read-only access to the members of a ZIP archive whose members are stored uncompressed, as
 * PyTorch's `torch.save` writes them. Opening reads the central directory (ZIP64 included) and
 * every member's local header, and checks that each member's bytes lie inside the file; a
 * member is then read by offset, in part or whole, without reading the rest of the archive.
 *
 * @module
 */
import { CheckpointError } from "./errors.ts";

/** One member of a stored (uncompressed) ZIP archive. */
export interface ZipMember {
  /** Its path inside the archive. */
  readonly name: string;
  /** Absolute byte offset of its first data byte in the file. */
  readonly offset: number;
  /** Its length in bytes. */
  readonly size: number;
  /** ZIP compression method (0 = stored; others cannot be read). */
  readonly method: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;

/**
 * Reads exactly `length` bytes at `offset`, failing with a message naming `path` and `what`
 * when the file ends first.
 *
 * @example
 * ```ts
 * import { deepEqual, rejects } from "node:assert/strict";
 * import { readAt } from "./zip_store.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
 * using file = await Deno.open(path);
 * deepEqual(await readAt(file, path, 1, 2, "two bytes"), new Uint8Array([2, 3]));
 * await rejects(readAt(file, path, 2, 2, "two bytes"), /file ended while reading two bytes/);
 * ```
 */
export async function readAt(
  file: Deno.FsFile,
  path: string,
  offset: number,
  length: number,
  what: string,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = await file.read(bytes.subarray(done));
    if (n === null) {
      throw new CheckpointError(path, undefined, `file ended while reading ${what} (truncated?)`);
    }
    done += n;
  }
  return bytes;
}

/**
 * A ZIP archive of stored members opened for reading by offset. Reads are queued on the one
 * file handle, so concurrent calls are safe; close it (or `using`) to release the handle.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { StoredZip } from "./zip_store.ts";
 * const path = await Deno.makeTempFile({ suffix: ".zip" });
 * // A one-member archive ("a", holding "hi") in the stored format.
 * const b64 = "UEsDBBQAAAAAAK+GeV2sKpPYAgAAAAIAAAABAAAAYWhpUEsBAhQDFAAAAAAAr4Z5Xawqk9gCAAAAAgAAAAEAAAAAAAAAAAAAAIABAAAAAGFQSwUGAAAAAAEAAQAvAAAAIQAAAAAA";
 * await Deno.writeFile(path, Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
 * using zip = await StoredZip.open(path);
 * equal(new TextDecoder().decode(await zip.read("a")), "hi");
 * ```
 */
export class StoredZip implements Disposable {
  readonly #file: Deno.FsFile;
  readonly #members: Map<string, ZipMember>;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    /** Path the archive was opened from. */
    readonly path: string,
    file: Deno.FsFile,
    members: Map<string, ZipMember>,
  ) {
    this.#file = file;
    this.#members = members;
  }

  /** Opens `path` and reads its directory; throws {@linkcode CheckpointError} on bad archives. */
  static async open(path: string): Promise<StoredZip> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (err) {
      throw new CheckpointError(path, undefined, `cannot open: ${(err as Error).message}`);
    }
    try {
      const size = (await file.stat()).size;
      return new StoredZip(path, file, await readDirectory(path, file, size));
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** Member names in directory order. */
  names(): string[] {
    return [...this.#members.keys()];
  }

  /** The member called `name`, or undefined. */
  member(name: string): ZipMember | undefined {
    return this.#members.get(name);
  }

  /**
   * Reads `length` bytes of member `name` from byte `start` of the member (default: all of
   * it); fails when the member is compressed or the range runs past its end.
   */
  read(name: string, start = 0, length?: number): Promise<Uint8Array> {
    const m = this.#members.get(name);
    if (!m) throw new CheckpointError(this.path, undefined, `no member "${name}" in the archive`);
    if (m.method !== 0) {
      throw new CheckpointError(
        this.path,
        undefined,
        `member "${name}" is compressed (method ${m.method}); only stored members can be read`,
      );
    }
    const n = length ?? m.size - start;
    if (start < 0 || n < 0 || start + n > m.size) {
      throw new CheckpointError(
        this.path,
        undefined,
        `bytes [${start}, ${start + n}) run past the end of member "${name}" (${m.size} bytes)`,
      );
    }
    const task = this.#queue.then(() =>
      readAt(this.#file, this.path, m.offset + start, n, `member "${name}"`)
    );
    this.#queue = task.catch(() => {});
    return task;
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

/** Where the central directory is and how many entries it holds. */
interface DirectoryEnd {
  entries: number;
  size: number;
  offset: number;
}

async function readDirectory(
  path: string,
  file: Deno.FsFile,
  size: number,
): Promise<Map<string, ZipMember>> {
  const fail = (problem: string) => new CheckpointError(path, undefined, problem);
  const end = await findDirectoryEnd(path, file, size);
  if (end.offset + end.size > size) throw fail("the ZIP central directory runs past the file end");
  const dir = await readAt(file, path, end.offset, end.size, "the ZIP central directory");
  const view = new DataView(dir.buffer);
  const members = new Map<string, ZipMember>();
  let at = 0;
  for (let i = 0; i < end.entries; i++) {
    if (at + 46 > dir.length || view.getUint32(at, true) !== CENTRAL) {
      throw fail(`ZIP central directory entry ${i} is malformed`);
    }
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const name = new TextDecoder().decode(dir.subarray(at + 46, at + 46 + nameLength));
    const sizes = {
      compressed: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      local: view.getUint32(at + 42, true),
    };
    const extra = dir.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
    applyZip64Extra(path, name, extra, sizes);
    const method = view.getUint16(at + 10, true);
    if (members.has(name)) throw fail(`ZIP member "${name}" appears twice`);
    const offset = await dataOffset(path, file, sizes.local, name);
    const stored = method === 0 ? sizes.size : sizes.compressed;
    if (method === 0 && sizes.compressed !== sizes.size) {
      throw fail(`stored ZIP member "${name}" has different compressed and real sizes`);
    }
    if (offset + stored > size) throw fail(`ZIP member "${name}" runs past the end of the file`);
    members.set(name, { name, offset, size: sizes.size, method });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return members;
}

/** Finds the end-of-central-directory record (and its ZIP64 form when the fields overflow). */
async function findDirectoryEnd(
  path: string,
  file: Deno.FsFile,
  size: number,
): Promise<DirectoryEnd> {
  const tailLength = Math.min(size, 22 + MAX_COMMENT);
  const tail = await readAt(file, path, size - tailLength, tailLength, "the ZIP directory end");
  const view = new DataView(tail.buffer);
  let at = tail.length - 22;
  while (at >= 0 && view.getUint32(at, true) !== EOCD) at--;
  if (at < 0) {
    throw new CheckpointError(path, undefined, "not a ZIP archive (no end-of-directory record)");
  }
  const end = {
    entries: view.getUint16(at + 10, true),
    size: view.getUint32(at + 12, true),
    offset: view.getUint32(at + 16, true),
  };
  const overflow = end.entries === 0xffff || end.size === 0xffffffff ||
    end.offset === 0xffffffff;
  const locator = at - 20;
  if (!overflow || locator < 0 || view.getUint32(locator, true) !== EOCD64_LOCATOR) return end;
  const at64 = safeU64(path, view, locator + 8, "ZIP64 directory end offset");
  const rec = new DataView((await readAt(file, path, at64, 56, "the ZIP64 directory end")).buffer);
  if (rec.getUint32(0, true) !== EOCD64) {
    throw new CheckpointError(path, undefined, "the ZIP64 end-of-directory record is malformed");
  }
  return {
    entries: safeU64(path, rec, 32, "ZIP64 entry count"),
    size: safeU64(path, rec, 40, "ZIP64 central directory size"),
    offset: safeU64(path, rec, 48, "ZIP64 central directory offset"),
  };
}

/** Replaces 32-bit fields that overflowed with their values from the ZIP64 extra field. */
function applyZip64Extra(
  path: string,
  name: string,
  extra: Uint8Array,
  sizes: { compressed: number; size: number; local: number },
): void {
  const view = new DataView(extra.buffer, extra.byteOffset, extra.byteLength);
  for (let at = 0; at + 4 <= extra.length;) {
    const id = view.getUint16(at, true), length = view.getUint16(at + 2, true);
    if (id === 0x0001) {
      let p = at + 4;
      const next = () => {
        const v = safeU64(path, view, p, `ZIP64 size or offset of member "${name}"`);
        p += 8;
        return v;
      };
      if (sizes.size === 0xffffffff) sizes.size = next();
      if (sizes.compressed === 0xffffffff) sizes.compressed = next();
      if (sizes.local === 0xffffffff) sizes.local = next();
    }
    at += 4 + length;
  }
}

/**
 * A little-endian u64 field as a number, refused (printed whole, as a BigInt) when a double
 * cannot hold it: no file this reader can open is 2^53 bytes long.
 */
function safeU64(path: string, view: DataView, at: number, what: string): number {
  const value = view.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CheckpointError(path, undefined, `${what} ${value} is beyond any file's size`);
  }
  return Number(value);
}

/** The offset of a member's data: after its local header, whose name and extra lengths vary. */
async function dataOffset(
  path: string,
  file: Deno.FsFile,
  local: number,
  name: string,
): Promise<number> {
  const header = new DataView((await readAt(file, path, local, 30, `"${name}"'s header`)).buffer);
  if (header.getUint32(0, true) !== LOCAL) {
    throw new CheckpointError(path, undefined, `ZIP member "${name}" has no local header`);
  }
  return local + 30 + header.getUint16(26, true) + header.getUint16(28, true);
}
