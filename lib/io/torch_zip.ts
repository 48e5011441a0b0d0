/**
 * PyTorch checkpoints (`torch.save`'s ZIP format, `.pt`/`.pth`/`.bin`) read safely and lazily.
 * The archive's `data.pkl` is read by a restricted pickle reader that knows only what a state
 * dict of tensors needs (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
 * `torch._utils._rebuild_parameter`, the `torch.*Storage` types as persistent ids) and
 * rejects everything else: nothing in the file is executed. Each tensor's bytes are then read
 * on demand from its storage member (`<archive>/data/<key>`) at the tensor's offset.
 *
 * Nested dicts and lists are flattened with dots, so `{"state_dict": {"visual.proj": t}}`
 * gives the tensor `state_dict.visual.proj`; non-tensor values (epochs, hyperparameters) are
 * ignored.
 *
 * @module
 */
import { dirname, isAbsolute, join } from "node:path";
import { CheckpointError, type ReadOptions } from "./safetensors.ts";
import { decodeToFloat32, type DType, DTYPE_SIZES } from "./dtype.ts";
import { StoredZip } from "./zip_store.ts";
import {
  PickleError,
  PickleGlobal,
  PickleObject,
  type PickleRules,
  type PickleValue,
  readPickle,
} from "./pickle.ts";
import type { TensorSource } from "../tensor/source.ts";
import { firstNonFinite, numel, shapeText } from "../tensor/host.ts";

/** The storage types a tensor may be pickled with, and the dtype each holds. */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, DType>> = Object.freeze({
  FloatStorage: "F32",
  DoubleStorage: "F64",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
});

const REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2";
const REBUILD_TENSOR_V1 = "torch._utils._rebuild_tensor";
const REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
const ORDERED_DICT = "collections.OrderedDict";
/** How protocol-2 pickles store `bytes`: `_codecs.encode(text, "latin1")`. */
const ENCODE = "_codecs.encode";

