import { deepStrictEqual, ok as assert, rejects } from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine, readHeadsFile } from "../../mod.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { type TensorToWrite, writeSafetensors } from "../../lib/io/safetensors.ts";
import { disposeHead, makeHead } from "../../lib/models/head.ts";
import { saveHeads } from "../../lib/models/store.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";

Deno.test("a heads file written in Python reads with its classes, scale and unit rows", async () => {
  await initEngine({ backend: "wasm" });
  await using dir = await tempDir();
  const path = `${dir.path}/heads.safetensors`;
  // What docs/REAL_CHECKPOINTS.md tells users to write, with st.py in place of safetensors.
  await runPython(
    `
import json, math, sys, torch, st
w = {"cars": torch.randn(3, 8) * 100, "dtd": torch.randn(2, 8).half()}
tensors = {f"{t}.weight": m for t, m in w.items()}
tensors["logit_scale"] = torch.tensor(math.log(100.0))
meta = {"cars": {"classes": ["a", "b", "c"]}, "dtd": {"classes": ["x", "y"], "logitScale": 100}}
st.save(sys.argv[1], tensors, {"heads": json.dumps(meta)})
st.save(sys.argv[1] + ".ref", {f"{k}.weight": torch.nn.functional.normalize(m.float(), dim=-1) for k, m in w.items()})
`,
    [path],
  );
  const heads = await readHeadsFile(path, { featureDim: 8 });
  deepStrictEqual(heads.map((h) => [h.task, h.classes, h.logitScale]), [
    ["cars", ["a", "b", "c"], Math.exp(Math.fround(Math.log(100)))],
    ["dtd", ["x", "y"], 100],
  ]);
  using ref = await SafetensorsReader.open(`${path}.ref`);
  for (const head of heads) {
    const want = await ref.read(`${head.task}.weight`);
    const got = (await head.weight.data()) as Float32Array;
    assert(got.every((v, i) => Math.abs(v - want[i]) < 1e-6), `${head.task}: rows ${got}`);
  }
  const only = await readHeadsFile(path, { tasks: ["dtd"] });
  deepStrictEqual(only.map((h) => h.task), ["dtd"]);
  [...heads, ...only].forEach(disposeHead);
});

Deno.test("heads files: every inconsistency is named", async (t) => {
  await initEngine({ backend: "wasm" });
  await using dir = await tempDir();
  let n = 0;
  const write = async (tensors: TensorToWrite[], heads?: unknown) => {
    const path = `${dir.path}/h${n++}.safetensors`;
    const metadata: Record<string, string> = heads === undefined
      ? {}
      : { heads: JSON.stringify(heads) };
    await writeSafetensors(path, tensors, { metadata });
    return path;
  };
  const w = (name: string, rows: number, cols = 4, fill = 1): TensorToWrite => ({
    name,
    shape: [rows, cols],
    data: new Float32Array(rows * cols).fill(fill),
  });
  const scale: TensorToWrite = { name: "logit_scale", shape: [], data: new Float32Array([2]) };
  const ok = { t: { classes: ["a", "b"] } };

  await t.step("class names vs rows, feature dimension", async () => {
    await rejects(
      readHeadsFile(await write([w("t.weight", 3), scale], ok)),
      /tensor "t\.weight": has shape \[3, 4\], expected \[2 classes, dim\]/,
    );
    await rejects(
      readHeadsFile(await write([w("t.weight", 2), scale], ok), { featureDim: 512 }),
      /feature dimension 4, but the model's features \(projection\) have 512/,
    );
  });

  await t.step("logit scale missing, or given twice and disagreeing", async () => {
    await rejects(readHeadsFile(await write([w("t.weight", 2)], ok)), /no logit scale/);
    const both = await write([w("t.weight", 2), scale], {
      t: { classes: ["a", "b"], logitScale: 100 },
    });
    await rejects(
      readHeadsFile(both),
      /logitScale 100 in the metadata disagrees with exp\(logit_scale\)/,
    );
  });

  await t.step("tasks and tensors that do not match the metadata", async () => {
    await rejects(readHeadsFile(await write([w("t.weight", 2), scale])), /no "heads" entry/);
    await rejects(
      readHeadsFile(await write([w("t.weight", 2), w("u.weight", 1), scale], ok)),
      /tensor "u\.weight": is neither a listed task's/,
    );
    await rejects(
      readHeadsFile(await write([w("t.weight", 2), scale], ok), { tasks: ["t", "svhn"] }),
      /task "svhn" has no head here \(tasks: t\)/,
    );
    await rejects(
      readHeadsFile(await write([scale], ok)),
      /tensor "t\.weight": missing \(task "t" is listed/,
    );
    await rejects(
      readHeadsFile(await write([w("t.weight", 2, 4, 0), scale], ok)),
      /row 0 \(class "a"\) is all zeros/,
    );
  });

  await t.step("files written by saveHeads are heads files", async () => {
    const path = `${dir.path}/saved.safetensors`;
    const head = makeHead("p", ["even", "odd"], tf.tensor2d([[1, 2], [3, 4]]), 20);
    await saveHeads(path, [head]);
    const [back] = await readHeadsFile(path, { featureDim: 2 });
    deepStrictEqual([back.task, back.classes, back.logitScale], ["p", ["even", "odd"], 20]);
    [head, back].forEach(disposeHead);
  });
});
