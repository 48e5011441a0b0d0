import { deepStrictEqual, equal, match, ok as assert } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { bundleOf, isDisplayable } from "../../lib/display/mod.ts";
import { tensorSummary, tensorText } from "../../lib/display/tensor.ts";
import { runPython } from "../helpers/python.ts";

Deno.test("importing the display module gives tfjs tensors a notebook display", async () => {
  const t = tf.tensor2d([[1, -2, 3], [4, 5, -6]]);
  try {
    assert(isDisplayable(t));
    const bundle = await bundleOf(t);
    equal(
      bundle["text/plain"],
      "Tensor float32 [2, 3] · min -6 · max 5 · mean 0.8333 · std 3.804 · values [1, -2, 3, 4, 5, -6]",
    );
    const plotly = bundle["text/html"] as string;
    match(plotly, /<caption[^>]*>Tensor float32 \[2, 3\]<\/caption>/);
    match(plotly, /Plotly\.newPlot/);
    // The heatmap sits in the static SVG too, with one cell per element, diverging (signs mixed).
    const svg = bundle["image/svg+xml"] as string;
    equal(svg.match(/<rect [^>]*><title>/g)?.length, 6);
    match(svg, /ri-scale-diverging/);
  } finally {
    t.dispose();
  }
});

Deno.test("summary statistics match PyTorch on a random matrix with NaN and Inf", async () => {
  const values = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i * 1.7) * (1 + i / 50));
  values[7] = NaN;
  values[11] = Infinity;
  const t = tf.tensor2d(values, [15, 20]);
  try {
    const s = tensorSummary(t);
    const out = await runPython(
      `import sys, json, torch
v = torch.tensor([float(x) for x in json.loads(sys.argv[1])], dtype=torch.float32)
f = v[torch.isfinite(v)]
print(json.dumps([f.min().item(), f.max().item(), f.double().mean().item(), f.double().std(unbiased=False).item(),
  int(torch.isnan(v).sum()), int(torch.isinf(v).sum())]))`,
      [JSON.stringify(Array.from(values, (v) => (Number.isFinite(v) ? v : String(v))))],
    );
    const [min, max, mean, std, nans, infs] = JSON.parse(out);
    equal(s.min, min);
    equal(s.max, max);
    assert(Math.abs(s.mean - mean) < 1e-9 * Math.max(1, Math.abs(mean)), `${s.mean} vs ${mean}`);
    assert(Math.abs(s.std - std) < 1e-9 * std, `${s.std} vs ${std}`);
    deepStrictEqual([s.nans, s.infinities, s.size], [nans, infs, 300]);
    match(tensorText(t), / · 1 NaN · 1 ±Inf$/);
  } finally {
    t.dispose();
  }
});

Deno.test("a large matrix is shown as block means, a long vector as a curve", async () => {
  const big = tf.range(0, 130 * 70).reshape([130, 70]);
  const vec = tf.range(0, 5000);
  try {
    const bundle = await bundleOf(big);
    const svg = bundle["image/svg+xml"] as string;
    // 130 rows in blocks of 3 → 44 rows; 70 columns in blocks of 2 → 35 columns.
    equal(svg.match(/<rect [^>]*><title>/g)?.length, 44 * 35);
    match(svg, /block means of 3×2 elements/);
    // First block: rows 0–2, columns 0–1 of 0, 1, 2, … → mean of 0, 1, 70, 71, 140, 141 = 70.5.
    match(svg, /<title>0 → 0: value = 70\.5<\/title>/);
    const vbundle = await bundleOf(vec);
    match(vbundle["image/svg+xml"] as string, /means of 5 consecutive elements/);
    equal(vbundle["text/plain"], "Tensor float32 [5000] · min 0 · max 4999 · mean 2500 · std 1443");
  } finally {
    big.dispose();
    vec.dispose();
  }
});

Deno.test("disposed, string and scalar tensors still show something sensible", async () => {
  const t = tf.scalar(3);
  equal(
    (await bundleOf(t))["text/plain"],
    "Tensor float32 [] · min 3 · max 3 · mean 3 · std 0 · values [3]",
  );
  t.dispose();
  deepStrictEqual(await bundleOf(t), { "text/plain": "Tensor float32 [] (disposed)" });
  const s = tf.tensor1d(["a", "b"], "string");
  try {
    equal((await bundleOf(s))["text/plain"], 'Tensor string [2] · values ["a", "b"]');
  } finally {
    s.dispose();
  }
});
