import { deepStrictEqual, equal, match, ok as assert, rejects } from "node:assert/strict";
import {
  bars,
  bundleOf,
  display,
  displayWith,
  heatmap,
  htmlDocument,
  inKernel,
  isDisplayable,
  JUPYTER_DISPLAY,
  plotlyLibrary,
  plotlyVersion,
  resetPlotlyLibrary,
  stack,
  table,
  writeHtmlDocument,
} from "../../lib/display/mod.ts";
import { tempDir } from "../helpers/temp.ts";

const LIBRARY = /<script data-ri-plotly="[\d.]+">/g;
const fig = () =>
  heatmap({ values: [[1, 2], [3, 4]], rowLabels: ["a", "b"], columnLabels: ["x", "y"] });

function html(bundle: Record<string, unknown>): string {
  return bundle["text/html"] as string;
}

Deno.test("a figure's bundle has Plotly JSON, HTML, static SVG and plain text", () => {
  const bundle = fig().toBundle({ library: "never" });
  deepStrictEqual(Object.keys(bundle).sort(), [
    "application/vnd.plotly.v1+json",
    "image/svg+xml",
    "text/html",
    "text/plain",
  ]);
  const plotly = bundle["application/vnd.plotly.v1+json"] as { data: { x: string[] }[] };
  deepStrictEqual(plotly.data[0].x, ["x", "y"]);
  match(bundle["image/svg+xml"] as string, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  match(html(bundle), /<div class="ri-static"><svg /);
  match(html(bundle), /window\.Plotly\.newPlot/);
  // Nothing may load from the network.
  assert(!/src=["']?https?:/.test(html(bundle)), "HTML must not load scripts from a URL");
  // Tables are HTML; they need neither the library nor an SVG.
  deepStrictEqual(Object.keys(table({ columns: ["a"], rows: [[1]] }).toBundle()).sort(), [
    "text/html",
    "text/plain",
  ]);
});

Deno.test("plotly.js travels once per session, again after a reset, always on request", async () => {
  resetPlotlyLibrary();
  const first = html(fig().toBundle());
  const second = html(fig().toBundle());
  equal(first.match(LIBRARY)?.length, 1);
  assert(first.length > 1_000_000, "the first output carries the whole library");
  equal(second.match(LIBRARY), null);
  assert(second.length < 20_000, `later outputs stay small (${second.length} bytes)`);
  // A later output keeps its static picture, with a note, until the library is on the page.
  match(second, /ri-note/);
  match(second, /addEventListener\("ri-plotly-ready",draw\)/);
  equal(first.includes("ri-note"), false);
  resetPlotlyLibrary();
  equal(
    html(bars({ categories: ["a"], series: [{ name: "s", values: [1] }] }).toBundle())
      .match(LIBRARY)?.length,
    1,
  );
  equal(html(fig().toBundle({ library: "always" })).match(LIBRARY)?.length, 1);
  equal(html(fig().toBundle({ library: "always" })).match(LIBRARY)?.length, 1);
  // A table alone does not use up the library's one trip.
  resetPlotlyLibrary();
  table({ columns: ["a"], rows: [[1]] }).toBundle();
  equal(html(fig().toBundle()).match(LIBRARY)?.length, 1);
  // The explicit library bundle counts as the trip.
  resetPlotlyLibrary();
  const lib = plotlyLibrary();
  equal(String(lib), `plotly.js ${plotlyVersion()} (offline copy) loaded`);
  const libBundle = await bundleOf(lib);
  equal(html(libBundle).match(LIBRARY)?.length, 1);
  equal(html(fig().toBundle()).match(LIBRARY), null);
});

Deno.test("the inline library defines window.Plotly and announces itself", () => {
  resetPlotlyLibrary();
  const out = html(fig().toBundle());
  const script = out.slice(out.search(LIBRARY), out.indexOf("</script>") + 9);
  match(
    script,
    /^<script data-ri-plotly="4\.\d+\.\d+">if\(!window\.Plotly\)\{\(function\(module,exports,define\)\{\n/,
  );
  match(script, /window\.dispatchEvent\(new Event\("ri-plotly-ready"\)\);<\/script>$/);
  // Exactly one closing tag: the library text cannot end the element early.
  equal(script.match(/<\/script/gi)?.length, 1);
});

Deno.test("labels cannot break out of the HTML or the SVG", () => {
  const evil = "</script><img src=x onerror=alert(1)>";
  const bundle = heatmap({ values: [[1]], rowLabels: [evil], columnLabels: ["&"], title: evil })
    .toBundle({ library: "never" });
  equal(html(bundle).includes(evil), false);
  equal((bundle["image/svg+xml"] as string).includes(evil), false);
  match(html(bundle), /\\u003c\/script\\u003e/);
});

Deno.test("a stack shows several figures as one output", () => {
  const s = stack([fig(), table({ columns: ["m"], rows: [["TA"]] })], { title: "Run" });
  const bundle = s.toBundle({ library: "never" });
  equal(bundle["application/vnd.plotly.v1+json"], undefined);
  equal(html(bundle).match(/class="ri-plot"/g)?.length, 1);
  match(html(bundle), /<table class="ri-table"/);
  match(bundle["text/plain"] as string, /^Run\n/);
  equal(
    (bundle["image/svg+xml"] as string).match(/<g transform="translate\(0,\d+\)">/g)?.length,
    2,
  );
});

Deno.test("bundleOf: display methods, plain values, missing text/plain", async () => {
  deepStrictEqual(await bundleOf([1, 2]), { "text/plain": "[ 1, 2 ]" });
  const rich = { [JUPYTER_DISPLAY]: () => ({ "text/html": "<b>x</b>" }) };
  const bundle = await bundleOf(rich);
  equal(bundle["text/html"], "<b>x</b>");
  equal(typeof bundle["text/plain"], "string");
  const asyncRich = { [JUPYTER_DISPLAY]: () => Promise.resolve({ "text/plain": "later" }) };
  deepStrictEqual(await bundleOf(asyncRich), { "text/plain": "later" });
  await rejects(bundleOf({ [JUPYTER_DISPLAY]: () => 3 }), /expected a MIME bundle object/);
  equal(isDisplayable(fig()), true);
  equal(isDisplayable(null), false);
  equal(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
});

Deno.test("displayWith: one line gives a class a notebook display and a terminal text", async () => {
  class Accuracy {
    constructor(readonly perTask: Record<string, number>) {}
  }
  displayWith(Accuracy.prototype, (a) =>
    bars({
      categories: Object.keys(a.perTask),
      series: [{ name: "accuracy", values: Object.values(a.perTask) }],
    }));
  const acc = new Accuracy({ mnist: 0.9, fashion: 0.8 });
  match(String(acc), /^mnist\s+█{30}\s+0\.900\nfashion\s+█{26}▋\s+0\.800$/);
  equal(Deno.inspect(acc), String(acc));
  const bundle = await bundleOf(acc);
  deepStrictEqual(
    (bundle["application/vnd.plotly.v1+json"] as { data: { x: string[] }[] }).data[0].x,
    ["mnist", "fashion"],
  );
  equal(Object.keys(acc).join(), "perTask"); // nothing enumerable was added
});

Deno.test("display prints the text form outside a notebook", async () => {
  equal(inKernel(), false);
  const printed: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => printed.push(args.join(" "));
  try {
    await display(table({ columns: ["a"], rows: [[1]] }));
    await display({ x: 1 });
    await display(table({ columns: ["a"], rows: [[2]] }), { id: "t", update: true });
  } finally {
    console.log = original;
  }
  deepStrictEqual(printed, ["a\n─\n1", "{ x: 1 }"]);
});

Deno.test("htmlDocument carries the library once and every figure", async () => {
  const items = [
    { heading: "Interference" },
    fig(),
    "Plain <text> & more",
    bars({ categories: ["a"], series: [{ name: "s", values: [1] }] }),
    table({ columns: ["a"], rows: [[1]] }),
  ];
  const page = htmlDocument("Report <1>", items);
  equal(page.match(LIBRARY)?.length, 1);
  equal(page.match(/class="ri-plot"/g)?.length, 2);
  equal(page.includes("ri-note"), false);
  match(page, /<title>Report &lt;1&gt;<\/title>/);
  match(page, /<p>Plain &lt;text&gt; &amp; more<\/p>/);
  equal(htmlDocument("t", [table({ columns: ["a"], rows: [[1]] })]).match(LIBRARY), null);
  await using dir = await tempDir();
  await writeHtmlDocument(`${dir.path}/r.html`, "R", items);
  const written = await Deno.readTextFile(`${dir.path}/r.html`);
  match(written, /^<!DOCTYPE html>/);
  equal(written.match(LIBRARY)?.length, 1);
  equal(written.match(/class="ri-plot"/g)?.length, 2);
  deepStrictEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["r.html"]);
  await rejects(
    writeHtmlDocument(`${dir.path}/missing/r.html`, "R", items),
    /could not write HTML document .*missing\/r\.html/,
  );
});
