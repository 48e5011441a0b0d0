/**
 * The study over several seeds: one run per seed (each its own run folder and `results.json`,
 * resumed where it stopped, skipped when done), then an aggregate with the mean and the
 * sample standard deviation over seeds of every row's average accuracy, normalised accuracy
 * and ξ, and of the experts' and θ0's mean accuracies. Written as `aggregate.json` in its own
 * folder; shown as a table.
 *
 * For values x₁…xₙ over n seeds: mean x̄ = Σ xₛ / n and sd = √(Σ (xₛ − x̄)² / (n − 1))
 * (NaN for one seed). The gain of RI is averaged per seed (mean of the differences).
 *
 * @module
 */
import { join } from "node:path";
import { defaultStudyMethods } from "../merge/registry.ts";
import { displayWith, type Figure, stack, table } from "../display/mod.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { resolveStudyConfig, type StudyConfig } from "./config.ts";
import { StudyResults, type StudyRow, studyTableColumns } from "./results.ts";
import { runPaths, runStudy, type StudyOptions } from "./study.ts";

/** Mean and sample standard deviation of values over seeds, with the values. */
export interface Spread {
  /** Mean over seeds. */
  mean: number;
  /** Sample standard deviation (n − 1 in the denominator; NaN for one seed). */
  sd: number;
  /** The per-seed values, in seed order. */
  values: number[];
}

/**
 * The mean and sample standard deviation of `values`.
 *
 * @example
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { spread } from "./seeds.ts";
 * assertEquals(spread([1, 2, 3]), { mean: 2, sd: 1, values: [1, 2, 3] });
 * ```
 */
export function spread(values: readonly number[]): Spread {
  const n = values.length;
  if (n === 0) throw new Error("spread: no values");
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : NaN;
  return { mean, sd, values: [...values] };
}

/** One merge (method × with/without RI, or distilled) over seeds. */
export interface SeedRow {
  /** Registry name of the merge method. */
  method: string;
  /** Merged from RI-adapted task vectors. */
  ri: boolean;
  /** Merge + Distill_Aux. */
  distill?: boolean;
  /** Mean top-1 accuracy over tasks. */
  avgAccuracy: Spread;
  /** Mean normalised accuracy. */
  avgNormalised: Spread;
  /** Interference ξ. */
  xi: Spread;
}

/** What `aggregate.json` holds. */
export interface SeedAggregateData {
  /** Task suite. */
  suite: string;
  /** The seeds, in order. */
  seeds: number[];
  /** Each seed's `results.json`, in seed order. */
  runs: string[];
  /** Auxiliary source. */
  aux: string;
  /** RI steps per expert. */
  steps: number;
  /** Mean expert accuracy (over tasks) per seed. */
  experts: Spread;
  /** Mean θ0-with-heads accuracy per seed. */
  base: Spread;
  /** One row per merge found in every seed's results. */
  rows: SeedRow[];
  /** Held-out tasks, when every seed's run scored the same ones (see `unseen`). */
  unseen?: {
    /** The held-out tasks. */
    tasks: string[];
    /** θ0 + heads' mean accuracy over them, per seed. */
    base: Spread;
    /** Each merge's mean accuracy over them, per seed. */
    rows: { method: string; ri: boolean; distill?: boolean; avgAccuracy: Spread }[];
  };
}

const pct = (s: Spread) => `${(100 * s.mean).toFixed(1)} ± ${sdText(100 * s.sd, 1)}`;

function sdText(sd: number, digits: number): string {
  return Number.isFinite(sd) ? sd.toFixed(digits) : "–";
}

function meanOf(r: Record<string, number>): number {
  const v = Object.values(r);
  return v.reduce((a, b) => a + b, 0) / v.length;
}

const rowKey = (r: { method: string; ri: boolean; distill?: boolean }) =>
  `${r.method}|${r.ri}|${!!r.distill}`;

