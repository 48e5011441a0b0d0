/**
 * A notebook's first cell and RI on one expert in one call.
 *
 * {@linkcode setupNotebook} puts plotly.js on the page, starts the engine and shows where this
 * checkout keeps its cache and its runs (the same folders `deno task merge` uses, whatever the
 * kernel's working directory). {@linkcode adaptWithRI} adapts one expert of a zoo with RI at the
 * study's defaults (those of `deno task merge`: α = 1, KL, AdamW, the built-in benchmark's steps
 * and learning rate, on the study's auxiliary set), in memory.
 *
 * @module
 */
import {
  type BackendName,
  describeEngine,
  type EngineInfo,
  initEngine,
} from "../engine/backend.ts";
import { display, displayWith } from "../display/jupyter.ts";
import { plotlyLibrary } from "../display/html.ts";
import { outputOrdering } from "../display/outputs.ts";
import { table } from "../display/figure.ts";
import { cacheRoot, projectRoot } from "../zoo/config.ts";
import type { HostParams } from "../models/weights.ts";
import { asWeights } from "../models/named_weights.ts";
import type { LossCurve } from "../ri/curve.ts";
import { adaptExpert, type RiSettings } from "../ri/adapt.ts";
import { resolveStudyConfig, runsRoot, type StudyConfig } from "./config.ts";
import { auxiliarySet, riSettings } from "./study.ts";
import type { Zoo } from "../zoo/zoo.ts";

/** Where a notebook runs: engine, project, cache, runs, and whether outputs are ordered. */
export class Workspace {
  /** Use {@linkcode setupNotebook} or {@linkcode workspace}. */
  constructor(
    /** The engine in use. */
    readonly engine: EngineInfo,
    /** The checkout's root. */
    readonly project: string,
    /** The cache of zoos (`RI_CACHE` moves it). */
    readonly cache: string,
    /** The folder of study runs (`RI_RUNS` moves it). */
    readonly runs: string,
    /** How notebook outputs are kept in order with their cells. */
    readonly outputs: string,
  ) {}
}
displayWith(Workspace.prototype, (w) =>
  table({
    title: "Workspace",
    columns: ["setting", "value"],
    rows: [
      ["engine", describeEngine(w.engine)],
      ["project", w.project],
      ["cache", `${w.cache} (zoos; RI_CACHE moves it)`],
      ["runs", `${w.runs} (study runs; RI_RUNS moves it)`],
      ["outputs", w.outputs],
    ],
  }));

/**
 * The workspace of this process: starts the engine (`backend`, else `RI_BACKEND`, else
 * `auto`) and resolves the cache and runs folders.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { projectRoot } from "../zoo/config.ts";
 * import { workspace } from "./setup.ts";
 * const w = await workspace({ backend: "cpu" });
 * equal(w.project, projectRoot());
 * equal(w.engine.backend, "cpu");
 * ```
 */
export async function workspace(options: { backend?: BackendName } = {}): Promise<Workspace> {
  const engine = await initEngine(options);
  const runs = runsRoot(resolveStudyConfig({}).out);
  const ordering = outputOrdering();
  return new Workspace(engine, projectRoot(), cacheRoot(), runs, ordering.detail);
}

/**
 * A notebook's first cell: loads plotly.js into the page (once, offline), starts the engine and
 * returns the {@linkcode Workspace}, which shows the engine, the cache and the runs folder.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { setupNotebook } from "./setup.ts";
 * const w = await setupNotebook({ backend: "cpu" }); // outside a notebook: plotly.js is not printed
 * ok(w.cache.endsWith(".cache") || Deno.env.get("RI_CACHE"));
 * ```
 */
export async function setupNotebook(options: { backend?: BackendName } = {}): Promise<Workspace> {
  if (outputOrdering().detail !== "not in a Jupyter kernel") await display(plotlyLibrary());
  return await workspace(options);
}

