/**
 * Compares two studies' `results.json` (the same study run on two backends) within the
 * tolerance of docs/GPU.md:
 *
 * - accuracies (experts, θ0, every merged model per task, and their means): equal within one
 *   test image per task, |Δ| ≤ 1 / (test images per task);
 * - the measures of the networks alone (the RI loss curves and their parts, the pairwise
 *   matrices): |a − b| ≤ `network` · max(|a|, |b|) + 1e-6;
 * - ξ and ξi of every merged model (whose merge may amplify its inputs' differences: an SVD
 *   with close singular values): |a − b| ≤ `merged` · max(|a|, |b|) + 1e-6.
 *
 * The 1e-6 floor is float32 noise on values that are zero in exact arithmetic (the KL of a
 * model to itself, RI's own-task term at its first step, comes out as ±1e-7).
 *
 * Everything else (tasks, methods, merge parameters, steps) must be identical. As a script it
 * prints the largest gaps and exits 1 beyond the tolerance:
 *
 *     deno run -A tests/gpu/compare_results.ts A/results.json B/results.json TEST_IMAGES
 *
 * @module
 */
import { normaliseRow, type StudyData } from "../../lib/pipeline/results.ts";

/** How far two runs may differ. */
export interface Tolerance {
  /** Test images per task (an accuracy may differ by one of them). */
  testImages: number;
  /** Relative tolerance of the losses and the pairwise entries. */
  network: number;
  /** Relative tolerance of ξ and ξi. */
  merged: number;
}

/**
 * The tolerance of docs/GPU.md for a study run on WebGPU against the same study on wasm.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { GPU_TOLERANCE } from "./compare_results.ts";
 * equal(GPU_TOLERANCE.merged, 5e-3);
 * ```
 */
export const GPU_TOLERANCE: Omit<Tolerance, "testImages"> = { network: 1e-4, merged: 5e-3 };

/** The largest differences found, and those beyond the tolerance. */
export interface Comparison {
  /** Largest accuracy difference, in test images. */
  accuracyImages: number;
  /** Largest relative difference per kind of measure. */
  relative: Record<string, number>;
  /** Every difference beyond the tolerance, or in what must be identical. */
  failures: string[];
}

/**
 * Compares `a` and `b` (see the module documentation).
 *
 * @example
 * ```ts ignore
 * const c = compareStudies(wasm, webgpu, { testImages: 50, ...GPU_TOLERANCE });
 * if (c.failures.length) throw new Error(c.failures.join("\n"));
 * ```
 */
export function compareStudies(a: StudyData, b: StudyData, tol: Tolerance): Comparison {
  const out: Comparison = { accuracyImages: 0, relative: {}, failures: [] };
  const same = (what: string, x: unknown, y: unknown) => {
    if (JSON.stringify(x) !== JSON.stringify(y)) {
      out.failures.push(`${what}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
    }
  };
  const accuracy = (what: string, x: number, y: number) => {
    const images = Math.abs(x - y) * tol.testImages;
    out.accuracyImages = Math.max(out.accuracyImages, images);
    if (!(images <= 1 + 1e-9)) out.failures.push(`${what}: accuracy ${x} vs ${y}`);
  };
  const real = (kind: string, what: string, x: number, y: number) => {
    const gap = Math.abs(x - y);
    const scale = Math.max(Math.abs(x), Math.abs(y));
    if (gap > FLOOR) out.relative[kind] = Math.max(out.relative[kind] ?? 0, gap / scale);
    const relative = kind === "ξ" ? tol.merged : tol.network;
    if (!(gap <= relative * scale + FLOOR)) out.failures.push(`${what}: ${x} vs ${y}`);
  };
  const byTask = (
    what: string,
    x: Record<string, number>,
    y: Record<string, number>,
    check: (w: string, u: number, v: number) => void,
  ) => {
    same(`${what} tasks`, Object.keys(x), Object.keys(y));
    for (const task of Object.keys(x)) check(`${what} ${task}`, x[task], y[task]);
  };
  for (const key of ["suite", "seed", "aux", "steps"] as const) same(key, a[key], b[key]);
  byTask("expert", a.experts, b.experts, accuracy);
  byTask("θ0", a.base, b.base, accuracy);
  same("rows", a.rows.map(label), b.rows.map(label));
  a.rows.forEach((r, i) => {
    const s = b.rows[i];
    if (!s) return;
    const name = label(r);
    same(`${name} params`, r.params, s.params);
    accuracy(`${name} mean`, r.avgAccuracy, s.avgAccuracy);
    byTask(name, r.accuracyByTask, s.accuracyByTask, accuracy);
    real("ξ", `${name} ξ`, r.xi, s.xi);
    byTask(`${name} ξi`, r.xiByTask, s.xiByTask, (w, u, v) => real("ξ", w, u, v));
  });
  same("RI curves", Object.keys(a.riCurves ?? {}), Object.keys(b.riCurves ?? {}));
  for (const [task, c] of Object.entries(a.riCurves ?? {})) {
    const d = b.riCurves?.[task];
    if (!d) continue;
    same(`RI ${task} steps`, c.steps, d.steps);
    c.total.forEach((v, k) =>
      real("RI loss", `RI ${task} loss at step ${c.steps[k]}`, v, d.total[k])
    );
    for (const [part, values] of Object.entries(c.parts)) {
      values.forEach((v, k) =>
        real("RI loss", `RI ${task} ${part} at ${k + 1}`, v, d.parts[part]?.[k])
      );
    }
  }
  same("pairwise", a.pairwise === undefined, b.pairwise === undefined);
  if (a.pairwise && b.pairwise) {
    for (const when of ["before", "after"] as const) {
      a.pairwise[when].forEach((row, i) =>
        row.forEach((v, j) =>
          real("pairwise", `pairwise ${when} [${i}][${j}]`, v, b.pairwise![when][i]?.[j])
        )
      );
    }
  }
  return out;
}

/** Float32 noise on values that are zero in exact arithmetic. */
const FLOOR = 1e-6;

function label(r: StudyData["rows"][number]): string {
  return r.method + (r.ri ? "+ri" : "") + (r.distill ? "+distill" : "");
}

if (import.meta.main) {
  const [pathA, pathB, images] = Deno.args;
  if (!pathA || !pathB || !images) {
    console.error("usage: compare_results.ts A/results.json B/results.json TEST_IMAGES");
    Deno.exit(2);
  }
  const read = async (p: string) => {
    // results.json written before the names were unified (avg_acc, ri_curves, …) read too
    const data = JSON.parse(await Deno.readTextFile(p));
    data.riCurves ??= data.ri_curves;
    data.rows = data.rows.map(normaliseRow);
    return data as StudyData;
  };
  const c = compareStudies(await read(pathA), await read(pathB), {
    testImages: Number(images),
    ...GPU_TOLERANCE,
  });
  console.log(`largest accuracy difference: ${c.accuracyImages.toFixed(2)} test images`);
  for (const [kind, gap] of Object.entries(c.relative)) {
    console.log(`largest relative difference of ${kind} (above 1e-6): ${gap.toExponential(2)}`);
  }
  for (const f of c.failures) console.log(`beyond tolerance: ${f}`);
  Deno.exit(c.failures.length ? 1 : 0);
}
