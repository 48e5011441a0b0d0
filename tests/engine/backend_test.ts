import { deepStrictEqual, equal, ok as assert, rejects, throws } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  BACKEND_NAMES,
  describeEngine,
  engineInfo,
  initEngine,
  parseBackendName,
  probeGpuAdapter,
} from "../../lib/engine/backend.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs engine_child.ts in a fresh process with `RI_BACKEND` set (or unset) and parses its line. */
async function childWith(riBackend: string | undefined): Promise<Record<string, unknown>> {
  const env = { ...Deno.env.toObject() };
  delete env.RI_BACKEND;
  if (riBackend !== undefined) env.RI_BACKEND = riBackend;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/engine/engine_child.ts"],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  assert(out.success, `child failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text);
}

/** Fails instead of hanging when a backend never answers. */
async function withTimeout<T>(work: Promise<T>, seconds: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${seconds} s`)),
      seconds * 1000,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("engine: backend names parse, ignoring case and spaces, and bad ones list the valid", () => {
  for (const name of BACKEND_NAMES) equal(parseBackendName(name), name);
  equal(parseBackendName(" WebGPU "), "webgpu");
  throws(() => parseBackendName("cuda"), {
    message: 'unknown backend "cuda": expected one of auto, wasm, webgpu, cpu, tensorflow',
  });
});

Deno.test("engine: RI_BACKEND chooses the backend; unset means auto, which is wasm here", async () => {
  const probe = await probeGpuAdapter();
  const [cpu, unset, bad] = await Promise.all([
    childWith("cpu"),
    childWith(undefined),
    childWith("gpu9"),
  ]);
  deepStrictEqual([cpu.ok, cpu.requested, cpu.backend], [true, "cpu", "cpu"]);
  equal(cpu.line, "backend cpu on CPU (pure JavaScript kernels)");
  deepStrictEqual([unset.ok, unset.requested], [true, "auto"]);
  // auto takes WebGPU only on a hardware adapter; this machine's only adapter is software.
  equal(unset.backend, probe.hardware ? "webgpu" : "wasm");
  if (!probe.hardware) {
    assert(String(unset.note).includes("no hardware GPU adapter"), String(unset.note));
  }
  deepStrictEqual(bad, {
    ok: false,
    error: 'unknown backend "gpu9": expected one of auto, wasm, webgpu, cpu, tensorflow',
  });
});

Deno.test("engine: Mesa's llvmpipe is found but reported as a software adapter", async () => {
  const probe = await probeGpuAdapter();
  assert(
    /llvmpipe/i.test(probe.description),
    `expected Mesa's llvmpipe, got: ${probe.description}`,
  );
  equal(probe.hardware, false);
});

/** Replaces navigator.gpu for one call of `work` (tests the adapter classification). */
async function withFakeGpu<T>(gpu: unknown, work: () => Promise<T>): Promise<T> {
  Object.defineProperty(navigator, "gpu", { value: gpu, configurable: true });
  try {
    return await work();
  } finally {
    delete (navigator as { gpu?: unknown }).gpu;
  }
}

function fakeGpu(info: Partial<GPUAdapterInfo> | null | Error): unknown {
  return {
    requestAdapter: () => {
      if (info instanceof Error) return Promise.reject(info);
      return Promise.resolve(info && { info: { vendor: "", description: "", ...info } });
    },
  };
}

Deno.test("engine: adapters are classed as hardware or software from what WebGPU reports", async () => {
  const cases: [Partial<GPUAdapterInfo> | null | Error, boolean, string][] = [
    [
      { description: "NVIDIA H100 80GB HBM3", vendor: "nvidia" },
      true,
      "NVIDIA H100 80GB HBM3, vendor nvidia",
    ],
    [
      { description: "llvmpipe (LLVM 15.0.6, 256 bits)" },
      false,
      "llvmpipe (LLVM 15.0.6, 256 bits)",
    ],
    [{ description: "SwiftShader Device" }, false, "SwiftShader Device"],
    [{ description: "Some GPU", isFallbackAdapter: true }, false, "Some GPU"],
    [null, false, "no WebGPU adapter (no Vulkan driver?)"],
    [new Error("driver crashed"), false, "requestAdapter failed: driver crashed"],
  ];
  for (const [info, hardware, description] of cases) {
    const probe = await withFakeGpu(fakeGpu(info), probeGpuAdapter);
    deepStrictEqual(probe, { hardware, description });
  }
  const none = await withFakeGpu(undefined, probeGpuAdapter);
  deepStrictEqual(none, { hardware: false, description: "no navigator.gpu in this runtime" });
});

