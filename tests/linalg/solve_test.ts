import { ok as assert, throws } from "node:assert/strict";
import { solveLinear } from "../../lib/linalg/solve.ts";
import { gaussianMatrix } from "./random.ts";
import { runPython } from "../helpers/python.ts";

Deno.test("solveLinear agrees with torch.linalg.solve in float64 (with row exchanges)", async () => {
  const n = 37, k = 5;
  const a = Float64Array.from(gaussianMatrix(n, n, 3));
  a[0] = 0; // the first pivot must come from another row
  const b = Float64Array.from(gaussianMatrix(n, k, 4));
  const x = solveLinear(a, n, b, k);
  const out = await runPython(
    `import json, sys, torch
a = torch.tensor(json.loads(sys.argv[1]), dtype=torch.float64).reshape(${n}, ${n})
b = torch.tensor(json.loads(sys.argv[2]), dtype=torch.float64).reshape(${n}, ${k})
print(json.dumps(torch.linalg.solve(a, b).reshape(-1).tolist()))`,
    [JSON.stringify(Array.from(a)), JSON.stringify(Array.from(b))],
  );
  const want: number[] = JSON.parse(out);
  let worst = 0, scale = 0;
  want.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(v - x[i]));
    scale = Math.max(scale, Math.abs(v));
  });
  assert(worst < 1e-10 * scale, `max |diff| ${worst} (max |x| ${scale})`);
});

Deno.test("solveLinear refuses singular and non-finite systems, naming the matrix", () => {
  throws(
    () => solveLinear(new Float64Array([1, 2, 2, 4]), 2, new Float64Array([1, 1]), 1, "G"),
    /G \(2 × 2\) is singular or not finite at column 1/,
  );
  throws(
    () => solveLinear(new Float64Array([NaN, 0, 0, 1]), 2, new Float64Array([1, 1]), 1),
    /singular or not finite at column 0/,
  );
  throws(() => solveLinear(new Float64Array(3), 2, new Float64Array(2), 1), /3 values, not 2²/);
});
