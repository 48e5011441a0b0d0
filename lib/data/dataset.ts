/**
 * Image sets in host memory and the benchmark's fixed splits. Each source's 70 000 images
 * are put in one seeded order (the data seed); the first {@linkcode PRETRAIN_REGION} images
 * of that order belong to θ0's pretraining, and then come ten slots of
 * {@linkcode SLOT_SIZE} images, one slot per task of that source, each cut into train,
 * validation and test. Tasks, and pretraining, therefore never share an image, and a task's
 * images do not depend on which suite it is part of.
 *
 * @module
 */
import { Rng } from "../tensor/random.ts";
import { loadSource, type RawSource, type SourceName } from "./sources.ts";
import type { TaskSpec } from "./tasks.ts";
import { applyTransforms } from "./transforms.ts";

/** Images and labels in host memory, laid out [count, channels, size, size], values in [0, 1]. */
export interface ImageSet {
  /** Number of images. */
  readonly count: number;
  /** Channels per image. */
  readonly channels: number;
  /** Side of each (square) image in pixels. */
  readonly size: number;
  /** Pixel values, image after image. */
  readonly pixels: Float32Array;
  /** Label of each image (empty for unlabelled sets). */
  readonly labels: Int32Array;
  /** Class names, by label (empty for unlabelled sets). */
  readonly classes: readonly string[];
}

/** How many images a task uses from its slot. */
export interface SplitSizes {
  /** Training images (at most 3 000). */
  train: number;
  /** Validation images (at most 500). */
  val: number;
  /** Test images (at most 1 000). */
  test: number;
}

/** A task's three splits. */
export interface TaskSplits {
  /** The task. */
  readonly task: TaskSpec;
  /** Training split. */
  readonly train: ImageSet;
  /** Validation split. */
  readonly val: ImageSet;
  /** Test split. */
  readonly test: ImageSet;
}

/** Images per source reserved for pretraining θ0 (at the start of the source's order). */
export const PRETRAIN_REGION = 20_000;
/** Images per task slot: up to 3 000 train, then 500 validation, then 1 000 test. */
export const SLOT_SIZE = 4_500;
const SLOT_LIMITS: SplitSizes = { train: 3_000, val: 500, test: 1_000 };
const SLOTS = 10;

const orders = new Map<string, Int32Array>();

/**
 * The fixed order of a source's images under a data seed.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { sourceOrder } from "./dataset.ts";
 * import { loadSource } from "./sources.ts";
 * const order = sourceOrder(await loadSource("mnist"), 0);
 * equal(order.length, 70_000);
 * deepEqual(order.toSorted(), Int32Array.from(order.keys())); // a permutation of the images
 * ```
 */
export function sourceOrder(source: RawSource, dataSeed: number): Int32Array {
  const key = `${source.name}/${dataSeed}`;
  let order = orders.get(key);
  if (!order) {
    order = new Rng(dataSeed, `split/${source.name}`).permutation(source.count);
    orders.set(key, order);
  }
  return order;
}

/** Copies the chosen images of a source into a 1-channel ImageSet, mapping pixels to [0, 1]. */
function gather(
  source: RawSource,
  indices: ArrayLike<number>,
  label: (y: number) => number,
  classes: readonly string[],
  transform: (x: Float32Array) => Float32Array = (x) => x,
): ImageSet {
  const n = indices.length;
  const px = source.rows * source.cols;
  const pixels = new Float32Array(n * px);
  const labels = new Int32Array(n);
  const image = new Float32Array(px);
  for (let i = 0; i < n; i++) {
    const at = indices[i] * px;
    for (let j = 0; j < px; j++) image[j] = source.pixels[at + j] / 255;
    pixels.set(transform(image), i * px);
    labels[i] = label(source.labels[indices[i]]);
  }
  return { count: n, channels: 1, size: source.rows, pixels, labels, classes };
}

function checkSizes(sizes: SplitSizes): void {
  for (const key of ["train", "val", "test"] as const) {
    const v = sizes[key];
    if (!Number.isSafeInteger(v) || v < 0 || v > SLOT_LIMITS[key]) {
      throw new Error(`split size ${key} = ${v}: expected an integer in [0, ${SLOT_LIMITS[key]}]`);
    }
  }
}

/**
 * A task's train, validation and test images, transformed and relabelled.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { taskSplits } from "./dataset.ts";
 * import { taskByName } from "./tasks.ts";
 * const s = await taskSplits(taskByName("mnist_parity"), { train: 100, val: 10, test: 20 }, 0);
 * deepEqual([s.train.count, s.val.count, s.test.count], [100, 10, 20]);
 * deepEqual(s.train.classes, ["even", "odd"]);
 * ```
 */
export async function taskSplits(
  task: TaskSpec,
  sizes: SplitSizes,
  dataSeed: number,
): Promise<TaskSplits> {
  const source = await loadSource(task.source);
  const indices = taskIndices(task, sizes, sourceOrder(source, dataSeed));
  const label = (y: number) => task.labels.map[y];
  const transform = (x: Float32Array) => applyTransforms(x, source.rows, task.transforms);
  const take = (which: Int32Array) => gather(source, which, label, task.labels.classes, transform);
  return {
    task,
    train: take(indices.train),
    val: take(indices.val),
    test: take(indices.test),
  };
}

