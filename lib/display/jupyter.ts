/**
 * The bridge to Deno's Jupyter kernel: the display symbol, MIME bundles, kernel detection and
 * a `display` that works in a notebook and in a terminal.
 *
 * @module
 */

/**
 * The symbol Deno's kernel looks for: a value with a `[JUPYTER_DISPLAY]()` method is shown
 * through the MIME bundle it returns. Equal to `Symbol.for("Jupyter.display")`.
 *
 * @example
 * ```ts
 * import { deepEqual, equal } from "node:assert/strict";
 * import { JUPYTER_DISPLAY } from "./jupyter.ts";
 * equal(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
 * const value = { [JUPYTER_DISPLAY]: () => ({ "text/plain": "hello" }) };
 * deepEqual(value[JUPYTER_DISPLAY](), { "text/plain": "hello" });
 * ```
 */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

/** Outputs of one value keyed by MIME type: strings, or objects for JSON types. */
export type MimeBundle = Record<string, string | object>;

/** A value that shows itself in a notebook. */
export interface Displayable {
  /** Returns the value's MIME bundle. */
  [JUPYTER_DISPLAY](): MimeBundle | Promise<MimeBundle>;
}

/** The parts of `Deno.jupyter` this module uses. */
interface KernelApi {
  display(
    obj: unknown,
    options?: { raw?: boolean; update?: boolean; display_id?: string },
  ): Promise<
    void
  >;
  broadcast(
    msgType: string,
    content: Record<string, unknown>,
    extra?: { metadata?: Record<string, unknown> },
  ): Promise<void> | void;
}

/**
 * `Deno.jupyter` when running inside Deno's Jupyter kernel, else `undefined`.
 * (`"jupyter" in Deno` is true under `deno run` as well, where touching it throws.)
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { kernelApi } from "./jupyter.ts";
 * equal(kernelApi(), undefined); // outside a notebook
 * ```
 */