/**
 * Studies over seeds, aggregated.
 *
 * @example
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { StudyResults } from "./results.ts";
 * import { SeedAggregate } from "./seeds.ts";
 * const run = (seed: number, acc: number) => new StudyResults({
 *   suite: "mf4", seed, backend: "wasm", adapter: "CPU", aux: "shapes", steps: 10, config: {},
 *   zoo: "", experts: { a: 0.9 }, base: { a: 0.5 }, seconds: {},
 *   rows: [{ method: "ta", ri: false, avgAccuracy: acc, avgNormalised: acc / 0.9, xi: 0.3,
 *     accuracyByTask: { a: acc }, xiByTask: { a: 0.3 }, params: {} }],
 * });
 * const agg = SeedAggregate.of([run(0, 0.6), run(1, 0.8)], ["r0", "r1"]);
 * assertEquals(agg.data.rows[0].avgAccuracy.mean, 0.7);
 * console.log(agg.table().toText());
 * ```
 */
export class SeedAggregate {
  /** Wraps aggregated data (see {@linkcode SeedAggregate.of}). */
  constructor(readonly data: SeedAggregateData) {}

  /**
   * Aggregates the results of one study run per seed (same suite, auxiliary source and RI
   * steps). Rows missing from some seed's results are left out.
   */
  static of(results: readonly StudyResults[], runs: readonly string[]): SeedAggregate {
    if (results.length === 0) throw new Error("aggregate: no study results");
    if (runs.length !== results.length) {
      throw new Error(`aggregate: ${runs.length} run paths for ${results.length} results`);
    }
    const first = results[0].data;
    for (const [i, r] of results.entries()) {
      for (const key of ["suite", "aux", "steps"] as const) {
        if (r.data[key] !== first[key]) {
          throw new Error(
            `aggregate: ${runs[i]} has ${key} ${r.data[key]}, the first run ${first[key]}`,
          );
        }
      }
    }
    const seeds = results.map((r) => r.data.seed);
    if (new Set(seeds).size !== seeds.length) {
      throw new Error(`aggregate: seeds repeat (${seeds.join(", ")})`);
    }
    const byKey = results.map((r) => new Map(r.data.rows.map((row) => [rowKey(row), row])));
    const rows: SeedRow[] = [];
    for (const row of first.rows) {
      const found = byKey.map((m) => m.get(rowKey(row)));
      if (found.some((f) => f === undefined)) continue;
      const all = found as StudyRow[];
      rows.push({
        method: row.method,
        ri: row.ri,
        ...(row.distill ? { distill: true } : {}),
        avgAccuracy: spread(all.map((r) => r.avgAccuracy)),
        avgNormalised: spread(all.map((r) => r.avgNormalised)),
        xi: spread(all.map((r) => r.xi)),
      });
    }
    const unseen = aggregateUnseen(results);
    return new SeedAggregate({
      ...(unseen ? { unseen } : {}),
      suite: first.suite,
      seeds,
      runs: [...runs],
      aux: first.aux,
      steps: first.steps,
      experts: spread(results.map((r) => meanOf(r.data.experts))),
      base: spread(results.map((r) => meanOf(r.data.base))),
      rows,
    });
  }

  /** Methods × (without, with RI): mean ± sd over seeds of accuracy, gain, normalised, ξ. */
  table(): Figure {
    const d = this.data;
    const methods = [...new Set(d.rows.map((r) => r.method))];
    const find = (m: string, ri: boolean, distill = false) =>
      d.rows.find((r) => r.method === m && r.ri === ri && !!r.distill === distill);
    const distilled = d.rows.some((r) => r.distill);
    const xiText = (s?: Spread) => s ? `${s.mean.toFixed(3)} ± ${sdText(s.sd, 3)}` : "";
    const rows = methods.map((m) => {
      const off = find(m, false), on = find(m, true), dist = find(m, false, true);
      const gain = off && on
        ? pct(spread(on.avgAccuracy.values.map((v, i) => v - off.avgAccuracy.values[i])))
        : "";
      return [
        m,
        off ? pct(off.avgAccuracy) : "",
        on ? pct(on.avgAccuracy) : "",
        gain,
        off ? pct(off.avgNormalised) : "",
        on ? pct(on.avgNormalised) : "",
        xiText(off?.xi),
        xiText(on?.xi),
        ...(distilled ? [dist ? pct(dist.avgAccuracy) : ""] : []),
      ];
    });
    return table({
      title: `${d.suite}, seeds ${d.seeds.join(", ")} (mean ± sd over seeds): experts ` +
        `${pct(d.experts)}%, θ0 + heads ${pct(d.base)}% (RI ${d.steps} steps, aux ${d.aux})`,
      columns: studyTableColumns(distilled),
      rows,
    });
  }

