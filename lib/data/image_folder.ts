/**
 * Folders of PNG/JPEG pictures as CLIP inputs, read as they are asked for (never the whole
 * folder in memory): unlabelled auxiliary data (every picture under the folder, sub-folders
 * included, as an ImageNet or COCO tree holds them) or a task's labelled data (one sub-folder
 * per class, as torchvision's `ImageFolder`). Pictures go through CLIP's preprocessing
 * (`clip_preprocess.ts`), so the pixel values are already normalised with CLIP's mean and
 * standard deviation: use them with no further pixel normalisation.
 *
 * @module
 */
import { join, relative } from "node:path";
import type { ImageSet } from "./dataset.ts";
import type { AuxSource } from "./auxiliary.ts";
import { batchOrder } from "./batches.ts";
import { type DecodedImage, decodeImage } from "./images.ts";
import { decodeJpegLibjpeg } from "./jpeg_color.ts";
import { CLIP_IMAGE_SIZE, clipPreprocess, type ClipPreprocessOptions } from "./clip_preprocess.ts";

const IMAGE_FILE = /\.(png|jpe?g)$/i;

/** Options of the folder readers. */
export interface ImageFolderOptions extends ClipPreprocessOptions {
  /**
   * For a labelled folder: the class names of the task's head, in label order. Sub-folders
   * are matched to them by name (or, when no name matches, read as label numbers 0…K−1).
   * Without it, the sorted sub-folder names are the classes.
   */
  classes?: readonly string[];
}

/** One batch read from a folder: an image set plus where its pictures came from. */
export interface FolderBatch extends ImageSet {
  /** Positions of the pictures in the folder's file list. */
  readonly indices: Int32Array;
}

/**
 * A folder of pictures read on demand, CLIP-preprocessed (build it with
 * {@linkcode clipImageFolder} or {@linkcode clipLabelledFolder}). Usable as an
 * {@linkcode AuxSource}; its pixel values are CLIP-normalised rather than in [0, 1].
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import pngjs from "pngjs";
 * import { clipImageFolder } from "../../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.png`, pngjs.PNG.sync.write(new pngjs.PNG({ width: 40, height: 30 })));
 * const folder = await clipImageFolder(dir, { size: 16 });
 * const set = await folder.images(0, 2); // wraps around: the one picture twice
 * equal(folder.count, 1);
 * equal(set.count, 2);
 * equal(set.pixels.length, 2 * 3 * 16 * 16);
 * deepEqual(set.pixels.subarray(0, 768), set.pixels.subarray(768));
 * ```
 */
export class ClipImageFolder implements AuxSource {
  /** Always 3 (RGB). */
  readonly channels = 3;

  /** Wraps a file list; use {@linkcode clipImageFolder} or {@linkcode clipLabelledFolder}. */
  constructor(
    /** The folder. */
    readonly path: string,
    /** Picture paths, in a fixed (sorted) order. */
    readonly files: readonly string[],
    /** Label of each picture (empty when unlabelled). */
    readonly labels: Int32Array,
    /** Class names by label (empty when unlabelled). */
    readonly classes: readonly string[],
    /** Preprocessing settings (side, mean, std). */
    readonly preprocess: ClipPreprocessOptions = {},
  ) {}

  /** `clip-folder:PATH`, for reports. */
  get name(): string {
    return `clip-folder:${this.path}`;
  }

  /** Output side in pixels. */
  get size(): number {
    return this.preprocess.size ?? CLIP_IMAGE_SIZE;
  }

  /** Number of pictures. */
  get count(): number {
    return this.files.length;
  }

  /** Reads and preprocesses picture `index` ([3, size, size]); errors name the file. */
  async read(index: number): Promise<Float32Array> {
    const file = this.files[index];
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (err) {
      throw new Error(`${file}: cannot read: ${(err as Error).message}`);
    }
    return clipPreprocess(decodePicture(bytes, file), this.preprocess);
  }

  /** Pictures `start` … `start + n − 1` (wrapping around the folder) as an image set. */
  images(start: number, n: number): Promise<FolderBatch> {
    const indices = Int32Array.from({ length: n }, (_, i) => (start + i) % this.count);
    return this.gather(indices);
  }

  /** The pictures at `indices` as an image set. */
  async gather(indices: Int32Array): Promise<FolderBatch> {
    const per = 3 * this.size * this.size;
    const pixels = new Float32Array(indices.length * per);
    for (let i = 0; i < indices.length; i++) pixels.set(await this.read(indices[i]), i * per);
    const labels = this.labels.length ? Int32Array.from(indices, (k) => this.labels[k]) : [];
    return {
      count: indices.length,
      channels: 3,
      size: this.size,
      pixels,
      labels: Int32Array.from(labels),
      classes: this.classes,
      indices,
    };
  }

  /**
   * The whole folder in batches, read as the loop asks for them: in file order, or shuffled
   * by `seed` (and `epoch`) with the same permutation as `batches`.
   */
  async *batches(
    batchSize: number,
    options: { seed?: number; epoch?: number } = {},
  ): AsyncGenerator<FolderBatch> {
    if (!Number.isSafeInteger(batchSize) || batchSize <= 0) {
      throw new Error(`batches: batchSize must be a positive integer, got ${batchSize}`);
    }
    const order = batchOrder(this.count, { batchSize, ...options });
    for (let start = 0; start < order.length; start += batchSize) {
      yield await this.gather(order.slice(start, start + batchSize));
    }
  }
}

