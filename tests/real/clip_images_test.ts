import { deepStrictEqual, ok as assert, rejects } from "node:assert/strict";
import { clipImageFolder, clipLabelledFolder } from "../../mod.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { CLIP_STD, clipPreprocess } from "../../lib/data/clip_preprocess.ts";
import { decodePicture } from "../../lib/data/image_folder.ts";
import { tempDir } from "../helpers/temp.ts";
import { runScript } from "./fixtures.ts";

/** Largest |a − b| in 8-bit levels of the un-normalised value (per channel's std). */
function maxLevels(a: Float32Array, b: Float32Array, plane: number): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]) * CLIP_STD[Math.floor(i / plane)] * 255);
  }
  return worst;
}

/** Mean |a − b| in 8-bit levels. */
function meanLevels(a: Float32Array, b: Float32Array, plane: number): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    sum += Math.abs(a[i] - b[i]) * CLIP_STD[Math.floor(i / plane)] * 255;
  }
  return sum / a.length;
}

Deno.test("CLIP preprocessing matches PIL + torchvision-style transforms", async (t) => {
  await using dir = await tempDir();
  await runScript("images.py", [dir.path, "224"]);
  using ref = await SafetensorsReader.open(`${dir.path}/ref.safetensors`);
  const plane = 224 * 224;
  const ours = async (name: string) => {
    const path = `${dir.path}/imgs/${name}`;
    return clipPreprocess(decodePicture(await Deno.readFile(path), path));
  };

  await t.step("PNG (RGB, grey, up- and downscaling, odd crops): exact", async () => {
    const pngs = ref.names().filter((n) => n.startsWith("clip.") && n.endsWith(".png"));
    deepStrictEqual(pngs.length, 6);
    for (const name of pngs) {
      const got = await ours(name.slice(5)), want = await ref.read(name);
      deepStrictEqual(got.length, 3 * plane);
      const levels = maxLevels(got, want, plane);
      assert(levels < 1e-4, `${name}: differs from PIL by ${levels} levels`);
    }
  });

  await t.step("JPEG: within the decoders' difference", async () => {
    for (const name of ["rgb_320x240.jpg", "rgb444_240x320.jpg", "grey_200x300.jpg"]) {
      const path = `${dir.path}/imgs/${name}`;
      const decoded = decodePicture(await Deno.readFile(path), path);
      const pil = await ref.read(`decoded.${name}`);
      let decoderWorst = 0, decoderSum = 0;
      for (let i = 0, j = 0; i < pil.length; i += 3, j += 4) {
        for (let c = 0; c < 3; c++) {
          const d = Math.abs(decoded.rgba[j + c] - pil[i + c]);
          decoderWorst = Math.max(decoderWorst, d);
          decoderSum += d;
        }
      }
      const got = await ours(name), want = await ref.read(`clip.${name}`);
      const levels = maxLevels(got, want, plane);
      const mean = meanLevels(got, want, plane);
      console.log(
        `${name}: decoders differ by ≤ ${decoderWorst} levels (mean ${
          (decoderSum / pil.length).toFixed(3)
        }); after preprocessing ≤ ${levels.toFixed(2)} (mean ${mean.toFixed(3)})`,
      );
      // What remains between jpeg-js (with libjpeg's colour steps) and libjpeg-turbo is the
      // inverse DCT's rounding; resampling can widen a difference by its kernel's overshoot.
      assert(decoderWorst <= 4, `${name}: the decoders differ by ${decoderWorst} levels`);
      assert(levels <= decoderWorst + 1.5, `${name}: ${levels} levels (decoders ${decoderWorst})`);
      assert(mean < 0.5, `${name}: mean difference ${mean} levels`);
    }
  });
});

