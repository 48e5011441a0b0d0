/**
 * TSV-M and Iso-CTS with `svd=fast` (only what the methods keep, from Gram eigenproblems,
 * lib/linalg/gram_svd.ts) against `svd=exact` (full float32 SVDs, as the reference code) and
 * both against a float64 PyTorch run of the reference steps (tests/merge/reference.py).
 *
 * The tolerance: the fast merge must be as close to the float64 result as the exact float32
 * merge is, within a factor of 2 (plus 10⁻⁶ of the result's scale). Both are float32
 * computations of quantities that float32 determines only to a condition-dependent accuracy
 * (singular vectors near the cut between kept and dropped components, polar factors of
 * nearly singular stacks); the exact path's own distance from float64 is that accuracy, and a
 * fixed threshold would either fail the exact path itself or pass a wrong fast one. The same
 * holds in relative Frobenius norm. On the bench's shape (768×768, i.i.d. noise task vectors)
 * the exact float32 merge is 2.4e-5 (TSV-M) and 3.2e-5 (Iso-CTS) of the largest entry from
 * float64, the fast one 4e-6 and 8e-6; perturbing every input entry by one float32 rounding
 * (relative 6e-8) moves the exact merge by 2.5e-5 and 1.9e-5 in relative Frobenius norm.
 */
import { ok as assert } from "node:assert/strict";
import { SafetensorsReader, writeSafetensors } from "../../lib/io/safetensors.ts";
import { isoCtsMergeMatrix } from "../../lib/merge/iso_cts.ts";
import { tsvMergeMatrix } from "../../lib/merge/tsv_m.ts";
import { gramSvd, polarFactorGram, projectedTopSvd, topSvd } from "../../lib/linalg/gram_svd.ts";
import { polarFactor, svd } from "../../lib/linalg/svd.ts";
import { matmul } from "../../lib/linalg/matmul.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { gaussianMatrix, maxAbsDiff } from "../linalg/random.ts";

/** T task matrices m×n: N(0, 10⁻⁶) noise, or a shared low-rank part with a fast-decaying
 *  spectrum plus task-specific directions (as fine-tuned task vectors look). */
function tasks(m: number, n: number, T: number, kind: "noise" | "structured", seed: number) {
  const out: Float32Array[] = [];
  const shared = kind === "structured" ? lowRank(m, n, 40, 0.9, seed) : undefined;
  for (let t = 0; t < T; t++) {
    const a = gaussianMatrix(m, n, seed + 100 * (t + 1)).map((v) => v * 1e-3);
    if (shared) {
      const own = lowRank(m, n, 12, 0.8, seed + 7 * (t + 1));
      for (let i = 0; i < a.length; i++) a[i] = 0.02 * shared[i] + 0.01 * own[i] + 0.1 * a[i];
    }
    out.push(a);
  }
  return out;
}

/** Σ_i decay^i x_i y_iᵀ over `rank` random unit-scale directions. */
function lowRank(m: number, n: number, rank: number, decay: number, seed: number) {
  const x = gaussianMatrix(m, rank, seed), y = gaussianMatrix(rank, n, seed + 1);
  for (let i = 0; i < rank; i++) {
    const w = decay ** i / Math.sqrt(m);
    for (let c = 0; c < n; c++) y[i * n + c] *= w;
  }
  return matmul(x, y, m, rank, n);
}

function relativeFrobenius(x: ArrayLike<number>, want: ArrayLike<number>): number {
  let d = 0, w = 0;
  for (let i = 0; i < want.length; i++) {
    d += (x[i] - want[i]) ** 2;
    w += want[i] ** 2;
  }
  return Math.sqrt(d / w);
}

const REFERENCE = `import sys, st, torch
sys.path.insert(0, sys.argv[3])
import reference
inputs, _ = st.load(sys.argv[1])
out = {}
names = sorted({k.rsplit(".", 1)[0] for k in inputs})
for name in names:
    X = [inputs[f"{name}.{t}"].double() for t in range(8)]
    out[f"{name}.tsv_m"] = reference.tsv_m(X)
    out[f"{name}.iso_cts"] = reference.iso_cts(X, 0.8)
st.save(sys.argv[2], out)
`;

const CASES: { m: number; n: number; kind: "noise" | "structured" }[] = [
  { m: 768, n: 768, kind: "noise" }, // ViT-B/32's attention matrices, as the bench's experts
  { m: 256, n: 256, kind: "structured" },
  { m: 768, n: 192, kind: "noise" }, // tall: Iso-CTS subtracts Gram matrices
  { m: 192, n: 768, kind: "structured" }, // wide
];

