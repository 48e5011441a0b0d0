/**
 * `deno task test`: installs the Debian packages the tests use when they are missing, then
 * runs the format, lint, type and documentation checks, builds (or finds) the `mf4` model zoo
 * the study test and the notebooks share, and runs the whole test suite.
 *
 * Extra arguments go to `deno test` (for example a test file, or `--filter NAME`); with them,
 * the format/lint/doc checks are skipped so a single test runs quickly.
 *
 * @module
 */
import { ensureSystemPackages, TEST_PACKAGES } from "./system_packages.ts";

const deno = Deno.execPath();

async function step(title: string, args: string[]): Promise<boolean> {
  console.log(`\n== ${title}: deno ${args.join(" ")}`);
  const { code } = await new Deno.Command(deno, { args, stdout: "inherit", stderr: "inherit" })
    .output();
  if (code !== 0) console.log(`== ${title} failed (exit ${code})`);
  return code === 0;
}

async function main(extra: string[]): Promise<number> {
  await ensureSystemPackages(TEST_PACKAGES);
  let ok = true;
  if (extra.length === 0) {
    ok = await step("format", ["fmt", "--check"]) && ok;
    ok = await step("lint", ["lint"]) && ok;
    ok = await step("types", ["check", "mod.ts", "lib/", "tasks/", "tests/"]) && ok;
    ok = await step("docs", ["doc", "--lint", "mod.ts"]) && ok;
  }
  // The mf4 zoo, built once here (or found in .cache/): the study test and the notebooks run
  // in parallel and would otherwise each build it.
  ok = await step("zoo", ["run", "-A", "tasks/zoo.ts", "--suite", "mf4"]) && ok;
  ok = await step("tests", ["test", "-A", "--doc", "--parallel", ...extra]) && ok;
  return ok ? 0 : 1;
}

// Guarded so that `deno test --doc` can load this file without running the suite inside it.
if (import.meta.main) Deno.exit(await main(Deno.args));
