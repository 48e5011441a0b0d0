/**
 * The configuration of a study run (`deno task merge` with no method): which zoo, which merge
 * methods, RI on/off, the auxiliary source, the RI optimiser settings and where to write.
 * Built from defaults, then a JSON config file, then command-line flags; unknown keys are
 * errors that list the valid ones.
 *
 * @module
 */
import { type DistanceName, DISTANCES, parseDistance } from "../interference/distance.ts";
import { type BackendName, parseBackendName } from "../engine/backend.ts";
import { SUITES, suiteTasks, TASKS } from "../data/tasks.ts";
import { basename, isAbsolute, join } from "node:path";
import { projectRoot } from "../zoo/config.ts";
import { getMethod } from "../merge/registry.ts";
import { resolveParams } from "../merge/params.ts";

/** Whether merges run on the original experts, the RI-adapted ones, or both. */
export type RiMode = "on" | "off" | "both";

/** Everything a study run depends on. */
export interface StudyConfig {
  /** Run name: the folder under `out` (default derived from the settings). */
  name: string;
  /**
   * Real checkpoints instead of the built-in zoo: the path of a JSON description of CLIP
   * checkpoints, heads and picture folders (docs/REAL_CHECKPOINTS.md, `lib/pipeline/real.ts`).
   */
  models?: string;
  /** Built-in task suite (`mf4`, `mf8`, `mf14`, `mf20`), or `models` with real checkpoints. */
  suite: string;
  /** Seed of the zoo and of RI. */
  seed: number;
  /**
   * Merge methods to run (`all` = the default set: every registered method but those whose
   * registry entry says why not, `notInDefaultStudy`).
   */
  methods: string[] | "all";
  /**
   * Hyperparameters of some methods, by method and parameter (`--method-params
   * adamerging.examples=256,regmean.alpha=0.9`); the others run with their defaults. Absent
   * when none is given.
   */
  methodParams?: Record<string, Record<string, string>>;
  /** Merges without RI, with RI, or both. */
  ri: RiMode;
  /** Also run the Merge + Distill_Aux baseline for these methods ([] = none). */
  distill: string[];
  /**
   * Auxiliary source: `shapes`, `noise`, `dir:PATH` (a folder of PNG/JPEG images),
   * `safetensors:PATH[#TENSOR]` or `oracle` (the tasks' own training images, unlabeled). With
   * real checkpoints: `models` (the description's aux folder, the default) or `dir:PATH`.
   */
  aux: string;
  /** Auxiliary images drawn (and their targets cached) for RI. */
  auxSize: number;
  /** RI optimisation steps per expert. */
  steps: number;
  /** RI batch size. */
  batch: number;
  /** RI learning rate (AdamW). */
  lr: number;
  /** RI decoupled weight decay (AdamW), applied to the adapted task vector. */
  weightDecay: number;
  /** Weight α of the other-tasks term. */
  alpha: number;
  /** Distance between predicted distributions. */
  distance: DistanceName;
  /** Steps between RI checkpoints (resume points). */
  checkpointEvery: number;
  /** tfjs backend. */
  backend: BackendName;
  /**
   * Folder holding runs: a relative path is taken from the project root (see `runsRoot`), so
   * a notebook's kernel in `notebooks/` writes where `deno task merge` does. Default `runs`,
   * or `RI_RUNS` when set.
   */
  out: string;
  /**
   * Held-out tasks of the catalogue that no expert was trained on: every merge, with and
   * without RI, is also scored on them, each under its own head (made by the zoo's recipe),
   * beside θ0 + heads. Given as task names or a larger suite's name (its tasks outside
   * `suite`); [] = none. Built-in suites only.
   */
  unseen: string[];
}

/**
 * The defaults: the paper's settings (α = 1, KL, AdamW with weight decay 1e-4, batch 128)
 * with a learning rate and step count chosen for the built-in benchmark's small ViT (see
 * docs/REPRODUCTION.md for how they were chosen).
 */
export const STUDY_DEFAULTS: Readonly<Omit<StudyConfig, "name">> = Object.freeze({
  suite: "mf8",
  seed: 0,
  methods: "all",
  ri: "both",
  distill: [],
  aux: "shapes",
  auxSize: 8192,
  steps: 200,
  batch: 128,
  lr: 3e-4,
  weightDecay: 1e-4,
  alpha: 1,
  distance: "kl",
  checkpointEvery: 50,
  backend: "auto",
  out: "runs",
  unseen: [],
});

