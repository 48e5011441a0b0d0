import { deepStrictEqual, ok as assert } from "node:assert/strict";
import { SafetensorsReader } from "../../lib/io/safetensors.ts";
import type { StudyData } from "../../lib/pipeline/results.ts";
import { tempDir } from "../helpers/temp.ts";
import { assertSameValues } from "./arrays.ts";
import { writeStudyFiles } from "./fixtures.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs a command from the repository root; fails with its output when it fails. */
async function run(command: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(command, {
    args,
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert(out.success, `${command} ${args.join(" ")} failed:\n${text}`);
  return text;
}

const merge = (config: string) =>
  run(Deno.execPath(), ["run", "-A", "tasks/merge.ts", "--config", config]);

/** Every tensor of two safetensors files is bit for bit the same. */
async function sameFile(a: string, b: string): Promise<void> {
  using x = await SafetensorsReader.open(a);
  using y = await SafetensorsReader.open(b);
  deepStrictEqual(x.names(), y.names(), `${a} vs ${b}`);
  for (const name of x.names()) assertSameValues(await x.read(name), await y.read(name), name);
}

Deno.test({
  name: "scale-out: three `deno task ri` processes in parallel, then the merge, equal one process",
  sanitizeResources: false,
  async fn() {
    await using dir = await tempDir();
    const d = dir.path;
    await writeStudyFiles(d, 16);
    const config = (out: string) => {
      const path = `${d}/${out}.json`;
      const settings = {
        models: "models-oc.json", // everything in open_clip layout
        methods: ["task_arithmetic", "tsv_m"],
        ri: "on",
        steps: 6,
        batch: 8,
        auxSize: 16,
        lr: 1e-5,
        checkpointEvery: 3,
        backend: "wasm",
        out: `${d}/${out}`,
        name: "run",
      };
      return Deno.writeTextFile(path, JSON.stringify(settings)).then(() => path);
    };
    const [one, many] = [await config("one"), await config("many")];

    await merge(one);
    // The job templates' unit of work: deploy/run_expert.sh picks expert i of RI_EXPERTS.
    await Promise.all([0, 1, 2].map((i) =>
      run("sh", ["deploy/run_expert.sh"], {
        RI_EXPERTS: "a b c",
        RI_CONFIG: many,
        RI_TASK_INDEX: String(i),
      })
    ));
    for (const task of ["a", "b", "c"]) {
      await Deno.stat(`${d}/many/run/adapted/${task}.safetensors`);
    }
    const log = await merge(many);
    assert(!/RI [abc]/.test(log), `the merge adapted an expert again:\n${log}`);

    // Bit for bit the same: every process computes the same aux set, targets and steps.
    const read = async (out: string) =>
      JSON.parse(await Deno.readTextFile(`${d}/${out}/run/results.json`)) as StudyData;
    const [a, b] = [await read("one"), await read("many")];
    for (const key of ["experts", "base", "rows", "riCurves"] as const) {
      deepStrictEqual(b[key], a[key], key);
    }
    for (const task of ["a", "b", "c"]) {
      await sameFile(
        `${d}/one/run/adapted/${task}.safetensors`,
        `${d}/many/run/adapted/${task}.safetensors`,
      );
    }
    for (const label of ["task_arithmetic+ri", "tsv_m+ri"]) {
      await sameFile(
        `${d}/one/run/merged/${label}.safetensors`,
        `${d}/many/run/merged/${label}.safetensors`,
      );
    }
  },
});
