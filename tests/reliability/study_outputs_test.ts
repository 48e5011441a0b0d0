/**
 * The study commands refuse a run folder inside anything the run reads, named as the user named
 * it: every path of a `--models` description (base, experts, heads, test folders, auxiliary
 * folder), checked by `parseStudyArgs` before the study opens or writes anything.
 */
import { ok as assert, rejects } from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "../helpers/temp.ts";
import { parseStudyArgs } from "../../lib/pipeline/cli.ts";

Deno.test("a run folder inside a path of the --models description is refused, naming it", async () => {
  await using dir = await tempDir();
  const d = dir.path;
  const models = join(d, "models.json");
  await Deno.writeTextFile(
    models,
    JSON.stringify({
      base: "hf/base",
      experts: { a: "experts/a.pt", b: "experts/b" },
      heads: "heads.safetensors",
      tasks: { a: "tests/a", b: "tests/b" },
      aux: "pictures",
    }),
  );
  const cases: [string, string][] = [
    ["hf/base", `the base model ${d}/hf/base`],
    ["experts/b/runs", `expert "b" ${d}/experts/b`],
    ["tests/a", `the test folder of "a" ${d}/tests/a`],
    ["pictures/runs", `the auxiliary folder ${d}/pictures`],
  ];
  for (const [out, input] of cases) {
    await rejects(parseStudyArgs(["--models", models, "--out", join(d, out)]), (err: Error) => {
      assert(err.message.startsWith(`the run folder ${join(d, out)}/`), err.message);
      assert(err.message.includes(` is inside ${input}, which this run reads`), err.message);
      return true;
    });
  }
  await parseStudyArgs(["--models", models, "--out", join(d, "runs")]); // beside them: fine
});
