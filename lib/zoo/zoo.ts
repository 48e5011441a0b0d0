/**
 * The built-in benchmark's model zoo: θ0, one frozen head per task and one expert per task,
 * built once and cached as safetensors files in a directory keyed by the configuration.
 * Every artefact is written atomically as soon as it exists, so an interrupted build resumes
 * at the first missing one, and every stage reads its inputs back from the files, so a resumed
 * build gives the same bits as an uninterrupted one.
 *
 * Layout of a zoo directory: `config.json` (the recipe), `base.safetensors`,
 * `heads/<task>.safetensors`, `experts/<task>.safetensors`, and `zoo-<suite>.json` (a suite's
 * validity properties).
 *
 * @module
 */
import { displayWith } from "../display/jupyter.ts";
import { asWeights } from "../models/named_weights.ts";
import { ensureEngine } from "../engine/backend.ts";
import { join } from "node:path";
import type { Head } from "../models/head.ts";
import { disposeHead } from "../models/head.ts";
import type { HostParams } from "../models/weights.ts";
import { disposeParams, hostToParams } from "../models/weights.ts";
import { loadHeads, loadModel, saveHeads, saveModel } from "../models/store.ts";
import type { ParamMap } from "../models/vit.ts";
import { pretrainSplits, subset, type TaskSplits, taskSplits } from "../data/dataset.ts";
import { domainAugmentation } from "../data/transforms.ts";
import { suiteTasks, type TaskSpec } from "../data/tasks.ts";
import { extractFeatures } from "../train/evaluate.ts";
import {
  finetuneExpert,
  type OnProgress,
  pretrainBase,
  prototypeHead,
  prototypeShots,
} from "../train/fit.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { MemorySource, type TensorSource } from "../tensor/source.ts";
import { progress, type ProgressMode } from "../display/progress.ts";
import { type SuiteName } from "../data/tasks.ts";
import {
  defaultZooConfig,
  recipeOf,
  type StageConfig,
  type ZooConfig,
  zooDirectory,
} from "./config.ts";
import { Rng } from "../tensor/random.ts";
import { evaluateZoo, propertyMethods, ZooProperties } from "./properties.ts";

/** Options of {@linkcode loadZoo}. */
export interface LoadZooOptions {
  /** Task suite (default `mf8`). */
  suite?: SuiteName;
  /** Seed (default 0). */
  seed?: number;
  /** A whole configuration (replaces the suite's default; `suite` and `seed` are taken from it). */
  config?: ZooConfig;
  /** Cache root (default `RI_CACHE`, else `.cache` in the project root). */
  root?: string;
  /** Build what is missing (default true); false fails on a missing artefact. */
  build?: boolean;
  /** Progress output (default `auto`: notebook, terminal or log lines). */
  progress?: ProgressMode;
  /**
   * Merge methods the properties measure (default {@linkcode propertyMethods}: every registered
   * method the default study runs that needs no data; `task_arithmetic` must be among them).
   * Saved properties that lack one of them are measured again.
   */
  methods?: readonly string[];
}

/** How long each stage took in the process that built it (seconds; 0 when reused). */
export interface BuildTimes {
  /** Pretraining θ0. */
  pretrain: number;
  /** Fitting the heads. */
  heads: number;
  /** Fine-tuning the experts. */
  experts: number;
  /** Evaluating the properties. */
  evaluation: number;
  /** Everything, data loading included. */
  total: number;
}

/**
 * A zoo's files and models: configuration, directory, tasks, θ0 and heads in memory, experts
 * read on demand, the tasks' data. {@linkcode Zoo} adds the validity properties.
 */
export class ZooContents {
  readonly #experts = new Map<string, HostParams>();
  readonly #data = new Map<string, Promise<TaskSplits>>();

