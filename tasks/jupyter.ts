/**
 * `deno task jupyter`: gets a working Jupyter with this project's `deno` kernel, then says what
 * it installed and how to start it.
 *
 * - JupyterLab in a project-local virtual environment (`.venv-jupyter/`, pinned version) where
 *   PyPI can be reached;
 * - else the classic Notebook from Debian's packages (`jupyter-notebook`; Debian 12 has no
 *   JupyterLab package, and its system `pip` refuses to install: externally managed);
 * - Debian's `python3-nbclient` for headless runs (`deno task notebooks`);
 * - the kernelspec (`deno task kernel`: the pinned Deno, `NO_COLOR=1`, Interrupt by signal).
 *
 * Debian packages are installed with apt-get as root; otherwise the command to run is printed.
 * Usage: `./deno task jupyter [--check] [--debian]` (`--check`: say what is there and what is
 * missing, install nothing; `--debian`: do not try PyPI).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { installKernelspec } from "./kernel.ts";
import { missingPackages } from "./system_packages.ts";

/** The Python the Debian packages install into (also the tests' reference Python). */
export const SYSTEM_PYTHON = "/usr/bin/python3";
/** The project-local virtual environment that holds JupyterLab where PyPI is reachable. */
export const VENV = ".venv-jupyter";
/** The JupyterLab version installed into {@linkcode VENV}. */
export const JUPYTERLAB_VERSION = "4.2.5";

/** Debian packages for the classic Notebook, and for headless runs of the notebooks. */
export const DEBIAN_NOTEBOOK = ["jupyter-notebook"] as const;
/** Debian packages `deno task notebooks` needs (nbclient runs a notebook; nbformat stores it). */
export const DEBIAN_HEADLESS = ["python3-nbclient", "python3-nbformat", "jupyter-client"] as const;

/** What the machine has for notebooks. */
export interface JupyterStatus {
  /** The command that starts JupyterLab, when there is one. */
  lab?: string;
  /** The command that starts the classic Notebook, when there is one. */
  notebook?: string;
  /** The Python that can run notebooks headless (nbclient + nbformat), when there is one. */
  headlessPython?: string;
  /** What is missing, each with how to get it. */
  missing: string[];
}

/**
 * Looks for JupyterLab (the project's virtual environment first, then the PATH), the classic
 * Notebook, and a Python with nbclient and nbformat.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { jupyterStatus } from "./jupyter.ts";
 * const status = await jupyterStatus(Deno.cwd());
 * const frontEnd = status.lab ?? status.notebook;
 * // each thing missing is named once, with how to get it
 * equal(status.missing.length, (frontEnd ? 0 : 1) + (status.headlessPython ? 0 : 1));
 * ```
 */
export async function jupyterStatus(root: string): Promise<JupyterStatus> {
  const venvJupyter = `${root}/${VENV}/bin/jupyter`;
  const venvPython = `${root}/${VENV}/bin/python`;
  const lab = (await succeeds(venvJupyter, ["lab", "--version"]))
    ? `${VENV}/bin/jupyter lab`
    : (await succeeds("jupyter", ["lab", "--version"]))
    ? "jupyter lab"
    : undefined;
  const notebook = (await succeeds("jupyter", ["notebook", "--version"]))
    ? "jupyter notebook"
    : undefined;
  const imports = ["-c", "import nbclient, nbformat, jupyter_client"];
  const headlessPython = (await succeeds(venvPython, imports))
    ? venvPython
    : (await succeeds(SYSTEM_PYTHON, imports))
    ? SYSTEM_PYTHON
    : undefined;
  const missing: string[] = [];
  if (!lab && !notebook) {
    missing.push(
      `a Jupyter front end (run ./deno task jupyter, or apt-get install ${DEBIAN_NOTEBOOK})`,
    );
  }
  if (!headlessPython) {
    missing.push(
      `nbclient and nbformat for headless runs (run ./deno task jupyter, or apt-get install ` +
        `${DEBIAN_HEADLESS.join(" ")})`,
    );
  }
  return { lab, notebook, headlessPython, missing };
}

/**
 * Whether PyPI answers within `timeoutMs` (the index `PIP_INDEX_URL` names, else pypi.org).
 *
 * @example
 * ```ts ignore
 * import { pypiReachable } from "./jupyter.ts";
 * const { ok, detail } = await pypiReachable();
 * ```
 */
export async function pypiReachable(timeoutMs = 5000): Promise<{ ok: boolean; detail: string }> {
  const index = (env("PIP_INDEX_URL") ?? "https://pypi.org/simple").replace(/\/+$/, "");
  const url = `${index}/jupyterlab/`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.ok
      ? { ok: true, detail: `${index} answers` }
      : { ok: false, detail: `${url} answered ${response.status}` };
  } catch (error) {
    return { ok: false, detail: `${index} cannot be reached (${firstLine(error)})` };
  }
}

/** What {@linkcode setUpJupyter} did. */
export interface SetupReport {
  /** One line per thing installed or found. */
  lines: string[];
  /** The command that starts Jupyter here, or undefined when none could be installed. */
  start?: string;
  /** What is still missing. */
  missing: string[];
}