  /** Held-out tasks: each merge's mean ± sd without and with RI, beside θ0 + heads. */
  unseenTable(): Figure | undefined {
    const u = this.data.unseen;
    if (!u) return undefined;
    const methods = [...new Set(u.rows.map((r) => r.method))];
    const find = (m: string, ri: boolean) =>
      u.rows.find((r) => r.method === m && r.ri === ri && !r.distill);
    return table({
      title: `Held-out tasks (${u.tasks.join(", ")}), seeds ${this.data.seeds.join(", ")}: ` +
        `θ0 + heads ${pct(u.base)}%`,
      columns: ["method", "acc", "acc +RI", "gain"],
      rows: methods.map((m) => {
        const off = find(m, false), on = find(m, true);
        const gain = off && on
          ? pct(spread(on.avgAccuracy.values.map((v, i) => v - off.avgAccuracy.values[i])))
          : "";
        return [m, off ? pct(off.avgAccuracy) : "", on ? pct(on.avgAccuracy) : "", gain];
      }),
    });
  }

  /** The JSON written to `aggregate.json`. */
  toJSON(): SeedAggregateData {
    return this.data;
  }
}
displayWith(SeedAggregate.prototype, (a) => {
  const unseen = a.unseenTable();
  return unseen ? stack([a.table(), unseen]) : a.table();
});

/** The held-out tasks' scores over seeds, when every run scored the same tasks. */
function aggregateUnseen(results: readonly StudyResults[]): SeedAggregateData["unseen"] {
  const all = results.map((r) => r.data.unseen);
  if (all.some((u) => u === undefined)) return undefined;
  const us = all as NonNullable<(typeof all)[number]>[];
  const tasks = us[0].tasks;
  if (us.some((u) => u.tasks.join() !== tasks.join())) return undefined;
  const mean = (r: Record<string, number>) => tasks.reduce((a, t) => a + r[t], 0) / tasks.length;
  const rows = [];
  for (const row of us[0].rows) {
    const found = us.map((u) => u.rows.find((r) => rowKey(r) === rowKey(row)));
    if (found.some((f) => f === undefined)) continue;
    rows.push({
      method: row.method,
      ri: row.ri,
      ...(row.distill ? { distill: true } : {}),
      avgAccuracy: spread(found.map((f) => f!.avgAccuracy)),
    });
  }
  return { tasks: [...tasks], base: spread(us.map((u) => mean(u.base))), rows };
}

/**
 * Parses a seed list such as `0,1,2` or `0-2` (integers ≥ 0, no repeats).
 *
 * @example
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { parseSeeds } from "./seeds.ts";
 * assertEquals(parseSeeds("0-2"), [0, 1, 2]);
 * assertEquals(parseSeeds("3, 5"), [3, 5]);
 * ```
 */
export function parseSeeds(text: string): number[] {
  const seeds: number[] = [];
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const range = part.match(/^(\d+)\s*-\s*(\d+)$/);
    if (range) {
      const [from, to] = [Number(range[1]), Number(range[2])];
      if (to < from) throw new Error(`--seeds ${text}: range ${part} runs backwards`);
      for (let s = from; s <= to; s++) seeds.push(s);
    } else if (/^\d+$/.test(part)) {
      seeds.push(Number(part));
    } else {
      throw new Error(`--seeds ${text}: "${part}" is not a seed (integers ≥ 0, or a range a-b)`);
    }
  }
  if (seeds.length === 0) throw new Error(`--seeds ${text}: no seeds`);
  if (new Set(seeds).size !== seeds.length) throw new Error(`--seeds ${text}: a seed repeats`);
  return seeds;
}

