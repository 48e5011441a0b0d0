/**
 * Assertions on figures shared by the notebook tests: the Plotly figure of an output bundle,
 * a heatmap that Plotly really drew (SVG layers, labels, pixels), and screenshots kept under
 * `.cache/screenshots/` for a person to look at.
 *
 * @module
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { type PlotBox, regionStats } from "./chromium.ts";
import { REPO_ROOT } from "../../tasks/notebook_runner.ts";

/** Where screenshots are kept (ignored by git). */
export const SHOTS = `${REPO_ROOT}/.cache/screenshots`;

/** A Plotly figure as stored in an `application/vnd.plotly.v1+json` output. */
export type Plotly = { data: Record<string, unknown>[]; layout: Record<string, unknown> };

/**
 * The Plotly figure of an output's MIME bundle; throws naming the MIME types present if none.
 *
 * @example
 * ```ts ignore
 * const fig = plotlyOf(richOutput(cellWith(nb, "heatmap(")));
 * ```
 */
export function plotlyOf(data: Record<string, unknown>): Plotly {
  const fig = data["application/vnd.plotly.v1+json"] as Plotly | undefined;
  assert(fig, `no Plotly bundle among ${Object.keys(data)}`);
  return fig;
}

/**
 * A drawn heatmap: Plotly's SVG layers, one heatmap image, the labels on both axes, the static
 * picture hidden, and real pixels in the plot area of the screenshot.
 *
 * @example
 * ```ts ignore
 * assertHeatmapDrawn(page.plots[0], page.screenshot, ["mnist", "fashion"]);
 * ```
 */
export function assertHeatmapDrawn(plot: PlotBox, screenshot: Uint8Array, labels: string[]): void {
  assert(plot.mainSvgs >= 1, "Plotly drew no main-svg");
  equal(plot.heatmapImages, 1);
  equal(plot.staticHidden, true);
  deepStrictEqual([...plot.xLabels].sort(), [...labels].sort());
  deepStrictEqual([...plot.yLabels].sort(), [...labels].sort());
  const stats = regionStats(screenshot, plot);
  assert(stats.lumaStd > 30, `plot area looks blank: ${JSON.stringify(stats)}`);
  assert(stats.colors > 20, `plot area has too few colours: ${JSON.stringify(stats)}`);
  assert(stats.inked > 0.2, `plot area mostly empty: ${JSON.stringify(stats)}`);
}

/**
 * Writes a screenshot to `.cache/screenshots/NAME` atomically.
 *
 * @example
 * ```ts ignore
 * await saveShot("report.png", page.screenshot);
 * ```
 */
export async function saveShot(name: string, png: Uint8Array): Promise<void> {
  await Deno.mkdir(SHOTS, { recursive: true });
  const temp = `${SHOTS}/${name}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.writeFile(temp, png);
  await Deno.rename(temp, `${SHOTS}/${name}`);
}
