import { deepStrictEqual, equal, throws } from "node:assert/strict";
import { addInPlace, scaleBy, subtractFinite } from "../../lib/linalg/vector.ts";
import { linalgInfo, setLinalgFallback } from "../../lib/linalg/openblas.ts";
import { gaussianMatrix } from "./random.ts";

// Above and below the length where OpenBLAS takes over, with a ragged tail for its SIMD loops.
const LENGTHS = [3, 4095, 4096, 70_001];

/** Bits of a float32 array, so −0 and +0 (and NaN payloads) compare as the loop makes them. */
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** Random values spanning many magnitudes, with exact zeros of both signs. */
function values(n: number, seed: number): Float32Array {
  const a = gaussianMatrix(1, n, seed);
  for (let i = 0; i < n; i++) {
    a[i] *= 2 ** ((i % 41) - 20);
    if (i % 97 === 0) a[i] = i % 2 ? -0 : 0;
  }
  return a;
}

function loopAdd(y: Float32Array, x: Float32Array): Float32Array {
  for (let i = 0; i < y.length; i++) y[i] += x[i];
  return y;
}

function loopSub(y: Float32Array, x: Float32Array): Float32Array {
  for (let i = 0; i < y.length; i++) y[i] -= x[i];
  return y;
}

function loopScale(x: Float32Array, alpha: number): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] *= alpha;
  return x;
}

for (const fallback of [false, true]) {
  const path = fallback ? "JavaScript" : `${linalgInfo().path} by default`;
  Deno.test(`vector updates are bit-identical to the float32 loops (${path})`, () => {
    setLinalgFallback(fallback);
    try {
      for (const n of LENGTHS) {
        const y = values(n, 1), x = values(n, 2);
        deepStrictEqual(bits(addInPlace(y.slice(), x)), bits(loopAdd(y.slice(), x)), `add, n=${n}`);
        const d = y.slice();
        equal(subtractFinite(d, x), true);
        deepStrictEqual(bits(d), bits(loopSub(y.slice(), x)), `subtract, n=${n}`);
        // 0.3 is not a float32 (the loop's path), 0.375 is (sscal's), −1 negates, 0 zeroes
        for (const alpha of [0.3, 0.375, -1, 0, 1]) {
          deepStrictEqual(
            bits(scaleBy(y.slice(), alpha)),
            bits(loopScale(y.slice(), alpha)),
            `scale by ${alpha}, n=${n}`,
          );
        }
      }
    } finally {
      setLinalgFallback(false);
    }
  });

  Deno.test(`subtractFinite finds a NaN or ±Infinity anywhere in either input (${path})`, () => {
    setLinalgFallback(fallback);
    try {
      for (const n of LENGTHS) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          for (const at of [0, n >> 1, n - 1]) {
            for (const inY of [true, false]) {
              const y = values(n, 3), x = values(n, 4);
              (inY ? y : x)[at] = bad;
              equal(subtractFinite(y, x), false, `${bad} at ${at} of ${n} in ${inY ? "y" : "x"}`);
            }
          }
        }
      }
      // scaling by zero keeps the loop's NaN, −0 and NaN-from-Infinity products
      const z = new Float32Array(5000).fill(-2);
      z[7] = NaN;
      z[8] = Infinity;
      const zero = scaleBy(z, 0);
      equal(Object.is(zero[0], -0), true);
      equal(Number.isNaN(zero[7]) && Number.isNaN(zero[8]), true);
    } finally {
      setLinalgFallback(false);
    }
  });
}

Deno.test("vector updates refuse arrays of different lengths, naming both", () => {
  throws(
    () => addInPlace(new Float32Array(2), new Float32Array(3)),
    /addInPlace: arrays of 2 and 3/,
  );
  throws(
    () => subtractFinite(new Float32Array(5000), new Float32Array(4)),
    /subtractFinite: arrays of 5000 and 4/,
  );
});