/** RI settings a caller may change from the study's defaults. */
export type RiOverrides = Partial<
  Pick<
    StudyConfig,
    "aux" | "auxSize" | "steps" | "batch" | "lr" | "weightDecay" | "alpha" | "distance" | "seed"
  >
>;

/** One expert adapted with RI: τ' in memory, its loss curve, and the settings used. */
export class AdaptedExpert {
  /** Use {@linkcode adaptWithRI}. */
  constructor(
    /** The expert's task. */
    readonly task: string,
    /** The adapted task vector τ' (host memory, Hugging Face names). */
    readonly tau: HostParams,
    /** The original task vector τ = θ − θ0. */
    readonly original: HostParams,
    /** RI's loss, step by step. */
    readonly curve: LossCurve,
    /** The settings RI ran with. */
    readonly settings: RiSettings & { aux: string; auxSize: number },
  ) {}

  /** ‖τ‖ and ‖τ'‖ (global L2 norms). */
  norms(): { original: number; adapted: number } {
    return { original: l2(this.original), adapted: l2(this.tau) };
  }
}
displayWith(AdaptedExpert.prototype, (a) => {
  const { original, adapted } = a.norms();
  const { start, end } = a.curve.startEnd(5);
  const s = a.settings;
  return table({
    title: `RI-adapted expert ${a.task}`,
    columns: ["quantity", "value"],
    rows: [
      ["‖τ‖ → ‖τ'‖", `${original.toFixed(4)} → ${adapted.toFixed(4)}`],
      ["loss (first 5 → last 5 steps)", `${start.toPrecision(3)} → ${end.toPrecision(3)}`],
      ["steps, batch, lr", `${s.steps}, ${s.batch}, ${s.lr}`],
      ["α, distance, weight decay", `${s.alpha}, ${s.distance}, ${s.weightDecay}`],
      ["auxiliary set", `${s.auxSize} × ${s.aux}`],
      ["tensors", String(a.tau.size)],
    ],
  });
});

/**
 * RI on one expert of a zoo, at the study's defaults unless `overrides` says otherwise: the
 * auxiliary set is the one `deno task merge` draws, the settings those of
 * `resolveStudyConfig`. Runs in memory (nothing written); `deno task ri --expert` and
 * `runStudy` keep their results in a run folder instead.
 *
 * @example
 * ```ts ignore
 * const zoo = await loadZoo({ suite: "mf4" });
 * const adapted = await adaptWithRI(zoo, "mnist", { steps: 20 });
 * adapted; // τ and τ' norms, the loss, the settings
 * ```
 */
export async function adaptWithRI(
  zoo: Zoo,
  task: string,
  overrides: RiOverrides = {},
): Promise<AdaptedExpert> {
  const i = zoo.taskNames.indexOf(task);
  if (i < 0) {
    throw new Error(`adaptWithRI: no task "${task}" in this zoo; its tasks are ${zoo.taskNames}`);
  }
  const { suite, seed } = zoo.config;
  const config = resolveStudyConfig({ suite, seed, ...overrides });
  const aux = await auxiliarySet(config, zoo);
  const expert = await zoo.expert(task);
  const { model, norm } = zoo.config;
  const settings = riSettings(config);
  const result = await adaptExpert(
    { task, config: model, base: zoo.base, expert, heads: zoo.heads, aux, norm },
    settings,
  );
  const original: HostParams = new Map(
    [...zoo.base].map(([name, b]) => {
      const e = expert.get(name)!;
      return [name, { shape: b.shape, data: e.data.map((v, k) => v - b.data[k]) }];
    }),
  );
  return new AdaptedExpert(
    task,
    asWeights(result.tau, `τ' ${task}`),
    asWeights(original, `τ ${task}`),
    result.curve,
    {
      ...settings,
      aux: config.aux,
      auxSize: aux.count,
    },
  );
}

function l2(params: HostParams): number {
  let sum = 0;
  for (const t of params.values()) for (const v of t.data) sum += v * v;
  return Math.sqrt(sum);
}