const KEYS = [
  "name",
  "models",
  ...Object.keys(STUDY_DEFAULTS),
  "methodParams",
] as (keyof StudyConfig)[];

/**
 * The valid configuration keys.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { studyKeys } from "./config.ts";
 * ok(studyKeys().includes("steps"));
 * ```
 */
export function studyKeys(): string[] {
  return [...KEYS];
}

/**
 * Validates and completes a partial configuration (from a file or flags). Strings are
 * accepted for numbers and lists, as a command line gives them.
 *
 * @example
 * ```ts
 * import { deepStrictEqual, equal } from "node:assert/strict";
 * import { resolveStudyConfig } from "./config.ts";
 * const c = resolveStudyConfig({ suite: "mf4", steps: "50", methods: "task_arithmetic,ties" });
 * equal(c.name, "mf4-seed0-shapes-50steps");
 * deepStrictEqual(c.methods, ["task_arithmetic", "ties"]);
 * ```
 */
export function resolveStudyConfig(
  partial: Record<string, unknown>,
  where = "configuration",
): StudyConfig {
  for (const key of Object.keys(partial)) {
    if (!(KEYS as string[]).includes(key)) {
      throw new Error(`${where}: unknown key "${key}"; valid keys are ${KEYS.join(", ")}`);
    }
  }
  const get = <K extends keyof StudyConfig>(key: K) =>
    partial[key] ?? (STUDY_DEFAULTS as Partial<StudyConfig>)[key];
  const models = partial.models === undefined ? undefined : text(partial.models, "models", where);
  const config: Omit<StudyConfig, "name"> = {
    ...(models === undefined ? {} : { models }),
    suite: models === undefined ? suiteName(get("suite"), where) : realOnly(partial, where),
    seed: integer(get("seed"), "seed", where, 0),
    methods: methodList(get("methods"), where),
    ri: riMode(get("ri"), where),
    distill: methodNames(list(get("distill"), "distill", where), where),
    aux: models === undefined ? auxSpec(get("aux"), where) : realAux(partial.aux, where),
    auxSize: integer(get("auxSize"), "auxSize", where, 1),
    steps: integer(get("steps"), "steps", where, 0),
    batch: integer(get("batch"), "batch", where, 1),
    lr: positive(get("lr"), "lr", where),
    weightDecay: nonNegative(get("weightDecay"), "weightDecay", where),
    alpha: nonNegative(get("alpha"), "alpha", where),
    distance: wrap(() => parseDistance(text(get("distance"), "distance", where)), where),
    checkpointEvery: integer(get("checkpointEvery"), "checkpointEvery", where, 1),
    backend: wrap(() => parseBackendName(text(get("backend"), "backend", where)), where),
    out: text(partial.out ?? runsFromEnv() ?? STUDY_DEFAULTS.out, "out", where),
    unseen: [],
  };
  if (partial.methodParams !== undefined) {
    const given = methodParams(partial.methodParams, config, where);
    if (Object.keys(given).length) config.methodParams = given;
  }
  config.unseen = unseenTasks(get("unseen"), config, where);
  const name = partial.name === undefined ? defaultName(config) : text(partial.name, "name", where);
  if (!/^[\w.+-]+$/.test(name)) {
    throw new Error(`${where}: name "${name}" may hold only letters, digits, _ . + -`);
  }
  return { name, ...config };
}

/**
 * The default run name: suite (or models file), seed, auxiliary source and steps, then the RI
 * settings that differ from the defaults (`-ce`, `-lr0.0001`, …), so that runs which train
 * different task vectors never share a folder (a shared folder is refused, not overwritten).
 */