/**
 * Which images of its source a task's splits hold, given the source's order (see
 * {@linkcode sourceOrder}): positions in the source, per split.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { sourceOrder, taskIndices } from "./dataset.ts";
 * import { loadSource } from "./sources.ts";
 * import { taskByName } from "./tasks.ts";
 * const order = sourceOrder(await loadSource("mnist"), 0);
 * const idx = taskIndices(taskByName("mnist"), { train: 10, val: 5, test: 5 }, order);
 * deepEqual([idx.train.length, idx.val.length, idx.test.length], [10, 5, 5]);
 * equal(new Set([...idx.train, ...idx.val, ...idx.test]).size, 20); // no image in two splits
 * ```
 */
export function taskIndices(
  task: TaskSpec,
  sizes: SplitSizes,
  order: Int32Array,
): { train: Int32Array; val: Int32Array; test: Int32Array } {
  checkSizes(sizes);
  if (!Number.isSafeInteger(task.slot) || task.slot < 0 || task.slot >= SLOTS) {
    throw new Error(`task "${task.name}": slot ${task.slot} outside 0–${SLOTS - 1}`);
  }
  const start = PRETRAIN_REGION + task.slot * SLOT_SIZE;
  if (start + SLOT_SIZE > order.length) {
    throw new Error(`task "${task.name}": slot ${task.slot} runs past the source's end`);
  }
  const range = (from: number, n: number) => order.subarray(start + from, start + from + n);
  return {
    train: range(0, sizes.train),
    val: range(SLOT_LIMITS.train, sizes.val),
    test: range(SLOT_LIMITS.train + SLOT_LIMITS.val, sizes.test),
  };
}

/**
 * θ0's pretraining data: upright images of both sources from their pretraining regions,
 * labelled 20-way (digits 0–9, then garments as 10–19), interleaved in a seeded order.
 * `perSource` images of each source go to training and `valPerSource` to validation.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { pretrainSplits } from "./dataset.ts";
 * const { train, val } = await pretrainSplits(100, 10, 0);
 * deepEqual([train.count, val.count, train.classes.length], [200, 20, 20]); // both sources, 20-way
 * ```
 */
export async function pretrainSplits(
  perSource: number,
  valPerSource: number,
  dataSeed: number,
): Promise<{ train: ImageSet; val: ImageSet }> {
  if (perSource + valPerSource > PRETRAIN_REGION || perSource < 0 || valPerSource < 0) {
    throw new Error(
      `pretraining sizes ${perSource} + ${valPerSource} per source exceed the ` +
        `${PRETRAIN_REGION}-image region`,
    );
  }
  const names: SourceName[] = ["mnist", "fashion"];
  const sources = await Promise.all(names.map(loadSource));
  const classes = [
    ...sources[0].classes.map((c) => `digit ${c}`),
    ...sources[1].classes,
  ];
  const part = (from: number, n: number) =>
    sources.map((s, k) =>
      gather(s, sourceOrder(s, dataSeed).subarray(from, from + n), (y) => y + 10 * k, classes)
    );
  const mix = (sets: ImageSet[], label: string) =>
    subset(concatSets(sets), new Rng(dataSeed, label).permutation(sets[0].count + sets[1].count));
  return {
    train: mix(part(0, perSource), "pretrain-mix"),
    val: mix(part(perSource, valPerSource), "pretrain-val-mix"),
  };
}

/**
 * Images of several sets of equal geometry, one after another (labels kept; classes from
 * the first set).
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { concatSets } from "./dataset.ts";
 * const a = { count: 1, channels: 1, size: 1, pixels: new Float32Array([0.5]),
 *   labels: new Int32Array([1]), classes: ["a", "b"] };
 * const both = concatSets([a, a]);
 * equal(both.count, 2);
 * deepEqual(both.pixels, new Float32Array([0.5, 0.5]));
 * deepEqual(both.labels, new Int32Array([1, 1]));
 * ```
 */
export function concatSets(sets: readonly ImageSet[]): ImageSet {
  const [first] = sets;
  if (!first) throw new Error("concatSets: no sets given");
  for (const s of sets) {
    if (s.channels !== first.channels || s.size !== first.size) {
      throw new Error(
        `concatSets: geometry ${s.channels}×${s.size}² differs from ${first.channels}×${first.size}²`,
      );
    }
  }
  const count = sets.reduce((n, s) => n + s.count, 0);
  const pixels = new Float32Array(count * first.channels * first.size ** 2);
  const labels = new Int32Array(sets.every((s) => s.labels.length === s.count) ? count : 0);
  let at = 0;
  for (const s of sets) {
    pixels.set(s.pixels, at * first.channels * first.size ** 2);
    if (labels.length) labels.set(s.labels, at);
    at += s.count;
  }
  return {
    count,
    channels: first.channels,
    size: first.size,
    pixels,
    labels,
    classes: first.classes,
  };
}

/**
 * The images of `set` at `indices`, in that order.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { subset } from "./dataset.ts";
 * const s = { count: 2, channels: 1, size: 1, pixels: new Float32Array([0.1, 0.9]),
 *   labels: new Int32Array([0, 1]), classes: ["a", "b"] };
 * const one = subset(s, [1]);
 * deepEqual(one.pixels, new Float32Array([0.9]));
 * deepEqual(one.labels, new Int32Array([1]));
 * ```
 */
export function subset(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  const per = set.channels * set.size * set.size;
  const pixels = new Float32Array(indices.length * per);
  const labels = new Int32Array(set.labels.length ? indices.length : 0);
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!(k >= 0 && k < set.count)) {
      throw new Error(`subset: index ${k} outside 0–${set.count - 1}`);
    }
    pixels.set(set.pixels.subarray(k * per, (k + 1) * per), i * per);
    if (labels.length) labels[i] = set.labels[k];
  }
  return { ...set, count: indices.length, pixels, labels };
}
