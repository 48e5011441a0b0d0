import { merge } from "../../lib/merge/merge.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { isoCtsBudget, roundHalfEven } from "../../lib/merge/iso_cts.ts";
import { tsvMergeMatrix } from "../../lib/merge/tsv_m.ts";
import { wudiMergeMatrix } from "../../lib/merge/wudi.ts";
import { getMethod } from "../../lib/merge/registry.ts";
import { resolveParams } from "../../lib/merge/params.ts";
import { Rng } from "../../lib/tensor/random.ts";

Deno.test("Iso-CTS budgets follow docs/METHODS.md's table and Python's half-to-even round", () => {
  deepStrictEqual(isoCtsBudget(768, 8, 0.8), { common: 616, perTask: 19 });
  deepStrictEqual(isoCtsBudget(768, 14, 0.8), { common: 614, perTask: 11 });
  deepStrictEqual(isoCtsBudget(768, 20, 0.8), { common: 608, perTask: 8 });
  deepStrictEqual(isoCtsBudget(50, 20, 0.8), { common: 50, perTask: 0 }); // round(0.5) = 0
  deepStrictEqual([0.5, 1.5, 2.5, 3.5, -0.5].map(roundHalfEven), [0, 2, 2, 4, 0]);
  // a tiny common fraction cannot ask for more than the rank
  const small = isoCtsBudget(5, 3, 0);
  equal(small.common + 3 * small.perTask, 5);
  assert(small.common >= 0);
});

Deno.test("TSV-M with more tasks than rank keeps no components", () => {
  const taus = [1, 2, 3].map(() => new Float32Array([1, 2]));
  deepStrictEqual(tsvMergeMatrix(taus, 1, 2), new Float32Array(2));
});

Deno.test("WUDI lowers its loss from the TA sum and ignores zero task matrices", () => {
  const rng = new Rng(5, "wudi");
  const task = () => Float32Array.from({ length: 12 }, () => rng.uniform() - 0.5);
  const taus = [task(), task(), task()];
  const loss = (m: Float32Array) => {
    let total = 0;
    for (const d of taus) {
      let norm = 0;
      for (const v of d) norm += v * v;
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) {
          let dot = 0;
          for (let k = 0; k < 4; k++) dot += (m[i * 4 + k] - d[i * 4 + k]) * d[j * 4 + k];
          total += dot * dot / norm;
        }
      }
    }
    return total;
  };
  const start = wudiMergeMatrix(taus, 3, 4, { iterations: 0, lr: 1e-3 });
  const after = wudiMergeMatrix(taus, 3, 4, { iterations: 200, lr: 1e-3 });
  assert(loss(after) < 0.9 * loss(start), `${loss(after)} vs ${loss(start)}`);
  const withZero = wudiMergeMatrix([...taus, new Float32Array(12)], 3, 4, {
    iterations: 200,
    lr: 1e-3,
  });
  deepStrictEqual(withZero, after);
});

Deno.test("tensor rules: spectral split, WUDI's block linear weights", () => {
  const tsv = getMethod("tsv_m");
  const wudi = getMethod("wudi");
  const official = resolveParams(wudi, {});
  const fb = resolveParams(wudi, { tensors: "all2d" });
  const cases: [string, number[], string, string, string][] = [
    ["vision_model.encoder.layers.0.self_attn.q_proj.weight", [8, 8], "matrix", "matrix", "matrix"],
    ["vision_model.encoder.layers.0.self_attn.q_proj.bias", [8], "mean", "pretrained", "mean"],
    ["vision_model.encoder.layers.0.mlp.fc2.weight", [8, 16], "matrix", "matrix", "matrix"],
    ["vision_model.embeddings.position_embedding.weight", [5, 8], "matrix", "pretrained", "matrix"],
    ["vision_model.embeddings.patch_embedding.weight", [8, 3, 2, 2], "mean", "pretrained", "mean"],
    ["visual_projection.weight", [4, 8], "matrix", "pretrained", "matrix"],
    ["visual.transformer.resblocks.3.attn.in_proj_weight", [24, 8], "matrix", "matrix", "matrix"],
    ["visual.transformer.resblocks.3.mlp.c_proj.weight", [8, 32], "matrix", "matrix", "matrix"],
    ["visual.proj", [8, 4], "matrix", "pretrained", "matrix"],
    ["text_projection", [8, 8], "mean", "pretrained", "matrix"],
  ];
  for (const [name, shape, spectral, wudiOfficial, wudiFb] of cases) {
    equal(tsv.treatment(name, shape, {}), spectral, name);
    equal(wudi.treatment(name, shape, official), wudiOfficial, name);
    equal(wudi.treatment(name, shape, fb), wudiFb, name);
  }
  // FusionBench's switch: every 2-D tensor per matrix, text_projection included
  for (const method of ["tsv_m", "iso_c", "iso_cts"]) {
    const m = getMethod(method);
    const params = resolveParams(m, { text_projection: "spectral" });
    equal(m.treatment("text_projection", [8, 8], params), "matrix", method);
    equal(m.treatment("text_projection", [8, 8], resolveParams(m, {})), "mean", method);
    equal(m.treatment("visual_projection.weight", [4, 8], params), "matrix", method);
    equal(m.treatment("vision_model.pre_layrnorm.weight", [8], params), "mean", method);
  }
});

Deno.test("text_projection=spectral merges text_projection per matrix, as FusionBench", async () => {
  const tau = (v: number[]) =>
    new MemorySource("τ", { text_projection: { shape: [2, 2], data: new Float32Array(v) } });
  const taus = [tau([3, 0, 0, 0]), tau([0, 0, 0, 1])];
  const mean = await merge("iso_c", taus);
  const spectral = await merge("iso_c", taus, { params: { text_projection: "spectral" } });
  deepStrictEqual([...mean.get("text_projection").data], [1.5, 0, 0, 0.5]);
  deepStrictEqual([...spectral.get("text_projection").data], [2, 0, 0, 2]); // σ̄ = (3 + 1)/2
});
