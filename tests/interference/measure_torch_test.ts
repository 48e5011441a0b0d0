import { ok as assert } from "node:assert/strict";
import { DISTANCES } from "../../lib/interference/distance.ts";
import { meanDistance } from "../../lib/interference/measure.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";

/**
 * PyTorch computes each distance of ξ, in float64, from the same logits (the KL with
 * torch.nn.functional.kl_div, the pseudo-label CE with cross_entropy): the host computation
 * must agree, ties and a saturated target (probabilities that underflow to 0) included.
 */
const REFERENCE = `
import sys, json, torch
import torch.nn.functional as F
d = json.load(open(sys.argv[1]))
t = torch.tensor(d["target"], dtype=torch.float64).reshape(-1, d["classes"])
c = torch.tensor(d["current"], dtype=torch.float64).reshape(-1, d["classes"])
p, log_q = F.softmax(t, 1), F.log_softmax(c, 1)
print(json.dumps({
  "kl": F.kl_div(log_q, p, reduction="none").sum(1).mean().item(),
  "soft_ce": (-(p * log_q).sum(1)).mean().item(),
  "ce": F.cross_entropy(c, p.argmax(1)).item(),
  "mse": ((F.softmax(c, 1) - p) ** 2).mean(1).mean().item(),
}))
`;

Deno.test("ξ's distances match PyTorch's (KL, soft and pseudo-label CE, MSE)", async () => {
  const rng = new Rng(4, "measure");
  const classes = 7, rows = 40;
  const target = Float32Array.from(rng.normals(rows * classes), (v) => 3 * v);
  const current = Float32Array.from(rng.normals(rows * classes), (v) => 3 * v);
  target.fill(0, 0, classes); // a uniform target row: its pseudo-label is the first class
  target[classes] = 200; // a saturated row: the other classes' probabilities underflow
  await using dir = await tempDir();
  const input = `${dir.path}/logits.json`;
  await Deno.writeTextFile(
    input,
    JSON.stringify({ classes, target: [...target], current: [...current] }),
  );
  const ref = JSON.parse(await runPython(REFERENCE, [input])) as Record<string, number>;
  for (const name of DISTANCES) {
    const ours = meanDistance(name, target, current, classes);
    const gap = Math.abs(ours - ref[name]) / Math.abs(ref[name]);
    assert(gap < 1e-12, `${name}: ${ours} vs PyTorch ${ref[name]}`);
  }
});
