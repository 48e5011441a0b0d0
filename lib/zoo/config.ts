/**
 * What a model zoo is built from: the suite, the seeds, the model, the data sizes and the
 * three trainings' settings. Everything but the suite (the "recipe") keys the cache
 * directory, so changing any setting builds a new zoo instead of reusing a stale one, while
 * suites built with one recipe share θ0, and the heads and experts of the tasks they share
 * (`mf8` ⊂ `mf14` ⊂ `mf20`: building `mf20` after `mf8` trains twelve more experts).
 *
 * @module
 */
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { VIT_TINY, type ViTConfig } from "../models/config.ts";
import type { PixelNorm } from "../data/batches.ts";
import type { SplitSizes } from "../data/dataset.ts";
import { type SuiteName, SUITES } from "../data/tasks.ts";

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
  /** θ0's pretraining: images per source, and the training settings. */
  pretrain: StageConfig & { perSource: number; logitScale: number };
  /** Heads: the probe's logit scale, full-batch steps and learning rate. */
  heads: { logitScale: number; steps: number; lr: number };
  /** Expert fine-tuning (backbone only, head frozen). */
  experts: StageConfig;
  /** Task Arithmetic's coefficient for the printed property (the method's default). */
  taskArithmeticScaling: number;
}

/** The zoo format version written into configurations. */
export const ZOO_VERSION = 1;

/**
 * The default configuration of a suite. The standard suites share one recipe; `mf4`, built in
 * tests, uses smaller splits and shorter trainings so that it builds in well under a minute.
 *
 * @example
 * ```ts
 * import { defaultZooConfig } from "./config.ts";
 * const cfg = defaultZooConfig("mf8", 0);
 * console.log(cfg.model.width, cfg.splits.train); // 64 …
 * ```
 */
export function defaultZooConfig(suite: SuiteName, seed: number): ZooConfig {
  if (SUITES[suite] === undefined) {
    throw new Error(`unknown suite "${suite}": expected one of ${Object.keys(SUITES).join(", ")}`);
  }
  const small = suite === "mf4";
  return {
    version: ZOO_VERSION,
    suite,
    seed,
    dataSeed: 0,
    model: { ...VIT_TINY },
    norm: { mean: 0.5, std: 0.5 },
    splits: small ? { train: 1000, val: 200, test: 500 } : { train: 2000, val: 500, test: 1000 },
    // θ0 is deliberately weak (two epochs over 3 000 images of each source, 94 steps): with
    // more (5 000 per source) its converged probe heads came within 15.7 points of the
    // experts on mf8, the edge of what BENCHMARK.md asks (see README, "Built-in benchmark").
    pretrain: {
      perSource: small ? 2000 : 3000,
      logitScale: 20,
      epochs: 2,
      batchSize: 128,
      lr: 2e-3,
      weightDecay: 0.05,
      warmup: 0.1,
      clipNorm: 1,
    },
    heads: { logitScale: 20, steps: 200, lr: 0.05 },
    experts: {
      epochs: small ? 3 : 5,
      batchSize: 64,
      lr: 2e-3,
      // Small, so that weight decay (which pulls towards 0, not θ0) adds little common
      // direction to the task vectors.
      weightDecay: 0.01,
      warmup: 0.1,
      clipNorm: 1,
    },
    taskArithmeticScaling: 0.3,
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
 * import { defaultZooConfig, recipeOf } from "./config.ts";
 * "suite" in recipeOf(defaultZooConfig("mf8", 0)); // false
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
 * import { configHash, defaultZooConfig } from "./config.ts";
 * console.log(await configHash(defaultZooConfig("mf4", 0))); // 12 hex digits
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
 * import { existsSync } from "node:fs";
 * import { projectRoot } from "./config.ts";
 * existsSync(`${projectRoot()}/deno.json`); // true
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
 * import { projectRelative, projectRoot } from "./config.ts";
 * projectRelative(`${projectRoot()}/.cache/zoo`); // ".cache/zoo"
 * projectRelative("/elsewhere/zoo"); // "/elsewhere/zoo"
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
 * import { cacheRoot, projectRoot } from "./config.ts";
 * cacheRoot() === `${projectRoot()}/.cache`; // true unless RI_CACHE is set
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
 * import { defaultZooConfig, zooDirectory } from "./config.ts";
 * console.log(await zooDirectory(defaultZooConfig("mf8", 0), "/tmp/cache"));
 * ```
 */
export async function zooDirectory(config: ZooConfig, root = cacheRoot()): Promise<string> {
  return join(root, "zoo", `seed${config.seed}-${await configHash(config)}`);
}
