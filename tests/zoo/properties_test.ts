import { deepStrictEqual, equal, ok as assert, throws } from "node:assert/strict";
import { checkCriteria, REQUIRED, ZooProperties } from "../../lib/zoo/properties.ts";

Deno.test("the four criteria: values in points, thresholds met exactly count as met", () => {
  deepStrictEqual(REQUIRED, {
    expertGap: 15,
    taskArithmeticGain: 5,
    bestMergeGain: 10,
    bestMergeHeadroom: 5,
  });
  const at = checkCriteria({ expert: 85, base: 70, taskArithmetic: 75, bestMerge: 80 });
  deepStrictEqual(at.map((c) => [c.key, c.value, c.met]), [
    ["expertGap", 15, true],
    ["taskArithmeticGain", 5, true],
    ["bestMergeGain", 10, true],
    ["bestMergeHeadroom", 5, true],
  ]);
  // Each criterion missed alone; the expert gap cannot be (best merge ≥ θ0 + 10 and experts ≥
  // best merge + 5 imply experts ≥ θ0 + 15), so it is missed with the headroom.
  const keys = (m: Parameters<typeof checkCriteria>[0]) =>
    checkCriteria(m).filter((c) => !c.met).map((c) => c.key);
  deepStrictEqual(keys({ expert: 84, base: 70, taskArithmetic: 75, bestMerge: 80 }), [
    "expertGap",
    "bestMergeHeadroom",
  ]);
  deepStrictEqual(keys({ expert: 90, base: 70, taskArithmetic: 74.9, bestMerge: 80 }), [
    "taskArithmeticGain",
  ]);
  deepStrictEqual(keys({ expert: 90, base: 70, taskArithmetic: 76, bestMerge: 79.9 }), [
    "bestMergeGain",
  ]);
  deepStrictEqual(keys({ expert: 90, base: 70, taskArithmetic: 76, bestMerge: 85.1 }), [
    "bestMergeHeadroom",
  ]);
  // The old benchmark (mf8 seed 0): merges below θ0 + heads.
  deepStrictEqual(keys({ expert: 85.3, base: 65.4, taskArithmetic: 45.6, bestMerge: 65.0 }), [
    "taskArithmeticGain",
    "bestMergeGain",
  ]);
});

function properties(): ZooProperties {
  return new ZooProperties({
    tasks: ["a", "b"],
    expert: [0.9, 0.8],
    base: [0.6, 0.5],
    merges: [
      { method: "average", params: { scaling: 1 }, accuracy: [0.65, 0.55] },
      { method: "task_arithmetic", params: { scaling: 0.3 }, accuracy: [0.7, 0.6] },
      { method: "tsv_m", params: { scaling: 1 }, accuracy: [0.75, 0.65] },
      { method: "iso_c", params: { scaling: 1 }, accuracy: [0.8, 0.6] },
    ],
    tauRatio: [0.04, 0.06],
    cosine: [[1, 0.2], [0.2, 1]],
  });
}

Deno.test("zoo properties: means in points, the best merge, τ ratio and mean cosine", () => {
  const p = properties();
  const m = p.means;
  for (
    const [got, want] of [
      [m.expert, 85],
      [m.base, 55],
      [m.taskArithmetic, 65],
      [m.bestMerge, 70],
      [p.tauRatio, 0.05],
      [p.meanCosine, 0.2],
    ]
  ) assert(Math.abs(got - want) < 1e-9, `${got} vs ${want}`);
  equal(p.bestMerge.method, "tsv_m"); // the first of the tied best (tsv_m, iso_c: 70)
  deepStrictEqual(p.taskArithmetic, [0.7, 0.6]);
  deepStrictEqual(p.missed.map((c) => c.key), []);
  equal(p.valid, true);
  const text = p.table().toText();
  for (const part of ["task_arithmetic", "tsv_m", "‖τ‖/‖θ0‖ 0.050", "cos(τi, τj) 0.200"]) {
    assert(text.includes(part), `table lacks "${part}":\n${text}`);
  }
  assert(text.includes("all met"));
  const again = ZooProperties.fromJSON(JSON.parse(JSON.stringify(p)));
  deepStrictEqual(again.toJSON(), p.toJSON());
  equal((p.toJSON() as { bestMethod: string }).bestMethod, "tsv_m");
});

Deno.test("zoo properties name what they miss and need a Task Arithmetic merge", () => {
  const p = properties();
  const weak = new ZooProperties({ ...p.data, expert: [0.7, 0.6] });
  deepStrictEqual(weak.missed.map((c) => c.key), ["expertGap", "bestMergeHeadroom"]);
  equal(weak.valid, false);
  assert(weak.table().toText().includes("MISSED expertGap, bestMergeHeadroom"));
  const noTa = { ...p.data, merges: p.data.merges.filter((m) => m.method !== "task_arithmetic") };
  throws(() => new ZooProperties(noTa), /no task_arithmetic merge/);
  throws(() => ZooProperties.fromJSON({ tasks: ["a"] }), /"expert" is not a list/);
});