/** Every global a state-dict pickle may name. */
export const TORCH_ALLOWED_GLOBALS: ReadonlySet<string> = new Set([
  ORDERED_DICT,
  ENCODE,
  REBUILD_TENSOR,
  REBUILD_TENSOR_V1,
  REBUILD_PARAMETER,
  ...Object.keys(TORCH_STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

/** A storage named by a persistent id: its archive key, dtype and element count. */
class StorageRef extends PickleObject {
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number) {
    super();
  }
}

/** A tensor view over a storage, as `_rebuild_tensor_v2` describes it. */
class TensorRef extends PickleObject {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {
    super();
  }
}

/** Where one tensor of a PyTorch checkpoint lives. */
export interface TorchTensorInfo {
  /** Flattened name. */
  readonly name: string;
  /** Stored dtype. */
  readonly dtype: DType;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Strides in elements. */
  readonly stride: readonly number[];
  /** Archive member holding the storage. */
  readonly member: string;
  /** Offset of element [0, …, 0] in the storage, in elements. */
  readonly offset: number;
}

/**
 * A PyTorch ZIP checkpoint opened for lazy reading (see {@linkcode openTorchCheckpoint}).
 *
 * @example
 * ```ts ignore
 * import { openTorchCheckpoint } from "../../mod.ts";
 * using ckpt = await openTorchCheckpoint("open_clip_vit_b32.pt");
 * console.log(ckpt.names().length, ckpt.shape("visual.proj"), ckpt.dtype("visual.proj"));
 * ```
 */
export class TorchCheckpoint implements TensorSource, Disposable {
  readonly #zip: StoredZip;
  readonly #tensors: Map<string, TorchTensorInfo>;

  /** Use {@linkcode openTorchCheckpoint}; this wraps an archive already validated. */
  constructor(
    /** The file's path. */
    readonly path: string,
    zip: StoredZip,
    tensors: Map<string, TorchTensorInfo>,
  ) {
    this.#zip = zip;
    this.#tensors = tensors;
  }

  /** The path, for messages. */
  get label(): string {
    return this.path;
  }

  /** Tensor names in the pickle's order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  /** True when the checkpoint holds `name`. */
  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** Dtype, shape, strides and storage of `name`; throws when absent. */
  info(name: string): TorchTensorInfo {
    const info = this.#tensors.get(name);
    if (!info) throw new CheckpointError(this.path, name, "no such tensor in this checkpoint");
    return info;
  }

  /** Shape of `name`. */
  shape(name: string): readonly number[] {
    return this.info(name).shape;
  }

  /** Stored dtype of `name`. */
  dtype(name: string): DType {
    return this.info(name).dtype;
  }

  /** Reads one tensor as float32 (row-major), failing on NaN or ±Infinity unless allowed. */
  async read(name: string, options: ReadOptions = {}): Promise<Float32Array> {
    const info = this.info(name);
    const data = await this.#values(info);
    if (!options.allowNonFinite) {
      const bad = firstNonFinite(data);
      if (bad >= 0) {
        throw new CheckpointError(
          this.path,
          name,
          `value ${data[bad]} at flat index ${bad} (expected finite weights)`,
        );
      }
    }
    return data;
  }

  async #values(info: TorchTensorInfo): Promise<Float32Array> {
    const n = numel(info.shape);
    const item = DTYPE_SIZES[info.dtype];
    if (n === 0) return new Float32Array(0);
    const last = lastIndex(info.shape, info.stride);
    const bytes = await this.#zip.read(info.member, info.offset * item, (last + 1) * item);
    const values = decodeToFloat32(bytes, info.dtype);
    if (isContiguous(info.shape, info.stride)) return values;
    return gather(values, info.shape, info.stride);
  }

  /** Closes the archive. */
  close(): void {
    this.#zip.close();
  }

  /** Closes the archive (`using` support). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens a PyTorch ZIP checkpoint (`torch.save` since PyTorch 1.6) and reads its pickle under
 * the state-dict whitelist. Fails with a {@linkcode CheckpointError} naming the file when it is
 * not such an archive (a legacy or TorchScript file), when its pickle uses anything outside
 * the whitelist (a pickled module or class instance: save `model.state_dict()` instead), or
 * when a tensor's bytes lie outside its storage.
 *
 * @example
 * ```ts ignore
 * import { openTorchCheckpoint } from "../../mod.ts";
 * using ckpt = await openTorchCheckpoint("pytorch_model.bin");
 * const w = await ckpt.read("vision_model.embeddings.class_embedding");
 * ```
 */
export async function openTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  await refuseNonZip(path);
  const zip = await StoredZip.open(path);
  try {
    const root = archiveRoot(path, zip);
    await checkByteOrder(path, zip, root);
    const pickle = await zip.read(`${root}/data.pkl`);
    let value: PickleValue;
    try {
      value = readPickle(pickle, stateDictRules(path, zip, root), `${root}/data.pkl`);
    } catch (err) {
      if (err instanceof PickleError) throw new CheckpointError(path, undefined, err.message);
      throw err;
    }
    const tensors = new Map<string, TorchTensorInfo>();
    collectTensors(path, root, value, "", tensors, new Walk(path, pickle.length));
    return new TorchCheckpoint(path, zip, tensors);
  } catch (err) {
    zip.close();
    throw err;
  }
}

/**
 * True when `path`'s name marks a PyTorch checkpoint (`.pt`, `.pth`, `.bin`, `.ckpt`).
 *
 * @example
 * ```ts
 * import { isTorchCheckpointPath } from "./torch_zip.ts";
 * isTorchCheckpointPath("pytorch_model.bin"); // true
 * ```
 */
export function isTorchCheckpointPath(path: string): boolean {
  return /\.(pt|pth|bin|ckpt)$/i.test(path);
}

/** Legacy (pre-1.6) torch.save files start with a pickle, not a ZIP signature. */
async function refuseNonZip(path: string): Promise<void> {
  let head: Uint8Array;
  try {
    using file = await Deno.open(path, { read: true });
    head = new Uint8Array(4);
    await file.read(head);
  } catch (err) {
    throw new CheckpointError(path, undefined, `cannot open: ${(err as Error).message}`);
  }
  if (head[0] === 0x50 && head[1] === 0x4b) return;
  const hint = head[0] === 0x80
    ? "a legacy (pre-1.6) torch.save file; load it in Python and save it again with a " +
      "current PyTorch (or as safetensors)"
    : "not a PyTorch ZIP checkpoint";
  throw new CheckpointError(path, undefined, hint);
}

/** The archive's top folder: the one holding `data.pkl` (named after the file by torch). */
function archiveRoot(path: string, zip: StoredZip): string {
  const roots = zip.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n)).map((n) => n.split("/")[0]);
  if (roots.length === 1) return roots[0];
  const torchScript = zip.names().some((n) => /^[^/]+\/constants\.pkl$/.test(n));
  const problem = roots.length > 1
    ? `holds several data.pkl members (${roots.join(", ")})`
    : torchScript
    ? "is a TorchScript archive (torch.jit.save), not a state dict: save model.state_dict()"
    : "is a ZIP archive without <folder>/data.pkl (not written by torch.save)";
  throw new CheckpointError(path, undefined, problem);
}

