import { deepStrictEqual, equal, ok as assert, throws } from "node:assert/strict";
import { SafetensorsReader, writeSafetensors } from "../../lib/io/safetensors.ts";
import { matmul } from "../../lib/linalg/matmul.ts";
import { linalgInfo, openBlas, setLinalgFallback } from "../../lib/linalg/openblas.ts";
import { lapackSvd, polarFactor, svd, type SvdResult } from "../../lib/linalg/svd.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { gaussianMatrix, maxAbsDiff } from "./random.ts";

/** Shapes up to the largest ViT-B/32 matrix (3072×768, and its transpose). */
const SHAPES: [number, number][] = [
  [1, 6],
  [6, 1],
  [7, 5],
  [5, 7],
  [64, 64],
  [300, 120],
  [768, 768],
  [3072, 768],
  [768, 3072],
];

/** torch.linalg.svd in float64 and its polar factor U·Vh, for every matrix in `input`. */
const REFERENCE = `import sys, st, torch
inputs, _ = st.load(sys.argv[1])
out = {}
for name, a in inputs.items():
    u, s, vh = torch.linalg.svd(a.double(), full_matrices=False)
    out[name + ".u"], out[name + ".s"], out[name + ".vh"] = u, s, vh
    out[name + ".polar"] = u @ vh
st.save(sys.argv[2], out)
`;

interface Reference {
  u: Float32Array;
  s: Float32Array;
  vh: Float32Array;
  polar: Float32Array;
}

async function torchReferences(matrices: Float32Array[]): Promise<Reference[]> {
  await using dir = await tempDir();
  const input = `${dir.path}/in.safetensors`;
  const output = `${dir.path}/out.safetensors`;
  await writeSafetensors(
    input,
    matrices.map((data, i) => ({ name: `a${i}`, shape: SHAPES[i], data })),
  );
  await runPython(REFERENCE, [input, output]);
  using file = await SafetensorsReader.open(output);
  const refs: Reference[] = [];
  for (let i = 0; i < matrices.length; i++) {
    // one read at a time: reads on one SafetensorsReader share the file position
    const part = (name: string) => file.read(`a${i}.${name}`);
    const u = await part("u"), s = await part("s"), vh = await part("vh");
    const polar = await part("polar");
    refs.push({ u, s, vh, polar });
  }
  return refs;
}

/** ‖U·diag(s)·Vᵀ − A‖_F / ‖A‖_F */
function reconstructionError(a: Float32Array, r: SvdResult, m: number, n: number): number {
  const us = r.u.slice();
  for (let row = 0; row < m; row++) for (let i = 0; i < r.k; i++) us[row * r.k + i] *= r.s[i];
  const back = matmul(us, r.vt, m, r.k, n);
  let err = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    err += (back[i] - a[i]) ** 2;
    norm += a[i] ** 2;
  }
  return Math.sqrt(err / norm);
}

