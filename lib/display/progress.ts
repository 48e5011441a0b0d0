/**
 * Progress bars for long work (zoo building, RI adaptation, merges, evaluation) that update in
 * place in a notebook (one output replaced through its display id), in place in a terminal
 * (carriage return), and as plain periodic lines when output goes to a log (CI).
 *
 * Safe to call from library code: it never throws because of output, prints nothing with
 * `RI_PROGRESS=off`, and ignores updates after `done()`.
 *
 * @module
 */
import { escapeXml, formatDuration, formatNumber } from "./format.ts";
import { kernelApi } from "./jupyter.ts";

/** Where progress goes: `auto` picks notebook, terminal or lines from the environment. */
export type ProgressMode = "auto" | "notebook" | "terminal" | "lines" | "off";

/** Named values shown after the bar (e.g. `{ loss: 0.12 }`). */
export type Metrics = Record<string, number | string>;

/** Options of {@linkcode progress}. */
export interface ProgressOptions {
  /** Output mode (default: `RI_PROGRESS` if set, else `auto`). */
  mode?: ProgressMode;
  /** Least milliseconds between in-place redraws (default 200). */
  interval?: number;
  /** Milliseconds between plain lines in `lines` mode (default 10 000). */
  lineInterval?: number;
  /** Where terminal and line output is written (default: standard error). */
  write?: (text: string) => void;
  /** Clock in milliseconds (default `performance.now`); tests pass their own. */
  now?: () => number;
}

/**
 * A progress bar. Create one with {@linkcode progress}.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { progress } from "./progress.ts";
 * const bar = progress("merging", 3, { mode: "off" });
 * for (let i = 1; i <= 3; i++) bar.update(i);
 * await bar.done();
 * equal(bar.current, 3);
 * equal(bar.line(), "merging  100%  3/3  done in 0s");
 * ```
 */
export class Progress {
  /** What is being done. */
  readonly label: string;
  /** Number of steps (0 when unknown). */
  readonly total: number;
  /** Steps completed so far. */
  current = 0;
  /** The latest metrics. */
  metrics: Metrics = {};
  /** The mode in use (never `auto`). */
  readonly mode: Exclude<ProgressMode, "auto">;
  #options: Required<Omit<ProgressOptions, "mode">>;
  #start: number;
  #startValue = 0;
  #lastDraw = -Infinity;
  #lastLine: number;
  #finished = false;
  #displayId = `ri-progress-${crypto.randomUUID()}`;
  #shown = false;
  #chain: Promise<void> = Promise.resolve();

