import {
  deepStrictEqual,
  equal,
  notDeepStrictEqual,
  ok as assert,
  rejects,
} from "node:assert/strict";
import pngjs from "pngjs";
import jpeg from "jpeg-js";
import { auxSource } from "../../mod.ts";
import {
  folderSource,
  noiseSource,
  safetensorsImageSource,
  shapesSource,
} from "../../lib/data/auxiliary.ts";
import { writeSafetensors } from "../../lib/io/safetensors.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";

const GREY = { channels: 1, size: 28 };

Deno.test("noise: pixels 0.5 + 0.25·z clipped, image i fixed by seed and i", async () => {
  const src = noiseSource(GREY, 3);
  const a = await src.images(0, 200);
  const b = await src.images(150, 50);
  deepStrictEqual(a.pixels.subarray(150 * 784), b.pixels); // image i is the same from any start
  notDeepStrictEqual((await noiseSource(GREY, 4).images(0, 1)).pixels, a.pixels.subarray(0, 784));
  const v = a.pixels;
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  assert(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  assert(v.every((x) => x >= 0 && x <= 1));
  equal(a.labels.length, 0);
});

Deno.test("shapes: repeatable, varied, anti-aliased pictures in [0, 1], grey or colour", async () => {
  const src = shapesSource(GREY, 0);
  const a = await src.images(0, 64);
  deepStrictEqual((await src.images(0, 64)).pixels, a.pixels);
  for (let i = 0; i < 64; i++) {
    const img = a.pixels.subarray(i * 784, (i + 1) * 784);
    const values = new Set(img);
    assert(values.size > 3, `image ${i} is (nearly) blank`);
    assert(img.every((x) => x >= 0 && x <= 1));
  }
  // Anti-aliasing: partial coverage gives values between the background and the stroke.
  const partial = a.pixels.filter((x, i) => {
    const bg = a.pixels[Math.floor(i / 784) * 784]; // corner pixels are mostly background
    return x > bg + 0.02 && x < 0.4;
  }).length;
  assert(partial > 100, `only ${partial} partially covered pixels`);
  const colour = await shapesSource({ channels: 3, size: 32 }, 0).images(0, 2);
  equal(colour.pixels.length, 2 * 3 * 32 * 32);
});

function png(width: number, height: number, rgba: number[]): Uint8Array {
  const img = new pngjs.PNG({ width, height });
  for (let i = 0; i < width * height; i++) img.data.set(rgba, i * 4);
  return new Uint8Array(pngjs.PNG.sync.write(img));
}

Deno.test("a folder's PNG and JPEG files become centre-cropped, resized model inputs", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(`${dir.path}/a.png`, png(56, 40, [200, 100, 50, 255]));
  await Deno.writeFile(`${dir.path}/b.png`, png(10, 10, [255, 255, 255, 128])); // half alpha
  const jpg = jpeg.encode(
    { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4).fill(255) },
    95,
  );
  await Deno.writeFile(`${dir.path}/c.jpg`, jpg.data);
  await Deno.writeFile(`${dir.path}/notes.txt`, new TextEncoder().encode("not an image"));
  const src = await folderSource(dir.path, GREY);
  equal(src.count, 3);
  const set = await src.images(0, 4); // wraps around to a.png
  const lum = (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255;
  const img = (k: number) => set.pixels.subarray(k * 784, (k + 1) * 784);
  assert(img(0).every((v) => Math.abs(v - lum) < 1e-5));
  assert(img(1).every((v) => Math.abs(v - 128 / 255) < 1e-5));
  assert(img(2).every((v) => Math.abs(v - 1) < 0.02)); // JPEG is lossy
  deepStrictEqual(img(3), img(0));
  const rgb = await (await folderSource(dir.path, { channels: 3, size: 8 })).images(0, 1);
  assert(Math.abs(rgb.pixels[0] - 200 / 255) < 1e-5 && Math.abs(rgb.pixels[64] - 100 / 255) < 1e-5);
});

Deno.test("a safetensors image tensor (U8 or float, grey or RGB) is read by offset and converted", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/imgs.safetensors`;
  const rgb = new Float32Array(3 * 3 * 4 * 4);
  for (let n = 0; n < 3; n++) {
    for (let c = 0; c < 3; c++) rgb.fill(10 * n + 60 * c, (n * 3 + c) * 16, (n * 3 + c + 1) * 16);
  }
  await writeSafetensors(path, [
    { name: "other", shape: [2], data: new Float32Array(2) },
    { name: "images", shape: [3, 3, 4, 4], data: rgb, dtype: "F32" },
  ]);
  const src = await safetensorsImageSource(path, { channels: 1, size: 2 }, "images");
  equal(src.count, 3);
  const set = await src.images(1, 2);
  const grey = (n: number) => 0.299 * (10 * n) + 0.587 * (10 * n + 60) + 0.114 * (10 * n + 120);
  assert(set.pixels.subarray(0, 4).every((v) => Math.abs(v - grey(1)) < 1e-4));
  assert(set.pixels.subarray(4, 8).every((v) => Math.abs(v - grey(2)) < 1e-4));
  const bad = `${dir.path}/bad.safetensors`;
  await writeSafetensors(bad, [{ name: "x", shape: [2, 3, 4], data: new Float32Array(24) }]);
  await rejects(safetensorsImageSource(bad, GREY), /bad.safetensors: tensor "x": .*square/);
  await rejects(auxSource("imagenet", GREY, 0), /unknown auxiliary source "imagenet"/);
  equal((await auxSource(`safetensors:${path}#images`, GREY, 0)).count, 3);
});

Deno.test("U8 images written by PyTorch read as 0–255 / 255", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/u8.safetensors`;
  await runPython(
    `import sys, st, torch
st.save(sys.argv[1], {"images": torch.arange(2 * 6 * 6, dtype=torch.uint8).view(2, 6, 6)})`,
    [path],
  );
  const set = await (await safetensorsImageSource(path, { channels: 1, size: 6 })).images(0, 2);
  deepStrictEqual(set.pixels, Float32Array.from({ length: 72 }, (_, i) => i / 255));
});