Deno.test("fast TSV-M and Iso-CTS are as close to float64 as the exact float32 steps", async () => {
  await using dir = await tempDir();
  const all = CASES.map((c, i) => ({ ...c, name: `c${i}`, taus: tasks(c.m, c.n, 8, c.kind, i) }));
  await writeSafetensors(
    `${dir.path}/in.safetensors`,
    all.flatMap((c) =>
      c.taus.map((data, t) => ({ name: `${c.name}.${t}`, shape: [c.m, c.n], data }))
    ),
  );
  const here = new URL(".", import.meta.url).pathname;
  await runPython(REFERENCE, [`${dir.path}/in.safetensors`, `${dir.path}/out.safetensors`, here]);
  using ref = await SafetensorsReader.open(`${dir.path}/out.safetensors`);
  for (const c of all) {
    for (const method of ["tsv_m", "iso_cts"] as const) {
      const want = await ref.read(`${c.name}.${method}`);
      const run = (solver: "fast" | "exact") =>
        method === "tsv_m"
          ? tsvMergeMatrix(c.taus, c.m, c.n, solver)
          : isoCtsMergeMatrix(c.taus, c.m, c.n, 0.8, solver);
      let scale = 0;
      for (const v of want) scale = Math.max(scale, Math.abs(v));
      const exactMerge = run("exact"), fastMerge = run("fast");
      const exact = maxAbsDiff(exactMerge, want), fast = maxAbsDiff(fastMerge, want);
      const label = `${method} ${c.m}×${c.n} ${c.kind}`;
      // the same in relative Frobenius norm, ‖M − M₆₄‖_F / ‖M₆₄‖_F
      const exactF = relativeFrobenius(exactMerge, want),
        fastF = relativeFrobenius(fastMerge, want);
      assert(
        fastF <= 2 * exactF + 1e-6,
        `${label}: fast ${fastF.toExponential(2)} vs exact ${exactF.toExponential(2)} (Frobenius)`,
      );
      assert(exact < 1e-3 * scale, `${label}: the exact path is ${exact} from float64`);
      assert(
        fast <= 2 * exact + 1e-6 * scale,
        `${label}: fast ${fast.toExponential(2)} vs exact ${exact.toExponential(2)} from float64`,
      );
    }
  }
});

Deno.test("topSvd: float32, float64 and SVD paths all equal the SVD's top triplets", () => {
  const m = 200, n = 120, k = 20;
  const flat = gaussianMatrix(m, n, 3); // σ₁/σ_k ≈ 1.3: float32 Gram
  const decaying = lowRank(m, n, 60, 0.85, 4); // σ₁/σ_20 ≈ 25: float64 Gram
  const deficient = lowRank(m, n, 10, 0.9, 5); // rank 10 < k: the SVD
  for (const [a, path] of [[flat, "gram32"], [decaying, "gram64"], [deficient, "svd"]] as const) {
    const f = topSvd(a, m, n, k);
    assert(f.path === path, `expected the ${path} path, took ${f.path}`);
    const e = svd(a, m, n);
    // compare the rank-k reconstructions (singular vectors are defined up to sign)
    const rebuild = (u: Float32Array, s: Float32Array, vt: Float32Array, ku: number) => {
      const us = new Float32Array(m * k);
      for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) us[i * k + j] = u[i * ku + j] * s[j];
      return matmul(us, vt.subarray(0, k * n), m, k, n);
    };
    const want = rebuild(e.u, e.s, e.vt, e.k), got = rebuild(f.u, f.s, f.vt, k);
    let scale = 0;
    for (const v of want) scale = Math.max(scale, Math.abs(v));
    assert(maxAbsDiff(got, want) < 2e-5 * scale, `${path}: ${maxAbsDiff(got, want)} of ${scale}`);
  }
});

Deno.test("gramSvd's basis, projectedTopSvd and polarFactorGram agree with the SVD", () => {
  const m = 300, n = 80;
  const a = gaussianMatrix(m, n, 9);
  // the whole right basis: orthonormal rows, the first k spanning the top right vectors
  const d = gramSvd(a, m, n, 10, "right")!;
  const gram = matmul(d.basis, d.basis, n, n, n, { transB: true });
  for (let i = 0; i < n; i++) gram[i * n + i] -= 1;
  assert(maxAbsDiff(gram, new Float32Array(n * n)) < 1e-5, "basis not orthonormal");
  // removing Q's columns: the same top triplets as the SVD of the explicit projection
  const q = svd(gaussianMatrix(m, 15, 10), m, 15).u; // 15 orthonormal columns
  const coefficients = matmul(q, a, 15, m, n, { transA: true });
  const projected = matmul(q, coefficients, m, 15, n).map((v, i) => a[i] - v);
  const f = projectedTopSvd(a, m, n, q, 15, 8);
  assert(f.path === "projected", f.path);
  const e = svd(projected, m, n);
  assert(maxAbsDiff(f.s, e.s.subarray(0, 8)) < 1e-5 * e.s[0]);
  // polar factor of a tall, well-conditioned matrix: float32 Gram path equals the SVD's
  assert(maxAbsDiff(polarFactorGram(a, m, n), polarFactor(a, m, n)) < 1e-5);
});
