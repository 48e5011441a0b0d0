import { equal, match, ok as assert } from "node:assert/strict";
import { pypiReachable } from "../../tasks/jupyter.ts";
import { tempDir } from "../helpers/temp.ts";
import { REPO_ROOT } from "./harness.ts";

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: REPO_ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("deno task jupyter --check says what is there and what is missing, installing nothing", async () => {
  const { code, stdout, stderr } = await run(["tasks/jupyter.ts", "--check"]);
  match(
    stdout,
    /^JupyterLab: .+\nclassic Notebook: .+\nheadless runs \(nbclient, nbformat\): .+\n/,
  );
  assert(code === 0 || /missing: /.test(stdout), stdout);
  equal(stderr.includes("    at "), false, stderr);
});

Deno.test("an unreachable package index is detected, and said, within the timeout", async () => {
  const started = performance.now();
  const old = Deno.env.get("PIP_INDEX_URL");
  Deno.env.set("PIP_INDEX_URL", "http://127.0.0.1:9/simple");
  try {
    const { ok, detail } = await pypiReachable(3000);
    equal(ok, false);
    match(detail, /http:\/\/127\.0\.0\.1:9\/simple cannot be reached/);
  } finally {
    if (old === undefined) Deno.env.delete("PIP_INDEX_URL");
    else Deno.env.set("PIP_INDEX_URL", old);
  }
  assert(performance.now() - started < 10_000);
});

Deno.test("deno task notebooks without nbclient names what to install, without a stack trace", async () => {
  await using dir = await tempDir();
  // A Python path whose nbclient cannot be imported, as on a machine without the package.
  await Deno.writeTextFile(`${dir.path}/nbclient.py`, 'raise ImportError("no nbclient here")\n');
  const { code, stderr } = await run(["tasks/notebooks.ts", "display_demo"], {
    PYTHONPATH: dir.path,
  });
  equal(code, 1);
  match(stderr, /needs Python's nbclient and nbformat/);
  match(stderr, /apt-get install python3-nbclient python3-nbformat jupyter-client/);
  match(stderr, /\.\/deno task jupyter/);
  equal(stderr.includes("    at "), false, stderr);
});
