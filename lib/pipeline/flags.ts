/**
 * Command-line flags as every command of this kit reads them (`node:util`'s `parseArgs`, which
 * Deno provides): a negative number is a value, never a flag (`--scaling -5`), and a misuse is
 * one line that lists the valid flags. This module imports nothing, so a command can parse its
 * flags without loading the study (or TensorFlow.js).
 *
 * @module
 */

/** A flag's declaration, as `parseArgs` takes it. */
export interface FlagSpec {
  /** Whether the flag takes a value. */
  type: "string" | "boolean";
  /** One-letter alias. */
  short?: string;
  /** Whether the flag may be repeated. */
  multiple?: boolean;
}

/** A negative number (`-5`, `-0.5`, `-.5`, `-1e-3`, `-Infinity`) or a list starting with one. */
const NEGATIVE_NUMBER = /^-(\d|\.\d|Infinity)/;

/**
 * The arguments with `--flag -5` written `--flag=-5` wherever a flag that takes a value is
 * followed by a negative number: `parseArgs` would otherwise refuse it as ambiguous (it cannot
 * tell a value from a flag), though a number is never a flag.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { joinNegativeNumbers } from "./flags.ts";
 * const options = { scaling: { type: "string" }, list: { type: "boolean" } } as const;
 * deepStrictEqual(joinNegativeNumbers(["--scaling", "-5", "--list"], options), ["--scaling=-5", "--list"]);
 * ```
 */
export function joinNegativeNumbers(
  args: readonly string[],
  options: Readonly<Record<string, FlagSpec>>,
): string[] {
  const takesValue = (arg: string) => {
    if (arg.includes("=")) return false;
    const name = arg.startsWith("--")
      ? arg.slice(2)
      : Object.entries(options).find(([, o]) => arg === `-${o.short}`)?.[0];
    return name !== undefined && options[name]?.type === "string";
  };
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (takesValue(args[i]) && i + 1 < args.length && NEGATIVE_NUMBER.test(args[i + 1])) {
      out.push(`${args[i]}=${args[i + 1]}`);
      i++;
    } else out.push(args[i]);
  }
  return out;
}

/**
 * A command-line misuse as one line: `parseArgs`'s message (its lines joined), then the valid
 * flags and where the usage is.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { flagError } from "./flags.ts";
 * const err = flagError(new Error("Unknown option '--x'.\nTry again."), ["a", "b"], "deno task merge --help");
 * equal(err.message, "Unknown option '--x'. Try again. (valid flags: --a --b; usage: deno task merge --help)");
 * ```
 */
export function flagError(err: unknown, flags: readonly string[], help: string): Error {
  const message = (err as Error).message.split("\n").map((l) => l.trim()).filter(Boolean)
    .join(" ");
  return new Error(
    `${message} (valid flags: ${flags.map((f) => `--${f}`).join(" ")}; usage: ${help})`,
  );
}

/**
 * `text` on one line: control characters (line breaks included) written as escapes (`\\n`,
 * `\\r`, `\\t`, else `\\uXXXX`), so that a message quoting a file's bytes stays one line.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { oneLine } from "./flags.ts";
 * equal(oneLine('"\x89PNG\r\n" is not valid JSON'), '"\\u0089PNG\\r\\n" is not valid JSON');
 * ```
 */
export function oneLine(text: string): string {
  const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