async function checkByteOrder(path: string, zip: StoredZip, root: string): Promise<void> {
  const member = `${root}/byteorder`;
  if (!zip.member(member)) return; // older writers: always little-endian
  const order = new TextDecoder().decode(await zip.read(member)).trim();
  if (order !== "little") {
    throw new CheckpointError(path, undefined, `byte order "${order}" (only little-endian)`);
  }
}

/** The whitelist and how each allowed call builds its value. */
function stateDictRules(path: string, zip: StoredZip, root: string): PickleRules {
  return {
    globals: TORCH_ALLOWED_GLOBALS,
    call(fn: PickleGlobal, args: PickleValue[]): PickleValue {
      switch (fn.fullName) {
        case ORDERED_DICT:
          if (args.length !== 0) throw new Error("expected OrderedDict() with no arguments");
          return new Map();
        case REBUILD_TENSOR:
        case REBUILD_TENSOR_V1:
          return rebuildTensor(args);
        case ENCODE:
          if (typeof args[0] !== "string" || !/^latin-?1$/.test(String(args[1]))) {
            throw new Error('expected _codecs.encode(text, "latin1")');
          }
          return Uint8Array.from(args[0], (c) => c.charCodeAt(0) & 0xff);
        case REBUILD_PARAMETER:
          if (!(args[0] instanceof TensorRef)) throw new Error("expected a tensor");
          return args[0];
      }
      throw new Error("this global cannot be called");
    },
    persistentLoad(id: PickleValue): PickleValue {
      return loadStorage(path, zip, root, id);
    },
  };
}

/** `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`. */
function rebuildTensor(args: PickleValue[]): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new Error("first argument is not a storage");
  if (!isCount(offset)) throw new Error(`storage offset ${String(offset)} is not a count`);
  if (!isCounts(size) || !isCounts(stride) || size.length !== stride.length) {
    throw new Error("size and stride must be tuples of counts of equal length");
  }
  const t = new TensorRef(storage, offset, size, stride);
  if (numel(size) > 0 && offset + lastIndex(size, stride) >= storage.numel) {
    throw new Error(
      `a tensor of shape ${shapeText(size)} at offset ${offset} runs past its storage ` +
        `(${storage.numel} elements)`,
    );
  }
  return t;
}

