/**
 * Small text helpers shared by the renderers: number formatting, escaping, durations and
 * axis ticks.
 *
 * @module
 */

/**
 * Escapes text for XML/HTML element content and attribute values.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { escapeXml } from "./format.ts";
 * equal(escapeXml(`a<b & "c"`), "a&lt;b &amp; &quot;c&quot;");
 * ```
 */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ENTITIES[c]);
}

const XML_ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * JSON that is safe to place inside an HTML `<script>` element: `<`, `>` and `&` are written
 * as unicode escapes so no label can close the element.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { scriptJson } from "./format.ts";
 * const json = scriptJson({ label: "</script>" });
 * equal(json, '{"label":"\\u003c/script\\u003e"}');
 * deepEqual(JSON.parse(json), { label: "</script>" });
 * ```
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/**
 * Formats one number for a table or label: integers as they are, other values with `digits`
 * significant digits, very large or small magnitudes in exponent form; NaN as "n/a".
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { formatNumber } from "./format.ts";
 * equal(formatNumber(0.123456), "0.1235");
 * equal(formatNumber(42), "42");
 * equal(formatNumber(NaN), "n/a");
 * equal(formatNumber(1.5e-7), "1.500e-7");
 * ```
 */
export function formatNumber(value: number, digits = 4): string {
  if (Number.isNaN(value)) return "n/a";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  if (Number.isInteger(value) && Math.abs(value) < 1e9) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6 || magnitude < 1e-4) return value.toExponential(digits - 1);
  return String(Number(value.toPrecision(digits)));
}

/** How a group of numbers is written so that they line up: fixed decimals or exponent form. */
export interface NumberStyle {
  /** `fixed`: a fixed number of decimals; `exponent`: d.ddde±x. */
  kind: "fixed" | "exponent";
  /** Decimals after the point (fixed) or in the mantissa (exponent). */
  decimals: number;
}

/**
 * Chooses one style for a group of values (a heatmap's cells, a column), so every value shows
 * `digits` significant digits at the largest magnitude and all line up.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { numberStyle } from "./format.ts";
 * deepEqual(numberStyle([0.01, 0.25, 0.9]), { kind: "fixed", decimals: 3 });
 * deepEqual(numberStyle([3, 12]), { kind: "fixed", decimals: 0 });
 * ```
 */
export function numberStyle(values: Iterable<number>, digits = 3): NumberStyle {
  let largest = 0;
  let allIntegers = true;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    largest = Math.max(largest, Math.abs(v));
    if (!Number.isInteger(v)) allIntegers = false;
  }
  if (allIntegers && largest < 1e9) return { kind: "fixed", decimals: 0 };
  if (largest >= 1e6 || (largest > 0 && largest < 1e-3)) {
    return { kind: "exponent", decimals: digits - 1 };
  }
  const order = largest > 0 ? Math.floor(Math.log10(largest)) : 0;
  return { kind: "fixed", decimals: Math.max(0, digits - 1 - order) };
}

/**
 * Writes a number in a {@linkcode NumberStyle}; NaN as "n/a".
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { formatWithStyle } from "./format.ts";
 * equal(formatWithStyle(0.5, { kind: "fixed", decimals: 2 }), "0.50");
 * equal(formatWithStyle(12345678, { kind: "exponent", decimals: 2 }), "1.23e+7");
 * ```
 */
export function formatWithStyle(value: number, style: NumberStyle): string {
  if (Number.isNaN(value)) return "n/a";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  return style.kind === "fixed"
    ? value.toFixed(style.decimals)
    : value.toExponential(style.decimals);
}

/**
 * The d3-format string Plotly uses for the same {@linkcode NumberStyle}.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { plotlyFormat } from "./format.ts";
 * equal(plotlyFormat({ kind: "fixed", decimals: 2 }), ".2f");
 * ```
 */
export function plotlyFormat(style: NumberStyle): string {
  return style.kind === "fixed" ? `.${style.decimals}f` : `.${style.decimals}e`;
}

/**
 * A duration in seconds as a short human string ("45s", "3m07s", "2h05m").
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { formatDuration } from "./format.ts";
 * equal(formatDuration(45), "45s");
 * equal(formatDuration(187), "3m07s");
 * equal(formatDuration(7500), "2h05m");
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.floor(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * Round tick positions covering [min, max]: steps of 1, 2 or 5 × 10^k, about `count` of them.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { niceTicks } from "./format.ts";
 * deepEqual(niceTicks(0, 0.93), [0, 0.2, 0.4, 0.6, 0.8, 1]);
 * deepEqual(niceTicks(-0.0573, 0.0573, 6), [-0.06, -0.04, -0.02, 0, 0.02, 0.04, 0.06]);
 * ```
 */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) return [min];
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  // Integer multiples of the step, not a running sum: summing left -0.06 + 3 × 0.02 at 6.9e-18
  // instead of 0 (a colour bar read "6.94e-18").
  const ticks: number[] = [];
  for (let i = Math.floor(min / step + 1e-9); i * step <= max + step * (1 - 1e-9); i++) {
    ticks.push(Number((i * step).toPrecision(12)));
  }
  return ticks;
}

/**
 * The smallest and largest finite values in the given arrays (`NaN`s and infinities skipped);
 * `[NaN, NaN]` when there are none.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { finiteExtent } from "./format.ts";
 * deepEqual(finiteExtent([[1, NaN], [-2, 5]]), [-2, 5]);
 * deepEqual(finiteExtent([[NaN]]), [NaN, NaN]);
 * ```
 */
export function finiteExtent(arrays: Iterable<ArrayLike<number>>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const array of arrays) {
    for (let i = 0; i < array.length; i++) {
      const v = array[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : [NaN, NaN];
}

/**
 * Breaks `text` into lines of at most `maxChars` characters at spaces (a longer word gets a
 * line of its own, cut only if it alone exceeds `maxChars`), so that titles wrap instead of
 * running off a figure.
 *
 * @example
 * ```ts
 * import { deepStrictEqual } from "node:assert/strict";
 * import { wrapWords } from "./format.ts";
 * deepStrictEqual(wrapWords("RI-adapted experts (aux data; off-diagonal mean 0.16)", 24), [
 *   "RI-adapted experts (aux",
 *   "data; off-diagonal mean",
 *   "0.16)",
 * ]);
 * ```
 */
export function wrapWords(text: string, maxChars: number): string[] {
  const limit = Math.max(4, Math.floor(maxChars));
  const lines: string[] = [];
  let line = "";
  for (let word of text.split(/\s+/).filter(Boolean)) {
    while (word.length > limit) {
      if (line) lines.push(line), line = "";
      lines.push(word.slice(0, limit));
      word = word.slice(limit);
    }
    if (!line) line = word;
    else if (line.length + 1 + word.length <= limit) line += " " + word;
    else lines.push(line), line = word;
  }
  if (line) lines.push(line);
  return lines;
}
