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

/** Flag → configuration key, for flags whose names differ from their keys. */
const FLAG_KEYS: Record<string, string> = {
  "aux-size": "auxSize",
  "weight-decay": "weightDecay",
  "checkpoint-every": "checkpointEvery",
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
 * import { parseStudyArgs } from "./cli.ts";
 * const { config } = await parseStudyArgs(["--suite", "mf4", "--steps", "20"]);
 * console.log(config.suite, config.steps); // mf4 20
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
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\nvalid flags: ${
        [...studyFlags(), "config", ...extra].map((f) => `--${f}`).join(" ")
      }`,
    );
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
      throw new Error(`--config ${file}: not valid JSON (${(err as Error).message})`);
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
  return { config, rest };
}
