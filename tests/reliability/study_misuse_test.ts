/**
 * The study commands misused: `deno task merge` in study mode and `deno task ri --expert`.
 * Unknown configuration keys, flags, suites, methods, distances and tasks, auxiliary folders
 * that are empty, hold one image, hold an unreadable image or do not exist, and outputs that
 * cannot be written. Each run must exit 1 with one `error:` line that names what is wrong (and
 * lists the valid choices), before any work: the output folder and the inputs stay exactly as
 * they were.
 */
import { deepStrictEqual, equal, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import pngjs from "pngjs";
import { tempDir } from "../helpers/temp.ts";
import { digests } from "./files.ts";
import { runTaskScript } from "../merge/fixtures.ts";

const TASKS = {
  merge: new URL("../../tasks/merge.ts", import.meta.url).pathname,
  ri: new URL("../../tasks/ri.ts", import.meta.url).pathname,
};

/** Small settings, so that a case that wrongly passes fails fast instead of running long. */
const SMALL = ["--suite", "mf4", "--steps", "1", "--aux-size", "32", "--batch", "16"];

interface Case {
  /** What is misused. */
  title: string;
  /** Which commands it applies to. */
  commands: (keyof typeof TASKS)[];
  /** Flags after the small settings (IN = the inputs folder, OUT = the output folder). */
  args: string[];
  /** Fragments the error line must hold. */
  says: string[];
}

const both: (keyof typeof TASKS)[] = ["merge", "ri"];
const riOnly: (keyof typeof TASKS)[] = ["ri"];

const CASES: Case[] = [
  {
    title: "an unknown key in the config file",
    commands: both,
    args: ["--config", "IN/typo.json"],
    says: ['--config IN/typo.json: unknown key "stpes"; valid keys are name, ', " steps, "],
  },
  {
    title: "a config file that is not JSON",
    commands: both,
    args: ["--config", "IN/one/a.png"],
    says: ["--config IN/one/a.png: not valid JSON"],
  },
  {
    title: "an unknown flag",
    commands: both,
    args: ["--stpes", "3"],
    says: ["Unknown option '--stpes'", "valid flags: --name ", " --steps "],
  },
  {
    title: "an unknown suite",
    commands: both,
    args: ["--suite", "mf5"],
    says: ['unknown suite "mf5"; valid suites are mf4,mf8,mf14,mf20'],
  },
  {
    title: "an unknown merge method",
    commands: both,
    args: ["--methods", "task_arithmetic,tiess"],
    says: ['unknown merge method "tiess": valid methods are average, task_arithmetic, ties'],
  },
  {
    title: "an unknown distillation method",
    commands: both,
    args: ["--distill", "nope"],
    says: ['unknown merge method "nope": valid methods are average'],
  },
  {
    title: "an unknown distance",
    commands: both,
    args: ["--distance", "cosine"],
    says: ['unknown distance "cosine": expected one of kl, ce, soft_ce, mse'],
  },
  {
    title: "a negative step count",
    commands: both,
    args: ["--steps=-3"],
    says: ['steps must be an integer ≥ 0, got "-3"'],
  },
  {
    title: "a negative step count after a space (--steps -3)",
    commands: both,
    args: ["--steps", "-3"],
    says: ['steps must be an integer ≥ 0, got "-3"'],
  },
  {
    title: "an output folder inside the auxiliary folder",
    commands: both,
    args: ["--aux", "dir:IN/one", "--out", "IN/one"],
    says: ["the run folder IN/one/", " is inside --aux IN/one, which this run reads"],
  },
  {
    title: "an empty auxiliary folder",
    commands: both,
    args: ["--aux", "dir:IN/empty"],
    says: ["aux folder IN/empty: no .png, .jpg or .jpeg files"],
  },
  {
    title: "a single-image auxiliary folder",
    commands: both,
    args: ["--aux", "dir:IN/one"],
    says: ["auxiliary set dir:IN/one: 1 image, fewer than one RI batch of 16"],
  },
  {
    title: "an auxiliary folder with a corrupt PNG",
    commands: both,
    args: ["--aux", "dir:IN/corrupt"],
    says: ["IN/corrupt/c.png: cannot decode"],
  },
  {
    title: "an auxiliary folder with a text file named .jpg",
    commands: both,
    args: ["--aux", "dir:IN/text"],
    says: ["IN/text/notes.jpg: neither a PNG nor a JPEG file"],
  },
  {
    title: "an auxiliary folder that does not exist",
    commands: both,
    args: ["--aux", "dir:IN/missing"],
    says: ["aux folder IN/missing: cannot list"],
  },
  {
    title: "an output folder inside a regular file",
    commands: both,
    args: ["--out", "IN/a_file/runs"],
    says: ["cannot create the run folder IN/a_file/runs/mf4-seed0-shapes-1steps-batch16-aux32:"],
  },
  {
    title: "an output folder where nothing can be written",
    commands: both,
    args: ["--out", "/proc/runs"],
    says: ["cannot create the run folder /proc/runs/mf4-seed0-shapes-1steps-batch16-aux32:"],
  },
  {
    title: "a run name already used by another configuration",
    commands: both,
    args: ["--name", "taken"],
    says: ["OUT/taken holds a run with another configuration (OUT/taken/config.json)"],
  },
  {
    title: "an unknown task",
    commands: riOnly,
    args: ["--expert", "mnist,svhn"],
    says: ['unknown task "svhn" in suite mf4; its tasks are mnist, fashion, mnist_rot90'],
  },
  {
    title: "no --expert",
    commands: riOnly,
    args: [],
    says: ["--expert is required"],
  },
];

/** The inputs the cases use. */
async function makeInputs(dir: string): Promise<void> {
  const png = (path: string) => {
    const image = new pngjs.PNG({ width: 8, height: 8 });
    image.data.fill(128);
    return Deno.writeFile(path, pngjs.PNG.sync.write(image));
  };
  for (const sub of ["empty", "one", "corrupt", "text"]) await Deno.mkdir(join(dir, sub));
  await Deno.writeTextFile(join(dir, "empty", "readme.txt"), "no images here\n");
  await png(join(dir, "one", "a.png"));
  for (const name of ["a", "b"]) await png(join(dir, "corrupt", `${name}.png`));
  const good = await Deno.readFile(join(dir, "one", "a.png"));
  await Deno.writeFile(join(dir, "corrupt", "c.png"), good.subarray(0, 40)); // cut in IHDR/IDAT
  await png(join(dir, "text", "a.png"));
  await Deno.writeTextFile(join(dir, "text", "notes.jpg"), "not an image\n");
  await Deno.writeTextFile(join(dir, "typo.json"), JSON.stringify({ stpes: 3 }));
  await Deno.writeTextFile(join(dir, "a_file"), "a regular file\n");
}

Deno.test("study commands misused: one clear error, exit 1, nothing written, inputs intact", async (t) => {
  await using dir = await tempDir();
  const inputs = join(dir.path, "in"), out = join(dir.path, "out");
  await Deno.mkdir(inputs);
  await makeInputs(inputs);
  // A run folder that holds another configuration, for the name clash.
  await Deno.mkdir(join(out, "taken"), { recursive: true });
  await Deno.writeTextFile(join(out, "taken", "config.json"), '{ "steps": 99 }\n');
  const before = { inputs: await digests(inputs), out: await digests(out) };
  const fill = (text: string) =>
    text.replace(/(?<![\w-])IN(?=\/|\s|$)/g, inputs).replace(/(?<![\w-])OUT(?=\/|\s|$)/g, out);
  for (const c of CASES) {
    for (const command of c.commands) {
      await t.step(`${command}: ${c.title}`, async () => {
        const expert = command === "ri" && c.title !== "no --expert" &&
            !c.args.includes("--expert")
          ? ["--expert", "mnist"]
          : [];
        const args = [...SMALL, "--out", out, ...expert, ...c.args].map(fill);
        const run = await runTaskScript(TASKS[command], args);
        equal(run.code, 1, `exit ${run.code} for: ${c.title}\n${run.stdout}\n${run.stderr}`);
        const lines = run.stderr.trim().split("\n");
        equal(lines.length, 1, `expected one line:\n${run.stderr}`);
        assert(lines[0].startsWith("error: "), run.stderr);
        assert(!/^\s+at /m.test(run.stderr), `a stack trace instead of a message:\n${run.stderr}`);
        for (const s of c.says.map(fill)) {
          assert(run.stderr.includes(s), `"${s}" not in:\n${run.stderr}`);
        }
        deepStrictEqual(await digests(out), before.out, "the output folder changed");
        deepStrictEqual(await digests(inputs), before.inputs, "an input changed");
      });
    }
  }
});