/**
 * The configuration of one seed's run: `config` with that seed, named as that seed's default
 * run (or, when `config` carries a name of its own, that name with `-seed<N>` appended).
 *
 * @example
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { resolveStudyConfig } from "./config.ts";
 * import { seedConfig } from "./seeds.ts";
 * const c = resolveStudyConfig({ suite: "mf4", steps: 50 });
 * assertEquals(seedConfig(c, 2).name, "mf4-seed2-shapes-50steps");
 * assertEquals(seedConfig({ ...c, name: "x" }, 2).name, "x-seed2");
 * ```
 */
export function seedConfig(config: StudyConfig, seed: number): StudyConfig {
  const { name, ...rest } = config;
  const defaulted = resolveStudyConfig(stripUndefined(rest)).name === name;
  const next = resolveStudyConfig(stripUndefined({ ...rest, seed }));
  return defaulted ? next : { ...next, name: `${name}-seed${seed}` };
}

/** The aggregate's folder name: the run name with `seed<N>` replaced by `seeds<a>-<b>-…`. */
function aggregateName(config: StudyConfig, seeds: readonly number[]): string {
  const { name, ...rest } = config;
  const tag = `seeds${seeds.join("-")}`;
  const defaulted = resolveStudyConfig(stripUndefined(rest)).name === name;
  return defaulted ? name.replace(/-seed\d+-/, `-${tag}-`) : `${name}-${tag}`;
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Where {@linkcode runSeeds} writes the aggregate. */
export function aggregatePath(config: StudyConfig, seeds: readonly number[]): string {
  return join(config.out, aggregateName(config, seeds), "aggregate.json");
}

/**
 * Runs (or resumes, or reuses) the study of `config` once per seed, then writes and returns
 * the aggregate (`<out>/<name with seeds…>/aggregate.json`, see {@linkcode aggregatePath}).
 * A seed whose `results.json` exists with the same configuration and a row of every method it
 * names (for `all`, every method of the default set as registered now) and a score on every
 * held-out task it names is not run again; one that lacks either resumes, and only the missing
 * work is done.
 *
 * @example
 * ```ts ignore
 * const agg = await runSeeds(resolveStudyConfig({}), [0, 1, 2]);
 * console.log(agg.table().toText());
 * ```
 */
export async function runSeeds(
  config: StudyConfig,
  seeds: readonly number[],
  options: StudyOptions = {},
): Promise<SeedAggregate> {
  const log = options.log ?? console.log;
  if (seeds.length === 0) throw new Error("runSeeds: no seeds");
  const results: StudyResults[] = [];
  const runs: string[] = [];
  for (const seed of seeds) {
    const c = seedConfig(config, seed);
    const paths = runPaths(c);
    const done = await readDone(paths.results, paths.config, c);
    if (done) log(`seed ${seed}: ${paths.results} is done, reused`);
    else log(`seed ${seed}: running ${paths.dir}`);
    results.push(done ?? await runStudy(c, options));
    runs.push(paths.results);
  }
  const aggregate = SeedAggregate.of(results, runs);
  const path = aggregatePath(config, seeds);
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await writeFileAtomic(path, JSON.stringify(aggregate, null, 2) + "\n");
  log(`wrote ${path}`);
  return aggregate;
}

/** A finished run's results, when its folder holds them for this very configuration. */
async function readDone(
  results: string,
  configPath: string,
  config: StudyConfig,
): Promise<StudyResults | undefined> {
  try {
    const saved = await Deno.readTextFile(configPath);
    if (saved !== JSON.stringify(config, null, 2) + "\n") return undefined;
    const done = new StudyResults(JSON.parse(await Deno.readTextFile(results)));
    // `all` grows when a method is registered: the run then resumes and merges only the new ones.
    const methods = config.methods === "all" ? defaultStudyMethods() : config.methods;
    const have = new Set(done.data.rows.map((r) => r.method));
    if (!methods.every((m) => have.has(m))) return undefined;
    // Held-out tasks are evaluations added to a run: a results.json written without them resumes.
    const unseen = done.data.unseen?.tasks ?? [];
    return config.unseen.every((t) => unseen.includes(t)) ? done : undefined;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}
