import { deepStrictEqual, ok as assert, throws } from "node:assert/strict";
import { resizeSquare } from "../../lib/data/images.ts";
import { Rng } from "../../lib/tensor/random.ts";
import {
  applyTransforms,
  domainAugmentation,
  type TransformName,
  TRANSFORMS,
} from "../../lib/data/transforms.ts";
import { suiteTasks, taskByName, taskDomains, TASKS } from "../../lib/data/tasks.ts";
import { runPython } from "../helpers/python.ts";

const SIDE = 28;
const image = new Rng(4).normals(SIDE * SIDE).map((v) => Math.min(1, Math.abs(v) / 2));

Deno.test("rotations, flips, transpose, inversion, edges and zoom-out match PyTorch", async () => {
  const names: TransformName[] = [
    "rot90",
    "rot180",
    "rot270",
    "hflip",
    "vflip",
    "transpose",
    "invert",
    "edges",
    "zoomout",
  ];
  // Written from each transform's definition with torch ops (rot90 is clockwise: k = -1).
  const out = await runPython(
    `import sys, json, torch
import torch.nn.functional as F
x = torch.tensor(json.loads(sys.argv[1]), dtype=torch.float64).view(28, 28)
sx = torch.tensor([[-1., 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64)
gx = F.conv2d(x[None, None], sx[None, None], padding=1)[0, 0]
gy = F.conv2d(x[None, None], sx.T[None, None], padding=1)[0, 0]
mag = torch.sqrt(gx ** 2 + gy ** 2)
zoom = torch.zeros(28, 28, dtype=torch.float64)
zoom[7:21, 7:21] = F.avg_pool2d(x[None, None], 2)[0, 0]
res = {"rot90": torch.rot90(x, -1), "rot180": torch.rot90(x, 2), "rot270": torch.rot90(x, 1),
       "hflip": torch.flip(x, [1]), "vflip": torch.flip(x, [0]), "transpose": x.T,
       "invert": 1 - x, "edges": mag / mag.max(), "zoomout": zoom}
print(json.dumps({k: v.flatten().tolist() for k, v in res.items()}))`,
    [JSON.stringify([...image])],
  );
  const want = JSON.parse(out) as Record<string, number[]>;
  for (const name of names) {
    const got = applyTransforms(image, SIDE, [name]);
    const worst = Math.max(...got.map((v, i) => Math.abs(v - want[name][i])));
    assert(worst < 1e-6, `${name}: differs from PyTorch by ${worst}`);
  }
});

Deno.test("patch shuffle moves whole 7×7 patches, the same way for every image", () => {
  const a = applyTransforms(image, SIDE, ["shuffle"]);
  const patches = (x: Float32Array) =>
    Array.from({ length: 16 }, (_, k) => {
      const [r0, c0] = [Math.floor(k / 4) * 7, (k % 4) * 7];
      return Array.from(
        { length: 49 },
        (_, j) => x[(r0 + Math.floor(j / 7)) * SIDE + c0 + (j % 7)],
      );
    });
  const before = patches(image).map((p) => p.join());
  const after = patches(a).map((p) => p.join());
  deepStrictEqual([...after].sort(), [...before].sort());
  assert(after.filter((p, k) => p === before[k]).length < 16);
  const ramp = Float32Array.from({ length: SIDE * SIDE }, (_, i) => i / (SIDE * SIDE));
  const perm = (x: Float32Array) => {
    const from = patches(x).map((p) => p.join());
    return patches(applyTransforms(x, SIDE, ["shuffle"])).map((p) => from.indexOf(p.join()));
  };
  deepStrictEqual(perm(image), perm(ramp));
});

Deno.test("transforms compose left to right and reject unknown names", () => {
  deepStrictEqual(
    applyTransforms(image, SIDE, ["rot90", "rot90", "rot90", "rot90"]),
    image,
  );
  deepStrictEqual(applyTransforms(image, SIDE, ["rot90", "rot270"]), image);
  throws(() => applyTransforms(image, SIDE, ["spin" as TransformName]), /unknown transform "spin"/);
  throws(() => applyTransforms(image, 27, ["rot90"]), /expected 27×27/);
  assert(Object.keys(TRANSFORMS).length >= 10);
});