/** max |XᵀX − I| for the k columns of an r×k matrix x. */
function orthonormalityError(x: Float32Array, rows: number, k: number): number {
  const gram = matmul(x, x, k, rows, k, { transA: true });
  let worst = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      worst = Math.max(worst, Math.abs(gram[i * k + j] - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

/** Column i of a row-major rows×k matrix. */
function column(x: Float32Array, rows: number, k: number, i: number): Float64Array {
  return Float64Array.from({ length: rows }, (_, r) => x[r * k + i]);
}

function dot(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i] * y[i];
  return sum;
}

/**
 * Ours against torch for one matrix. Singular vectors are compared sign-invariantly, and only
 * for the leading triplets, whose singular values are well separated in random matrices;
 * u and v must flip sign together.
 */
function compare(
  label: string,
  a: Float32Array,
  m: number,
  n: number,
  ours: SvdResult,
  ref: Reference,
) {
  const k = Math.min(m, n);
  equal(ours.k, k, label);
  equal(ours.u.length, m * k, label);
  equal(ours.vt.length, k * n, label);
  const sMax = ref.s[0];
  assert(maxAbsDiff(ours.s, ref.s) <= 2e-5 * sMax, `${label}: singular values differ`);
  for (let i = 1; i < k; i++) assert(ours.s[i] <= ours.s[i - 1], `${label}: s not descending`);
  assert(reconstructionError(a, ours, m, n) < 2e-5, `${label}: U·S·Vᵀ does not give A back`);
  assert(orthonormalityError(ours.u, m, k) < 5e-5, `${label}: U's columns not orthonormal`);
  const v = transposeOf(ours.vt, k, n);
  assert(orthonormalityError(v, n, k) < 5e-5, `${label}: V's columns not orthonormal`);
  for (let i = 0; i < Math.min(k, 4); i++) {
    const du = dot(column(ours.u, m, k, i), column(ref.u, m, k, i));
    const dv = dot(ours.vt.subarray(i * n, (i + 1) * n), ref.vh.subarray(i * n, (i + 1) * n));
    assert(Math.abs(du) > 1 - 1e-4, `${label}: u${i} differs from torch's (|cos| ${Math.abs(du)})`);
    assert(Math.abs(dv) > 1 - 1e-4, `${label}: v${i} differs from torch's (|cos| ${Math.abs(dv)})`);
    assert(du * dv > 0, `${label}: u${i} and v${i} flipped sign separately`);
  }
}

function transposeOf(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

Deno.test("OpenBLAS is loaded when FFI is allowed (deno task test installs libopenblas0)", () => {
  const info = linalgInfo();
  equal(info.path, "openblas", `expected OpenBLAS, got the fallback: ${info.detail}`);
  assert(/OpenBLAS .*\d+ threads/.test(info.detail), info.detail);
});

Deno.test("svd and polarFactor match torch.linalg.svd on both paths, up to 3072×768", async () => {
  const matrices = SHAPES.map(([m, n], i) => gaussianMatrix(m, n, 100 + i));
  const refs = await torchReferences(matrices);
  const blas = openBlas()!;
  const paths: [string, (a: Float32Array, m: number, n: number) => SvdResult][] = [
    ["gesdd", (a, m, n) => lapackSvd(blas, a, m, n, "gesdd")],
    ["gesvd", (a, m, n) => lapackSvd(blas, a, m, n, "gesvd")],
    ["js", svd],
  ];
  for (const [path, run] of paths) {
    SHAPES.forEach(([m, n], i) => {
      // The JavaScript path takes seconds on large matrices: of those, it runs the largest
      // (3072×768) only; its wide and square branches are covered by the small shapes.
      if (path === "js" && m * n > 1e5 && m !== 3072) return;
      const label = `${path} ${m}×${n}`;
      // Only the decomposition runs on the path under test; the checks' products use OpenBLAS.
      setLinalgFallback(path === "js");
      let result: SvdResult, polar: Float32Array | undefined;
      try {
        result = run(matrices[i], m, n);
        // polarFactor goes through svd(): gesdd or js
        if (path !== "gesvd") polar = polarFactor(matrices[i], m, n);
      } finally {
        setLinalgFallback(false);
      }
      compare(label, matrices[i], m, n, result, refs[i]);
      if (!polar) return;
      // The polar factor's sensitivity grows with 1/σ_min, small for square random matrices.
      const diff = maxAbsDiff(polar, refs[i].polar);
      assert(diff < (m === n ? 2e-4 : 2e-5), `${label}: polar factor differs by ${diff}`);
    });
  }
});

Deno.test("the JavaScript SVD handles rank deficiency with an orthonormal U", () => {
  // rank 2: A = B·C with B 40×2, C 2×25; the zero singular values need completed vectors
  const [m, n] = [40, 25];
  const a = matmul(gaussianMatrix(m, 2, 1), gaussianMatrix(2, n, 2), m, 2, n);
  setLinalgFallback(true);
  try {
    for (const [rows, cols, x] of [[m, n, a], [n, m, transposeOf(a, m, n)]] as const) {
      const r = svd(x, rows, cols);
      assert(r.s[2] < 1e-5 * r.s[0], `expected rank 2, got s = ${r.s.slice(0, 4)}`);
      assert(orthonormalityError(r.u, rows, r.k) < 1e-5, "U not orthonormal");
      assert(
        orthonormalityError(transposeOf(r.vt, r.k, cols), cols, r.k) < 1e-5,
        "V not orthonormal",
      );
      assert(reconstructionError(x, r, rows, cols) < 1e-6);
    }
    // the zero matrix: all singular values 0, still orthonormal factors
    const zero = svd(new Float32Array(12), 4, 3);
    deepStrictEqual(zero.s, new Float32Array(3));
    assert(orthonormalityError(zero.u, 4, 3) < 1e-6);
  } finally {
    setLinalgFallback(false);
  }
});

Deno.test("svd rejects NaN, infinities and wrong sizes with clear messages", () => {
  for (const force of [false, true]) {
    setLinalgFallback(force);
    try {
      const bad = new Float32Array([1, 2, 3, NaN, 5, 6]);
      throws(() => svd(bad, 2, 3), /svd: a holds NaN at row 1, column 0 \(index 3\)/);
      throws(() => polarFactor(new Float32Array([Infinity, 0, 0, 1]), 2, 2), /Infinity at row 0/);
      throws(() => svd(new Float32Array(5), 2, 3), /a has 5 values, expected 2×3 = 6/);
      throws(() => svd(new Float32Array(6), 0, 3), /m must be a positive integer, got 0/);
      throws(() => svd(new Float32Array(6), 2, 1.5), /n must be a positive integer, got 1.5/);
      throws(
        () => svd([1, 2] as unknown as Float32Array, 1, 2),
        /a must be a Float32Array, got Array/,
      );
    } finally {
      setLinalgFallback(false);
    }
  }
});

Deno.test("without --allow-ffi the fallback is chosen and says why", async () => {
  const code = `import { linalgInfo } from "${new URL(
    "../../lib/linalg/openblas.ts",
    import.meta.url,
  )}";
import { svd } from "${new URL("../../lib/linalg/svd.ts", import.meta.url)}";
const { s } = svd(new Float32Array([0, 3, 4, 0]), 2, 2);
console.log(JSON.stringify({ ...linalgInfo(), s: Array.from(s) }));`;
  await using dir = await tempDir();
  const script = `${dir.path}/no_ffi.ts`;
  await Deno.writeTextFile(script, code);
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-read", "--config", config, script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(text);
  equal(info.path, "js");
  assert(info.detail.includes("--allow-ffi"), info.detail);
  deepStrictEqual(info.s, [4, 3]);
});
