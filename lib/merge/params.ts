/**
 * Hyperparameters of merge methods: parsing `name=value` text, validating against a method's
 * schema (type and range), filling in defaults, and errors that list the valid names.
 *
 * @module
 */
import type { MergeMethod, Params, ParamSpec, ParamValue } from "./method.ts";

/**
 * Splits `name=value` strings (as given to `--param`) into an object; values stay text until
 * {@linkcode resolveParams} checks them against a method's schema.
 *
 * @example
 * ```ts
 * import { deepEqual, throws } from "node:assert/strict";
 * import { parseParamArgs } from "./params.ts";
 * deepEqual(parseParamArgs(["k=20", "merge=sum"]), { k: "20", merge: "sum" });
 * throws(() => parseParamArgs(["k"]), /parameter "k" is not of the form name=value/);
 * ```
 */
export function parseParamArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw new Error(`parameter "${arg}" is not of the form name=value`);
    const name = arg.slice(0, eq).trim();
    if (Object.hasOwn(out, name)) throw new Error(`parameter "${name}" given twice`);
    out[name] = arg.slice(eq + 1).trim();
  }
  return out;
}

/**
 * The effective hyperparameters of `method`: each given value checked against the schema
 * (text is converted: `"0.5"` → 0.5, `"true"` → true), defaults for the rest. Unknown names and
 * bad values throw errors naming the method, the parameter and what is valid.
 *
 * @example
 * ```ts
 * import { deepEqual, throws } from "node:assert/strict";
 * import { resolveParams } from "./params.ts";
 * import { getMethod } from "./registry.ts";
 * deepEqual(resolveParams(getMethod("ties"), { k: "10" }), { k: 10, merge: "sum", scaling: 0.3 });
 * const ties = getMethod("ties");
 * throws(() => resolveParams(ties, { k: "0" }), /"k" = "0": expected a number in \(0, 100\]/);
 * throws(() => resolveParams(ties, { q: "1" }), /valid parameters are k, merge, scaling/);
 * ```
 */
export function resolveParams(
  method: MergeMethod,
  given: Readonly<Record<string, unknown>> = {},
): Params {
  const specs = new Map(method.params.map((p) => [p.name, p]));
  for (const name of Object.keys(given)) {
    if (!specs.has(name)) {
      const valid = method.params.map((p) => p.name).join(", ");
      throw new Error(
        `method "${method.name}" has no parameter "${name}": valid parameters are ${valid}`,
      );
    }
  }
  const out: Record<string, ParamValue> = {};
  for (const spec of method.params) {
    const value = given[spec.name];
    out[spec.name] = value === undefined ? spec.default : checkValue(method.name, spec, value);
  }
  return out;
}