/**
 * Decodes a PNG or JPEG file's bytes, JPEG colour as libjpeg makes it (see `jpeg_color.ts`),
 * so pictures match what PIL gives CLIP's PyTorch pipelines.
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import pngjs from "pngjs";
 * import { decodePicture } from "./image_folder.ts";
 * const png = pngjs.PNG.sync.write(new pngjs.PNG({ width: 3, height: 2 }));
 * const image = decodePicture(new Uint8Array(png), "a.png");
 * equal(image.width, 3);
 * equal(image.height, 2);
 * equal(image.rgba.length, 3 * 2 * 4);
 * throws(() => decodePicture(new Uint8Array([1, 2, 3]), "b.png"), /b\.png/); // names the file
 * ```
 */
export function decodePicture(bytes: Uint8Array, path: string): DecodedImage {
  return bytes[0] === 0xff && bytes[1] === 0xd8
    ? decodeJpegLibjpeg(bytes, path)
    : decodeImage(bytes, path);
}

/**
 * Every PNG/JPEG under `path` (sub-folders included, sorted by path) as unlabelled CLIP
 * inputs. Fails when the folder cannot be read or holds no pictures.
 *
 * @example
 * ```ts
 * import { equal, rejects } from "node:assert/strict";
 * import pngjs from "pngjs";
 * import { clipImageFolder } from "../../mod.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/sub`);
 * await Deno.writeFile(`${dir}/sub/b.png`, pngjs.PNG.sync.write(new pngjs.PNG({ width: 8, height: 8 })));
 * equal((await clipImageFolder(dir)).count, 1); // sub-folders included
 * await rejects(clipImageFolder(`${dir}/none`));
 * ```
 */
export async function clipImageFolder(
  path: string,
  options: ClipPreprocessOptions = {},
): Promise<ClipImageFolder> {
  const files = await imageFiles(path);
  if (files.length === 0) throw new Error(`${path}: no .png, .jpg or .jpeg files in this folder`);
  return new ClipImageFolder(path, files, new Int32Array(0), [], options);
}

/**
 * A labelled folder: one sub-folder per class holding its pictures (sub-folders inside a
 * class included). With `options.classes` (the head's class names), sub-folders are matched
 * by name, or read as label numbers when none matches by name; every sub-folder must match.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import pngjs from "pngjs";
 * import { clipLabelledFolder } from "../../mod.ts";
 * const dir = await Deno.makeTempDir();
 * for (const c of ["cat", "dog"]) {
 *   await Deno.mkdir(`${dir}/${c}`);
 *   await Deno.writeFile(`${dir}/${c}/1.png`, pngjs.PNG.sync.write(new pngjs.PNG({ width: 8, height: 8 })));
 * }
 * const task = await clipLabelledFolder(dir, { classes: ["dog", "cat", "bird"] });
 * deepEqual(task.labels, new Int32Array([1, 0])); // cat is class 1, dog class 0
 * ```
 */
export async function clipLabelledFolder(
  path: string,
  options: ImageFolderOptions = {},
): Promise<ClipImageFolder> {
  const folders = (await listDir(path)).filter((e) => e.isDirectory).map((e) => e.name).sort();
  if (folders.length === 0) throw new Error(`${path}: no class sub-folders`);
  const classes = options.classes ?? folders;
  const labelOf = classLabels(path, folders, classes);
  const files: string[] = [];
  const labels: number[] = [];
  for (const folder of folders) {
    const found = await imageFiles(join(path, folder));
    if (found.length === 0) throw new Error(`${join(path, folder)}: no .png, .jpg or .jpeg files`);
    files.push(...found);
    labels.push(...found.map(() => labelOf.get(folder)!));
  }
  return new ClipImageFolder(path, files, Int32Array.from(labels), classes, options);
}

/** Sub-folder → label: by class name, else as a number; errors list what did not match. */
function classLabels(
  path: string,
  folders: readonly string[],
  classes: readonly string[],
): Map<string, number> {
  const byName = new Map(classes.map((c, i) => [c, i]));
  const named = folders.filter((f) => byName.has(f));
  const numeric = folders.every((f) => /^\d+$/.test(f) && Number(f) < classes.length);
  if (named.length === 0 && numeric) return new Map(folders.map((f) => [f, Number(f)]));
  const unknown = folders.filter((f) => !byName.has(f));
  if (unknown.length > 0) {
    const shown = classes.slice(0, 8).map((c) => JSON.stringify(c)).join(", ");
    throw new Error(
      `${path}: sub-folder(s) ${unknown.slice(0, 5).map((f) => `"${f}"`).join(", ")} match no ` +
        `class of the head (${classes.length} classes: ${shown}${classes.length > 8 ? ", …" : ""})`,
    );
  }
  return new Map(folders.map((f) => [f, byName.get(f)!]));
}

async function listDir(path: string): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(path)) entries.push(e);
  } catch (err) {
    throw new Error(`${path}: cannot list the folder: ${(err as Error).message}`);
  }
  return entries;
}

/** Picture files under `root`, recursively (symlinked folders not followed), sorted by path. */
async function imageFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await listDir(dir)) {
      const full = join(dir, e.name);
      if (e.isDirectory) await walk(full);
      else if ((e.isFile || e.isSymlink) && IMAGE_FILE.test(e.name)) out.push(full);
    }
  };
  await walk(root);
  const key = (p: string) => relative(root, p);
  return out.sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}
