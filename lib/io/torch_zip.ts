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
import { CheckpointError } from "./errors.ts";
import { Checkpoint, type CheckpointFormat, type OpenCheckpointOptions } from "./checkpoint.ts";
import {
  assertShardsExist,
  checkShardAgainstIndex,
  readShardIndex,
  type ShardIndex,
  shardPath,
} from "./hf_index.ts";
import { decodeToFloat32, type DType, DTYPE_SIZES } from "./dtype.ts";
import { StoredZip } from "./zip_store.ts";
import { foreignZipProblem } from "./format.ts";
import {
  PickleError,
  PickleGlobal,
  PickleObject,
  type PickleRules,
  type PickleValue,
  readPickle,
} from "./pickle.ts";
import { numel, shapeText } from "../tensor/host.ts";

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
 * A PyTorch ZIP checkpoint opened for lazy reading (see {@linkcode openTorchCheckpoint}, or
 * `openCheckpoint` for any format).
 *
 * @example
 * ```ts ignore
 * import { openTorchCheckpoint } from "./torch_zip.ts";
 * using ckpt = await openTorchCheckpoint("open_clip_vit_b32.pt");
 * console.log(ckpt.names().length, ckpt.shape("visual.proj"), ckpt.dtype("visual.proj"));
 * ```
 */
export class TorchCheckpoint extends Checkpoint<TorchTensorInfo> {
  /** Always `"pytorch"`. */
  readonly format: CheckpointFormat = "pytorch";
  /** PyTorch files store no string metadata: always `{}`. */
  readonly metadata: Readonly<Record<string, string>> = Object.freeze({});
  readonly #zip: StoredZip;

  /** Use {@linkcode openTorchCheckpoint}; this wraps an archive already validated. */
  constructor(
    path: string,
    zip: StoredZip,
    tensors: Map<string, TorchTensorInfo>,
    options: OpenCheckpointOptions = {},
  ) {
    super(path, tensors, options);
    this.#zip = zip;
  }

  /** The one file: the archive. */
  get files(): readonly string[] {
    return [this.path];
  }

  /** Reads the storage bytes `info`'s view covers, as float32 in row-major order. */
  protected async readValues(info: TorchTensorInfo): Promise<Float32Array> {
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
 * import { openTorchCheckpoint } from "./torch_zip.ts";
 * using ckpt = await openTorchCheckpoint("pytorch_model.bin");
 * const w = await ckpt.read("vision_model.embeddings.class_embedding");
 * ```
 */
export async function openTorchCheckpoint(
  path: string,
  options: OpenCheckpointOptions = {},
): Promise<TorchCheckpoint> {
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
    return new TorchCheckpoint(path, zip, tensors, options);
  } catch (err) {
    zip.close();
    throw err;
  }
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
  const problem = foreignZipProblem(zip.names()) ??
    (roots.length > 1
      ? `holds several data.pkl members (${roots.join(", ")})`
      : torchScript
      ? "is a TorchScript archive (torch.jit.save), not a state dict: save model.state_dict()"
      : "is a ZIP archive without <folder>/data.pkl (not written by torch.save)");
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

/** Where one tensor of a sharded PyTorch checkpoint lives: its shard and place in it. */
export interface ShardedTorchTensorInfo extends TorchTensorInfo {
  /** The shard holding it. */
  readonly shard: TorchCheckpoint;
}

/**
 * A sharded PyTorch checkpoint: Hugging Face's `pytorch_model.bin.index.json`
 * (`{"weight_map": {tensor: shard file}}`) over `.bin` shards, each opened with
 * {@linkcode openTorchCheckpoint}.
 *
 * @example
 * ```ts ignore
 * import { openTorchSharded } from "./torch_zip.ts";
 * using ckpt = await openTorchSharded("clip-vit-large/pytorch_model.bin.index.json");
 * console.log(ckpt.names().length);
 * ```
 */
export class ShardedTorchCheckpoint extends Checkpoint<ShardedTorchTensorInfo> {
  /** Always `"pytorch"`. */
  readonly format: CheckpointFormat = "pytorch";
  /** PyTorch files store no string metadata: always `{}`. */
  readonly metadata: Readonly<Record<string, string>> = Object.freeze({});

  /** Use {@linkcode openTorchSharded}; this wraps shards already checked against the index. */
  constructor(
    path: string,
    /** The shards, in index order. */
    readonly shards: readonly TorchCheckpoint[],
    options: OpenCheckpointOptions = {},
  ) {
    const tensors = new Map<string, ShardedTorchTensorInfo>();
    for (const shard of shards) {
      for (const name of shard.names()) tensors.set(name, { ...shard.info(name), shard });
    }
    super(path, tensors, options);
  }

  /** The shard files, in index order. */
  get files(): readonly string[] {
    return this.shards.map((s) => s.path);
  }

  /** The shard holding `info`. */
  protected override fileOf(info: ShardedTorchTensorInfo): string {
    return info.shard.path;
  }

  /** Reads `info` from its shard (the finiteness check is the caller's). */
  protected readValues(info: ShardedTorchTensorInfo): Promise<Float32Array> {
    return info.shard.read(info.name, { allowNonFinite: true });
  }

  /** Closes every shard. */
  close(): void {
    for (const s of this.shards) s.close();
  }
}

/**
 * Opens a sharded PyTorch checkpoint from its `*.bin.index.json`, checking that every tensor
 * the index lists is in its shard and that no shard holds a tensor the index does not list.
 *
 * @example
 * ```ts ignore
 * import { openTorchSharded } from "./torch_zip.ts";
 * using ckpt = await openTorchSharded("pytorch_model.bin.index.json");
 * ```
 */
export async function openTorchSharded(
  indexPath: string,
  options: OpenCheckpointOptions = {},
): Promise<ShardedTorchCheckpoint> {
  return await openTorchShards(await readShardIndex(indexPath), options);
}

/**
 * Opens the shards of a parsed index (the index says they are PyTorch files).
 *
 * @example
 * ```ts ignore
 * import { openTorchShards } from "./torch_zip.ts";
 * import { readShardIndex } from "./hf_index.ts";
 * using ckpt = await openTorchShards(await readShardIndex("pytorch_model.bin.index.json"));
 * ```
 */
export async function openTorchShards(
  index: ShardIndex,
  options: OpenCheckpointOptions = {},
): Promise<ShardedTorchCheckpoint> {
  await assertShardsExist(index);
  const shards: TorchCheckpoint[] = [];
  try {
    for (const file of index.shards.keys()) {
      const shard = await openTorchCheckpoint(shardPath(index, file), options);
      shards.push(shard);
      checkShardAgainstIndex(index, file, shard.path, shard.names());
    }
  } catch (err) {
    shards.forEach((s) => s.close());
    throw err;
  }
  return new ShardedTorchCheckpoint(index.path, shards, options);
}
