/**
 * The plausibility check of a base against its experts (lib/taskvec/base_check.ts): fine-tuned
 * experts pass, experts of another base are refused naming both files, and buffers that are
 * not weights (an int64 `position_ids`, identical in every model) do not hide a wrong base.
 */
import { equal, ok as assert, rejects } from "node:assert/strict";
import { join } from "node:path";
import {
  BASE_DISTANCE_LIMIT,
  baseDistances,
  checkCommonBase,
} from "../../lib/taskvec/base_check.ts";
import { mergeCheckpoints } from "../../lib/merge/files.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { randomModel, tinyVitLayout } from "../merge/fixtures.ts";
import { tempDir } from "../helpers/temp.ts";
import { buildFile, type RawTensor } from "./safetensors_fuzz.ts";

const LAYOUT = tinyVitLayout();

Deno.test("base check: fine-tunes are a few percent away, another base's experts about 1", async () => {
  const base = randomModel(LAYOUT, 1);
  const experts = [0, 1, 2].map((e) => randomModel(LAYOUT, 1, e, 0.05));
  const strangers = [0, 1].map((e) => randomModel(LAYOUT, 7, e, 0.05));
  const near = await baseDistances(base, experts);
  const far = await baseDistances(base, strangers);
  for (const d of near) assert(d.ratio < 0.1, `${d.expert}: ${d.ratio}`);
  for (const d of far) assert(d.ratio > 1, `${d.expert}: ${d.ratio}`);
  equal(near[0].tensors.length, 4);
  assert(near[0].tensors.every((n) => LAYOUT.find(([m]) => m === n)![1].length >= 2));
  await checkCommonBase(base, experts);
  await rejects(checkCommonBase(base, [...experts, strangers[0]]), (err: Error) => {
    assert(err.message.startsWith("expert0: ‖θ − θ0‖ / ‖θ0‖ = 1."), err.message);
    assert(err.message.includes("against the base base"), err.message);
    assert(err.message.includes(`limit ${BASE_DISTANCE_LIMIT}`), err.message);
    return true;
  });
});

Deno.test("base check: an identical int64 position_ids buffer does not hide another base", async () => {
  await using dir = await tempDir();
  const model = (seed: number): RawTensor[] => [
    {
      name: "position_ids",
      dtype: "I64",
      shape: [1, 50],
      bytes: new Uint8Array(BigInt64Array.from({ length: 50 }, (_, i) => BigInt(i)).buffer),
    },
    {
      name: "w",
      dtype: "F32",
      shape: [4, 4],
      bytes: new Uint8Array(new Rng(seed).normals(16, 0.02).buffer),
    },
  ];
  for (const [name, seed] of [["base", 1], ["a", 2], ["b", 3]] as const) {
    await Deno.writeFile(join(dir.path, `${name}.safetensors`), buildFile(model(seed)));
  }
  const options = {
    method: "task_arithmetic",
    base: join(dir.path, "base.safetensors"),
    experts: [join(dir.path, "a.safetensors"), join(dir.path, "b.safetensors")],
    out: join(dir.path, "out.safetensors"),
  };
  await rejects(
    mergeCheckpoints(options),
    /a\.safetensors: ‖θ − θ0‖ \/ ‖θ0‖ = 1\.\d+ .*\(over w\)/,
  );
  const merged = await mergeCheckpoints({ ...options, checkBase: false });
  equal(merged.carried.join(), "position_ids");
});
