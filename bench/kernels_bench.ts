/**
 * tfjs's wasm kernels against the OpenBLAS ones (lib/engine/kernels.ts): square matrix
 * products and a forward + backward pass of the benchmark ViT at batch 128.
 *
 *     ./deno bench -A bench/kernels_bench.ts
 *
 * `RI_BLAS_THREADS` sets OpenBLAS's threads (default 2). The machine is shared: repeat runs
 * and compare like with like.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../mod.ts";
import { registerFastKernels, unregisterFastKernels } from "../lib/engine/kernels.ts";
import { vitStep } from "./vit_step.ts";

await initEngine({ backend: "wasm" });

/** Switches kernels outside the timed part of each iteration. */
function withKernels(fast: boolean, work: () => void): (b: Deno.BenchContext) => void {
  return (b) => {
    if (fast) registerFastKernels();
    else unregisterFastKernels();
    b.start();
    work();
    b.end();
  };
}

for (const size of [256, 512, 1024]) {
  const a = tf.randomNormal([size, size], 0, 1, "float32", 1);
  const b = tf.randomNormal([size, size], 0, 1, "float32", 2);
  const product = () => tf.matMul(a, b).dataSync();
  const group = `matmul ${size}²`;
  Deno.bench(`${group} wasm`, { group, baseline: true }, withKernels(false, product));
  Deno.bench(`${group} wasm + OpenBLAS`, { group }, withKernels(true, product));
}

const step = vitStep(128);
const group = "ViT-tiny forward + backward, batch 128";
Deno.bench(
  `${group}: wasm`,
  { group, baseline: true, n: 10, warmup: 2 },
  withKernels(false, step.run),
);
Deno.bench(`${group}: wasm + OpenBLAS`, { group, n: 10, warmup: 2 }, withKernels(true, step.run));
