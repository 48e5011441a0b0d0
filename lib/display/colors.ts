/**
 * Colour scales and the series palette, shared by the Plotly specs and the static SVG so that
 * both views of a figure show the same colours.
 *
 * @module
 */
import { finiteExtent } from "./format.ts";

/** `sequential` (low → high, viridis) or `diverging` (negative blue, zero white, positive red). */
export type ColorScaleName = "sequential" | "diverging";

/** Colour stops, evenly spaced from 0 to 1. */
const SCALES: Record<ColorScaleName, string[]> = {
  // matplotlib's viridis, sampled at 10 points: perceptually uniform, readable in grey.
  sequential: [
    "#440154",
    "#482878",
    "#3e4989",
    "#31688e",
    "#26828e",
    "#1f9e89",
    "#35b779",
    "#6ece58",
    "#b5de2b",
    "#fde725",
  ],
  // ColorBrewer RdBu (9 classes), ordered blue → red so that positive reads "hot".
  diverging: [
    "#2166ac",
    "#4393c3",
    "#92c5de",
    "#d1e5f0",
    "#f7f7f7",
    "#fddbc7",
    "#f4a582",
    "#d6604d",
    "#b2182b",
  ],
};

/** Distinct colours for series (bars, lines), in order; the same as Plotly's default cycle. */
export const PALETTE: readonly string[] = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/**
 * The colour of series number `index` (cycling through {@linkcode PALETTE}).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { PALETTE, seriesColor } from "./colors.ts";
 * equal(seriesColor(0), "#1f77b4");
 * equal(seriesColor(PALETTE.length), seriesColor(0));
 * ```
 */
export function seriesColor(index: number): string {
  return PALETTE[index % PALETTE.length];
}

/**
 * A scale as Plotly's `colorscale` wants it: `[[0, "#..."], …, [1, "#..."]]`.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { plotlyColorscale } from "./colors.ts";
 * const scale = plotlyColorscale("diverging");
 * deepEqual(scale[0], [0, "#2166ac"]);
 * equal(scale.at(-1)?.[0], 1);
 * ```
 */
export function plotlyColorscale(name: ColorScaleName): [number, string][] {
  const stops = SCALES[name];
  return stops.map((color, i) => [i / (stops.length - 1), color]);
}

/**
 * The colour at position `t` in [0, 1] of a scale (linear between stops, clamped), as `#rrggbb`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { colorAt } from "./colors.ts";
 * equal(colorAt("diverging", 0.5), "#f7f7f7");
 * equal(colorAt("diverging", -3), "#2166ac"); // clamped to the first stop
 * ```
 */
export function colorAt(name: ColorScaleName, t: number): string {
  const stops = SCALES[name];
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const a = parseHex(stops[i]);
  const b = parseHex(stops[i + 1]);
  const f = x - i;
  return toHex(a.map((v, k) => v + (b[k] - v) * f) as [number, number, number]);
}

/**
 * Black or white, whichever reads better on `background` (`#rrggbb`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { textColorOn } from "./colors.ts";
 * equal(textColorOn("#440154"), "#ffffff");
 * equal(textColorOn("#fde725"), "#000000");
 * ```
 */
export function textColorOn(background: string): string {
  const [r, g, b] = parseHex(background).map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return luminance > 0.36 ? "#000000" : "#ffffff";
}

/** The value range a colour scale spans. */
export interface ColorRange {
  /** Value drawn with the scale's first colour. */
  min: number;
  /** Value drawn with the scale's last colour. */
  max: number;
}

/**
 * One colour range covering all the given matrices, so that several heatmaps (say, before and
 * after RI) use the same colours for the same values. With `symmetric`, the range is
 * ±(largest magnitude), which centres a diverging scale on zero.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { sharedColorRange } from "./colors.ts";
 * deepEqual(sharedColorRange([[[0.1, 0.5]], [[0.2, 0.9]]]), { min: 0.1, max: 0.9 });
 * deepEqual(sharedColorRange([[[-0.2, 0.5]]], { symmetric: true }), { min: -0.5, max: 0.5 });
 * ```
 */
export function sharedColorRange(
  matrices: ArrayLike<number>[][],
  options: { symmetric?: boolean } = {},
): ColorRange {
  const [lo, hi] = finiteExtent(matrices.flat());
  if (Number.isNaN(lo)) return { min: 0, max: 1 };
  if (options.symmetric) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return { min: -m, max: m };
  }
  return lo === hi ? { min: lo - 0.5, max: hi + 0.5 } : { min: lo, max: hi };
}

function parseHex(color: string): [number, number, number] {
  const v = parseInt(color.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function toHex(rgb: [number, number, number]): string {
  return "#" + rgb.map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
}
