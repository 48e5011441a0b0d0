/**
 * `deno task merge` (checkpoint mode) misused: mismatched experts, a base that is not theirs,
 * unknown methods, parameters and flags, broken inputs, outputs that cannot be written or would
 * overwrite an input. Each run must exit non-zero with one `error:` message that says what is
 * wrong (naming the files and tensors involved), leave no file in the output folder, and leave
 * every input byte-for-byte as it was.
 */
import { deepStrictEqual, equal, notEqual, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../helpers/temp.ts";
import { randomModel, runMergeTask, tinyVitLayout, writeSource } from "../merge/fixtures.ts";
import { openCheckpoint } from "../../lib/io/open.ts";
import { MemorySource, toMemory } from "../../lib/tensor/source.ts";
import { digests, filesUnder } from "./files.ts";

const LAYOUT = tinyVitLayout();

/** Inputs: the base, experts fine-tuned from it, and the broken variants the cases use. */
async function makeInputs(dir: string): Promise<void> {
  const put = (name: string, source: Parameters<typeof writeSource>[1]) =>
    writeSource(join(dir, `${name}.safetensors`), source);
  await put("base", randomModel(LAYOUT, 1));
  for (const e of [0, 1]) await put(`expert${e}`, randomModel(LAYOUT, 1, e, 0.05));
  await put("unrelated", randomModel(LAYOUT, 2, 0, 0.05)); // fine-tuned from another base
  await put("wider", randomModel(tinyVitLayout({ width: 48 }), 1, 2, 0.05));
  await put("deeper", randomModel(tinyVitLayout({ layers: 3 }), 1, 3, 0.05));
  const full = await toMemory(randomModel(LAYOUT, 1, 4, 0.05));
  const tensors = Object.fromEntries(full.names().map((n) => [n, full.get(n)]));
  const { "visual_projection.weight": _dropped, ...rest } = tensors;
  await put("missing", new MemorySource("missing", rest));
  await put(
    "extra",
    new MemorySource("extra", { ...tensors, "head.weight": tensors["visual_projection.weight"] }),
  );
  const last = LAYOUT[LAYOUT.length - 1][0];
  const bad = tensors[last].data.slice();
  bad[5] = NaN;
  await put(
    "nan_late",
    new MemorySource("nan_late", { ...tensors, [last]: { ...tensors[last], data: bad } }),
  );
  const bytes = await Deno.readFile(join(dir, "expert0.safetensors"));
  await Deno.writeFile(join(dir, "truncated.safetensors"), bytes.subarray(0, bytes.length - 100));
  await Deno.mkdir(join(dir, "no_experts"));
  await Deno.mkdir(join(dir, "experts"));
  for (const e of [0, 1]) {
    await Deno.copyFile(
      join(dir, `expert${e}.safetensors`),
      join(dir, "experts", `e${e}.safetensors`),
    );
  }
  await Deno.symlink("expert0.safetensors", join(dir, "alias.safetensors"));
  await Deno.link(join(dir, "expert1.safetensors"), join(dir, "hardlink.safetensors"));
  await Deno.writeTextFile(join(dir, "a_file"), "not a folder");
}

interface Case {
  /** What is misused. */
  title: string;
  /** Arguments (IN = the inputs folder, OUT = the output folder). */
  args: string[];
  /** Fragments the error message must hold. */
  says: string[];
}

const expected = (title: string, args: string[], says: string[]): Case => ({ title, args, says });
const merge = (experts: string[], out = "OUT/merged.safetensors", method = "task_arithmetic") => [
  "--method",
  method,
  "--base",
  "IN/base.safetensors",
  "--experts",
  ...experts.map((e) => `IN/${e}.safetensors`),
  "--out",
  out,
];

const CASES: Case[] = [
  expected("an expert with a tensor the base lacks", merge(["expert0", "extra"]), [
    'tensor "head.weight" is in IN/extra.safetensors but not in IN/base.safetensors',
  ]),
  expected("an expert lacking a tensor", merge(["expert0", "missing"]), [
    'tensor "visual_projection.weight" is in IN/base.safetensors but not in IN/missing.safetensors',
  ]),
  expected("an expert of another width (shapes differ)", merge(["expert0", "wider"]), [
    'tensor "vision_model.embeddings.class_embedding" has shape [48] in IN/wider.safetensors',
    "but [32] in IN/base.safetensors",
  ]),
  expected("an expert of another depth (names differ)", merge(["deeper", "expert0"]), [
    "vision_model.encoder.layers.2.",
    "is in IN/deeper.safetensors but not in IN/base.safetensors",
  ]),
  expected("a base that is not the experts' base", merge(["expert0", "unrelated"]), [
    "IN/unrelated.safetensors: ‖θ − θ0‖ / ‖θ0‖ = 1.",
    "Is IN/base.safetensors the model these experts were fine-tuned from?",
  ]),
  expected("an unknown method", merge(["expert0", "expert1"], undefined, "tiess"), [
    'unknown merge method "tiess": valid methods are average, task_arithmetic, ties',
  ]),
  expected("an unknown parameter", [...merge(["expert0", "expert1"]), "--param", "k=20"], [
    'method "task_arithmetic" has no parameter "k": valid parameters are scaling',
  ]),
  expected("a parameter that is not a number", [
    ...merge(["expert0", "expert1"], undefined, "ties"),
    "--param",
    "k=lots",
  ], ['parameter "k" = "lots": expected a number']),
  expected("an unknown flag", [...merge(["expert0"]), "--scaleing", "1"], [
    "Unknown option '--scaleing'",
    "valid flags: --method --param --scaling",
  ]),
  expected("no --base", ["--method", "ties", "--experts", "IN/expert0.safetensors"], [
    "--base is required",
  ]),
  expected("a truncated expert", merge(["expert0", "truncated"]), [
    "IN/truncated.safetensors: tensor ",
    "run past the end of the data section",
  ]),
  expected("NaN in the last tensor of an expert", merge(["expert0", "nan_late"]), [
    'IN/nan_late.safetensors: tensor "visual_projection.weight": value NaN at flat index 5',
  ]),
  expected(
    "NaN in the last shard of a sharded output",
    [...merge(["expert0", "nan_late"], "OUT/sharded"), "--max-shard-bytes", "20000"],
    ['IN/nan_late.safetensors: tensor "visual_projection.weight": value NaN'],
  ),
  expected("an experts folder without checkpoints", [
    ...merge([]).slice(0, 5),
    "IN/no_experts",
    "--out",
    "OUT/merged.safetensors",
  ], ["IN/no_experts: no expert checkpoints in this directory"]),
  expected("the same expert twice", merge(["expert0", "expert0"]), [
    'task "expert0" named twice',
  ]),
  expected("an output inside a regular file", merge(["expert0"], "IN/a_file/merged.safetensors"), [
    "IN/a_file: cannot create directory",
  ]),
  expected(
    "an output where nothing can be written",
    merge(["expert0"], "/proc/merged.safetensors"),
    [
      "/proc/merged.safetensors: cannot write",
    ],
  ),
  expected("an output over the base", merge(["expert0", "expert1"], "IN/base.safetensors"), [
    "--out IN/base.safetensors is --base IN/base.safetensors, which this run reads",
  ]),
  expected("an output equal to the experts folder", [
    ...merge([]).slice(0, 5),
    "IN/experts",
    "--out",
    "IN/experts",
  ], [
    "--out IN/experts is --experts IN/experts, which this run reads: write the output elsewhere",
  ]),
  expected("an output inside the experts folder", [
    ...merge([]).slice(0, 5),
    "IN/experts",
    "--out",
    "IN/experts/merged.safetensors",
  ], ["--out IN/experts/merged.safetensors is inside --experts IN/experts"]),
  expected("a symbolic link to an expert given beside it", merge(["expert0", "alias"]), [
    'expert "alias" IN/alias.safetensors: IN/alias.safetensors is the same file as ' +
    "IN/expert0.safetensors (inode ",
    'which expert "expert0" IN/expert0.safetensors reads',
  ]),
  expected("a hard link to an expert given beside it", merge(["expert1", "hardlink"]), [
    'expert "hardlink" IN/hardlink.safetensors: IN/hardlink.safetensors is the same file as ' +
    "IN/expert1.safetensors",
  ]),
  expected("the base listed as an expert", merge(["expert0", "base"]), [
    'expert "base" IN/base.safetensors: IN/base.safetensors is the same file as ' +
    "IN/base.safetensors",
    "which the base IN/base.safetensors reads",
  ]),
  expected("a negative scaling after a space (--scaling -5)", [
    ...merge(["expert0", "expert1"]),
    "--scaling",
    "-5",
  ], ['parameter "scaling" = -5: expected a number in [0, ∞)']),
  expected("a negative shard size after a space (--max-shard-bytes -1)", [
    ...merge(["expert0", "expert1"], "OUT/sharded"),
    "--max-shard-bytes",
    "-1",
  ], ["--max-shard-bytes -1: expected a positive number of bytes"]),
  expected("a flag without its value", [...merge(["expert0"]), "--out"], [
    "Option '--out <value>' argument missing",
    "valid flags: --method --param --scaling",
  ]),
  expected("an output folder holding an input as model.safetensors", merge(["model"], "IN"), [
    "--out IN would overwrite IN/model.safetensors",
  ]),
];

Deno.test("deno task merge misused: one clear error, exit 1, nothing written, inputs intact", async (t) => {
  await using dir = await tempDir();
  const inputs = join(dir.path, "in"), out = join(dir.path, "out");
  await Deno.mkdir(inputs);
  await makeInputs(inputs);
  await Deno.copyFile(join(inputs, "expert1.safetensors"), join(inputs, "model.safetensors"));
  const before = await digests(inputs);
  const fill = (text: string) =>
    text.replace(/(?<![\w-])IN(?=\/|\s|$)/g, inputs).replace(/(?<![\w-])OUT(?=\/|\s|$)/g, out);
  for (const c of CASES) {
    await t.step(c.title, async () => {
      const run = await runMergeTask(c.args.map(fill));
      notEqual(run.code, 0, `exit 0 for: ${c.title}\n${run.stdout}`);
      const lines = run.stderr.trim().split("\n");
      equal(lines.length, 1, `expected one line:\n${run.stderr}`);
      assert(lines[0].startsWith("error: "), run.stderr);
      assert(!/^\s+at /m.test(run.stderr), `a stack trace instead of a message:\n${run.stderr}`);
      for (const s of c.says.map(fill)) {
        assert(run.stderr.includes(s), `"${s}" not in:\n${run.stderr}`);
      }
      deepStrictEqual(await filesUnder(out), [], "files left in the output folder");
      deepStrictEqual(await digests(inputs), before, "an input changed");
    });
  }
});

Deno.test("deno task merge: the base check passes real fine-tunes and can be skipped", async () => {
  await using dir = await tempDir();
  await makeInputs(dir.path);
  const base = join(dir.path, "base.safetensors");
  const run = (experts: string[], extra: string[] = []) =>
    runMergeTask([
      "--method",
      "task_arithmetic",
      "--base",
      base,
      "--experts",
      ...experts.map((e) => join(dir.path, `${e}.safetensors`)),
      "--out",
      join(dir.path, "out", `${experts.join("+")}.safetensors`),
      ...extra,
    ]);
  const fine = await run(["expert0", "expert1"]);
  equal(fine.code, 0, fine.stderr);
  const skipped = await run(["expert0", "unrelated"], ["--skip-base-check"]);
  equal(skipped.code, 0, skipped.stderr);
  using merged = await openCheckpoint(join(dir.path, "out", "expert0+unrelated.safetensors"));
  equal(merged.names().length, LAYOUT.length);
});

Deno.test("deno task merge: the same content in two files merges with one warning naming both", async () => {
  await using dir = await tempDir();
  await makeInputs(dir.path);
  const path = (name: string) => join(dir.path, `${name}.safetensors`);
  await Deno.copyFile(path("expert0"), path("copy"));
  const run = await runMergeTask([
    "--method",
    "task_arithmetic",
    "--base",
    path("base"),
    "--experts",
    path("expert0"),
    path("copy"),
    path("expert1"),
    "--out",
    join(dir.path, "out", "merged.safetensors"),
  ]);
  equal(run.code, 0, run.stderr);
  const warnings = run.stderr.trim().split("\n").filter((l) => l.startsWith("warning: "));
  equal(warnings.length, 1, run.stderr);
  assert(
    warnings[0].startsWith(
      `warning: expert "copy" ${path("copy")} and expert "expert0" ${path("expert0")} hold ` +
        "identical bytes wherever sampled",
    ),
    warnings[0],
  );
});
