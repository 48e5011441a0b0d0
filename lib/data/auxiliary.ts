/**
 * Auxiliary image sources: unlabelled inputs that belong to no task, used by RI (and by
 * anything that probes a model away from task data). Four kinds: Gaussian noise, drawn
 * shapes, a folder of PNG/JPEG pictures, and a safetensors file holding an image tensor. All
 * yield images at the model's geometry ([channels, size, size], values in [0, 1]), and image
 * `i` of a source is always the same, so a run is repeatable from its seed.
 *
 * @module
 */
import { join } from "node:path";
import { type ImageSet } from "./dataset.ts";
import { decodeImage, toModelImage } from "./images.ts";
import { Rng } from "../tensor/random.ts";
import { drawShapesImage } from "./shapes.ts";
import { SafetensorsReader } from "../io/safetensors.ts";
import { CheckpointError } from "../io/errors.ts";
import { decodeToFloat32, DTYPE_SIZES } from "../io/dtype.ts";
import { resizeSquare } from "./images.ts";

/** A source of unlabelled images at a fixed geometry. */
export interface AuxSource {
  /** What it is, for reports (`noise`, `shapes`, `folder:PATH`, …). */
  readonly name: string;
  /** Channels per image. */
  readonly channels: number;
  /** Image side in pixels. */
  readonly size: number;
  /** Number of distinct images (Infinity for generated sources). */
  readonly count: number;
  /**
   * Images `start` … `start + n − 1` as an unlabelled set. Finite sources wrap around, so
   * any range is valid.
   */
  images(start: number, n: number): Promise<ImageSet>;
}

/** Geometry of the images a source must produce. */
export interface AuxGeometry {
  /** Channels (1 or 3). */
  channels: number;
  /** Side in pixels. */
  size: number;
}

function unlabelled(channels: number, size: number, pixels: Float32Array): ImageSet {
  const count = pixels.length / (channels * size * size);
  return { count, channels, size, pixels, labels: new Int32Array(0), classes: [] };
}

function generated(
  name: string,
  geometry: AuxGeometry,
  draw: (index: number) => Float32Array,
): AuxSource {
  const { channels, size } = geometry;
  return {
    name,
    channels,
    size,
    count: Infinity,
    images(start: number, n: number) {
      const per = channels * size * size;
      const pixels = new Float32Array(n * per);
      for (let i = 0; i < n; i++) pixels.set(draw(start + i), i * per);
      return Promise.resolve(unlabelled(channels, size, pixels));
    },
  };
}

/**
 * Gaussian noise images: every pixel 0.5 + std·z, clipped to [0, 1] (z standard normal).
 *
 * @example
 * ```ts
 * import { deepEqual, equal, ok } from "node:assert/strict";
 * import { noiseSource } from "./auxiliary.ts";
 * const noise = noiseSource({ channels: 1, size: 28 }, 0);
 * const set = await noise.images(0, 8);
 * equal(set.count, 8);
 * equal(set.pixels.length, 8 * 28 * 28);
 * ok(set.pixels.every((v) => v >= 0 && v <= 1)); // clipped to [0, 1]
 * const third = (await noise.images(3, 1)).pixels; // image 3 is the same whatever the range
 * deepEqual(third, set.pixels.subarray(3 * 784, 4 * 784));
 * ```
 */
export function noiseSource(geometry: AuxGeometry, seed: number, std = 0.25): AuxSource {
  const per = geometry.channels * geometry.size ** 2;
  return generated(`noise(std ${std})`, geometry, (i) => {
    const z = new Rng(seed, `noise/${i}`).normals(per, std);
    for (let k = 0; k < per; k++) z[k] = Math.min(1, Math.max(0, 0.5 + z[k]));
    return z;
  });
}

