/**
 * The PyTorch ZIP reader on hostile and mutated files: pickles whose memo builds a cycle, a
 * structure that doubles at every level, or nesting thousands deep must fail with a
 * CheckpointError naming the file (a few hundred bytes used to hang or overflow the stack),
 * a real checkpoint that stores one dict under two keys still opens, and blind byte mutations
 * of a real `torch.save` file end in a CheckpointError or a clean read.
 */
import { deepStrictEqual, ok as assert, rejects } from "node:assert/strict";
import { CheckpointError } from "../../lib/io/errors.ts";
import { openTorchCheckpoint } from "../../lib/io/torch_zip.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { fuzzInWorker } from "./fuzz_runner.ts";

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

const SAVE = `
import sys, torch
torch.manual_seed(0)
sd = {"w": torch.randn(4, 3), "b": torch.randn(3).half(), "t": torch.randn(3, 5).t(),
      "ids": torch.arange(6).expand(2, -1), "n": {"x": torch.randn(2, dtype=torch.bfloat16)}}
torch.save(sd, sys.argv[1])
torch.save({"model": sd, "ema": sd}, sys.argv[2])
`;

Deno.test("torch reader: a dict stored under two keys opens; mutated files never crash", async () => {
  await using dir = await tempDir();
  const [file, twice] = [`${dir.path}/sd.pt`, `${dir.path}/twice.pt`];
  await runPython(SAVE, [file, twice]);
  using shared = await openTorchCheckpoint(twice);
  deepStrictEqual([...shared.names()].sort(), [
    ...["b", "ids", "n.x", "t", "w"].map((n) => `ema.${n}`),
    ...["b", "ids", "n.x", "t", "w"].map((n) => `model.${n}`),
  ]);
  deepStrictEqual(await shared.read("ema.t"), await shared.read("model.t"));

  const cases = 3000;
  const summary = await fuzzInWorker({
    seed: 7,
    from: 0,
    to: cases,
    dir: dir.path,
    torchFile: file,
  });
  console.log(JSON.stringify({ ...summary, failures: summary.failures.length }));
  deepStrictEqual(summary.failures, [], "cases that ended otherwise (case, mutation, problem)");
  assert(summary.outcomes.read > cases / 50, JSON.stringify(summary.outcomes));
  assert(summary.outcomes["open error"] > cases / 4, JSON.stringify(summary.outcomes));
  assert(summary.largestAllocationRatio <= 1, `allocated ${summary.largestAllocationRatio}×`);
});
