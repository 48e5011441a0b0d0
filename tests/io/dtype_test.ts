import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { decodeToFloat32, encodeFromFloat32, halfToFloat } from "../../lib/io/dtype.ts";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";

const ALL_PATTERNS = new Uint8Array(
  new Uint16Array(Array.from({ length: 65536 }, (_, i) => i)).buffer,
);

Deno.test("dtype: every F16 pattern decodes as halfToFloat says and encodes back to itself", () => {
  const values = decodeToFloat32(ALL_PATTERNS, "F16");
  const back = new Uint16Array(encodeFromFloat32(values, "F16").buffer);
  for (let h = 0; h < 65536; h++) {
    const nan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (nan) {
      assert(Number.isNaN(values[h]) && (back[h] & 0x7c00) === 0x7c00 && (back[h] & 0x3ff) !== 0);
      continue;
    }
    equal(values[h], Math.fround(halfToFloat(h)), `pattern ${h}`);
    equal(back[h], h, `pattern ${h}`);
  }
});

Deno.test("dtype: every BF16 pattern round-trips through float32", () => {
  const values = decodeToFloat32(ALL_PATTERNS, "BF16");
  const back = new Uint16Array(encodeFromFloat32(values, "BF16").buffer);
  for (let h = 0; h < 65536; h++) {
    if (Number.isNaN(values[h])) assert((back[h] & 0x7f80) === 0x7f80 && (back[h] & 0x7f) !== 0);
    else equal(back[h], h, `pattern ${h}`);
  }
});

Deno.test("dtype: unaligned buffers decode like aligned ones", () => {
  const values = Float32Array.from([1.5, -2, 1e-5, 65504, 3e-8]);
  for (const dtype of ["F16", "BF16", "F64", "F32"] as const) {
    const bytes = encodeFromFloat32(values, dtype);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    deepStrictEqual(
      decodeToFloat32(shifted.subarray(1), dtype),
      decodeToFloat32(bytes, dtype),
      dtype,
    );
  }
});

Deno.test("dtype: F16 and BF16 rounding is bit-identical to PyTorch on 200k values", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/round.safetensors`;
  // Random magnitudes from subnormal to overflow, plus exact ties (odd and even) for both dtypes.
  await runPython(
    `import sys, st, torch
torch.manual_seed(7)
n = 200000
mag = torch.pow(10.0, torch.empty(n).uniform_(-9, 5.5)) * torch.sign(torch.randn(n))
base = torch.randn(1000).half().float()
ulp16 = torch.tensor([2.0 ** -10]) * torch.pow(2.0, torch.floor(torch.log2(base.abs())))
ties16 = base + 0.5 * ulp16
b16 = torch.randn(1000).bfloat16().float()
ties_b = b16 + 0.5 * torch.pow(2.0, torch.floor(torch.log2(b16.abs())) - 7)
x = torch.cat([mag, ties16, ties_b]).float()
st.save(sys.argv[1], {"x": x, "f16": x.half(), "bf16": x.bfloat16()})`,
    [path],
  );
  using file = await SafetensorsReader.open(path);
  const x = await file.read("x", { allowNonFinite: true });
  equal(x.length, 202000);
  for (const [name, dtype] of [["f16", "F16"], ["bf16", "BF16"]] as const) {
    const ours = encodeFromFloat32(x, dtype);
    const theirs = await file.readBytes(name);
    let mismatches = 0, first = -1;
    for (let i = 0; i < ours.length; i += 2) {
      if (ours[i] !== theirs[i] || ours[i + 1] !== theirs[i + 1]) {
        mismatches++;
        if (first < 0) first = i / 2;
      }
    }
    equal(mismatches, 0, `${dtype}: ${mismatches} values differ, first x[${first}] = ${x[first]}`);
  }
});
