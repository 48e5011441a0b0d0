import { deepStrictEqual, ok as assert, rejects } from "node:assert/strict";
import { CheckpointError, openCheckpoint } from "../../mod.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { TorchCheckpoint } from "../../lib/io/torch_zip.ts";
import { StoredZip } from "../../lib/io/zip_store.ts";
import { tempDir } from "../helpers/temp.ts";
import { assertSameValues } from "./arrays.ts";
import { runScript } from "./fixtures.ts";

/** openCheckpoint, checking that it picked the PyTorch reader (by the bytes, not the name). */
async function openTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  const ckpt = await openCheckpoint(path);
  assert(ckpt instanceof TorchCheckpoint, `${path} opened as ${ckpt.constructor.name}`);
  return ckpt;
}

/** Writes the torch.save files once for all tests of this file. */
async function files(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await tempDir();
  await runScript("torch_files.py", [dir.path]);
  return dir;
}

Deno.test("torch.save state dicts read lazily, every dtype, views and offsets", async (t) => {
  await using dir = await files();
  const d = dir.path;

  await t.step("values equal PyTorch's", async () => {
    using ckpt = await openTorchCheckpoint(`${d}/sd.pt`);
    using ref = await SafetensorsReader.open(`${d}/sd_ref.safetensors`);
    deepStrictEqual(ckpt.names(), ref.names());
    for (const name of ref.names()) {
      deepStrictEqual(ckpt.shape(name), ref.info(name).shape, name);
      assertSameValues(await ckpt.read(name), await ref.read(name), name);
    }
    deepStrictEqual(
      ["f16", "bf16", "f64", "i64", "u8", "bool"].map((n) => ckpt.dtype(n)),
      ["F16", "BF16", "F64", "I64", "U8", "BOOL"],
    );
    deepStrictEqual(ckpt.info("f32_t").stride, [1, 3]);
    deepStrictEqual(ckpt.info("slice").offset, 5);
  });

  await t.step("nested dicts and lists flatten with dots; other values are ignored", async () => {
    using ckpt = await openTorchCheckpoint(`${d}/nested.pt`);
    deepStrictEqual(ckpt.names(), ["state_dict.w", "state_dict.layers.0", "state_dict.layers.1.b"]);
    deepStrictEqual(await ckpt.read("state_dict.layers.1.b"), new Float32Array([1, 1, 1]));
  });

  await t.step("the archive's members are listed with their sizes", async () => {
    using zip = await StoredZip.open(`${d}/small.pt`);
    assert(zip.names().some((n) => n.endsWith("/data.pkl")));
    const data = zip.names().find((n) => n.endsWith("/data/0"))!;
    deepStrictEqual(zip.member(data)?.size, 24);
  });

  await t.step("pickles that would run code are refused, and nothing runs", async () => {
    await rejects(openTorchCheckpoint(`${d}/evil_system.pt`), /posix\.system.*not among/);
    await rejects(
      openTorchCheckpoint(`${d}/evil_eval.pt`),
      /(__builtin__|builtins)\.eval.*not among/,
    );
    for (const marker of ["PWNED", "PWNED2"]) {
      await rejects(Deno.stat(`${d}/${marker}`), Deno.errors.NotFound);
    }
  });

  await t.step("pickled objects other than tensors are refused with their class", async () => {
    await rejects(openTorchCheckpoint(`${d}/module.pt`), (err: Error) => {
      assert(err instanceof CheckpointError);
      assert(/torch\.nn\.modules\.linear\.Linear/.test(err.message), err.message);
      assert(err.message.startsWith(`${d}/module.pt`), err.message);
      return true;
    });
    await rejects(openTorchCheckpoint(`${d}/numpy.pt`), /numpy\.core\.multiarray\.scalar/);
  });

  await t.step("broken and unsupported archives fail with the reason", async () => {
    await rejects(openTorchCheckpoint(`${d}/legacy.pt`), /legacy \(pre-1\.6\) torch\.save/);
    await rejects(openTorchCheckpoint(`${d}/deflated.pt`), /data\.pkl" is compressed/);
    await rejects(openTorchCheckpoint(`${d}/oob.pt`), /runs past its storage \(6 elements\)/);
    await rejects(openTorchCheckpoint(`${d}/truncated.pt`), /no end-of-directory record/);
    await rejects(openTorchCheckpoint(`${d}/missing.pt`), /cannot open/);
  });
});