export function kernelApi(): KernelApi | undefined {
  try {
    const api = (Deno as unknown as { jupyter?: KernelApi }).jupyter;
    return typeof api?.broadcast === "function" ? api : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True inside Deno's Jupyter kernel.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { inKernel } from "./jupyter.ts";
 * equal(inKernel(), false); // under deno run / deno test
 * ```
 */
export function inKernel(): boolean {
  return kernelApi() !== undefined;
}

/**
 * True if `value` has a `[Symbol.for("Jupyter.display")]()` method.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { isDisplayable, JUPYTER_DISPLAY } from "./jupyter.ts";
 * equal(isDisplayable({ [JUPYTER_DISPLAY]: () => ({ "text/plain": "x" }) }), true);
 * equal(isDisplayable(42), false);
 * ```
 */
export function isDisplayable(value: unknown): value is Displayable {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as Record<symbol, unknown>)[JUPYTER_DISPLAY] === "function";
}

/**
 * The MIME bundle of any value: what its display method returns (with `text/plain` added when
 * it gave none), else its `Deno.inspect` text.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { bundleOf, JUPYTER_DISPLAY } from "./jupyter.ts";
 * deepEqual(await bundleOf({ a: 1 }), { "text/plain": "{ a: 1 }" });
 * const html = { [JUPYTER_DISPLAY]: () => ({ "text/html": "<b>x</b>" }), toString: () => "x" };
 * deepEqual(Object.keys(await bundleOf(html)), ["text/html", "text/plain"]); // text/plain added
 * ```
 */
export async function bundleOf(value: unknown): Promise<MimeBundle> {
  if (!isDisplayable(value)) return { "text/plain": plainText(value) };
  const bundle = await value[JUPYTER_DISPLAY]();
  if (typeof bundle !== "object" || bundle === null) {
    throw new Error(`display method returned ${typeof bundle}, expected a MIME bundle object`);
  }
  return "text/plain" in bundle ? bundle : { ...bundle, "text/plain": plainText(value) };
}

/** Options of {@linkcode display}. */
export interface DisplayOptions {
  /** An id so that a later `display(…, { id, update: true })` replaces this output. */
  id?: string;
  /** Replace the output shown earlier with the same `id` instead of adding one. */
  update?: boolean;
}

/**
 * Shows a value: in a notebook as a rich output (optionally updatable through an id), in a
 * terminal as its text. In a notebook whose kit is imported, the cell does not end before the
 * output is published (`lib/display/outputs.ts`), so headless runs keep it.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { display } from "./jupyter.ts";
 * const printed: unknown[] = [];
 * const log = console.log;
 * console.log = (line: unknown) => printed.push(line);
 * try {
 *   await display({ "answer": 42 }); // outside a notebook: prints the text
 * } finally {
 *   console.log = log;
 * }
 * deepEqual(printed, ["{ answer: 42 }"]);
 * ```
 */
export async function display(value: unknown, options: DisplayOptions = {}): Promise<void> {
  const api = kernelApi();
  if (!api) {
    if (!options.update) console.log(textOf(await bundleOf(value), value));
    return;
  }
  await api.display(await bundleOf(value), {
    raw: true,
    update: options.update,
    display_id: options.id,
  });
}

/** What a value shows as: a figure-like object (with bundle and text) or a ready bundle. */
export type DisplaySource = { toBundle(): MimeBundle; toText(): string } | MimeBundle;

/** Options of {@linkcode displayWith}. */
export interface DisplayWithOptions<T> {
  /**
   * The terminal text (`toString`, `console.log`); needed when `render` is asynchronous (a
   * display that first computes something), optional otherwise (default: the figure's text).
   */
  text?: (value: T) => string;
}

/**
 * The one recipe by which a value shows itself, for every room (this module loads no tfjs):
 * gives `target` (an object, or a class prototype) a notebook display and a terminal text in
 * one line. `render(value)` returns a figure (from `heatmap`, `bars`, …) or a MIME bundle, or a
 * promise of one (then give `options.text`). Adds `[Symbol.for("Jupyter.display")]`, `toString`
 * (unless the class has its own) and `[Symbol.for("Deno.customInspect")]`, none of them
 * enumerable.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { displayWith } from "./jupyter.ts";
 * class Score {
 *   constructor(readonly value: number) {}
 * }
 * displayWith(Score.prototype, (s) => ({ "text/plain": `score ${s.value}` }));
 * equal(String(new Score(3)), "score 3");
 * ```
 */
export function displayWith<T extends object>(
  target: T,
  render: (value: T) => DisplaySource | Promise<DisplaySource>,
  options: DisplayWithOptions<T> = {},
): T {
  const text = options.text ?? ((value: T) => {
    const source = render(value);
    if (source instanceof Promise) {
      throw new Error("displayWith: an asynchronous render needs options.text");
    }
    return isFigureLike(source) ? source.toText() : String(source["text/plain"] ?? "");
  });
  const define = (key: PropertyKey, fn: (this: T) => unknown) =>
    Object.defineProperty(target, key, { value: fn, configurable: true, writable: true });
  define(JUPYTER_DISPLAY, function () {
    const bundle = (source: DisplaySource) => isFigureLike(source) ? source.toBundle() : source;
    const source = render(this);
    return source instanceof Promise ? source.then(bundle) : bundle(source);
  });
  // A class's own toString (a one-line summary, say) is kept, and used for console.log too.
  const ownText = Object.hasOwn(target, "toString");
  if (!ownText) {
    define("toString", function () {
      return text(this);
    });
  }
  define(Symbol.for("Deno.customInspect"), function () {
    return ownText ? String(this) : text(this);
  });
  return target;
}

function isFigureLike(
  source: DisplaySource,
): source is { toBundle(): MimeBundle; toText(): string } {
  return typeof (source as { toBundle?: unknown }).toBundle === "function";
}

function textOf(bundle: MimeBundle, value: unknown): string {
  const plain = bundle["text/plain"];
  return typeof plain === "string" ? plain : plainText(value);
}

function plainText(value: unknown): string {
  return typeof value === "string" ? value : Deno.inspect(value, { colors: false, depth: 4 });
}
