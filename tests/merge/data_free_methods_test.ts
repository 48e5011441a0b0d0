/**
 * Behaviour of the data-free methods added for issue #18 that the PyTorch cross-checks
 * (crosscheck_test.ts) do not pin down: limits, errors, identities with one task, and the
 * registry's default study set.
 */
import { deepStrictEqual, equal, ok as assert, rejects } from "node:assert/strict";
import { merge } from "../../lib/merge/merge.ts";
import { defaultStudyMethods, describeRegistry, methodNames } from "../../lib/merge/registry.ts";
import { truncatedSvd, tsvRank } from "../../lib/merge/tsv_c.ts";
import { knotsLayers } from "../../lib/merge/knots.ts";
import { svd } from "../../lib/linalg/svd.ts";
import { MemorySource } from "../../lib/tensor/source.ts";
import { randomTaskVectors, tinyVitLayout } from "./fixtures.ts";

const vec = (v: number[], name = "w", shape = [v.length]) =>
  new MemorySource("τ", { [name]: { shape, data: new Float32Array(v) } });

const close = (a: Float32Array, b: Float32Array, tol = 1e-6) =>
  a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol);

Deno.test("with one task, EMR, TALL masks, KnOTS (no trim) and TSV-C (full rank) give it back", async () => {
  const [tau] = randomTaskVectors(tinyVitLayout(), 1, 3);
  for (const method of ["emr", "tall_mask"]) {
    const m = await merge(method, [tau]);
    for (const name of tau.names()) {
      assert(close(m.perTask![0].get(name).data, tau.get(name).data), `${method} ${name}`);
    }
  }
  const k = await merge("knots", [tau], { params: { k: 100 }, scaling: 1 });
  const { other } = knotsLayers(tau.names()); // left at θ0
  for (const name of tau.names()) {
    const own = tau.get(name).data;
    const expected = other.includes(name) ? new Float32Array(own.length) : own;
    assert(close(k.get(name).data, expected, 1e-5), `knots ${name}`);
  }
  // one task keeps rank ⌊r/1⌋ = r: the whole matrix
  const c = await merge("tsv_c", [tau]);
  const w = "vision_model.encoder.layers.0.mlp.fc1.weight";
  assert(close(c.perTask![0].get(w).data, tau.get(w).data, 1e-5));
});

Deno.test("TSV-C keeps rank ⌊r/T⌋ per task", () => {
  equal(tsvRank(768, 8), 96);
  equal(tsvRank(50, 20), 2);
  const [tau] = randomTaskVectors([["w", [6, 4]]], 1, 5);
  const compressed = truncatedSvd(tau.get("w").data, 6, 4, 2);
  const s = svd(compressed, 6, 4).s;
  assert(s[1] > 1e-3 && s[2] < 1e-5, `singular values ${s}`);
});

Deno.test("SLERP: exactly two task vectors, θ0 for weight space, linear when nearly collinear", async () => {
  await rejects(merge("slerp", [vec([1]), vec([2]), vec([3])]), /exactly 2 task vectors, not 3/);
  await rejects(merge("slerp", [vec([1, 0]), vec([0, 1])]), /reads θ0 itself/);
  // θ0 far from both: the models are nearly collinear, SLERP is the plain average
  const base = vec([100, 100]);
  const m = await merge("slerp", [vec([1, 0]), vec([0, 1])], { baseModel: base });
  assert(close(m.get("w").data, new Float32Array([0.5, 0.5]), 1e-4), `${m.get("w").data}`);
  const tv = await merge("slerp", [vec([1, 0]), vec([0, 1])], {
    params: { space: "task_vectors" },
    baseModel: base,
  });
  assert(close(tv.get("w").data, new Float32Array([Math.SQRT1_2, Math.SQRT1_2])));
});

Deno.test("weighted average: one weight per task, a positive sum when normalising", async () => {
  const taus = [vec([1]), vec([5])];
  equal(
    (await merge("weighted_average", taus, { params: { weights: "1,3" } })).get("w").data[0],
    4,
  );
  equal(
    (await merge("weighted_average", taus, { params: { weights: "1,3", normalize: false } }))
      .get("w").data[0],
    16,
  );
  await rejects(merge("weighted_average", taus, { params: { weights: "1" } }), /1 weights for 2/);
  await rejects(merge("weighted_average", taus, { params: { weights: "0,0" } }), /sum to 0/);
});

Deno.test("Model Stock needs two task vectors; parallel ones give t = 1, opposite ones t = 0", async () => {
  await rejects(merge("model_stock", [vec([1, 2])]), /at least 2 task vectors/);
  const same = await merge("model_stock", [vec([1, 2]), vec([2, 4])]);
  assert(close(same.get("w").data, new Float32Array([1.5, 3]), 1e-6));
  const opposite = await merge("model_stock", [vec([1, 2]), vec([-1, -2])]);
  assert(close(opposite.get("w").data, new Float32Array([0, 0])));
});

