/**
 * ξ and the pairwise interference matrix on logits whose softmax is known in closed form, so
 * every expected value below is worked out by hand (in the comments) rather than by this
 * project's code: softmax([0, 0]) = (1/2, 1/2), softmax([ln 3, 0]) = (3/4, 1/4),
 * softmax([0, 0, 0]) = (1/3, 1/3, 1/3), softmax([ln 2, 0, 0]) = (1/2, 1/4, 1/4), and a logit
 * of −1e4 gives probability exactly 0 in float32.
 */
import { deepStrictEqual, equal, ok as assert, throws } from "node:assert/strict";
import { initEngine } from "../../lib/engine/backend.ts";
import {
  interference,
  InterferenceMatrix,
  meanDistance,
  pairwiseInterference,
} from "../../lib/interference/measure.ts";
import type { HeadLogits } from "../../lib/interference/predict.ts";

await initEngine({ backend: "cpu" });

const LN3 = Math.log(3), LN2 = Math.LN2;

/** Logits of `rows` images under task `task`'s head. */
function logits(task: string, rows: number[][]): HeadLogits {
  return { task, classes: rows[0].length, logits: Float32Array.from(rows.flat()) };
}

function close(actual: number, expected: number, what: string): void {
  // float32 softmax and logs: a few ulps of the values involved
  assert(
    Math.abs(actual - expected) <= 1e-6 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} ≠ ${expected}`,
  );
}

// KL((1/2, 1/2) ‖ (3/4, 1/4)) = ½ ln((1/2)/(3/4)) + ½ ln((1/2)/(1/4)) = ½ ln(4/3)
const KL_HALF_VS_3_1 = 0.5 * Math.log(4 / 3);
// KL(uniform₃ ‖ (1/2, 1/4, 1/4)) = ⅓ [ln(2/3) + 2 ln(4/3)] = ⅓ ln(32/27)
const KL_U3_VS_2_1_1 = Math.log(32 / 27) / 3;

Deno.test("meanDistance: each distance on a hand-computed pair of rows", () => {
  const p = Float32Array.from([0, 0]); // target (1/2, 1/2)
  const q = Float32Array.from([LN3, 0]); // model (3/4, 1/4)
  close(meanDistance("kl", p, q, 2), KL_HALF_VS_3_1, "kl");
  // soft CE: −Σ p ln q = −½ ln(3/4) − ½ ln(1/4) = ½ ln(16/3)
  close(meanDistance("soft_ce", p, q, 2), 0.5 * Math.log(16 / 3), "soft_ce");
  // mse: mean over classes of (q − p)² = ((1/4)² + (1/4)²)/2 = 1/16
  close(meanDistance("mse", p, q, 2), 1 / 16, "mse");
  // CE against the target's top class; target (3/4, 1/4) has class 0, model (1/2, 1/2): ln 2
  close(meanDistance("ce", q, p, 2), LN2, "ce");
  // KL with a zero in the target: KL((0, 1) ‖ (1/2, 1/2)) = 0·ln 0 + 1·ln 2 = ln 2
  close(meanDistance("kl", Float32Array.from([-1e4, 0]), p, 2), LN2, "kl with p = 0");
  // identical rows: 0 (KL to float32 rounding: ln p and log-softmax take different paths)
  close(meanDistance("kl", q, q, 2), 0, "kl of equal rows");
  equal(meanDistance("mse", q, q, 2), 0);
});

Deno.test("meanDistance: the mean is over images, each row its own distribution", () => {
  // image 1: KL((1/2,1/2) ‖ (3/4,1/4)) = ½ ln(4/3); image 2: target = model → 0; mean ¼ ln(4/3)
  const target = Float32Array.from([0, 0, LN3, 0]);
  const model = Float32Array.from([LN3, 0, LN3, 0]);
  close(meanDistance("kl", target, model, 2), KL_HALF_VS_3_1 / 2, "mean of two rows");
  // the same four numbers read as one row of 4 classes are another distribution altogether
  assert(Math.abs(meanDistance("kl", target, model, 4) - KL_HALF_VS_3_1 / 2) > 1e-3);
});

Deno.test("ξ: per-task means of KL(expert ‖ model) on each task's images, and their sum", () => {
  const experts = [
    logits("a", [[0, 0], [LN3, 0]]),
    logits("b", [[0, 0, 0]]),
  ];
  const model = [
    logits("a", [[LN3, 0], [LN3, 0]]), // ξa = (½ ln(4/3) + 0) / 2
    logits("b", [[LN2, 0, 0]]), // ξb = ⅓ ln(32/27)
  ];
  const xi = interference(experts, model, "kl");
  deepStrictEqual(xi.tasks, ["a", "b"]);
  equal(xi.distance, "kl");
  close(xi.perTask[0], KL_HALF_VS_3_1 / 2, "ξa");
  close(xi.perTask[1], KL_U3_VS_2_1_1, "ξb");
  close(xi.total, KL_HALF_VS_3_1 / 2 + KL_U3_VS_2_1_1, "ξ");
  // the experts themselves have ξ = 0
  interference(experts, experts, "kl").perTask.forEach((v, i) => close(v, 0, `ξ${i} of itself`));
  // ξ is not symmetric: KL(model ‖ expert) for task b is
  // ½ ln((1/2)/(1/3)) + 2·¼ ln((1/4)/(1/3)) = ½ ln(3/2) + ½ ln(3/4) = ½ ln(9/8)
  close(interference([model[1]], [experts[1]], "kl").total, 0.5 * Math.log(9 / 8), "reversed");
});

Deno.test("ξ: mismatched inputs are refused, naming what differs", () => {
  const a = logits("a", [[0, 0]]), b = logits("b", [[0, 0]]);
  throws(() => interference([a, b], [a], "kl"), /2 experts but 1 model outputs/);
  throws(() => interference([a, b], [b, a], "kl"), /entry 0 is task "b", expected "a"/);
  throws(
    () => meanDistance("kl", new Float32Array(4), new Float32Array(2), 2),
    /logits of 4 and 2 values do not form matching \[count × 2\] matrices/,
  );
  throws(() => meanDistance("kl", new Float32Array(0), new Float32Array(0), 2), /no examples/);
});

Deno.test("pairwise: I[i][j] = mean KL(θ0 under head j ‖ expert i under head j)", () => {
  // θ0: uniform under both heads, on the same single auxiliary image
  const base = [logits("a", [[0, 0]]), logits("b", [[0, 0, 0]])];
  const experts = [
    // expert 0 moves head a to (3/4, 1/4) and head b to (1/4, 1/2, 1/4)
    [logits("a", [[LN3, 0]]), logits("b", [[0, LN2, 0]])],
    // expert 1 leaves head a alone and moves head b to (1/2, 1/4, 1/4)
    [logits("a", [[0, 0]]), logits("b", [[LN2, 0, 0]])],
  ];
  const m = pairwiseInterference(base, experts, "kl", "aux", "toy");
  deepStrictEqual(m.tasks, ["a", "b"]);
  equal(m.on, "aux");
  equal(m.label, "toy");
  // KL(uniform₃ ‖ (1/4, 1/2, 1/4)) = ⅓ [ln(4/3) + ln(2/3) + ln(4/3)] = ⅓ ln(32/27)
  const expected = [[KL_HALF_VS_3_1, KL_U3_VS_2_1_1], [0, KL_U3_VS_2_1_1]];
  m.values.forEach((row, i) => row.forEach((v, j) => close(v, expected[i][j], `I[${i}][${j}]`)));
  // off-diagonal mean: (I[0][1] + I[1][0]) / 2
  close(m.offDiagonalMean, KL_U3_VS_2_1_1 / 2, "off-diagonal mean");
});

Deno.test("pairwise: an expert row without every head's logits is refused", () => {
  const base = [logits("a", [[0, 0]]), logits("b", [[0, 0]])];
  throws(
    () => pairwiseInterference(base, [[logits("a", [[0, 0]])]], "kl", "task"),
    /expert 0 has 1 heads' logits/,
  );
});

Deno.test("InterferenceMatrix: off-diagonal mean by hand, and 0 for a single task", () => {
  const m = new InterferenceMatrix(
    ["x", "y", "z"],
    [[9, 1, 2], [3, 9, 4], [5, 6, 9]],
    "kl",
    "task",
  );
  close(m.offDiagonalMean, (1 + 2 + 3 + 4 + 5 + 6) / 6, "3×3");
  equal(new InterferenceMatrix(["x"], [[7]], "kl", "task").offDiagonalMean, 0);
});
