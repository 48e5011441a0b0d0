import { deepStrictEqual, ok as assert } from "node:assert/strict";
import { tempDir } from "../helpers/temp.ts";
import { nbconvertExecute, REPO_ROOT } from "./harness.ts";

/** The README's TypeScript blocks, with their info strings. */
function readmeBlocks(text: string): { info: string; code: string }[] {
  return [...text.matchAll(/^```(ts[^\n]*)\n([^]*?)^```$/gm)].map((m) => ({
    info: m[1].trim(),
    code: m[2].trimEnd(),
  }));
}

// What a notebook user copies from the README must run as written in a notebook under
// notebooks/ (imports of "@ri-merge/ri", the checkout's cache and runs). Blocks marked
// `ts ignore` need the reader's own checkpoint files and say so.
Deno.test({
  name: "every README block a notebook user copies runs as written from notebooks/",
  sanitizeResources: false,
  async fn() {
    const blocks = readmeBlocks(await Deno.readTextFile(`${REPO_ROOT}/README.md`));
    const runnable = blocks.filter((b) => b.info === "ts");
    assert(runnable.length >= 2, `only ${runnable.length} runnable blocks in README.md`);
    for (const b of blocks.filter((b) => b.info !== "ts")) {
      deepStrictEqual(b.info, "ts ignore", `unexpected block kind ${b.info}`);
      assert(
        b.code.startsWith("// With your own files"),
        `an ignored block must say why:\n${b.code}`,
      );
    }
    for (const b of blocks) {
      assert(!b.code.includes('"./mod.ts"'), `README imports ./mod.ts, which fails in notebooks/`);
    }
    await using dir = await tempDir();
    const notebook = `${REPO_ROOT}/notebooks/.readme-${crypto.randomUUID().slice(0, 8)}.ipynb`;
    const nb = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
      cells: runnable.map((b, i) => ({
        cell_type: "code",
        id: `readme-${i}`,
        metadata: {},
        execution_count: null,
        outputs: [],
        source: b.code,
      })),
    };
    await Deno.writeTextFile(notebook, JSON.stringify(nb));
    try {
      // Throws, naming the block's cell and its error, if any block fails.
      await nbconvertExecute(notebook, {
        outDir: dir.path,
        env: { RI_RUNS: `${dir.path}/runs` },
        timeoutS: 900,
      });
    } finally {
      await Deno.remove(notebook);
    }
  },
});
