/**
 * The shape of the import graph: no module imports itself through others (an import cycle,
 * type-only imports included, makes the load order and the rooms' layering depend on each
 * other), and nothing outside `tests/` imports a file of `tests/` (the library, its tasks and
 * its benchmarks must run from a checkout without the tests). The graph is Deno's own
 * (`deno info --json`), so dynamic imports with a literal path and `import type` count too.
 */
import { deepStrictEqual } from "node:assert/strict";
import { relative } from "node:path";

const ROOT = new URL("../../", import.meta.url);
const ROOT_PATH = ROOT.pathname;

/** Every .ts file under `dir` (repository-relative), skipping generated folders. */
async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...await tsFiles(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

interface Dependency {
  code?: { specifier: string };
  type?: { specifier: string };
}

/** The repository's modules reachable from `roots`, each with the repository modules it imports. */
async function importGraph(roots: readonly string[]): Promise<Map<string, string[]>> {
  const dir = await Deno.makeTempDir({ prefix: "ri-imports-" });
  try {
    const root = `${dir}/all.ts`;
    const lines = roots.map((f) => `import ${JSON.stringify(new URL(f, ROOT).href)};`);
    await Deno.writeTextFile(root, lines.join("\n") + "\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: ROOT_PATH,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: { specifier: string; dependencies?: Dependency[] }[];
    };
    const local = (specifier: string) =>
      specifier.startsWith(ROOT.href) ? relative(ROOT_PATH, new URL(specifier).pathname) : "";
    const graph = new Map<string, string[]>();
    for (const m of info.modules) {
      const from = local(m.specifier);
      if (!from) continue;
      const to = new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          const target = s ? local(s) : "";
          if (target) to.add(target);
        }
      }
      graph.set(from, [...to].sort());
    }
    return graph;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The strongly connected components with more than one module (or a self-import): the cycles. */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

Deno.test("cycles: a hand-made graph's cycles are found, and only those", () => {
  const graph = new Map([
    ["a", ["b"]],
    ["b", ["c"]],
    ["c", ["a", "d"]],
    ["d", []],
    ["e", ["e"]],
    ["f", ["d"]],
  ]);
  deepStrictEqual(cycles(graph), [["a", "b", "c"], ["e"]]);
});

const roots = [
  "mod.ts",
  ...await tsFiles("lib"),
  ...await tsFiles("tasks"),
  ...await tsFiles("bench"),
  ...await tsFiles("tests"),
];
const graph = await importGraph(roots);

Deno.test("imports: no import cycles in the library, tasks, benchmarks or tests", () => {
  deepStrictEqual(cycles(graph), []);
});

Deno.test("imports: nothing outside tests/ imports a file of tests/", () => {
  const offending = [...graph].flatMap(([from, to]) =>
    from.startsWith("tests/")
      ? []
      : to.filter((t) => t.startsWith("tests/")).map((t) => `${from} → ${t}`)
  );
  deepStrictEqual(offending, []);
});

Deno.test("imports: the graph covers every module of mod.ts, lib/, tasks/, bench/ and tests/", () => {
  const missing = roots.filter((f) => !graph.has(f));
  deepStrictEqual(missing, []);
});