  /** Use {@linkcode progress} instead. */
  constructor(label: string, total: number, options: ProgressOptions = {}) {
    this.label = label;
    this.total = Number.isFinite(total) && total > 0 ? total : 0;
    this.mode = resolveMode(options.mode ?? modeFromEnv());
    this.#options = {
      interval: options.interval ?? 200,
      lineInterval: options.lineInterval ?? 10_000,
      write: options.write ?? writeStderr,
      now: options.now ?? (() => performance.now()),
    };
    this.#start = this.#options.now();
    this.#lastLine = this.#start;
  }

  /** Sets the number of completed steps (and optionally metrics), redrawing when due. */
  update(current: number, metrics?: Metrics): void {
    if (this.#finished) return;
    this.current = Math.max(0, current);
    if (metrics) this.metrics = { ...this.metrics, ...metrics };
    this.#render(false);
  }

  /** Advances by `step` (default 1). */
  tick(step = 1, metrics?: Metrics): void {
    this.update(this.current + step, metrics);
  }

  /**
   * Marks the work finished (at `total` if known) and draws the final state; resolves once
   * the output has been sent.
   */
  async done(metrics?: Metrics): Promise<void> {
    if (this.#finished) return await this.#chain;
    if (metrics) this.metrics = { ...this.metrics, ...metrics };
    if (this.total) this.current = Math.max(this.current, this.total);
    this.#finished = true;
    this.#render(true);
    await this.#chain;
  }

  /** Seconds since the bar was created. */
  elapsed(): number {
    return (this.#options.now() - this.#start) / 1000;
  }

  /** Estimated seconds left, or NaN when unknown. */
  eta(): number {
    const rate = (this.current - this.#startValue) / this.elapsed();
    if (!this.total || !(rate > 0) || !Number.isFinite(rate)) return NaN;
    return Math.max(0, (this.total - this.current) / rate);
  }

  /** The current state as one line of text (`unicode` draws a bar of block characters). */
  line(unicode = false): string {
    const parts = [this.label];
    if (this.total) {
      const fraction = Math.min(1, this.current / this.total);
      if (unicode) parts.push(textBar(fraction));
      parts.push(`${Math.floor(fraction * 100)}%`, `${this.current}/${this.total}`);
    } else {
      parts.push(String(this.current));
    }
    const elapsed = this.elapsed();
    if (this.#finished) parts.push(`done in ${formatDuration(elapsed)}`);
    else {
      const rate = (this.current - this.#startValue) / elapsed;
      if (rate > 0 && Number.isFinite(rate)) parts.push(`${formatNumber(rate, 3)}/s`);
      const eta = this.eta();
      if (Number.isFinite(eta)) parts.push(`ETA ${formatDuration(eta)}`);
    }
    for (const [key, value] of Object.entries(this.metrics)) {
      parts.push(`${key} ${typeof value === "number" ? formatNumber(value) : value}`);
    }
    return parts.join("  ");
  }

  #render(final: boolean): void {
    if (this.mode === "off") return;
    const now = this.#options.now();
    if (this.mode === "lines") {
      const due = !this.#shown || final || now - this.#lastLine >= this.#options.lineInterval;
      if (!due) return;
      this.#shown = true;
      this.#lastLine = now;
      return this.#write(this.line() + "\n");
    }
    if (!final && now - this.#lastDraw < this.#options.interval) return;
    this.#lastDraw = now;
    if (this.mode === "terminal") {
      return this.#write(`\r${this.line(true)}\x1b[K${final ? "\n" : ""}`);
    }
    this.#sendToNotebook();
  }

  #write(text: string): void {
    try {
      this.#options.write(text);
    } catch {
      // Progress must never break the work it reports on (a closed pipe, say).
    }
  }

  #sendToNotebook(): void {
    const api = kernelApi();
    if (!api) return;
    const type = this.#shown ? "update_display_data" : "display_data";
    this.#shown = true;
    const content = {
      data: { "text/plain": this.line(true), "text/html": this.#html() },
      // Marks the output as progress, so that tools comparing outputs can tell it apart.
      metadata: { ri: "progress" },
      transient: { display_id: this.#displayId },
    };
    this.#chain = this.#chain.then(() => api.broadcast(type, content)).catch(() => {});
  }

  #html(): string {
    const fraction = this.total ? Math.min(1, this.current / this.total) : 0;
    const color = this.#finished ? "#2ca02c" : "#1f77b4";
    const bar = this.total
      ? `<span style="display:inline-block;width:180px;height:10px;background:#e6e6e6;` +
        `border-radius:3px;vertical-align:middle;margin:0 8px">` +
        `<span style="display:block;width:${(fraction * 100).toFixed(1)}%;height:100%;` +
        `background:${color};border-radius:3px"></span></span>`
      : " ";
    const rest = this.line().slice(this.label.length).trim();
    return `<div class="ri-progress" style="font-family:monospace;font-size:12px">` +
      `<b>${escapeXml(this.label)}</b>${bar}${escapeXml(rest)}</div>`;
  }
}

/**
 * Starts a progress bar for `total` steps (0 or less: unknown total).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { progress } from "./progress.ts";
 * const lines: string[] = [];
 * let ms = 0; // a clock: one step per second
 * const write = (s: string) => lines.push(s);
 * const bar = progress("RI mnist", 100, { mode: "lines", write, now: () => ms });
 * for (let i = 1; i <= 100; i++) {
 *   ms += 1000;
 *   bar.update(i, { loss: 1 / i });
 * }
 * await bar.done();
 * equal(lines.length, 11); // the first state, then one line every 10 s, then the last
 * equal(lines[0], "RI mnist  1%  1/100  1/s  ETA 1m39s  loss 1\n");
 * equal(lines[10], "RI mnist  100%  100/100  done in 1m40s  loss 0.01\n");
 * ```
 */
export function progress(label: string, total: number, options: ProgressOptions = {}): Progress {
  return new Progress(label, total, options);
}

/**
 * A bar of `width` block characters filled to `fraction`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { textBar } from "./progress.ts";
 * equal(textBar(0.5, 4), "██░░");
 * ```
 */
export function textBar(fraction: number, width = 20): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return "█".repeat(filled) + "░".repeat(width - filled);
}

function resolveMode(mode: ProgressMode): Exclude<ProgressMode, "auto"> {
  if (mode !== "auto") return mode;
  if (kernelApi()) return "notebook";
  try {
    return Deno.stderr.isTerminal() ? "terminal" : "lines";
  } catch {
    return "lines";
  }
}

function modeFromEnv(): ProgressMode {
  let value: string | undefined;
  try {
    value = Deno.env.get("RI_PROGRESS");
  } catch {
    return "auto"; // no --allow-env
  }
  if (!value) return "auto";
  const modes: ProgressMode[] = ["auto", "notebook", "terminal", "lines", "off"];
  if (modes.includes(value as ProgressMode)) return value as ProgressMode;
  throw new Error(`RI_PROGRESS="${value}": expected one of ${modes.join(", ")}`);
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
}
