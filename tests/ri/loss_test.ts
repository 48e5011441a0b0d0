import { ok as assert } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { riLoss } from "../../lib/ri/loss.ts";
import { initEngine } from "../../lib/engine/backend.ts";

function close(actual: number, expected: number, tol = 1e-6): void {
  assert(Math.abs(actual - expected) <= tol, `${actual} ≠ ${expected}`);
}

Deno.test("RI loss on a hand-computed case: own term plus α/(N−1) × others", async () => {
  await initEngine({ backend: "wasm" });
  // Head 0: target [.5,.5], logits [0,0] → KL 0. Head 1: target [1,0], logits [0,0] → KL ln 2.
  // Head 2: target [.25,.75], logits [0, ln 3] → q = target → KL 0.
  const targets = [[[0.5, 0.5]], [[1, 0]], [[0.25, 0.75]]].map((t) => tf.tensor2d(t));
  const logits = [[[0, 0]], [[0, 0]], [[0, Math.log(3)]]].map((t) => tf.tensor2d(t));
  const asOwn0 = riLoss(logits, targets, 0, { alpha: 1, distance: "kl" });
  close(asOwn0.parts.own.dataSync()[0], 0);
  close(asOwn0.parts.others.dataSync()[0], Math.LN2);
  close(asOwn0.total.dataSync()[0], Math.LN2 / 2);
  const asOwn1 = riLoss(logits, targets, 1, { alpha: 3, distance: "kl" });
  close(asOwn1.parts.own.dataSync()[0], Math.LN2);
  close(asOwn1.total.dataSync()[0], Math.LN2); // others are exact: α does not matter
  // Cross-entropy with pseudo-labels: head 1 label 0, q0 = .5 → ln 2; head 2 label 1, q1 = .75.
  const ce = riLoss(logits, targets, 0, { alpha: 1, distance: "ce" });
  close(ce.parts.own.dataSync()[0], Math.LN2); // head 0: argmax of [.5,.5] is class 0, q0 = .5
  close(ce.parts.others.dataSync()[0], Math.LN2 - Math.log(0.75));
  // MSE between probability vectors: head 1 → ((.5−1)² + (.5−0)²)/2 = .25.
  const mse = riLoss(logits, targets, 0, { alpha: 2, distance: "mse" });
  close(mse.total.dataSync()[0], 0 + (2 / 2) * 0.25);
  const losses = [asOwn0, asOwn1, ce, mse].flatMap((l) => [l.total, ...Object.values(l.parts)]);
  tf.dispose([...targets, ...logits, ...losses]);
});