/**
 * Procedurally drawn shapes (lines, curves, polygons, ellipses; see `shapes.ts`).
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { shapesSource } from "./auxiliary.ts";
 * const shapes = shapesSource({ channels: 1, size: 28 }, 0);
 * const set = await shapes.images(0, 4);
 * equal(set.count, 4);
 * equal(set.pixels.length, 4 * 28 * 28);
 * equal(shapes.count, Infinity); // generated: any range is valid
 * deepEqual((await shapes.images(0, 4)).pixels, set.pixels); // the same pictures every time
 * ```
 */
export function shapesSource(geometry: AuxGeometry, seed: number): AuxSource {
  return generated(
    "shapes",
    geometry,
    (i) => drawShapesImage(seed, i, geometry.channels, geometry.size),
  );
}

const IMAGE_FILE = /\.(png|jpe?g)$/i;

/**
 * The PNG and JPEG files of a folder (not its subfolders), in name order, converted to the
 * model's geometry when read (and kept in memory once converted).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import pngjs from "pngjs";
 * import { folderSource } from "./auxiliary.ts";
 * const dir = await Deno.makeTempDir();
 * const png = new pngjs.PNG({ width: 8, height: 8 });
 * await Deno.writeFile(`${dir}/a.png`, pngjs.PNG.sync.write(png));
 * const src = await folderSource(dir, { channels: 1, size: 28 });
 * equal(src.count, 1);
 * equal((await src.images(0, 3)).pixels.length, 3 * 28 * 28); // wraps around
 * ```
 */
export async function folderSource(path: string, geometry: AuxGeometry): Promise<AuxSource> {
  const files: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) {
      if (entry.isFile && IMAGE_FILE.test(entry.name)) files.push(entry.name);
    }
  } catch (err) {
    throw new Error(`aux folder ${path}: cannot list: ${(err as Error).message}`);
  }
  if (files.length === 0) throw new Error(`aux folder ${path}: no .png, .jpg or .jpeg files`);
  files.sort();
  const { channels, size } = geometry;
  const converted = new Map<number, Float32Array>();
  const read = async (k: number) => {
    let img = converted.get(k);
    if (!img) {
      const file = join(path, files[k]);
      img = toModelImage(decodeImage(await Deno.readFile(file), file), channels, size);
      converted.set(k, img);
    }
    return img;
  };
  return {
    name: `folder:${path}`,
    channels,
    size,
    count: files.length,
    async images(start: number, n: number) {
      const per = channels * size * size;
      const pixels = new Float32Array(n * per);
      for (let i = 0; i < n; i++) pixels.set(await read((start + i) % files.length), i * per);
      return unlabelled(channels, size, pixels);
    },
  };
}

/**
 * Images from one tensor of a safetensors file: [n, height, width] (grey) or
 * [n, channels, height, width] with 1 or 3 channels, square pictures. U8 values are read as
 * 0–255, floating-point values as already in [0, 1]. Images are read from disk by offset
 * as they are asked for, so the file may be larger than memory.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { safetensorsImageSource } from "./auxiliary.ts";
 * import { writeSafetensors } from "../io/safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensors(path, [{ name: "images", shape: [2, 4, 4], data: new Float32Array(32) }]);
 * const src = await safetensorsImageSource(path, { channels: 1, size: 28 });
 * equal(src.count, 2);
 * equal((await src.images(0, 2)).pixels.length, 2 * 28 * 28); // resized from 4×4
 * ```
 */