function defaultName(c: Omit<StudyConfig, "name">): string {
  // dir:/data/aux/ → dir-aux: the last path component, trailing separators ignored.
  const aux = c.aux.replace(/^(dir|folder|safetensors):(?:.*[/\\])?([^/\\]+)[/\\]*$/, "$1-$2");
  const what = c.models === undefined ? c.suite : basename(c.models).replace(/\.json$/i, "");
  const settings: string[] = [];
  if (c.distance !== STUDY_DEFAULTS.distance) settings.push(c.distance);
  if (c.lr !== STUDY_DEFAULTS.lr) settings.push(`lr${c.lr}`);
  if (c.alpha !== STUDY_DEFAULTS.alpha) settings.push(`alpha${c.alpha}`);
  if (c.batch !== STUDY_DEFAULTS.batch) settings.push(`batch${c.batch}`);
  if (c.weightDecay !== STUDY_DEFAULTS.weightDecay) settings.push(`wd${c.weightDecay}`);
  if (c.auxSize !== STUDY_DEFAULTS.auxSize) settings.push(`aux${c.auxSize}`);
  // Distillation rows are a different run's artefacts: `deno task merge` keeps its own folder.
  if (c.distill.length) settings.push(`distill-${c.distill.join("+")}`);
  for (const [method, values] of Object.entries(c.methodParams ?? {})) {
    for (const [k, v] of Object.entries(values)) settings.push(`${method}.${k}${v}`);
  }
  const name = [`${what}-seed${c.seed}-${aux}-${c.steps}steps`, ...settings].join("-");
  return name.replace(/[^\w.+-]/g, "_");
}

/** With real checkpoints the suite is `models`: a built-in suite cannot be named too. */
function realOnly(partial: Record<string, unknown>, where: string): string {
  if (partial.suite !== undefined && partial.suite !== "models") {
    throw new Error(`${where}: suite and models exclude each other (models runs real checkpoints)`);
  }
  return "models";
}

/** Auxiliary pictures with real checkpoints: the description's folder or another folder. */
function realAux(value: unknown, where: string): string {
  const spec = value === undefined ? "models" : text(value, "aux", where);
  if (spec === "models" || /^(dir|folder):.+/.test(spec)) return spec;
  throw new Error(
    `${where}: with models, aux must be models (the description's aux folder) or dir:PATH, ` +
      `got "${spec}"`,
  );
}

function wrap<T>(fn: () => T, where: string): T {
  try {
    return fn();
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
}

function text(value: unknown, key: string, where: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new Error(`${where}: ${key} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value.trim();
}

function suiteName(value: unknown, where: string): string {
  const name = text(value, "suite", where);
  if (Object.hasOwn(SUITES, name)) return name;
  throw new Error(`${where}: unknown suite "${name}"; valid suites are ${Object.keys(SUITES)}`);
}

function number(value: unknown, key: string, where: string): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    throw new Error(`${where}: ${key} must be a number, got ${JSON.stringify(value)}`);
  }
  return n;
}

function integer(value: unknown, key: string, where: string, min: number): number {
  const n = number(value, key, where);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`${where}: ${key} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function positive(value: unknown, key: string, where: string): number {
  const n = number(value, key, where);
  if (!(n > 0)) throw new Error(`${where}: ${key} must be > 0, got ${n}`);
  return n;
}

function nonNegative(value: unknown, key: string, where: string): number {
  const n = number(value, key, where);
  if (!(n >= 0)) throw new Error(`${where}: ${key} must be ≥ 0, got ${n}`);
  return n;
}

function list(value: unknown, key: string, where: string): string[] {
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return [...value];
  if (typeof value === "string") return value.split(",").map((s) => s.trim()).filter(Boolean);
  throw new Error(`${where}: ${key} must be a list of names, got ${JSON.stringify(value)}`);
}

function methodList(value: unknown, where: string): string[] | "all" {
  if (value === "all") return "all";
  const names = list(value, "methods", where);
  if (names.length === 0) throw new Error(`${where}: methods is empty`);
  return methodNames(names, where);
}

/** The names, each checked against the merge registry (an error lists the valid ones). */
function methodNames(names: string[], where: string): string[] {
  for (const name of names) wrap(() => getMethod(name), where);
  return names;
}

/**
 * `methodParams` from text (`adamerging.examples=256,regmean.alpha=0.9`) or an object
 * ({ adamerging: { examples: 256 } }): each method among those the study runs, each value valid
 * for that method's parameter (checked against its schema now, so a bad value fails early).
 */
function methodParams(
  value: unknown,
  config: Omit<StudyConfig, "name">,
  where: string,
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  const add = (method: string, key: string, v: unknown) => {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
      throw new Error(`${where}: methodParams ${method}.${key} must be a value, got ${v}`);
    }
    (out[method] ??= {})[key] = String(v);
  };
  if (typeof value === "string") {
    for (const item of value.split(",").map((s) => s.trim()).filter(Boolean)) {
      const m = item.match(/^([\w]+)\.([\w]+)=(.+)$/);
      if (!m) {
        throw new Error(
          `${where}: methodParams "${item}" is not of the form method.parameter=value`,
        );
      }
      add(m[1], m[2], m[3].trim());
    }
  } else if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [method, values] of Object.entries(value)) {
      if (!values || typeof values !== "object" || Array.isArray(values)) {
        throw new Error(`${where}: methodParams.${method} must be an object of parameters`);
      }
      for (const [k, v] of Object.entries(values)) add(method, k, v);
    }
  } else {
    throw new Error(
      `${where}: methodParams must be text or an object, got ${JSON.stringify(value)}`,
    );
  }
  const run = config.methods === "all" ? null : [...config.methods, ...config.distill];
  for (const [method, values] of Object.entries(out)) {
    const m = wrap(() => getMethod(method), where);
    if (run && !run.includes(method)) {
      throw new Error(`${where}: methodParams for ${method}, which the study does not run`);
    }
    wrap(() => resolveParams(m, values), where);
  }
  return out;
}