/**
 * Installs what {@linkcode jupyterStatus} finds missing (see the module doc for the choice),
 * then the kernelspec. Without root, Debian packages are not installed: the report says which
 * command to run.
 *
 * @example
 * ```ts ignore
 * import { setUpJupyter } from "./jupyter.ts";
 * const report = await setUpJupyter(Deno.cwd(), { tryPypi: true });
 * console.log(report.lines.join("\n"));
 * ```
 */
export async function setUpJupyter(
  root: string,
  options: { tryPypi?: boolean } = {},
): Promise<SetupReport> {
  const lines: string[] = [];
  let status = await jupyterStatus(root);
  const root_ = Deno.uid?.() === 0;
  if (!status.lab && options.tryPypi !== false) {
    const pypi = await pypiReachable();
    if (pypi.ok) {
      lines.push(...await installLab(root));
    } else {
      lines.push(
        `PyPI: ${pypi.detail}, so JupyterLab cannot be installed here; ` +
          `using Debian's classic Notebook instead`,
      );
    }
    status = await jupyterStatus(root);
  }
  const debian: string[] = [];
  if (!status.lab && !status.notebook) debian.push(...DEBIAN_NOTEBOOK);
  if (!status.headlessPython) debian.push(...DEBIAN_HEADLESS);
  const toInstall = await missingPackages(debian);
  if (toInstall.length) {
    if (root_) {
      lines.push(`apt-get install ${toInstall.join(" ")}`);
      const failed = await apt(toInstall);
      if (failed) lines.push(`apt-get failed: ${failed}`);
    } else {
      lines.push(`not root: run  sudo apt-get install ${toInstall.join(" ")}  then this again`);
    }
    status = await jupyterStatus(root);
  }
  if (status.lab) lines.push(`JupyterLab: ${status.lab}`);
  if (status.notebook) lines.push(`classic Notebook: ${status.notebook}`);
  if (status.headlessPython) {
    lines.push(`headless runs (deno task notebooks): nbclient in ${status.headlessPython}`);
  }
  const kernel = await installKernelspec();
  lines.push(
    `kernel "deno": ${kernel.changed ? "installed" : "already up to date"} at ${kernel.dir}`,
  );
  const front = status.lab ?? status.notebook;
  const flags = root_ ? " --allow-root" : "";
  const start = front ? `${front}${flags}` : undefined;
  return { lines, start, missing: status.missing };
}

async function installLab(root: string): Promise<string[]> {
  const lines: string[] = [];
  const venv = `${root}/${VENV}`;
  if (!(await succeeds(SYSTEM_PYTHON, ["-c", "import ensurepip, venv"]))) {
    const missing = await missingPackages(["python3-venv"]);
    if (missing.length && Deno.uid?.() === 0) {
      lines.push("apt-get install python3-venv");
      await apt(missing);
    }
  }
  const made = await run(SYSTEM_PYTHON, ["-m", "venv", venv]);
  if (!made.ok) return [...lines, `python3 -m venv ${VENV} failed: ${made.text}`];
  const pip = await run(`${venv}/bin/pip`, [
    "install",
    "--quiet",
    `jupyterlab==${JUPYTERLAB_VERSION}`,
    "nbclient",
    "nbformat",
  ]);
  lines.push(
    pip.ok
      ? `JupyterLab ${JUPYTERLAB_VERSION} installed into ${VENV}/`
      : `pip install jupyterlab into ${VENV}/ failed: ${pip.text}`,
  );
  return lines;
}

async function apt(packages: string[]): Promise<string | undefined> {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  await run("apt-get", ["update", "-qq"], env);
  const out = await run(
    "apt-get",
    ["install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=600", ...packages],
    env,
  );
  return out.ok ? undefined : out.text;
}

async function succeeds(cmd: string, args: string[]): Promise<boolean> {
  return (await run(cmd, args)).ok;
}

async function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ ok: boolean; text: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
    return { ok: out.success, text };
  } catch (error) {
    return { ok: false, text: firstLine(error) };
  }
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { check: { type: "boolean" }, debian: { type: "boolean" } },
  });
  const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
  if (values.check) {
    const s = await jupyterStatus(root);
    console.log(`JupyterLab: ${s.lab ?? "none"}`);
    console.log(`classic Notebook: ${s.notebook ?? "none"}`);
    console.log(`headless runs (nbclient, nbformat): ${s.headlessPython ?? "none"}`);
    for (const m of s.missing) console.log(`missing: ${m}`);
    return s.missing.length ? 1 : 0;
  }
  const report = await setUpJupyter(root, { tryPypi: !values.debian });
  for (const line of report.lines) console.log(line);
  for (const m of report.missing) console.log(`still missing: ${m}`);
  if (!report.start) return 1;
  console.log(`\nStart it from the repository root:\n  cd ${root} && ${report.start}`);
  console.log(`then open notebooks/quickstart.ipynb (kernel "Deno"; the first cell says where`);
  console.log(`the cache and the runs are).`);
  return report.missing.length ? 1 : 0;
}

// Guarded so that `deno test --doc` can load this file without installing anything.
if (import.meta.main) Deno.exit(await main(Deno.args));