Deno.test("trust region: quantile 1 keeps all but the largest Ω, quantile 0 nothing", async () => {
  const taus = [vec([1, 2, 0, 3]), vec([1, 1, 5, 3])]; // Ω = 2|a||b|: [2, 4, 0, 18]
  const all = await merge("trust_region", taus, { params: { quantile: 1 }, scaling: 1 });
  deepStrictEqual([...all.get("w").data], [2, 3, 5, 0]);
  const none = await merge("trust_region", taus, { params: { quantile: 0 }, scaling: 1 });
  deepStrictEqual([...none.get("w").data], [0, 0, 0, 0]); // the threshold is min Ω = 0
});

Deno.test("DOGE-TA without Adam steps is the masked, norm-weighted sum; other tensors stay at θ0", async () => {
  const w = "vision_model.encoder.layers.0.mlp.fc1.weight";
  const b = "vision_model.encoder.layers.0.mlp.fc1.bias";
  const tau = (v: number[]) =>
    new MemorySource("τ", {
      [w]: { shape: [2, 2], data: new Float32Array(v) },
      [b]: { shape: [2], data: new Float32Array([1, 1]) },
    });
  const m = await merge("doge_ta", [tau([3, 4, 0, 0]), tau([0, 0, 0, 2])], {
    params: { iterations: 0, k: 100 },
  });
  // λ_t = 0.07/‖τ_t‖: 0.014 and 0.035
  assert(close(m.get(w).data, new Float32Array([0.042, 0.056, 0, 0.07]), 1e-6), `${m.get(w).data}`);
  deepStrictEqual([...m.get(b).data], [0, 0]);
});

Deno.test("DOP merges in task order: pairwise averages, θ0's class embedding, order-dependent weights", async () => {
  const w = "vision_model.encoder.layers.0.self_attn.q_proj.weight";
  const b = "vision_model.encoder.layers.0.self_attn.q_proj.bias";
  const c = "vision_model.embeddings.class_embedding";
  const taus = randomTaskVectors([[w, [6, 4]], [b, [6]], [c, [4]]], 3, 5);
  const m = await merge("dop", taus, { params: { iterations: 30 } });
  deepStrictEqual([...m.get(c).data], [0, 0, 0, 0]); // not a leaf module's: θ0
  const [b0, b1, b2] = taus.map((t) => t.get(b).data); // ((b0 + b1)/2 + b2)/2
  assert(close(m.get(b).data, b0.map((v, i) => (Math.fround(v + b1[i]) / 2 + b2[i]) / 2)));
  // the weight moves off the pairwise averages by at most a few lr per Adam step
  const start = await merge("dop", taus, { params: { iterations: 0 } });
  const moved = m.get(w).data.map((v, i) => Math.abs(v - start.get(w).data[i]));
  assert(Math.max(...moved) > 1e-3 && Math.max(...moved) < 30 * 3e-4, `${Math.max(...moved)}`);
  // continual: the last task weighs most, so reversing the order changes the result
  const reversed = await merge("dop", [...taus].reverse(), { params: { iterations: 30 } });
  assert(!close(reversed.get(b).data, m.get(b).data, 1e-3));
  assert(!close(reversed.get(w).data, m.get(w).data, 1e-3));
  await rejects(merge("dop", [taus[0]]), /at least 2 task vectors/);
});

Deno.test("KnOTS groups weights with their biases; LayerNorm weights enter as diagonals", () => {
  const { layers, other } = knotsLayers([
    "vision_model.embeddings.class_embedding",
    "vision_model.encoder.layers.0.self_attn.q_proj.weight",
    "vision_model.encoder.layers.0.self_attn.q_proj.bias",
    "vision_model.encoder.layers.0.layer_norm1.weight",
    "vision_model.encoder.layers.0.layer_norm1.bias",
    "visual.transformer.resblocks.0.attn.in_proj_weight",
    "visual.transformer.resblocks.0.attn.in_proj_bias",
    "visual.proj",
  ]);
  deepStrictEqual(layers.map((l) => [l.name, l.bias !== undefined, l.norm]), [
    ["vision_model.encoder.layers.0.self_attn.q_proj", true, false],
    ["vision_model.encoder.layers.0.layer_norm1", true, true],
    ["visual.transformer.resblocks.0.attn.in_proj", true, false],
  ]);
  deepStrictEqual(other, ["vision_model.embeddings.class_embedding", "visual.proj"]);
});

Deno.test("the default study set leaves out two-model, duplicate and slow methods, saying why", () => {
  const all = methodNames();
  const study = defaultStudyMethods();
  for (const name of ["slerp", "weighted_average"]) assert(!study.includes(name), name);
  for (const name of ["emr", "tsv_c", "magmax", "ties_max", "model_stock"]) {
    assert(study.includes(name), name);
  }
  const text = describeRegistry();
  for (const name of all.filter((n) => !study.includes(n))) {
    assert(text.includes("not in the default study set"), name);
  }
  // SVC after Iso-C / Iso-CTS is not determined by the task vectors (isotropic spectra)
  assert(!all.includes("svc_iso_c") && !all.includes("svc_iso_cts"));
});
