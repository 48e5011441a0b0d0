/**
 * The built-in benchmark's tasks and suites. A task is a source (MNIST or Fashion-MNIST), a
 * chain of image transforms, a label map and its class names; its images come from its own
 * slot of the source, so no two tasks (and not θ0's pretraining) share an image.
 *
 * Suites: `mf4` (tests), `mf8` (the standard suite of BENCHMARK.md), `mf14` and `mf20` (for
 * "gains grow with the number of tasks"). Each larger suite extends the smaller ones.
 *
 * @module
 */
import { DIGIT_CLASSES, FASHION_CLASSES, type SourceName } from "./sources.ts";
import type { TransformName } from "./transforms.ts";

/** How a task relabels its source's labels (0–9). */
export interface LabelMap {
  /** Name of the labelling. */
  readonly name: string;
  /** Class names of the task, by new label. */
  readonly classes: readonly string[];
  /** New label of each source label (index 0–9). */
  readonly map: readonly number[];
}

/** One task of the benchmark. */
export interface TaskSpec {
  /** Task name (also the head's and the expert's name). */
  readonly name: string;
  /** Source of its images. */
  readonly source: SourceName;
  /** Which of the source's disjoint slots its images come from (0–9). */
  readonly slot: number;
  /** Transforms applied to every image, left to right. */
  readonly transforms: readonly TransformName[];
  /** The labelling. */
  readonly labels: LabelMap;
}

const identityMap = (classes: readonly string[]): LabelMap => ({
  name: "identity",
  classes,
  map: classes.map((_, i) => i),
});

/** The label maps the catalogue uses. */
export const LABEL_MAPS = {
  digits: identityMap(DIGIT_CLASSES),
  garments: identityMap(FASHION_CLASSES),
  parity: { name: "parity", classes: ["even", "odd"], map: [0, 1, 0, 1, 0, 1, 0, 1, 0, 1] },
  mod3: {
    name: "mod3",
    classes: ["0 mod 3", "1 mod 3", "2 mod 3"],
    map: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0],
  },
  low_high: { name: "low_high", classes: ["0–4", "5–9"], map: [0, 0, 0, 0, 0, 1, 1, 1, 1, 1] },
  // T-shirt, pullover, coat, shirt are tops; trouser and dress cover the legs; sandal,
  // sneaker, ankle boot are footwear; bag is the odd one out.
  coarse: {
    name: "coarse",
    classes: ["top", "trouser/dress", "footwear", "bag"],
    map: [0, 1, 0, 1, 0, 2, 0, 2, 3, 2],
  },
  worn: {
    name: "worn",
    classes: ["clothing", "shoes and bags"],
    map: [0, 0, 0, 0, 0, 1, 0, 1, 1, 1],
  },
} satisfies Record<string, LabelMap>;

function task(
  name: string,
  source: SourceName,
  slot: number,
  transforms: TransformName[],
  labels: LabelMap,
): TaskSpec {
  return { name, source, slot, transforms, labels };
}

const M = LABEL_MAPS;

/** Every task the benchmark knows, in suite order (a suite of n tasks is the first n). */
export const TASKS: readonly TaskSpec[] = [
  task("mnist", "mnist", 0, [], M.digits),
  task("fashion", "fashion", 0, [], M.garments),
  task("mnist_rot90", "mnist", 1, ["rot90"], M.digits),
  task("fashion_inv", "fashion", 1, ["invert"], M.garments),
  // mf8
  task("mnist_inv", "mnist", 2, ["invert"], M.digits),
  task("fashion_vflip", "fashion", 2, ["vflip"], M.garments),
  task("mnist_parity", "mnist", 3, [], M.parity),
  task("fashion_coarse", "fashion", 3, [], M.coarse),
  // mf14
  task("mnist_shuffle", "mnist", 4, ["shuffle"], M.digits),
  task("fashion_shuffle", "fashion", 4, ["shuffle"], M.garments),
  task("mnist_edges", "mnist", 5, ["edges"], M.digits),
  task("fashion_rot90", "fashion", 5, ["rot90"], M.garments),
  task("mnist_rot180_mod3", "mnist", 6, ["rot180"], M.mod3),
  task("fashion_edges_inv", "fashion", 6, ["edges", "invert"], M.garments),
  // mf20
  task("mnist_zoomout", "mnist", 7, ["zoomout"], M.digits),
  task("fashion_zoomout", "fashion", 7, ["zoomout"], M.garments),
  task("mnist_transpose_inv", "mnist", 8, ["transpose", "invert"], M.digits),
  task("fashion_hflip_worn", "fashion", 8, ["hflip"], M.worn),
  task("mnist_low_high", "mnist", 9, [], M.low_high),
  task("fashion_rot270", "fashion", 9, ["rot270"], M.garments),
];

/** A suite's name. */
export type SuiteName = "mf4" | "mf8" | "mf14" | "mf20";

/** The suites, by name: how many of {@linkcode TASKS} each takes. */
export const SUITES: Readonly<Record<SuiteName, number>> = { mf4: 4, mf8: 8, mf14: 14, mf20: 20 };

/**
 * The tasks of a suite, with an error listing the suites for an unknown name.
 *
 * @example
 * ```ts
 * import { deepEqual, throws } from "node:assert/strict";
 * import { suiteTasks } from "./tasks.ts";
 * const names = suiteTasks("mf4").map((t) => t.name);
 * deepEqual(names, ["mnist", "fashion", "mnist_rot90", "fashion_inv"]);
 * throws(() => suiteTasks("mf5"), /unknown suite "mf5": expected one of mf4, /);
 * ```
 */
export function suiteTasks(suite: string): TaskSpec[] {
  const n = SUITES[suite as SuiteName];
  if (n === undefined) {
    throw new Error(`unknown suite "${suite}": expected one of ${Object.keys(SUITES).join(", ")}`);
  }
  return TASKS.slice(0, n);
}

/**
 * The input domains of some tasks: their distinct transform chains, in task order (the empty
 * chain, upright images, is always first). θ0 is pretrained on images of every domain of its
 * suite, as CLIP has seen every kind of image its tasks hold: a task then differs from
 * pretraining in its label space and in which one domain it holds, not in unseen pixels.
 *
 * @example
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { suiteTasks, taskDomains } from "./tasks.ts";
 * assertEquals(taskDomains(suiteTasks("mf4")), [[], ["rot90"], ["invert"]]);
 * ```
 */
export function taskDomains(tasks: readonly TaskSpec[]): TransformName[][] {
  const seen = new Map<string, TransformName[]>([["", []]]);
  for (const t of tasks) {
    const key = t.transforms.join("+");
    if (!seen.has(key)) seen.set(key, [...t.transforms]);
  }
  return [...seen.values()];
}

/**
 * One task by name.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { taskByName } from "./tasks.ts";
 * const { labels } = taskByName("mnist_parity");
 * deepEqual(labels.classes, ["even", "odd"]);
 * deepEqual(labels.map, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]); // digit d → d mod 2
 * ```
 */
export function taskByName(name: string): TaskSpec {
  const t = TASKS.find((t) => t.name === name);
  if (!t) throw new Error(`unknown task "${name}": expected one of ${TASKS.map((t) => t.name)}`);
  return t;
}
