import { deepStrictEqual } from "node:assert/strict";
import { tempDir } from "../helpers/temp.ts";
import { executeNotebook, nbconvertExecute, REPO_ROOT } from "./harness.ts";
import { kept, quickNotebook } from "./quick_outputs.ts";

/** Cells after the import cell: enough quick cells that the race showed in every run. */
const CELLS = 40;

// Without lib/display/outputs.ts, 8 to 13 of these 41 cells lost an output in each of three
// stock runs (measured on the 2-core machine under load); with it, none may.
Deno.test({
  name: "a notebook of quick displaying cells keeps every output under stock clients",
  sanitizeResources: false,
  async fn(t) {
    await using dir = await tempDir();
    // Inside the repository, so that the kernel (started in the notebook's folder) resolves
    // `@ri-merge/ri` through deno.json.
    const folder = `${REPO_ROOT}/.cache/notebook-tests/${crypto.randomUUID().slice(0, 8)}`;
    await Deno.mkdir(folder, { recursive: true });
    try {
      const { json, expected } = quickNotebook(CELLS);
      const notebook = `${folder}/quick_outputs.ipynb`;
      await Deno.writeTextFile(notebook, json);
      for (const run of [1, 2]) {
        await t.step(`jupyter nbconvert --execute, run ${run}`, async () => {
          const nb = await nbconvertExecute(notebook, { outDir: dir.path, timeoutS: 120 });
          deepStrictEqual(nb.cells.map(kept), expected);
        });
      }
      await t.step(
        "the project's runner (nbclient, no wait after cells): nothing late",
        async () => {
          const nb = await executeNotebook(notebook, { outDir: dir.path, timeoutS: 120 });
          deepStrictEqual(nb.stray, []);
          deepStrictEqual(nb.cells.map(kept), expected);
        },
      );
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
  },
});
