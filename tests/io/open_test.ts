/**
 * `openCheckpoint`, the one way to open a checkpoint: every format (safetensors, sharded
 * safetensors, PyTorch ZIP, sharded PyTorch, a folder of any) read through one entry point,
 * chosen by the bytes rather than the name, against values PyTorch wrote; and the merge command
 * line merging PyTorch experts exactly as it merges the same weights stored as safetensors.
 */
import { deepStrictEqual, equal, ok as assert, rejects } from "node:assert/strict";
import { openCheckpoint } from "../../lib/io/open.ts";
import { SafetensorsCheckpoint } from "../../lib/io/safetensors_checkpoint.ts";
import { ShardedTorchCheckpoint, TorchCheckpoint } from "../../lib/io/torch_zip.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { runMergeTask, tinyVitLayout } from "../merge/fixtures.ts";

/** The same state dict in every format; `ref.safetensors` holds the values to expect. */
const WRITE_FORMATS = `
import sys, os, json, torch, st
d = sys.argv[1]
torch.manual_seed(0)
sd = {"a.weight": torch.randn(3, 4), "a.bias": torch.randn(4).half(), "b": torch.randn(2, 2, 2).double(),
      "ids": torch.arange(5)}
st.save(f"{d}/ref.safetensors", sd)
torch.save(sd, f"{d}/sd.pt")
torch.save(sd, f"{d}/misnamed.safetensors")   # a PyTorch ZIP under a safetensors name
torch.save(sd, f"{d}/legacy.pt", _use_new_zipfile_serialization=False)
os.makedirs(f"{d}/hf_bin"); torch.save(sd, f"{d}/hf_bin/pytorch_model.bin")
os.makedirs(f"{d}/hf_sharded")
shards = [["a.weight", "a.bias"], ["b", "ids"]]
wm = {}
for i, names in enumerate(shards):
    f = f"pytorch_model-{i + 1:05d}-of-00002.bin"
    torch.save({n: sd[n] for n in names}, f"{d}/hf_sharded/{f}")
    wm.update({n: f for n in names})
json.dump({"metadata": {}, "weight_map": wm}, open(f"{d}/hf_sharded/pytorch_model.bin.index.json", "w"))
`;

Deno.test("openCheckpoint: every format through one entry point, chosen by the bytes", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await runPython(WRITE_FORMATS, [d]);
  using ref = await openCheckpoint(`${d}/ref.safetensors`);
  assert(ref instanceof SafetensorsCheckpoint);
  const cases: [string, new (...args: never[]) => unknown][] = [
    ["sd.pt", TorchCheckpoint],
    ["misnamed.safetensors", TorchCheckpoint],
    ["hf_bin", TorchCheckpoint],
    ["hf_sharded", ShardedTorchCheckpoint],
    ["hf_sharded/pytorch_model.bin.index.json", ShardedTorchCheckpoint],
  ];
  for (const [path, reader] of cases) {
    using ckpt = await openCheckpoint(`${d}/${path}`);
    assert(ckpt instanceof reader, `${path} opened as ${ckpt.constructor.name}`);
    equal(ckpt.format, "pytorch", path);
    deepStrictEqual([...ckpt.names()].sort(), [...ref.names()].sort(), path);
    for (const name of ref.names()) {
      equal(ckpt.dtype(name), ref.dtype(name), `${path}: ${name}`);
      deepStrictEqual(ckpt.shape(name), ref.shape(name), `${path}: ${name}`);
      deepStrictEqual(await ckpt.read(name), await ref.read(name), `${path}: ${name}`);
    }
  }
  using sharded = await openCheckpoint(`${d}/hf_sharded`);
  deepStrictEqual(
    sharded.files,
    [1, 2].map((i) => `${d}/hf_sharded/pytorch_model-0000${i}-of-00002.bin`),
  );
  await rejects(openCheckpoint(`${d}/legacy.pt`), /legacy\.pt: a legacy \(pre-1\.6\) torch\.save/);
});

Deno.test("deno task merge: PyTorch experts and base merge exactly like safetensors ones", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  await runPython(
    `
import sys, os, json, torch, st
d, layout = sys.argv[1], json.loads(sys.argv[2])
torch.manual_seed(1)
base = {n: torch.randn(*s) for n, s in layout}
experts = [{n: base[n] + 0.05 * torch.randn(*s) for n, s in layout} for _ in range(3)]
st.save(f"{d}/base.safetensors", base); torch.save(base, f"{d}/base.pt")
os.makedirs(f"{d}/st"); os.makedirs(f"{d}/pt/e1")
for i, e in enumerate(experts):
    st.save(f"{d}/st/e{i}.safetensors", e)
torch.save(experts[0], f"{d}/pt/e0.pt")
torch.save(experts[1], f"{d}/pt/e1/pytorch_model.bin")
st.save(f"{d}/pt/e2.safetensors", experts[2])
`,
    [d, JSON.stringify(tinyVitLayout())],
  );
  const merge = async (base: string, experts: string, out: string) => {
    const run = await runMergeTask([
      "--method",
      "ties",
      "--base",
      base,
      "--experts",
      experts,
      "--out",
      out,
    ]);
    equal(run.code, 0, run.stderr);
    assert(run.stdout.includes("merged 3 experts with ties"), run.stdout);
  };
  await merge(`${d}/base.safetensors`, `${d}/st`, `${d}/from_st.safetensors`);
  await merge(`${d}/base.pt`, `${d}/pt`, `${d}/from_pt.safetensors`);
  using a = await openCheckpoint(`${d}/from_st.safetensors`);
  using b = await openCheckpoint(`${d}/from_pt.safetensors`);
  deepStrictEqual([...b.names()].sort(), [...a.names()].sort());
  for (const name of a.names()) deepStrictEqual(await b.read(name), await a.read(name), name);
  deepStrictEqual(JSON.parse(b.metadata.merge_experts), {
    e0: `${d}/pt/e0.pt`,
    e1: `${d}/pt/e1/pytorch_model.bin`,
    e2: `${d}/pt/e2.safetensors`,
  });
});