function riMode(value: unknown, where: string): RiMode {
  if (value === "on" || value === "off" || value === "both") return value;
  throw new Error(`${where}: ri must be on, off or both, got ${JSON.stringify(value)}`);
}

function auxSpec(value: unknown, where: string): string {
  const spec = text(value, "aux", where);
  if (/^(shapes|noise|oracle)$/.test(spec) || /^(dir|folder|safetensors):.+/.test(spec)) {
    return spec;
  }
  throw new Error(
    `${where}: aux must be shapes, noise, oracle, dir:PATH or safetensors:PATH, got "${spec}"`,
  );
}

/**
 * The folder a study's `out` names: absolute paths as given, relative ones under the project
 * root (whatever the working directory).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { runsRoot } from "./config.ts";
 * import { projectRoot } from "../zoo/config.ts";
 * equal(runsRoot("runs"), `${projectRoot()}/runs`);
 * equal(runsRoot("/tmp/runs"), "/tmp/runs");
 * ```
 */
export function runsRoot(out: string): string {
  return isAbsolute(out) ? out : join(projectRoot(), out);
}

function runsFromEnv(): string | undefined {
  try {
    return Deno.env.get("RI_RUNS") || undefined;
  } catch {
    return undefined; // no --allow-env
  }
}

/**
 * Held-out tasks: names of catalogue tasks outside the study's suite, or a suite's name
 * standing for its tasks outside the study's suite.
 */
function unseenTasks(
  value: unknown,
  config: Omit<StudyConfig, "name">,
  where: string,
): string[] {
  const names = list(value, "unseen", where);
  if (names.length === 0) return [];
  if (config.models !== undefined) {
    throw new Error(`${where}: unseen tasks need a built-in suite, not models`);
  }
  const own = suiteTasks(config.suite).map((t) => t.name);
  const out: string[] = [];
  for (const name of names) {
    if (Object.hasOwn(SUITES, name)) {
      const extra = suiteTasks(name).map((t) => t.name).filter((t) => !own.includes(t));
      if (extra.length === 0) {
        throw new Error(`${where}: unseen suite ${name} has no task outside ${config.suite}`);
      }
      out.push(...extra);
    } else if (TASKS.some((t) => t.name === name)) {
      if (own.includes(name)) {
        throw new Error(
          `${where}: unseen task "${name}" is in suite ${config.suite} (its expert saw it)`,
        );
      }
      out.push(name);
    } else {
      throw new Error(
        `${where}: unseen "${name}" is neither a suite (${Object.keys(SUITES)}) nor a task ` +
          `(${TASKS.map((t) => t.name).join(", ")})`,
      );
    }
  }
  return [...new Set(out)];
}

/** Distances accepted by `distance` (re-exported for usage texts). */
export const STUDY_DISTANCES: readonly string[] = DISTANCES;