/** `('storage', storage_type, key, location, numel)` → the storage member, checked. */
function loadStorage(path: string, zip: StoredZip, root: string, id: PickleValue): StorageRef {
  if (!Array.isArray(id) || id.length !== 5 || id[0] !== "storage") {
    throw new Error("expected ('storage', type, key, location, numel)");
  }
  const [, type, key, , count] = id;
  if (!(type instanceof PickleGlobal) || typeof key !== "string" || !isCount(count)) {
    throw new Error("expected ('storage', type, key, location, numel)");
  }
  const dtype = Object.hasOwn(TORCH_STORAGE_DTYPES, type.name)
    ? TORCH_STORAGE_DTYPES[type.name]
    : undefined;
  if (type.module !== "torch" || !dtype) throw new Error(`${type.fullName} is not a storage type`);
  const member = `${root}/data/${key}`;
  const m = zip.member(member);
  if (!m) throw new CheckpointError(path, undefined, `storage member ${member} is missing`);
  if (m.size < count * DTYPE_SIZES[dtype]) {
    throw new CheckpointError(
      path,
      undefined,
      `storage member ${member} has ${m.size} bytes, fewer than ${count} × ${dtype}`,
    );
  }
  return new StorageRef(key, dtype, count);
}

/**
 * Bounds the walk over the pickle's containers: the pickle can refer to one container from
 * many places (its memo), so a few hundred bytes can describe a cycle or a structure that
 * doubles at every level. A state dict is a shallow tree (a container shared by two keys is
 * walked under both), so the walk may visit at most as many entries as the pickle has bytes,
 * nest at most 64 deep, and never enter a container it is inside of.
 */
class Walk {
  #left: number;
  readonly #inside = new Set<object>();

  constructor(readonly path: string, pickleBytes: number) {
    this.#left = pickleBytes;
  }