export async function safetensorsImageSource(
  path: string,
  geometry: AuxGeometry,
  tensor?: string,
): Promise<AuxSource> {
  const reader = await SafetensorsReader.open(path);
  const name = tensor ?? reader.names()[0];
  let info;
  try {
    info = reader.info(name ?? "(none)");
  } finally {
    reader.close();
  }
  const shape = info.shape;
  const fail = (problem: string) => new CheckpointError(path, name, problem);
  if (shape.length !== 3 && shape.length !== 4) {
    throw fail(`shape [${shape}]: expected [n, h, w] or [n, channels, h, w]`);
  }
  const [n, c, h, w] = shape.length === 3 ? [shape[0], 1, shape[1], shape[2]] : shape;
  if (c !== 1 && c !== 3) throw fail(`shape [${shape}]: expected 1 or 3 channels`);
  if (h !== w) throw fail(`shape [${shape}]: images must be square (${h}×${w})`);
  if (n === 0) throw fail("holds no images");
  const isByte = info.dtype === "U8";
  const itemSize = DTYPE_SIZES[info.dtype];
  const per = c * h * w;
  const { channels, size } = geometry;
  const readImage = async (file: Deno.FsFile, k: number) => {
    const bytes = new Uint8Array(per * itemSize);
    await file.seek(info.start + k * per * itemSize, Deno.SeekMode.Start);
    for (let done = 0; done < bytes.length;) {
      const got = await file.read(bytes.subarray(done));
      if (got === null) throw fail(`file ended while reading image ${k}`);
      done += got;
    }
    const values = decodeToFloat32(bytes, info.dtype);
    if (isByte) { for (let i = 0; i < values.length; i++) values[i] /= 255; }
    return convertPlanes(values, c, h, channels, size);
  };
  return {
    name: `safetensors:${path}#${name}`,
    channels,
    size,
    count: n,
    async images(start: number, count: number) {
      const file = await Deno.open(path, { read: true });
      try {
        const pixels = new Float32Array(count * channels * size * size);
        for (let i = 0; i < count; i++) {
          pixels.set(await readImage(file, (start + i) % n), i * channels * size * size);
        }
        return unlabelled(channels, size, pixels);
      } finally {
        file.close();
      }
    },
  };
}

/** [c, side, side] planes to [channels, size, size]: luminance or replication, then resize. */
function convertPlanes(
  values: Float32Array,
  c: number,
  side: number,
  channels: number,
  size: number,
): Float32Array {
  const plane = (k: number) => values.subarray(k * side * side, (k + 1) * side * side);
  let planes: Float32Array[] = Array.from({ length: c }, (_, k) => plane(k));
  if (channels === 1 && c === 3) {
    const grey = new Float32Array(side * side);
    for (let i = 0; i < grey.length; i++) {
      grey[i] = 0.299 * planes[0][i] + 0.587 * planes[1][i] + 0.114 * planes[2][i];
    }
    planes = [grey];
  } else if (channels === 3 && c === 1) planes = [planes[0], planes[0], planes[0]];
  const out = new Float32Array(channels * size * size);
  planes.forEach((p, k) => out.set(resizeSquare(p, side, size), k * size * size));
  return out;
}

/**
 * An auxiliary source by name: `noise`, `shapes`, `folder:PATH` or `safetensors:PATH`
 * (optionally `safetensors:PATH#TENSOR`). What `--aux` on a command line accepts.
 *
 * @example
 * ```ts
 * import { equal, rejects } from "node:assert/strict";
 * import { auxSource } from "../../mod.ts";
 * const src = await auxSource("shapes", { channels: 1, size: 28 }, 0);
 * equal(src.name, "shapes");
 * await rejects(auxSource("photos", { channels: 1, size: 28 }, 0), /unknown auxiliary source "photos"/);
 * ```
 */
export async function auxSource(
  spec: string,
  geometry: AuxGeometry,
  seed: number,
): Promise<AuxSource> {
  if (spec === "noise") return noiseSource(geometry, seed);
  if (spec === "shapes") return shapesSource(geometry, seed);
  if (spec.startsWith("folder:")) return await folderSource(spec.slice(7), geometry);
  if (spec.startsWith("safetensors:")) {
    const [path, tensor] = spec.slice(12).split("#");
    return await safetensorsImageSource(path, geometry, tensor);
  }
  throw new Error(
    `unknown auxiliary source "${spec}": expected noise, shapes, folder:PATH or ` +
      `safetensors:PATH[#TENSOR]`,
  );
}
