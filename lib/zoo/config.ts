/**
 * What a model zoo is built from: the suite, the seeds, the model, the data sizes and the
 * three stages' settings. Everything but the suite (the "recipe") keys the cache directory, so
 * changing any setting builds a new zoo instead of reusing a stale one. θ0 is pretrained on
 * its suite's input domains, so each standard suite has its own recipe and θ0; two
 * configurations that differ only in their suite share a directory and the artefacts of the
 * tasks they have in common.
 *
 * The recipe puts the benchmark in the regime of the paper's CLIP setting (BENCHMARK.md;
 * README, "Built-in benchmark", says how each setting was chosen): θ0 converged on every
 * domain of its tasks, heads as weak as zero-shot heads (one labelled image per class), and
 * gentle fine-tuning, so that task vectors stay a few percent of θ0.
 *
 * @module
 */
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { VIT_TINY, type ViTConfig } from "../models/config.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { SplitSizes } from "../data/dataset.ts";
import { type SuiteName, SUITES, suiteTasks, taskDomains } from "../data/tasks.ts";
import type { TransformName } from "../data/transforms.ts";

/** Settings of one training stage. */
export interface StageConfig {
  /** Passes over the stage's data. */
  epochs: number;
  /** Images per step. */
  batchSize: number;
  /** Peak learning rate (AdamW, warm-up + cosine). */
  lr: number;
  /** AdamW's decoupled weight decay. */
  weightDecay: number;
  /** Fraction of steps spent warming up. */
  warmup: number;
  /** Global gradient-norm clip. */
  clipNorm: number;
}

/** Everything a zoo is built from. */
export interface ZooConfig {
  /** Format version of the zoo's files (bumped when their meaning changes). */
  version: number;
  /** The task suite. */
  suite: SuiteName;
  /** Seed of initialisation and of every training's batch order. */
  seed: number;
  /** Seed of the data splits (kept fixed across model seeds by default). */
  dataSeed: number;
  /** The backbone's geometry. */
  model: ViTConfig;
  /** Pixel normalisation before the model. */
  norm: PixelNorm;
  /** Images per task split. */
  splits: SplitSizes;
  /** θ0's pretraining: images per source, the domains it sees, and the training settings. */
  pretrain: StageConfig & {
    /** Images of each source (MNIST, Fashion-MNIST) from its pretraining region. */
    perSource: number;
    /** Logit scale of the throw-away cosine head. */
    logitScale: number;
    /** Transform chains; each image of each epoch is shown in one, drawn uniformly. */
    domains: readonly (readonly TransformName[])[];
  };
  /** Heads: class prototypes from `shots` labelled training images per class, frozen. */
  heads: { shots: number; logitScale: number };
  /** Expert fine-tuning (backbone only, head frozen). */
  experts: StageConfig;
}

/** The zoo format version written into configurations. */
export const ZOO_VERSION = 2;

/**
 * The default configuration of a suite. θ0 is a 20-way (digits + garments) classifier
 * pretrained on 12 000 images per source, each shown in one of the suite's domains drawn
 * anew every epoch, for 5 epochs per 4 domains (mf8: 5 epochs, 935 steps; mf14: 10; mf20:
 * 15), so that every domain gets as many views as in mf8; heads are 1-shot class prototypes
 * (logit scale 10); experts fine-tune 3 epochs at lr 5e-4. `mf4`, built in tests, pretrains on
 * 8 000 images per source for 3 epochs and has smaller splits, to build in about a minute.
 *
 * @example
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { defaultZooConfig } from "./config.ts";
 * const cfg = defaultZooConfig("mf8", 0);
 * assertEquals(cfg.model.width, 64);
 * assertEquals(cfg.heads.shots, 1);
 * ```
 */
export function defaultZooConfig(suite: SuiteName, seed: number): ZooConfig {
  if (SUITES[suite] === undefined) {
    throw new Error(`unknown suite "${suite}": expected one of ${Object.keys(SUITES).join(", ")}`);
  }
  const small = suite === "mf4";
  const domains = taskDomains(suiteTasks(suite));
  return {
    version: ZOO_VERSION,
    suite,
    seed,
    dataSeed: 0,
    model: { ...VIT_TINY },
    norm: { mean: 0.5, std: 0.5 },
    splits: small ? { train: 1000, val: 200, test: 500 } : { train: 2000, val: 500, test: 1000 },
    pretrain: {
      perSource: small ? 8000 : 12000,
      logitScale: 20,
      domains,
      epochs: small ? 3 : Math.round((5 * domains.length) / 4),
      batchSize: 128,
      lr: 2e-3,
      weightDecay: 0.05,
      warmup: 0.1,
      clipNorm: 1,
    },
    // Logit scale 10, not the pretraining head's 20: on mf8 (seed 0) scales 7 and 10 gave the
    // merges 3 points more than 20 did, and 50 or 100 put them below θ0 + heads, with the
    // experts' accuracy unchanged (README, "Built-in benchmark").
    heads: { shots: 1, logitScale: 10 },
    experts: {
      epochs: 3,
      batchSize: 64,
      lr: 5e-4,
      // Small, so that weight decay (which pulls towards 0, not θ0) adds little common
      // direction to the task vectors.
      weightDecay: 0.01,
      warmup: 0.1,
      clipNorm: 1,
    },
  };
}