Deno.test("resizing matches PyTorch's area (shrink) and bilinear (enlarge) interpolation", async () => {
  const plane = new Rng(9).normals(56 * 56);
  const small = new Rng(10).normals(14 * 14);
  const out = await runPython(
    `import sys, json, torch
import torch.nn.functional as F
a = torch.tensor(json.loads(sys.argv[1]), dtype=torch.float64).view(1, 1, 56, 56)
b = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float64).view(1, 1, 14, 14)
print(json.dumps({"area": F.interpolate(a, size=28, mode="area").flatten().tolist(),
  "bilinear": F.interpolate(b, size=31, mode="bilinear", align_corners=False).flatten().tolist()}))`,
    [JSON.stringify([...plane]), JSON.stringify([...small])],
  );
  const want = JSON.parse(out);
  const area = resizeSquare(plane, 56, 28);
  const bilinear = resizeSquare(small, 14, 31);
  assert(Math.max(...area.map((v, i) => Math.abs(v - want.area[i]))) < 1e-5);
  assert(Math.max(...bilinear.map((v, i) => Math.abs(v - want.bilinear[i]))) < 1e-5);
  // Non-integer shrink: every output is a convex average, so a constant plane stays constant.
  const flat = resizeSquare(new Float32Array(30 * 30).fill(0.3), 30, 28);
  assert(flat.every((v) => Math.abs(v - 0.3) < 1e-6));
});

Deno.test("domain augmentation shows each image in one domain, drawn evenly, fixed by seed, epoch and index", () => {
  const domains: TransformName[][] = [[], ["rot90"], ["invert"], ["edges", "invert"]];
  const augment = domainAugmentation(domains, SIDE, 3);
  const candidates = domains.map((d) => applyTransforms(image, SIDE, d));
  const drawn = (seed: number, epoch: number) =>
    Array.from({ length: 400 }, (_, i) => {
      const shown = domainAugmentation(domains, SIDE, seed)(image, i, epoch);
      const k = candidates.findIndex((c) => c.every((v, j) => v === shown[j]));
      assert(k >= 0, `image ${i}: not one of the domains' transforms`);
      return k;
    });
  const a = drawn(3, 0);
  deepStrictEqual(drawn(3, 0), a);
  // 400 draws from 4 domains: each within 100 ± 40 (about 4.6 standard deviations).
  for (let k = 0; k < domains.length; k++) {
    const n = a.filter((v) => v === k).length;
    assert(n > 60 && n < 140, `domain ${k} drawn ${n} times of 400`);
  }
  const agree = (b: number[]) => b.filter((v, i) => v === a[i]).length;
  assert(agree(drawn(3, 1)) < 160, "another epoch draws other domains");
  assert(agree(drawn(4, 0)) < 160, "another seed draws other domains");
  deepStrictEqual(augment(image, 5, 2), augment(image, 5, 2));
  throws(() => domainAugmentation([], SIDE, 0), /no domains/);
  throws(
    () => domainAugmentation([["spin" as TransformName]], SIDE, 0),
    /unknown transform "spin"/,
  );
});

Deno.test("a suite's pretraining domains are its tasks' transform chains, once each, upright first", () => {
  deepStrictEqual(taskDomains(suiteTasks("mf8")), [[], ["rot90"], ["invert"], ["vflip"]]);
  const all = taskDomains(TASKS);
  deepStrictEqual(all[0], []);
  const keys = all.map((d) => d.join("+"));
  deepStrictEqual(new Set(keys).size, keys.length);
  for (const t of TASKS) assert(keys.includes(t.transforms.join("+")), t.name);
  deepStrictEqual(taskDomains([taskByName("mnist_rot90")]), [[], ["rot90"]]);
});