function checkValue(method: string, spec: ParamSpec, value: unknown): ParamValue {
  const fail = (expected: string) =>
    new Error(
      `method "${method}": parameter "${spec.name}" = ${
        JSON.stringify(value)
      }: expected ${expected}`,
    );
  if (spec.type === "choice") {
    const choices = spec.choices ?? [];
    if (typeof value !== "string" || !choices.includes(value)) {
      throw fail(`one of ${choices.join(", ")}`);
    }
    return value;
  }
  if (spec.type === "numbers") return checkNumbers(spec, value, fail);
  if (spec.type === "boolean") {
    if (typeof value === "boolean") return value;
    if (value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    throw fail("true or false");
  }
  const n = typeof value === "number"
    ? value
    : typeof value === "string" && value !== ""
    ? Number(value)
    : NaN;
  if (!Number.isFinite(n)) throw fail(`a ${spec.type === "integer" ? "whole " : ""}number`);
  if (spec.type === "integer" && !Number.isInteger(n)) throw fail("a whole number");
  if (!inRange(spec, n)) throw fail(`a number in ${rangeText(spec)}`);
  return n;
}

/** A list of numbers, given as an array or as `a,b,c` text (empty text: the empty list). */
function checkNumbers(
  spec: ParamSpec,
  value: unknown,
  fail: (expected: string) => Error,
): readonly number[] {
  const items = Array.isArray(value)
    ? value
    : typeof value === "string"
    ? (value.trim() === "" ? [] : value.split(","))
    : undefined;
  if (!items) throw fail("a comma-separated list of numbers");
  const bound = spec.min === undefined && spec.max === undefined ? "" : ` in ${rangeText(spec)}`;
  return items.map((item) => {
    const n = typeof item === "number"
      ? item
      : typeof item === "string" && item.trim() !== ""
      ? Number(item)
      : NaN;
    if (!Number.isFinite(n) || !inRange(spec, n)) {
      throw fail(`a comma-separated list of numbers${bound}`);
    }
    return n;
  });
}

function inRange(spec: ParamSpec, n: number): boolean {
  if (spec.min !== undefined && (spec.minExclusive ? n <= spec.min : n < spec.min)) return false;
  if (spec.max !== undefined && (spec.maxExclusive ? n >= spec.max : n > spec.max)) return false;
  return true;
}

/**
 * A parameter's range as text, e.g. `(0, 100]` or `[0, ∞)`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { rangeText } from "./params.ts";
 * const k = { name: "k", type: "number", default: 20, source: "", meaning: "" } as const;
 * equal(rangeText({ ...k, min: 0, max: 100, minExclusive: true }), "(0, 100]");
 * equal(rangeText({ ...k, min: 0 }), "[0, ∞)");
 * ```
 */
export function rangeText(spec: ParamSpec): string {
  if (spec.type === "choice") return (spec.choices ?? []).join(" | ");
  if (spec.type === "boolean") return "true | false";
  if (spec.type === "numbers") {
    const each = { ...spec, type: "number" as const };
    return spec.min === undefined && spec.max === undefined
      ? "a list of numbers"
      : `a list of numbers, each in ${rangeText(each)}`;
  }
  const lo = spec.min === undefined ? "(-∞" : `${spec.minExclusive ? "(" : "["}${spec.min}`;
  const hi = spec.max === undefined ? "∞)" : `${spec.max}${spec.maxExclusive ? ")" : "]"}`;
  return `${lo}, ${hi}`;
}

/**
 * The `scaling` parameter every method has: α in θ0 + α·M, with its default's source.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { scalingParam } from "./params.ts";
 * deepEqual(scalingParam(0.3, "FusionBench task_arithmetic.yaml"), {
 *   name: "scaling",
 *   type: "number",
 *   default: 0.3,
 *   min: 0,
 *   source: "FusionBench task_arithmetic.yaml",
 *   meaning: "α: the merged model is θ0 + α·M",
 * });
 * ```
 */
export function scalingParam(defaultValue: number, source: string): ParamSpec {
  return {
    name: "scaling",
    type: "number",
    default: defaultValue,
    min: 0,
    source,
    meaning: "α: the merged model is θ0 + α·M",
  };
}

/**
 * Reads a numeric parameter (validated by {@linkcode resolveParams}).
 *
 * @example
 * ```ts
 * import { equal, throws } from "node:assert/strict";
 * import { numberParam } from "./params.ts";
 * equal(numberParam({ k: 20 }, "k"), 20);
 * throws(() => numberParam({ k: "20" }, "k"), /parameter "k" is 20, not a number/);
 * ```
 */
export function numberParam(params: Params, name: string): number {
  const v = params[name];
  if (typeof v !== "number") throw new Error(`parameter "${name}" is ${v}, not a number`);
  return v;
}

/**
 * Reads a string (choice) parameter (validated by {@linkcode resolveParams}).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { stringParam } from "./params.ts";
 * equal(stringParam({ merge: "sum" }, "merge"), "sum");
 * ```
 */
export function stringParam(params: Params, name: string): string {
  const v = params[name];
  if (typeof v !== "string") throw new Error(`parameter "${name}" is ${v}, not a string`);
  return v;
}

/**
 * Reads a list-of-numbers parameter (validated by {@linkcode resolveParams}).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { numbersParam } from "./params.ts";
 * deepEqual(numbersParam({ weights: [0.3, 0.7] }, "weights"), [0.3, 0.7]);
 * ```
 */
export function numbersParam(params: Params, name: string): readonly number[] {
  const v = params[name];
  if (!Array.isArray(v)) throw new Error(`parameter "${name}" is ${v}, not a list of numbers`);
  return v;
}
