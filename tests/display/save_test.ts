import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { PNG } from "pngjs";
import { bars, heatmap } from "../../lib/display/mod.ts";
import { ScalingSweep, sweepSlider } from "../../lib/pipeline/sweep.ts";
import { tempDir } from "../helpers/temp.ts";
import { renderPage } from "../notebooks/chromium.ts";

const FIGURE = heatmap({
  values: [[0.02, 0.41], [0.35, 0.03]],
  rowLabels: ["mnist", "fashion"],
  columnLabels: ["mnist", "fashion"],
  title: "A heatmap saved from code, its long title wrapped rather than cut at the edges",
});

Deno.test("a figure saves as SVG and as PNG (through Chromium), the PNG drawn at 2× the SVG", async () => {
  await using dir = await tempDir();
  await FIGURE.saveSvg(`${dir.path}/f.svg`);
  const svg = await Deno.readTextFile(`${dir.path}/f.svg`);
  equal(svg, FIGURE.toSvg());
  const [w, h] = [Number(svg.match(/width="(\d+)"/)![1]), Number(svg.match(/height="(\d+)"/)![1])];
  await FIGURE.savePng(`${dir.path}/f.png`);
  const png = PNG.sync.read(Buffer.from(await Deno.readFile(`${dir.path}/f.png`)));
  deepStrictEqual([png.width, png.height], [2 * w, 2 * h]);
  const colours = new Set<number>();
  for (let i = 0; i < png.data.length; i += 4 * 7) colours.add(png.data.readUInt32BE(i));
  assert(colours.size > 20, `the PNG looks blank (${colours.size} colours)`);
});

Deno.test("a slider over α works in a saved HTML file, without a kernel", async () => {
  await using dir = await tempDir();
  const sweep = (label: string, shift: number) =>
    new ScalingSweep(
      "task_arithmetic",
      label,
      [0.1, 0.3, 0.5],
      [0.6, 0.7, 0.65],
      [0.7, 0.8, 0.75],
      [1, 0.8, 0.9],
      0.3,
      0.7,
      [[0.5 + shift, 0.7], [0.6 + shift, 0.8], [0.55 + shift, 0.75]],
      ["mnist", "fashion"],
    );
  const fig = sweepSlider([sweep("original", 0), sweep("RI", 0.1)]);
  const path = `${dir.path}/slider.html`;
  await fig.saveHtml(path);
  const page = await renderPage(path, {
    expectPlots: 1,
    timeoutMs: 240_000,
    probe: `(() => { const el = document.querySelector(".js-plotly-plot");
      const slider = el.layout.sliders[0];
      const ys = () => el.data.map((d) => d.y.map((v) => Math.round(v * 1000) / 1000));
      const before = ys();
      return window.Plotly.restyle(el, slider.steps[2].args[0]).then(() => ({
        steps: slider.steps.map((s) => s.label), active: slider.active,
        before, after: ys(),
        drawnSlider: el.querySelectorAll("g.slider-container").length }));
    })()`,
  });
  const probed = page.probed as Record<string, unknown>;
  deepStrictEqual(probed.steps, ["0.1", "0.3", "0.5"]);
  equal(probed.active, 1); // the default α
  equal(probed.drawnSlider, 1);
  deepStrictEqual(probed.before, [[60, 80], [70, 80]]);
  deepStrictEqual(probed.after, [[55, 75], [65, 75]]);
  deepStrictEqual(page.consoleErrors, []);
  // The static picture and the text say which α they show.
  assert(fig.toText().includes("shown: α = 0.3"));
  assert(bars({ categories: ["a"], series: [{ name: "s", values: [1] }] }).toText().length > 0);
});