Deno.test("image folders: unlabelled and labelled, streamed, with named errors", async (t) => {
  await using dir = await tempDir();
  await runScript("images.py", [dir.path, "32"]);
  const imgs = `${dir.path}/imgs`;

  await t.step("an unlabelled folder reads every picture, recursively, in order", async () => {
    await Deno.mkdir(`${imgs}/nested`);
    await Deno.copyFile(`${imgs}/rgb_100x80.png`, `${imgs}/nested/copy.png`);
    await Deno.writeTextFile(`${imgs}/notes.txt`, "not a picture");
    const folder = await clipImageFolder(imgs, { size: 32 });
    deepStrictEqual(folder.count, 10);
    const copy = folder.files.indexOf(`${imgs}/nested/copy.png`);
    deepStrictEqual(folder.files.slice(copy - 1, copy + 2).map((f) => f.slice(imgs.length)), [
      "/grey_224x400.png",
      "/nested/copy.png",
      "/rgb444_240x320.jpg",
    ]);
    const seen: number[] = [];
    for await (const b of folder.batches(4, { seed: 1 })) {
      assert(b.count <= 4 && b.pixels.length === b.count * 3 * 32 * 32);
      seen.push(...b.indices);
    }
    deepStrictEqual(seen.sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const [a, b] = [
      await folder.read(copy),
      await folder.read(folder.files.indexOf(`${imgs}/rgb_100x80.png`)),
    ];
    deepStrictEqual(a, b);
  });

  await t.step("a labelled folder takes its labels from the head's class names", async () => {
    const task = `${dir.path}/task`;
    for (
      const [cls, file] of [["dog", "rgb_300x200.png"], ["cat", "grey_224x400.png"], [
        "cat",
        "rgb_320x240.jpg",
      ]]
    ) {
      await Deno.mkdir(`${task}/${cls}`, { recursive: true });
      await Deno.copyFile(`${imgs}/${file}`, `${task}/${cls}/${file}`);
    }
    const byName = await clipLabelledFolder(task, { size: 32, classes: ["bird", "cat", "dog"] });
    deepStrictEqual([...byName.labels], [1, 1, 2]);
    const set = await byName.images(0, 3);
    deepStrictEqual([...set.labels], [1, 1, 2]);
    deepStrictEqual(set.classes, ["bird", "cat", "dog"]);
    const sorted = await clipLabelledFolder(task, { size: 32 });
    deepStrictEqual(sorted.classes, ["cat", "dog"]);
    await rejects(
      clipLabelledFolder(task, { classes: ["cat", "horse"] }),
      /sub-folder\(s\) "dog" match no class of the head \(2 classes: "cat", "horse"\)/,
    );
    const numbered = `${dir.path}/numbered`;
    await Deno.mkdir(`${numbered}/2`, { recursive: true });
    await Deno.copyFile(`${imgs}/rgb_100x80.png`, `${numbered}/2/x.png`);
    deepStrictEqual(
      [...(await clipLabelledFolder(numbered, { classes: ["a", "b", "c"] })).labels],
      [2],
    );
  });

  await t.step("empty folders and unreadable pictures are named", async () => {
    const empty = `${dir.path}/empty`;
    await Deno.mkdir(empty);
    await rejects(clipImageFolder(empty), /empty: no \.png, \.jpg or \.jpeg files/);
    await rejects(clipLabelledFolder(empty), /empty: no class sub-folders/);
    await rejects(clipImageFolder(`${dir.path}/absent`), /absent: cannot list the folder/);
    const bad = `${dir.path}/bad`;
    await Deno.mkdir(bad);
    await Deno.writeFile(`${bad}/broken.jpg`, new Uint8Array([0xff, 0xd8, 1, 2, 3]));
    await Deno.writeFile(`${bad}/text.png`, new TextEncoder().encode("hello"));
    const folder = await clipImageFolder(bad, { size: 32 });
    await rejects(folder.read(0), /bad\/broken\.jpg: cannot decode/);
    await rejects(folder.read(1), /bad\/text\.png: neither a PNG nor a JPEG/);
  });
});