/** JSON with object keys sorted at every level (a stable text to hash). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The configuration without its suite: what the artefacts depend on.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { defaultZooConfig, recipeOf } from "./config.ts";
 * const config = defaultZooConfig("mf8", 0);
 * equal("suite" in recipeOf(config), false);
 * equal(recipeOf(config).seed, config.seed);
 * ```
 */
export function recipeOf(config: ZooConfig): Omit<ZooConfig, "suite"> {
  const { suite: _suite, ...recipe } = config;
  return recipe;
}

/**
 * A short hash of a configuration's recipe (SHA-256 of its canonical JSON, 12 hex digits;
 * the suite is left out, see {@linkcode recipeOf}).
 *
 * @example
 * ```ts
 * import { equal, match, notEqual } from "node:assert/strict";
 * import { configHash, defaultZooConfig } from "./config.ts";
 * const hash = await configHash(defaultZooConfig("mf4", 0));
 * match(hash, /^[0-9a-f]{12}$/);
 * equal(await configHash(defaultZooConfig("mf4", 0)), hash); // a function of the recipe
 * notEqual(await configHash(defaultZooConfig("mf4", 1)), hash); // another seed, another zoo
 * ```
 */
export async function configHash(config: ZooConfig): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson(recipeOf(config)));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The root of the checkout this code runs from (the folder holding `deno.json`), whatever the
 * working directory: a notebook kernel started in `notebooks/` and `deno task merge` share one
 * cache and one runs folder. Falls back to the working directory when the code was not loaded
 * from a local file.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { existsSync } from "node:fs";
 * import { projectRoot } from "./config.ts";
 * ok(existsSync(`${projectRoot()}/deno.json`));
 * ok(existsSync(`${projectRoot()}/lib/zoo/config.ts`)); // this file's checkout
 * ```
 */
export function projectRoot(): string {
  const url = new URL("../../", import.meta.url);
  if (url.protocol === "file:") return fromFileUrl(url).replace(/[/\\]$/, "");
  return Deno.cwd();
}

/**
 * `path` relative to the project root when it lies inside it (as results files record it, so
 * that they name no machine's folders), else unchanged.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { projectRelative, projectRoot } from "./config.ts";
 * equal(projectRelative(`${projectRoot()}/.cache/zoo`), ".cache/zoo");
 * equal(projectRelative("/elsewhere/zoo"), "/elsewhere/zoo");
 * ```
 */
export function projectRelative(path: string): string {
  const root = projectRoot();
  const rel = relative(root, resolve(path));
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}

/**
 * The cache root: `RI_CACHE` when set, else `.cache` in the project root
 * ({@linkcode projectRoot}), whatever the working directory.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { resolve } from "node:path";
 * import { cacheRoot, projectRoot } from "./config.ts";
 * const env = Deno.env.get("RI_CACHE");
 * equal(cacheRoot(), env ? resolve(env) : `${projectRoot()}/.cache`);
 * ```
 */
export function cacheRoot(): string {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get("RI_CACHE");
  } catch {
    fromEnv = undefined; // no --allow-env
  }
  return fromEnv ? resolve(fromEnv) : join(projectRoot(), ".cache");
}

/**
 * The directory of a zoo: `<root>/zoo/seed<seed>-<recipe hash>` (shared by the suites built
 * with one recipe; each suite's properties are `zoo-<suite>.json` in it).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { configHash, defaultZooConfig, zooDirectory } from "./config.ts";
 * const config = defaultZooConfig("mf8", 0);
 * const hash = await configHash(config);
 * equal(await zooDirectory(config, "/tmp/cache"), `/tmp/cache/zoo/seed0-${hash}`);
 * ```
 */
export async function zooDirectory(config: ZooConfig, root = cacheRoot()): Promise<string> {
  return join(root, "zoo", `seed${config.seed}-${await configHash(config)}`);
}
