import { deepStrictEqual, ok as assert } from "node:assert/strict";
import { openCheckpoint } from "../../lib/io/open.ts";
import { writeCheckpoint } from "../../lib/io/write_checkpoint.ts";
import { openTaskVectors } from "../../lib/taskvec/set.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";

/**
 * PyTorch writes a base and three experts (one stored in BF16, one sharded by hand), computes
 * τᵢ = θᵢ − θ0 in float32, the norms and cosine similarities in float64 from those τ, and
 * θ0 + Σ λᵢτᵢ in float32; the same quantities computed here from the files must agree.
 */
const REFERENCE = `
import sys, os, json, st, torch
d = sys.argv[1]
os.makedirs(os.path.join(d, "experts", "svhn"))
torch.manual_seed(3)
shapes = {"embed.weight": (40, 16), "blocks.0.attn.qkv": (16, 48), "blocks.0.ln.bias": (16,),
          "scale": (), "head.weight": (10, 16)}
base = {k: torch.randn(s) for k, s in shapes.items()}
st.save(os.path.join(d, "base.safetensors"), base)
experts = {}
shared = {k: 0.05 * torch.randn(s) for k, s in shapes.items()}
for i, task in enumerate(["mnist", "fashion", "svhn"]):
    drift = 0.05 * (i + 1)
    experts[task] = {k: base[k] + shared[k] + drift * torch.randn(s) for k, s in shapes.items()}
experts["fashion"] = {k: v.bfloat16() for k, v in experts["fashion"].items()}
st.save(os.path.join(d, "experts", "mnist.safetensors"), experts["mnist"])
st.save(os.path.join(d, "experts", "fashion.safetensors"), experts["fashion"])
svhn = os.path.join(d, "experts", "svhn")
names = list(shapes)
wm = {}
for j, part in enumerate([names[:2], names[2:]]):
    shard = f"model-0000{j + 1}-of-00002.safetensors"
    st.save(os.path.join(svhn, shard), {k: experts["svhn"][k] for k in part})
    wm.update({k: shard for k in part})
json.dump({"metadata": {}, "weight_map": wm}, open(os.path.join(svhn, "model.safetensors.index.json"), "w"))

tasks = ["fashion", "mnist", "svhn"]  # the order a directory listing gives
taus = [{k: experts[t][k].float() - base[k] for k in names} for t in tasks]
flat = [torch.cat([tau[k].double().flatten() for k in names]) for tau in taus]
per_tensor = [[tau[k].double().norm().item() for k in names] for tau in taus]
glob = [f.norm().item() for f in flat]
cos = [[(a @ b / (a.norm() * b.norm())).item() for b in flat] for a in flat]
lambdas = [0.3, 0.5, -0.2]
merged = {}
for k in names:
    m = base[k].clone()
    for lam, tau in zip(lambdas, taus):
        m = m + lam * tau[k]
    merged[k] = m
st.save(os.path.join(d, "merged_torch.safetensors"), merged)
print(json.dumps({"tasks": tasks, "names": names, "per_tensor": per_tensor, "global": glob,
                  "cos": cos, "lambdas": lambdas}))
`;

function assertClose(got: number, want: number, rel: number, what: string): void {
  assert(Math.abs(got - want) <= rel * Math.max(1, Math.abs(want)), `${what}: ${got} vs ${want}`);
}

Deno.test("task vectors: norms, cosine matrix and θ0 + Σλτ match PyTorch", async () => {
  await using dir = await tempDir();
  const ref = JSON.parse(await runPython(REFERENCE, [dir.path]));
  using set = await openTaskVectors(`${dir.path}/base.safetensors`, `${dir.path}/experts`);
  deepStrictEqual(set.tasks, ref.tasks);
  deepStrictEqual(set.names(), ref.names);
  const { norms, cosine } = await set.stats();
  deepStrictEqual(norms.tensors, ref.names);
  for (let t = 0; t < ref.tasks.length; t++) {
    assertClose(norms.global[t], ref.global[t], 1e-12, `global norm ${ref.tasks[t]}`);
    for (let k = 0; k < ref.names.length; k++) {
      assertClose(norms.perTensor[t][k], ref.per_tensor[t][k], 1e-12, `${ref.names[k]}`);
    }
    for (let u = 0; u < ref.tasks.length; u++) {
      assertClose(cosine.matrix[t][u], ref.cos[t][u], 1e-12, `cos ${t},${u}`);
    }
  }
  // The experts share a component, so the similarities are clearly positive and below one.
  assert(cosine.matrix[0][1] > 0.05 && cosine.matrix[0][1] < 0.9, String(cosine.matrix[0][1]));

  const out = await writeCheckpoint(`${dir.path}/merged.safetensors`, set.apply(ref.lambdas));
  using ours = await openCheckpoint(out.path);
  using theirs = await openCheckpoint(`${dir.path}/merged_torch.safetensors`);
  deepStrictEqual(ours.names(), theirs.names());
  for (const name of theirs.names()) {
    const a = await ours.read(name), b = await theirs.read(name);
    deepStrictEqual(ours.shape(name), theirs.shape(name));
    for (let i = 0; i < a.length; i++) {
      // float32 results of the same operations; allow an ulp or two of reassociation.
      assert(Math.abs(a[i] - b[i]) <= 4e-7 * Math.max(1, Math.abs(b[i])), `${name}[${i}]`);
    }
  }
});