  /** Use {@linkcode loadZoo}. */
  constructor(
    /** What it was built from. */
    readonly config: ZooConfig,
    /** Its directory. */
    readonly dir: string,
    /** The suite's tasks, in order. */
    readonly tasks: readonly TaskSpec[],
    /** θ0's parameters (host memory). */
    readonly base: HostParams,
    /** One frozen head per task, in task order (tfjs tensors: `dispose()` frees them). */
    readonly heads: readonly Head[],
  ) {}

  /** Task names, in order. */
  get taskNames(): string[] {
    return this.tasks.map((t) => t.name);
  }

  /** Path of θ0's file. */
  get basePath(): string {
    return join(this.dir, "base.safetensors");
  }

  /** Path of a task's head file (written by `saveHeads`, read by `loadHeads`). */
  headPath(task: string): string {
    return headFile(this.dir, this.task(task).name);
  }

  /** Path of a task's expert file. */
  expertPath(task: string): string {
    return expertFile(this.dir, this.task(task).name);
  }

  /** A task by name (an error lists the zoo's tasks). */
  task(name: string): TaskSpec {
    const t = this.tasks.find((t) => t.name === String(name).trim().toLowerCase());
    if (!t) throw new Error(`zoo ${this.dir}: no task "${name}" (tasks: ${this.taskNames})`);
    return t;
  }

  /** A task's head. */
  head(task: string): Head {
    return this.heads[this.tasks.indexOf(this.task(task))];
  }

  /** A task's expert parameters (read from its file once, then kept). */
  async expert(task: string): Promise<HostParams> {
    const name = this.task(task).name;
    let e = this.#experts.get(name);
    if (!e) {
      e = asWeights((await loadModel(this.expertPath(name), this.config.model)).host, `θ ${name}`);
      this.#experts.set(name, e);
    }
    return e;
  }

  /** θ0 as a tensor source (for task vectors and merging). */
  baseSource(): TensorSource {
    return new MemorySource("θ0", this.base);
  }

  /** A task's expert as a tensor source. */
  async expertSource(task: string): Promise<TensorSource> {
    return new MemorySource(task, await this.expert(task));
  }

  /** A task's train/validation/test images (made once, then kept). */
  data(task: string): Promise<TaskSplits> {
    const spec = this.task(task);
    let d = this.#data.get(spec.name);
    if (!d) {
      d = taskSplits(spec, this.config.splits, this.config.dataSeed);
      this.#data.set(spec.name, d);
    }
    return d;
  }

  /** θ0's parameters as tfjs tensors (new tensors: the caller disposes them). */
  baseParams(): ParamMap {
    return hostToParams(this.base);
  }

  /** Frees the heads' tensors. */
  dispose(): void {
    this.heads.forEach(disposeHead);
  }
}

/** A built zoo with its validity properties. */
export class Zoo extends ZooContents {
  /** Use {@linkcode loadZoo}. */
  constructor(
    contents: ZooContents,
    /** The validity properties (accuracies per task, gaps). */
    readonly properties: ZooProperties,
    /** Stage times of this process (zeros for what was reused). */
    readonly times: BuildTimes,
  ) {
    super(contents.config, contents.dir, contents.tasks, contents.base, contents.heads);
  }
}
displayWith(Zoo.prototype, (z) => z.properties.table());

function expertFile(dir: string, task: string): string {
  return join(dir, "experts", `${task}.safetensors`);
}

