/**
 * `deno task merge` end to end: checkpoints written by PyTorch, merged by the command line,
 * compared with θ0 + α·M computed in PyTorch from the same files (tests/merge/reference.py).
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { openCheckpoint } from "../../lib/io/open.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { maxAbsDiff, runMergeTask, tinyVitLayout } from "./fixtures.ts";

const TESTS = new URL(".", import.meta.url).pathname;
const cli = runMergeTask;

/** Base and expert checkpoints (with an int64 `position_ids` buffer) and PyTorch's θ0 + α·M. */
const MAKE_CHECKPOINTS = `
import sys, json, torch, st, reference
dir, layout, runs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
torch.manual_seed(0)
ids = {"vision_model.embeddings.position_ids": torch.arange(17).reshape(1, 17)}
base = {n: torch.randn(*s) for n, s in layout}
experts = [{n: base[n] + 0.05 * torch.randn(*s) for n, s in layout} for _ in range(3)]
st.save(f"{dir}/base.safetensors", {**base, **ids})
for i, e in enumerate(experts):
    st.save(f"{dir}/expert{i}.safetensors", {**e, **ids})
names = [n for n, _ in layout]
taus = [{n: e[n] - base[n] for n in names} for e in experts]
for method, params in runs:
    merged = reference.merge(method, taus, names, params, [])
    st.save(f"{dir}/ref-{method}.safetensors", {n: base[n] + params["scaling"] * merged[n] for n in names})
`;

Deno.test("deno task merge writes θ0 + α·M with metadata, matching PyTorch", async () => {
  await using dir = await tempDir();
  const params = { k: 30, merge: "mean", scaling: 0.7 };
  const runs = [["ties", params], ["iso_c", { scaling: 1 }]];
  await runPython(`import sys; sys.path.insert(0, ${JSON.stringify(TESTS)})\n${MAKE_CHECKPOINTS}`, [
    dir.path,
    JSON.stringify(tinyVitLayout()),
    JSON.stringify(runs),
  ]);
  const experts = [0, 1, 2].map((i) => `${dir.path}/expert${i}.safetensors`);
  const out = `${dir.path}/merged.safetensors`;
  const run = await cli([
    "--method",
    "ties",
    "--param",
    "k=30",
    "--param",
    "merge=mean",
    "--scaling",
    "0.7",
    "--base",
    `${dir.path}/base.safetensors`,
    "--experts",
    ...experts,
    "--out",
    out,
  ]);
  equal(run.code, 0, run.stderr);
  assert(run.stdout.includes("merged 3 experts with ties"), run.stdout);
  assert(run.stdout.includes("vision_model.embeddings.position_ids"), run.stdout);
  using merged = await openCheckpoint(out);
  using ref = await openCheckpoint(`${dir.path}/ref-ties.safetensors`);
  const diff = await maxAbsDiff(ref, merged);
  console.log(`CLI ties vs PyTorch: max |diff| = ${diff.toExponential(2)}`);
  assert(diff < 1e-5, `max |diff| ${diff}`);
  deepStrictEqual(
    await merged.read("vision_model.embeddings.position_ids"),
    Float32Array.from({ length: 17 }, (_, i) => i),
  );
  equal(merged.metadata.merge_method, "ties");
  deepStrictEqual(JSON.parse(merged.metadata.merge_params), params);
  equal(merged.metadata.merge_base, `${dir.path}/base.safetensors`);
  deepStrictEqual(JSON.parse(merged.metadata.merge_experts), {
    expert0: experts[0],
    expert1: experts[1],
    expert2: experts[2],
  });
  equal(JSON.parse(merged.metadata.merge_notes).tiesThresholds.length, 3);

  const iso = await cli([
    "--method",
    "iso_c",
    "--base",
    `${dir.path}/base.safetensors`,
    "--experts",
    ...experts,
    "--out",
    `${dir.path}/iso.safetensors`,
  ]);
  equal(iso.code, 0, iso.stderr);
  assert(/linear algebra: (openblas|js) /.test(iso.stdout), iso.stdout);
  using isoMerged = await openCheckpoint(`${dir.path}/iso.safetensors`);
  using isoRef = await openCheckpoint(`${dir.path}/ref-iso_c.safetensors`);
  const isoDiff = await maxAbsDiff(isoRef, isoMerged);
  console.log(`CLI iso_c vs PyTorch: max |diff| = ${isoDiff.toExponential(2)}`);
  assert(isoDiff < 1e-4, `max |diff| ${isoDiff}`);
});

Deno.test("deno task merge names the valid methods and parameters on bad input", async () => {
  const common = ["--base", "b", "--experts", "e", "--out", "o"];
  const badMethod = await cli(["--method", "tsvx", ...common]);
  equal(badMethod.code, 1);
  assert(
    /unknown merge method "tsvx": valid methods are average, task_arithmetic, ties/.test(
      badMethod.stderr,
    ),
    badMethod.stderr,
  );
  const badParam = await cli(["--method", "ties", "--param", "topk=20", ...common]);
  equal(badParam.code, 1);
  assert(
    badParam.stderr.includes('no parameter "topk": valid parameters are k, merge, scaling'),
    badParam.stderr,
  );
  const missing = await cli(["--method", "ties", "--experts", "e", "--out", "o"]);
  assert(missing.stderr.includes("--base is required"), missing.stderr);
  const list = await cli(["--list"]);
  equal(list.code, 0);
  for (const name of ["average", "ties", "dare_ties", "consensus_ta"]) {
    assert(list.stdout.includes(`${name}: `));
  }
  assert(
    list.stdout.includes(
      "default from: tanganke/fusion_bench@54c9e8c config/method/ties_merging.yaml",
    ),
  );
});
