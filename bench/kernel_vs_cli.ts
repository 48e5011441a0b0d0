/**
 * Kernel against command line: README's first TypeScript block (the block a notebook user copies
 * first) timed as one notebook cell under stock `jupyter nbconvert --execute` (the `deno` kernel
 * started in `notebooks/`, as for a user) and as a `deno run` script in `notebooks/`, each between
 * two `performance.now()` reads and with a fresh runs folder (`RI_RUNS`), in the order given
 * (default `KCCK`: kernel, CLI, CLI, kernel). Prints one line per execution (the block's time, the
 * whole execution's with start-up, the load average before and after) and the ratio of the sums.
 *
 *     deno run -A bench/kernel_vs_cli.ts [KCCK]
 *
 * Needs Jupyter (`./deno task jupyter`) and builds the mf4 zoo on first use.
 *
 * @module
 */
import { nbconvertExecute } from "../tasks/notebook_runner.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** One timed execution. */
export interface Timing {
  /** `kernel` or `cli`. */
  side: "kernel" | "cli";
  /** Seconds the README block took. */
  block: number;
  /** Seconds of the whole execution, start-up included. */
  whole: number;
  /** 1-minute load average before and after. */
  load: [number, number];
}

/**
 * The first TypeScript block (info string `ts`) of a README.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { readmeBlock } from "./kernel_vs_cli.ts";
 * const fence = "`".repeat(3);
 * const readme = `x\n${fence}ts\nconst a = 1;\n${fence}\n`;
 * ok(readmeBlock(readme).startsWith("const a = 1;"));
 * ```
 */
export function readmeBlock(readme: string): string {
  const m = readme.match(/^```ts\n([^]*?)^```$/m);
  if (!m) throw new Error("README.md has no ```ts block");
  return m[1];
}

const START = "const __t0 = performance.now();";
const STOP = 'console.log("ELAPSED " + ((performance.now() - __t0) / 1000).toFixed(3));';
const load = () => Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
const elapsed = (text: string) => {
  const m = text.match(/ELAPSED ([0-9.]+)/);
  if (!m) throw new Error(`no ELAPSED line in:\n${text.slice(-2000)}`);
  return Number(m[1]);
};

async function kernel(block: string, i: number): Promise<Timing> {
  const dir = await Deno.makeTempDir({ prefix: "kernel-vs-cli-" });
  const notebook = `${ROOT}/notebooks/.kernel-vs-cli-${i}.ipynb`;
  const cell = (id: string, source: string) => ({
    cell_type: "code",
    id,
    metadata: {},
    execution_count: null,
    outputs: [],
    source,
  });
  await Deno.writeTextFile(
    notebook,
    JSON.stringify({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
      cells: [cell("start", START), cell("block", block), cell("stop", STOP)],
    }),
  );
  const l0 = load(), t = performance.now();
  try {
    const nb = await nbconvertExecute(notebook, {
      outDir: dir,
      env: { RI_RUNS: `${dir}/runs` },
      timeoutS: 3600,
    });
    const whole = (performance.now() - t) / 1000;
    return {
      side: "kernel",
      block: elapsed(JSON.stringify(nb.cells.at(-1))),
      whole,
      load: [l0, load()],
    };
  } finally {
    await Deno.remove(notebook);
    await Deno.remove(dir, { recursive: true });
  }
}

async function cli(block: string, i: number): Promise<Timing> {
  const dir = await Deno.makeTempDir({ prefix: "kernel-vs-cli-" });
  const script = `.kernel-vs-cli-${i}.ts`;
  await Deno.writeTextFile(`${ROOT}/notebooks/${script}`, `${START}\n${block}\n${STOP}\n`);
  const l0 = load(), t = performance.now();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      cwd: `${ROOT}/notebooks`,
      env: { RI_RUNS: `${dir}/runs` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const whole = (performance.now() - t) / 1000;
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return { side: "cli", block: elapsed(text), whole, load: [l0, load()] };
  } finally {
    await Deno.remove(`${ROOT}/notebooks/${script}`);
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const order = (Deno.args[0] ?? "KCCK").toUpperCase();
  if (!/^[KC]+$/.test(order)) throw new Error(`order must be letters K and C, got ${order}`);
  const block = readmeBlock(await Deno.readTextFile(`${ROOT}/README.md`));
  const timings: Timing[] = [];
  for (const [i, side] of [...order].entries()) {
    const t = side === "K" ? await kernel(block, i) : await cli(block, i);
    timings.push(t);
    console.log(
      `${t.side.padEnd(6)} block ${t.block.toFixed(1)} s, whole ${t.whole.toFixed(1)} s, ` +
        `load ${t.load[0]} → ${t.load[1]}`,
    );
  }
  const sum = (side: string, key: "block" | "whole") =>
    timings.filter((t) => t.side === side).reduce((a, t) => a + t[key], 0);
  if (order.includes("K") && order.includes("C")) {
    console.log(
      `kernel / CLI: block ${(sum("kernel", "block") / sum("cli", "block")).toFixed(2)}, ` +
        `whole ${(sum("kernel", "whole") / sum("cli", "whole")).toFixed(2)}`,
    );
  }
}