Deno.test("engine: the tensorflow backend fails with the reason, leaving the engine as it was", async () => {
  await initEngine({ backend: "wasm" });
  await rejects(initEngine({ backend: "tensorflow" }), (err: Error) => {
    for (
      const part of ["backend tensorflow is not available", "libtensorflow 2.9.1", "CUDA 11.2"]
    ) {
      assert(err.message.includes(part), err.message);
    }
    assert(
      /tfjs-node-gpu: (native addon missing|package not installed)/.test(err.message),
      err.message,
    );
    return true;
  });
  equal(tf.getBackend(), "wasm");
  equal(engineInfo()?.backend, "wasm");
});

/** Deterministic values in [-1, 1) (a small LCG), so both backends get the same inputs. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** The operations a ViT forward and backward pass uses, on small tensors; results on the host. */
async function workload(): Promise<Record<string, Float32Array>> {
  const before = tf.memory().numTensors;
  const results = tf.tidy(() => {
    const x = tf.tensor2d(values(33 * 47, 1), [33, 47]);
    const w = tf.tensor2d(values(47 * 29, 2), [47, 29]);
    const gamma = tf.tensor1d(values(29, 3));
    const matmul = tf.matMul(x, w);
    const softmax = tf.softmax(matmul.mul(0.2));
    const { mean, variance } = tf.moments(matmul, -1, true);
    const layerNorm = matmul.sub(mean).div(variance.add(1e-5).sqrt()).mul(gamma);
    const q = tf.tensor3d(values(2 * 6 * 8, 4), [2, 6, 8]);
    const k = tf.tensor3d(values(2 * 6 * 8, 5), [2, 6, 8]);
    const attention = tf.softmax(tf.matMul(q, k, false, true).div(Math.sqrt(8))).matMul(q);
    const image = tf.tensor4d(values(2 * 8 * 8 * 3, 6), [2, 8, 8, 3]);
    const filter = tf.tensor4d(values(4 * 4 * 3 * 5, 7), [4, 4, 3, 5]);
    const conv = tf.conv2d(image, filter, 4, "valid");
    const labels = tf.oneHot(
      tf.tensor1d(Array.from({ length: 33 }, (_, i) => i % 29), "int32"),
      29,
    );
    const loss = (weights: tf.Tensor) =>
      tf.losses.softmaxCrossEntropy(
        labels,
        tf.matMul(x, weights).relu().add(tf.matMul(x, weights).tanh()),
      );
    const grad = tf.grad(loss)(w);
    return { matmul, softmax, layerNorm, attention, conv, grad, loss: loss(w) };
  });
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(results)) out[name] = (await t.data()) as Float32Array;
  tf.dispose(Object.values(results));
  equal(tf.memory().numTensors, before, "workload leaked tensors");
  return out;
}

Deno.test("engine: WebGPU on Mesa's software Vulkan gives the same numbers as wasm", async () => {
  await initEngine({ backend: "wasm" });
  const onWasm = await workload();
  try {
    const info = await withTimeout(initEngine({ backend: "webgpu" }), 120, "starting webgpu");
    equal(tf.getBackend(), "webgpu");
    assert(describeEngine(info).startsWith("backend webgpu on "), describeEngine(info));
    // Read results with await t.data(): tfjs-webgpu's dataSync needs a canvas Deno lacks.
    const onGpu = await withTimeout(workload(), 300, "running the webgpu workload");
    for (const [name, expected] of Object.entries(onWasm)) {
      const got = onGpu[name];
      equal(got.length, expected.length, name);
      let worst = 0;
      for (let i = 0; i < got.length; i++) {
        worst = Math.max(worst, Math.abs(got[i] - expected[i]) / (1e-3 + Math.abs(expected[i])));
      }
      assert(worst < 1e-4, `${name}: relative difference ${worst}`);
    }
    assert(onWasm.grad.some((v) => Math.abs(v) > 1e-3), "the gradient is not trivially zero");
  } finally {
    // Later tests in this process expect wasm; dropping the backend releases the GPU device.
    await initEngine({ backend: "wasm" });
    tf.removeBackend("webgpu");
  }
});
