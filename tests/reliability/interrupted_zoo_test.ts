/**
 * Building the zoo killed (SIGKILL) at chosen and at random (seeded) moments, then rerun:
 * after every kill the zoo folder holds only complete files, a rerun keeps every artefact
 * already built (the same file, not rebuilt: its inode is unchanged) and the finished zoo is
 * byte-for-byte the zoo of an uninterrupted build.
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { zooDirectory } from "../../lib/zoo/config.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { tempDir } from "../helpers/temp.ts";
import { digests, filesUnder } from "./files.ts";
import { checkRunFolder, runScript } from "./run_folder.ts";
import { smallZoo } from "./zoo_child.ts";

const CHILD = new URL("./zoo_child.ts", import.meta.url).pathname;
const SEED = Number(Deno.env.get("RI_KILL_SEED") ?? 1);

/** The artefacts built so far (complete safetensors files) and their inodes. */
async function artefacts(dir: string): Promise<Record<string, number | null>> {
  const out: Record<string, number | null> = {};
  for (const f of await filesUnder(dir)) {
    if (f.endsWith(".safetensors")) out[f] = (await Deno.stat(join(dir, f))).ino;
  }
  return out;
}

/** Files and their digests, the properties' build times left out. */
async function contents(dir: string): Promise<Record<string, unknown>> {
  const files: Record<string, unknown> = Object.fromEntries(
    Object.entries(await digests(dir)).filter(([f]) => !f.endsWith(".tmp")),
  );
  const record = JSON.parse(await Deno.readTextFile(join(dir, "zoo-mf4.json")));
  files["zoo-mf4.json"] = record.properties;
  return files;
}

async function assertComplete(dir: string, after: string): Promise<void> {
  const { problems } = await checkRunFolder(dir);
  deepStrictEqual(problems, [], `partial files after ${after}`);
}

/** Runs the child and checks that no artefact it found was rebuilt. */
async function resume(root: string, dir: string, stop?: Parameters<typeof runScript>[2]) {
  const before = await artefacts(dir);
  const run = await runScript(CHILD, [root], stop);
  const after = await artefacts(dir);
  for (const [file, inode] of Object.entries(before)) {
    equal(after[file], inode, `${file} was built again\n${run.output}`);
  }
  await assertComplete(dir, stop ? "a kill" : "the last run");
  return run;
}

Deno.test({
  name: "a zoo build killed anywhere resumes per artefact and ends with the same files",
  sanitizeResources: false,
  async fn() {
    await using dir = await tempDir();
    const config = smallZoo();
    const refRoot = join(dir.path, "reference"), root = join(dir.path, "killed");
    const reference = await runScript(CHILD, [refRoot]);
    equal(reference.code, 0, reference.output);
    const zoo = await zooDirectory(config, root);
    // Killed once the first expert is written: θ0, the heads and that expert must be kept.
    let run = await resume(root, zoo, {
      when: async () => (await filesUnder(join(zoo, "experts"))).some((f) => !f.endsWith(".tmp")),
    });
    assert(run.signalled, run.output);
    const rng = new Rng(SEED, "kill zoo");
    for (let i = 0; i < 3 && !run.finished; i++) {
      run = await resume(root, zoo, { afterMs: reference.ms * rng.range(0.1, 0.9) });
    }
    run = await resume(root, zoo);
    equal(run.code, 0, run.output);
    assert(
      !/pretraining θ0|fitting heads|expert mnist /.test(run.output),
      "rebuilt:\n" + run.output,
    );
    deepStrictEqual(await contents(zoo), await contents(await zooDirectory(config, refRoot)));
  },
});
