/**
 * The PyTorch ZIP reader on hostile files: pickles whose memo builds a cycle, a structure that
 * doubles at every level, or nesting thousands deep must fail with a CheckpointError naming the
 * file (a few hundred bytes used to hang or overflow the stack).
 */
import { ok as assert, rejects } from "node:assert/strict";
import { CheckpointError } from "../../lib/io/safetensors.ts";
import { openTorchCheckpoint } from "../../lib/io/torch_zip.ts";
import { runPython, tempDir } from "../helpers/python.ts";

/** Puts each NAME.pkl into NAME.pt as `archive/data.pkl` of a stored ZIP, as torch.save does. */
const ZIP_PICKLES = `
import sys, zipfile
for pkl in sys.argv[1:]:
    with zipfile.ZipFile(pkl[:-4] + ".pt", "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", open(pkl, "rb").read())
        z.writestr("archive/byteorder", "little")
`;
const PROTO = [0x80, 2], STOP = 0x2e, MARK = 0x28, LIST = 0x6c, EMPTY_LIST = 0x5d;
const POP = 0x30, APPEND = 0x61, BINPUT = 0x71, BINGET = 0x68;

/** L0 = []; Lᵢ = [Lᵢ₋₁, Lᵢ₋₁]: 2^levels entries from a few bytes per level. */
function doublingPickle(levels: number): number[] {
  const out = [...PROTO, EMPTY_LIST, BINPUT, 0, POP];
  for (let i = 1; i <= levels; i++) {
    out.push(MARK, BINGET, i - 1, BINGET, i - 1, LIST, BINPUT, i);
    if (i < levels) out.push(POP);
  }
  return [...out, STOP];
}

Deno.test("torch reader: cycles, doubling structures and deep nesting fail naming the file", async () => {
  await using dir = await tempDir();
  const pickles: Record<string, number[]> = {
    cycle: [...PROTO, EMPTY_LIST, BINPUT, 0, BINGET, 0, APPEND, STOP],
    doubling: doublingPickle(40),
    deep: [
      ...PROTO,
      ...Array(100_000).fill(EMPTY_LIST),
      ...Array(99_999).fill(APPEND),
      STOP,
    ],
  };
  for (const [name, bytes] of Object.entries(pickles)) {
    await Deno.writeFile(`${dir.path}/${name}.pkl`, Uint8Array.from(bytes));
  }
  await runPython(ZIP_PICKLES, Object.keys(pickles).map((name) => `${dir.path}/${name}.pkl`));
  const expected: Record<string, string> = {
    cycle: "holds a container inside itself",
    doubling: "shared containers expand past the pickle's size",
    deep: "containers nested more than 64 deep",
  };
  for (const [name, problem] of Object.entries(expected)) {
    const path = `${dir.path}/${name}.pt`;
    await rejects(openTorchCheckpoint(path), (err: Error) => {
      assert(err instanceof CheckpointError, `${name}: ${err.name}: ${err.message}`);
      assert(err.message.startsWith(path) && err.message.includes(problem), err.message);
      return true;
    });
  }
});