function headFile(dir: string, task: string): string {
  return join(dir, "heads", `${task}.safetensors`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function fitOptions(stage: StageConfig, config: ZooConfig, seed: number, onProgress?: OnProgress) {
  return { ...stage, seed, norm: config.norm, onProgress };
}

/** A task's own seed for its expert's batch order: fixed by the zoo seed and the task name. */
function expertSeed(config: ZooConfig, task: string): number {
  return new Rng(config.seed, `expert/${task}`).nextUint32();
}

/**
 * Makes the prototype heads of `tasks` from θ0 (`base`) and writes them to the zoo directory:
 * for each task, `config.heads.shots` labelled training images per class (a seeded choice),
 * θ0's normalised features, their class means (see `prototypeHead`).
 */
async function makeHeads(
  config: ZooConfig,
  dir: string,
  base: HostParams,
  tasks: readonly TaskSpec[],
  mode?: ProgressMode,
): Promise<void> {
  const bar = progress("making heads", tasks.length, { mode });
  const params = hostToParams(base);
  try {
    for (const [i, task] of tasks.entries()) {
      const { train } = await taskSplits(task, config.splits, config.dataSeed);
      const classes = task.labels.classes;
      const { shots, logitScale } = config.heads;
      const seed = headSeed(config, task.name);
      const shown = subset(train, prototypeShots(train.labels, classes.length, shots, seed));
      const features = await extractFeatures(params, config.model, shown, { norm: config.norm });
      const head = prototypeHead(task.name, classes, features, shown.labels, logitScale);
      try {
        await saveHeads(headFile(dir, task.name), [head]);
      } finally {
        disposeHead(head);
      }
      bar.update(i + 1, { task: task.name });
    }
  } finally {
    disposeParams(params);
  }
  await bar.done();
}

/** The heads of `tasks` from the zoo directory, checked to be theirs. */
async function readHeads(dir: string, tasks: readonly TaskSpec[]): Promise<Head[]> {
  const heads: Head[] = [];
  try {
    for (const task of tasks) {
      const [head] = await loadHeads(headFile(dir, task.name));
      heads.push(head);
      if (head.task !== task.name) {
        throw new Error(`zoo ${dir}: ${headFile(dir, task.name)} holds the head of "${head.task}"`);
      }
    }
  } catch (err) {
    heads.forEach(disposeHead);
    throw err;
  }
  return heads;
}

/**
 * Heads, made by the zoo's recipe from its θ0, for tasks of the catalogue that need not be in
 * its suite (held-out tasks that no expert was trained on). A head is the same file whichever
 * suite it was made for: it depends only on θ0, the recipe, the seed and its task. Made where
 * missing (written to `heads/<task>.safetensors`), then read; the caller disposes them.
 *
 * @example
 * ```ts ignore
 * const zoo = await loadZoo({ suite: "mf8" });
 * const [head] = await taskHeads(zoo, [taskByName("mnist_shuffle")]);
 * ```
 */
export async function taskHeads(
  zoo: ZooContents,
  tasks: readonly TaskSpec[],
  mode?: ProgressMode,
): Promise<Head[]> {
  const missing = [];
  for (const task of tasks) if (!(await exists(headFile(zoo.dir, task.name)))) missing.push(task);
  if (missing.length) await makeHeads(zoo.config, zoo.dir, zoo.base, missing, mode);
  return await readHeads(zoo.dir, tasks);
}

/** A task's own seed for its head's choice of labelled images. */
function headSeed(config: ZooConfig, task: string): number {
  return new Rng(config.seed, `head/${task}`).nextUint32();
}

/**
 * Builds the zoo of a configuration, or reuses what is already in its cache directory, and
 * returns it. Missing artefacts are built in order (θ0, then each task's head and expert),
 * each written atomically; the suite's properties are evaluated once and saved as
 * `zoo-<suite>.json`. Suites with one recipe share a directory and every artefact of the tasks
 * they have in common.
 *
 * @example
 * ```ts ignore
 * import { loadZoo } from "../../mod.ts";
 * const zoo = await loadZoo({ suite: "mf8", seed: 0 });
 * console.log(zoo.toString());
 * const expert = await zoo.expert("mnist_rot90");
 * ```
 */
export async function loadZoo(options: LoadZooOptions = {}): Promise<Zoo> {
  await ensureEngine();
  const started = performance.now();
  const config = options.config ?? defaultZooConfig(options.suite ?? "mf8", options.seed ?? 0);
  const dir = await zooDirectory(config, options.root);
  const build = options.build ?? true;
  const mode = options.progress;
  const tasks = suiteTasks(config.suite);
  const times: BuildTimes = { pretrain: 0, heads: 0, experts: 0, evaluation: 0, total: 0 };
  await Deno.mkdir(join(dir, "experts"), { recursive: true });
  await Deno.mkdir(join(dir, "heads"), { recursive: true });
  const recipe = JSON.stringify(recipeOf(config), null, 2) + "\n";
  await writeFileAtomic(join(dir, "config.json"), recipe);
  const need = async (path: string) => {
    if (await exists(path)) return false;
    if (!build) throw new Error(`zoo ${dir}: ${path} is missing (build it with deno task zoo)`);
    return true;
  };

  const basePath = join(dir, "base.safetensors");
  if (await need(basePath)) {
    const t = performance.now();
    const { train } = await pretrainSplits(config.pretrain.perSource, 0, config.dataSeed);
    const steps = config.pretrain.epochs * Math.floor(train.count / config.pretrain.batchSize);
    const bar = progress("pretraining θ0", steps, { mode });
    const host = await pretrainBase(config.model, train, {
      ...fitOptions(config.pretrain, config, config.seed, (done, _, m) => bar.update(done, m)),
      logitScale: config.pretrain.logitScale,
      augment: domainAugmentation(config.pretrain.domains, train.size, config.seed),
    });
    await saveModel(basePath, config.model, host, { zoo: "base" });
    await bar.done();
    times.pretrain = (performance.now() - t) / 1000;
  }
  // Every stage reads its inputs back from the files: a resumed build sees the same bits.
  const base = (await loadModel(basePath, config.model)).host;

  const missingHeads = [];
  for (const task of tasks) if (await need(headFile(dir, task.name))) missingHeads.push(task);
  if (missingHeads.length) {
    const t = performance.now();
    await makeHeads(config, dir, base, missingHeads, mode);
    times.heads = (performance.now() - t) / 1000;
  }
  const heads = await readHeads(dir, tasks);

  const tExperts = performance.now();
  for (const [i, task] of tasks.entries()) {
    const path = expertFile(dir, task.name);
    if (!(await need(path))) continue;
    const { train } = await taskSplits(task, config.splits, config.dataSeed);
    const steps = config.experts.epochs * Math.floor(train.count / config.experts.batchSize);
    const bar = progress(`expert ${task.name} (${i + 1}/${tasks.length})`, steps, { mode });
    const expert = await finetuneExpert(
      config.model,
      base,
      heads[i],
      train,
      fitOptions(
        config.experts,
        config,
        expertSeed(config, task.name),
        (done, _, m) => bar.update(done, m),
      ),
    );
    await saveModel(path, config.model, expert, { zoo: "expert", task: task.name });
    await bar.done();
  }
  times.experts = (performance.now() - tExperts) / 1000;

  const contents = new ZooContents(config, dir, tasks, asWeights(base, "θ0"), heads);
  const propertiesPath = join(dir, `zoo-${config.suite}.json`);
  const methods = options.methods ?? propertyMethods();
  let properties: ZooProperties | undefined;
  if (await exists(propertiesPath)) {
    const saved = JSON.parse(await Deno.readTextFile(propertiesPath));
    properties = ZooProperties.fromJSON(saved.properties);
    // Saved before a method was registered (or with fewer methods): measured again.
    const have = new Set(properties.data.merges.map((m) => m.method));
    if (!methods.every((m) => have.has(m))) properties = undefined;
  }
  if (!properties) {
    const t = performance.now();
    properties = await evaluateZoo(contents, mode, methods);
    times.evaluation = (performance.now() - t) / 1000;
    times.total = (performance.now() - started) / 1000;
    const record = { suite: config.suite, properties: properties.toJSON(), buildSeconds: times };
    await writeFileAtomic(propertiesPath, JSON.stringify(record, null, 2) + "\n");
  }
  times.total = (performance.now() - started) / 1000;
  return new Zoo(contents, properties, times);
}
