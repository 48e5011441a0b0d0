/**
 * Command-line flags of the study (`deno task merge` without a method, `deno task ri`):
 * each flag overrides one configuration key; `--config FILE` loads a JSON configuration first.
 * Unknown flags and keys are errors that list the valid ones.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, isAbsolute, join } from "node:path";
import { resolveStudyConfig, type StudyConfig, studyKeys } from "./config.ts";
import { flagError, joinNegativeNumbers, oneLine } from "./flags.ts";
import { assertOutputOutsideInputs, type NamedPath } from "../io/paths.ts";
import { resolveClipExpertsSpec } from "../models/clip_experts.ts";

/** Flag → configuration key, for flags whose names differ from their keys. */
const FLAG_KEYS: Record<string, string> = {
  "aux-size": "auxSize",
  "weight-decay": "weightDecay",
  "checkpoint-every": "checkpointEvery",
  "method-params": "methodParams",
};

/** The study's flags (every configuration key, kebab-cased, plus --config). */
export function studyFlags(): string[] {
  const toFlag = (key: string) => Object.entries(FLAG_KEYS).find(([, k]) => k === key)?.[0] ?? key;
  return studyKeys().map(toFlag);
}

/**
 * Parses study flags into a configuration; `extra` names more string flags the caller reads
 * itself (returned in `rest`).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { parseStudyArgs } from "./cli.ts";
 * const { config } = await parseStudyArgs(["--suite", "mf4", "--steps", "20"]);
 * deepStrictEqual([config.suite, config.steps], ["mf4", 20]);
 * ```
 */
export async function parseStudyArgs(
  args: string[],
  extra: string[] = [],
): Promise<{ config: StudyConfig; rest: Record<string, string | undefined> }> {
  const options: Record<string, { type: "string" }> = {};
  for (const flag of [...studyFlags(), "config", ...extra]) options[flag] = { type: "string" };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: joinNegativeNumbers(args, options),
      options,
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw flagError(err, [...studyFlags(), "config", ...extra], "--help");
  }
  let partial: Record<string, unknown> = {};
  const file = values.config as string | undefined;
  if (file) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (err) {
      throw new Error(`--config ${file}: cannot read (${(err as Error).message})`);
    }
    try {
      partial = JSON.parse(text);
    } catch (err) {
      throw new Error(`--config ${file}: not valid JSON (${oneLine((err as Error).message)})`);
    }
    if (typeof partial !== "object" || partial === null || Array.isArray(partial)) {
      throw new Error(`--config ${file}: expected a JSON object of settings`);
    }
    // A models description named in a file is found next to that file, wherever one runs.
    const models = partial.models;
    if (typeof models === "string" && models !== "" && !isAbsolute(models)) {
      partial.models = join(dirname(file), models);
    }
  }
  for (const flag of studyFlags()) {
    const value = values[flag];
    if (typeof value === "string") partial[FLAG_KEYS[flag] ?? flag] = value;
  }
  const config = resolveStudyConfig(partial, file ? `--config ${file}` : "flags");
  const rest = Object.fromEntries(extra.map((f) => [f, values[f] as string | undefined]));
  await assertOutputOutsideInputs(
    { what: "the run folder", path: join(config.out, config.name) },
    await studyInputs(config),
  );
  return { config, rest };
}

/**
 * What a study reads: the models description and every path it names (base, experts, heads,
 * test and auxiliary folders) and an auxiliary folder or file given as `dir:PATH` or
 * `safetensors:PATH`. A description that cannot be read adds only itself (the study reports
 * what is wrong with it).
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { studyInputs } from "./cli.ts";
 * import { resolveStudyConfig } from "./config.ts";
 * const config = resolveStudyConfig({ suite: "mf4", aux: "dir:/data/pictures" }, "example");
 * deepStrictEqual(await studyInputs(config), [{ what: "--aux", path: "/data/pictures" }]);
 * ```
 */
export async function studyInputs(config: StudyConfig): Promise<NamedPath[]> {
  const inputs: NamedPath[] = [];
  const aux = /^(?:dir|folder|safetensors):(.+)$/.exec(config.aux)?.[1];
  if (aux) inputs.push({ what: "--aux", path: aux });
  if (config.models === undefined) return inputs;
  inputs.push({ what: "--models", path: config.models });
  try {
    const json = JSON.parse(await Deno.readTextFile(config.models));
    const spec = resolveClipExpertsSpec(json, dirname(config.models), config.models);
    inputs.push({ what: "the base model", path: spec.base });
    for (const [task, path] of Object.entries(spec.experts)) {
      inputs.push({ what: `expert "${task}"`, path });
    }
    inputs.push({ what: "the heads file", path: spec.heads });
    for (const [task, path] of Object.entries(spec.tasks ?? {})) {
      inputs.push({ what: `the test folder of "${task}"`, path });
    }
    if (spec.aux) inputs.push({ what: "the auxiliary folder", path: spec.aux });
  } catch {
    // The study opens the description itself and says what is wrong with it.
  }
  return inputs;
}