  /** Runs `body` inside `container` at `prefix`, or throws naming what is wrong. */
  enter(container: object, prefix: string, body: () => void): void {
    const fail = (problem: string) =>
      new CheckpointError(this.path, undefined, `${problem} at "${prefix}": not a state dict`);
    if (this.#inside.has(container)) throw fail("the pickle holds a container inside itself");
    if (this.#inside.size >= 64) throw fail("containers nested more than 64 deep");
    if (--this.#left < 0) throw fail("shared containers expand past the pickle's size");
    this.#inside.add(container);
    try {
      body();
    } finally {
      this.#inside.delete(container);
    }
  }
}

/** Walks dicts and lists, recording every tensor under its dotted path. */
function collectTensors(
  path: string,
  root: string,
  value: PickleValue,
  prefix: string,
  out: Map<string, TorchTensorInfo>,
  walk: Walk,
): void {
  const child = (key: string | number) => prefix === "" ? String(key) : `${prefix}.${key}`;
  if (value instanceof TensorRef) {
    const name = prefix === "" ? "tensor" : prefix;
    if (out.has(name)) throw new CheckpointError(path, name, "two tensors flatten to this name");
    out.set(name, {
      name,
      dtype: value.storage.dtype,
      shape: value.shape,
      stride: value.stride,
      member: `${root}/data/${value.storage.key}`,
      offset: value.offset,
    });
  } else if (value instanceof Map) {
    walk.enter(value, prefix, () => {
      for (const [k, v] of value) collectTensors(path, root, v, child(k), out, walk);
    });
  } else if (Array.isArray(value)) {
    walk.enter(value, prefix, () => {
      value.forEach((v, i) => collectTensors(path, root, v, child(i), out, walk));
    });
  }
}

function isCount(v: PickleValue): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isCounts(v: PickleValue): v is number[] {
  return Array.isArray(v) && v.every(isCount);
}

/** The highest element offset a strided view touches, relative to its first element. */
function lastIndex(shape: readonly number[], stride: readonly number[]): number {
  let last = 0;
  shape.forEach((d, i) => last += (d - 1) * stride[i]);
  return last;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** Copies a strided view into row-major order. */
function gather(
  values: Float32Array,
  shape: readonly number[],
  stride: readonly number[],
): Float32Array {
  const out = new Float32Array(numel(shape));
  const index = new Array(shape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let at = 0;
    for (let d = 0; d < shape.length; d++) at += index[d] * stride[d];
    out[i] = values[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/**
 * A sharded PyTorch checkpoint: Hugging Face's `pytorch_model.bin.index.json`
 * (`{"weight_map": {tensor: shard file}}`) over `.bin` shards, each opened with
 * {@linkcode openTorchCheckpoint}.
 *
 * @example
 * ```ts ignore
 * import { openTorchSharded } from "../../mod.ts";
 * using ckpt = await openTorchSharded("clip-vit-large/pytorch_model.bin.index.json");
 * console.log(ckpt.names().length);
 * ```
 */
export class ShardedTorchCheckpoint implements TensorSource, Disposable {
  readonly #where: Map<string, TorchCheckpoint>;

  /** Use {@linkcode openTorchSharded}; this wraps shards already checked against the index. */
  constructor(
    /** The index file. */
    readonly path: string,
    /** The shards, in index order. */
    readonly shards: readonly TorchCheckpoint[],
  ) {
    this.#where = new Map();
    for (const shard of shards) for (const name of shard.names()) this.#where.set(name, shard);
  }

  /** The index file's path, for messages. */
  get label(): string {
    return this.path;
  }

  /** Tensor names, shard by shard. */
  names(): string[] {
    return [...this.#where.keys()];
  }

  /** True when a shard holds `name`. */
  has(name: string): boolean {
    return this.#where.has(name);
  }

  /** Shape of `name`. */
  shape(name: string): readonly number[] {
    return this.#shard(name).shape(name);
  }

  /** Stored dtype of `name`. */
  dtype(name: string): DType {
    return this.#shard(name).dtype(name);
  }

  /** Reads one tensor as float32 from its shard. */
  read(name: string, options: ReadOptions = {}): Promise<Float32Array> {
    return this.#shard(name).read(name, options);
  }

  #shard(name: string): TorchCheckpoint {
    const shard = this.#where.get(name);
    if (!shard) throw new CheckpointError(this.path, name, "no such tensor in this checkpoint");
    return shard;
  }

  /** Closes every shard. */
  close(): void {
    for (const s of this.shards) s.close();
  }

  /** Closes every shard (`using` support). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens a sharded PyTorch checkpoint from its `*.bin.index.json`, checking that every tensor
 * the index lists is in its shard and that no shard holds a tensor the index does not list.
 *
 * @example
 * ```ts ignore
 * import { openTorchSharded } from "../../mod.ts";
 * using ckpt = await openTorchSharded("pytorch_model.bin.index.json");
 * ```
 */
export async function openTorchSharded(indexPath: string): Promise<ShardedTorchCheckpoint> {
  const fail = (problem: string, tensor?: string) =>
    new CheckpointError(indexPath, tensor, problem);
  let map: unknown;
  try {
    map = JSON.parse(await Deno.readTextFile(indexPath)).weight_map;
  } catch (err) {
    throw fail(`not a readable JSON index (${(err as Error).message})`);
  }
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw fail(`expected {"weight_map": {tensor: shard file}}`);
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== "string" || shard === "" || isAbsolute(shard)) {
      throw fail(`weight_map value ${JSON.stringify(shard)} is not a relative file name`, name);
    }
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  const shards: TorchCheckpoint[] = [];
  try {
    for (const [file, names] of byShard) {
      const shard = await openTorchCheckpoint(join(dirname(indexPath), file));
      shards.push(shard);
      const listed = new Set(names);
      for (const name of names) {
        if (!shard.has(name)) throw fail(`the index puts it in "${file}", which lacks it`, name);
      }
      for (const name of shard.names()) {
        if (!listed.has(name)) throw fail(`found in "${file}" but not listed there`, name);
      }
    }
  } catch (err) {
    shards.forEach((s) => s.close());
    throw err;
  }
  return new ShardedTorchCheckpoint(indexPath, shards);
}
