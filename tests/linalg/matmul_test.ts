import { ok as assert, throws } from "node:assert/strict";
import { SafetensorsReader, writeSafetensors } from "../../lib/io/safetensors.ts";
import { matmul } from "../../lib/linalg/matmul.ts";
import { setLinalgFallback } from "../../lib/linalg/openblas.ts";
import { runPython } from "../helpers/python.ts";
import { tempDir } from "../helpers/temp.ts";
import { gaussianMatrix, maxAbsDiff } from "./random.ts";

const CASES: [number, number, number][] = [[1, 1, 1], [37, 53, 29], [256, 300, 200]];
const FLAGS = [[false, false], [true, false], [false, true], [true, true]] as const;

Deno.test("matmul matches torch for every transpose combination, OpenBLAS and JavaScript", async () => {
  await using dir = await tempDir();
  const tensors = CASES.flatMap(([m, k, n], i) => [
    { name: `a${i}`, shape: [m, k], data: gaussianMatrix(m, k, 10 + i) },
    { name: `b${i}`, shape: [k, n], data: gaussianMatrix(k, n, 20 + i) },
  ]);
  await writeSafetensors(`${dir.path}/in.safetensors`, tensors);
  await runPython(
    `import sys, st
t, _ = st.load(sys.argv[1])
st.save(sys.argv[2], {f"c{i}": t[f"a{i}"].double() @ t[f"b{i}"].double() for i in range(${CASES.length})})`,
    [`${dir.path}/in.safetensors`, `${dir.path}/out.safetensors`],
  );
  using ref = await SafetensorsReader.open(`${dir.path}/out.safetensors`);
  for (const fallback of [false, true]) {
    setLinalgFallback(fallback);
    try {
      for (let i = 0; i < CASES.length; i++) {
        const [m, k, n] = CASES[i];
        const expected = await ref.read(`c${i}`);
        const a = tensors[2 * i].data, b = tensors[2 * i + 1].data;
        for (const [transA, transB] of FLAGS) {
          // Store each operand transposed when its flag asks for it.
          const sa = transA ? transpose(a, m, k) : a;
          const sb = transB ? transpose(b, k, n) : b;
          const c = matmul(sa, sb, m, k, n, { transA, transB });
          const diff = maxAbsDiff(c, expected);
          const label = `${
            fallback ? "js" : "openblas"
          } ${m}×${k}×${n} transA=${transA} transB=${transB}`;
          assert(diff < 2e-5 * Math.sqrt(k) * 4, `${label}: differs from torch by ${diff}`);
        }
      }
    } finally {
      setLinalgFallback(false);
    }
  }
});

Deno.test("matmul rejects wrong sizes, naming the operand and the expected shape", () => {
  throws(
    () => matmul(new Float32Array(6), new Float32Array(6), 2, 3, 3),
    /b \(k×n\) has 6 values, expected 3×3 = 9/,
  );
  throws(
    () => matmul(new Float32Array(5), new Float32Array(6), 2, 3, 2, { transA: true }),
    /a \(k×m, transA\) has 5 values, expected 3×2 = 6/,
  );
  throws(
    () => matmul(new Float32Array(0), new Float32Array(0), 0, 1, 1),
    /m must be a positive integer/,
  );
});

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}
