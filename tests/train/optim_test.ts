import { deepStrictEqual, equal, ok as assert, throws } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../mod.ts";
import { AdamW } from "../../lib/train/adamw.ts";
import { crossEntropy } from "../../lib/train/losses.ts";
import { warmupCosine } from "../../lib/train/schedule.ts";
import { clipByGlobalNorm, trainStep } from "../../lib/train/step.ts";
import { runPython } from "../helpers/python.ts";

Deno.test("AdamW with decoupled weight decay and clipping follows torch.optim.AdamW", async () => {
  await initEngine({ backend: "wasm" });
  // A least-squares problem; gradients from tfjs, updates compared with PyTorch's AdamW
  // (with clip_grad_norm_) started from the same weights on the same data.
  const x = tf.tensor2d([[1, 2, 0.5], [0.3, -1, 2], [2, 0.1, -0.4], [-1, 1, 1]]);
  const t = tf.tensor2d([[1], [-2], [0.5], [3]]);
  const w = tf.variable(tf.tensor2d([[0.2], [-0.1], [0.4]]));
  const b = tf.variable(tf.tensor1d([0.3]));
  const opt = new AdamW({ w, b }, { weightDecay: 0.1, decays: (name) => name === "w" });
  const lrs = [0.1, 0.05, 0.2, 0.1, 0.01];
  for (const lr of lrs) {
    trainStep(() => x.matMul(w).add(b).sub(t).square().mean() as tf.Scalar, opt, {
      lr,
      clipNorm: 1,
    }).dispose();
  }
  const out = await runPython(
    `import json, torch
x = torch.tensor([[1, 2, 0.5], [0.3, -1, 2], [2, 0.1, -0.4], [-1, 1, 1]], dtype=torch.float64)
t = torch.tensor([[1], [-2], [0.5], [3]], dtype=torch.float64)
w = torch.tensor([[0.2], [-0.1], [0.4]], dtype=torch.float64, requires_grad=True)
b = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0}], lr=0.1)
for lr in ${JSON.stringify(lrs)}:
    for g in opt.param_groups: g["lr"] = lr
    opt.zero_grad()
    ((x @ w + b - t) ** 2).mean().backward()
    torch.nn.utils.clip_grad_norm_([w, b], 1.0)
    opt.step()
print(json.dumps(w.flatten().tolist() + b.tolist()))`,
  );
  const want = JSON.parse(out) as number[];
  const got = [...w.dataSync(), ...b.dataSync()];
  got.forEach((v, i) => assert(Math.abs(v - want[i]) < 1e-5, `param ${i}: ${v} vs ${want[i]}`));
  opt.dispose();
  tf.dispose([x, t, w, b]);
});

Deno.test("warm-up rises linearly to the peak, cosine falls to the floor", () => {
  const lr = warmupCosine({ peak: 1, totalSteps: 11, warmupSteps: 4, final: 0.1 });
  deepStrictEqual([0, 1, 2, 3].map(lr), [0.25, 0.5, 0.75, 1]);
  assert(Math.abs(lr(10) - 0.1) < 1e-12);
  assert(Math.abs(lr(3 + 3.5) - 0.55) < 1e-12); // half-way down the cosine
  for (let s = 4; s < 11; s++) assert(lr(s) <= lr(s - 1));
  equal(warmupCosine({ peak: 2, totalSteps: 5 })(0), 2);
  throws(() => warmupCosine({ peak: 1, totalSteps: 3, warmupSteps: 5 }), /warmupSteps/);
});

Deno.test("global-norm clipping scales all gradients together, only when above the limit", async () => {
  await initEngine({ backend: "wasm" });
  const g = { a: tf.tensor1d([3, 0]), b: tf.tensor2d([[0, 4]]) };
  const big = clipByGlobalNorm(g, 1);
  equal(big.norm.dataSync()[0], 5);
  assert(Math.abs(big.grads.a.dataSync()[0] - 0.6) < 1e-6);
  assert(Math.abs(big.grads.b.dataSync()[1] - 0.8) < 1e-6);
  const small = clipByGlobalNorm(g, 10);
  deepStrictEqual([...small.grads.a.dataSync()], [3, 0]);
  tf.dispose([
    g.a,
    g.b,
    big.norm,
    small.norm,
    ...Object.values(big.grads),
    ...Object.values(small.grads),
  ]);
});

Deno.test("cross-entropy matches the definition", async () => {
  await initEngine({ backend: "wasm" });
  const logits = tf.tensor2d([[1, 2, 3], [0, 0, 5]]);
  const labels = tf.tensor1d([2, 0], "int32");
  const got = crossEntropy(logits, labels).dataSync()[0];
  const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
  const want = ((lse([1, 2, 3]) - 3) + (lse([0, 0, 5]) - 0)) / 2;
  assert(Math.abs(got - want) < 1e-5);
  tf.dispose([logits, labels]);
});

Deno.test("a variable the loss does not use is left alone (no update, no decay)", async () => {
  await initEngine({ backend: "wasm" });
  const used = tf.variable(tf.tensor1d([1, 2]));
  const unused = tf.variable(tf.tensor1d([5]));
  const opt = new AdamW({ used, unused }, { weightDecay: 0.5 });
  trainStep(() => used.square().sum() as tf.Scalar, opt, { lr: 0.1, clipNorm: 1 }).dispose();
  deepStrictEqual([...unused.dataSync()], [5]);
  assert(used.dataSync()[0] < 1);
  opt.dispose();
  tf.dispose([used, unused]);
});
