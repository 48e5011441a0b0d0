/**
 * Renders a local HTML file in headless Chromium (Debian's `chromium`) and reports what Plotly
 * drew: each plot's box, its SVG layers and heatmap images, the page's DOM, and a screenshot
 * whose pixels can be checked. Chromium is driven over the DevTools protocol on a loopback
 * port, with the flags this machine needs (no network, no sandbox as root, a fresh profile).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { PNG } from "pngjs";

/** The Chromium binary (Debian package `chromium`). */
export const CHROMIUM = "/usr/bin/chromium";

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  "--hide-scrollbars",
  "--remote-debugging-port=0",
];

/** A drawn Plotly plot on the page. */
export interface PlotBox {
  /** Page coordinates (CSS pixels) of the plot's container. */
  x: number;
  /** Top edge. */
  y: number;
  /** Width. */
  width: number;
  /** Height. */
  height: number;
  /** Count of Plotly `svg.main-svg` layers inside. */
  mainSvgs: number;
  /** Count of heatmap images (`g.hm image`). */
  heatmapImages: number;
  /** Count of bar paths (`g.point path` in bar traces). */
  barPaths: number;
  /** Trace count Plotly holds for the plot. */
  traces: number;
  /** Category tick labels along x, as drawn. */
  xLabels: string[];
  /** Category tick labels along y, as drawn. */
  yLabels: string[];
  /** Whether the static SVG next to the plot was hidden (Plotly drew). */
  staticHidden: boolean;
}

/** What {@linkcode renderPage} saw. */
export interface RenderedPage {
  /** The DOM after scripts ran. */
  dom: string;
  /** Every Plotly plot on the page. */
  plots: PlotBox[];
  /** The static SVG pictures still visible (figures Plotly has not replaced). */
  statics: { x: number; y: number; width: number; height: number }[];
  /** Full-page screenshot (PNG). */
  screenshot: Uint8Array;
  /** Messages the page logged at error level. */
  consoleErrors: string[];
  /** The value of the `probe` expression, when one was given. */
  probed?: unknown;
}

/** Options of {@linkcode renderPage}. */
export interface RenderOptions {
  /** Viewport width in CSS pixels (default 1100). */
  width?: number;
  /** Viewport height (default 900). */
  height?: number;
  /** Wait until at least this many Plotly plots exist (default 1; 0: only for the load). */
  expectPlots?: number;
  /** Give up after this many milliseconds (default 60 000). */
  timeoutMs?: number;
  /** A JavaScript expression evaluated in the page once drawn; its value is `probed`. */
  probe?: string;
}

/**
 * Opens `htmlPath` in headless Chromium, waits until Plotly has drawn, and returns the plots,
 * the DOM and a full-page screenshot.
 *
 * @example
 * ```ts ignore
 * import { renderPage } from "./chromium.ts";
 * const page = await renderPage("/tmp/report.html", { expectPlots: 2 });
 * console.log(page.plots.length);
 * ```
 */
export async function renderPage(
  htmlPath: string,
  options: RenderOptions = {},
): Promise<RenderedPage> {
  const profile = await Deno.makeTempDir({ prefix: "ri-chromium-" });
  const child = new Deno.Command(CHROMIUM, {
    args: [...FLAGS, `--user-data-dir=${profile}`, "about:blank"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let cdp: Cdp | undefined;
  try {
    cdp = await Cdp.connect(await devtoolsUrl(child, deadline), deadline);
    return await inspectPage(cdp, htmlPath, options, deadline);
  } finally {
    cdp?.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

async function inspectPage(
  cdp: Cdp,
  htmlPath: string,
  options: RenderOptions,
  deadline: number,
): Promise<RenderedPage> {
  const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
  const page = (method: string, params: Record<string, unknown> = {}) =>
    cdp.send(method, params, sessionId as string);
  const consoleErrors: string[] = [];
  cdp.onEvent = (method, params) => {
    if (method === "Runtime.consoleAPICalled" && params.type === "error") {
      consoleErrors.push(JSON.stringify(params.args));
    }
    if (method === "Runtime.exceptionThrown") consoleErrors.push(JSON.stringify(params));
  };
  await page("Runtime.enable");
  await page("Emulation.setDeviceMetricsOverride", {
    width: options.width ?? 1100,
    height: options.height ?? 900,
    deviceScaleFactor: 1,
    mobile: false,
  });
  await page("Page.navigate", { url: `file://${await Deno.realPath(htmlPath)}` });
  const expect = options.expectPlots ?? 1;
  while (true) {
    const drawn = await evaluate(
      page,
      `document.querySelectorAll(".js-plotly-plot .main-svg").length > 0 ? document.querySelectorAll(".js-plotly-plot").length : 0`,
    );
    const ready = await evaluate(page, `document.readyState`);
    if (ready === "complete" && (drawn as number) >= expect) break;
    if (Date.now() > deadline) {
      throw new Error(`${htmlPath}: ${drawn} of ${expect} Plotly plots drawn before the timeout`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 500)); // let transitions settle before the picture
  const plots = await evaluate(page, PLOT_PROBE) as PlotBox[];
  const statics = await evaluate(page, STATIC_PROBE) as RenderedPage["statics"];
  const dom = await evaluate(page, "document.documentElement.outerHTML") as string;
  const probed = options.probe ? await evaluate(page, options.probe) : undefined;
  const size = await evaluate(
    page,
    "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]",
  ) as number[];
  const shot = await page("Page.captureScreenshot", {
    format: "png",
    captureBeyondViewport: true,
    clip: { x: 0, y: 0, width: size[0], height: size[1], scale: 1 },
  });
  const screenshot = Uint8Array.from(atob(shot.data as string), (c) => c.charCodeAt(0));
  return { dom, plots, statics, screenshot, consoleErrors, probed };
}

// Runs in the page: describes every Plotly plot.
const PLOT_PROBE = `Array.from(document.querySelectorAll(".js-plotly-plot")).map((el) => {
  const r = el.getBoundingClientRect();
  const box = el.closest(".ri-plot");
  const stat = box ? box.querySelector(".ri-static") : null;
  const ticks = (axis) => Array.from(el.querySelectorAll("g." + axis + "tick text")).map((t) => t.textContent);
  return {
    x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height,
    mainSvgs: el.querySelectorAll("svg.main-svg").length,
    heatmapImages: el.querySelectorAll("g.hm image").length,
    barPaths: el.querySelectorAll("g.trace.bars g.point path").length,
    traces: (el.data || []).length,
    xLabels: ticks("x"), yLabels: ticks("y"),
    staticHidden: !!stat && getComputedStyle(stat).display === "none",
  };
})`;

// Runs in the page: boxes of the static pictures still shown.
const STATIC_PROBE = `Array.from(document.querySelectorAll(".ri-static svg"))
  .filter((el) => el.closest(".ri-static").style.display !== "none")
  .map((el) => { const r = el.getBoundingClientRect();
    return { x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height }; })`;

async function evaluate(
  page: (method: string, params?: Record<string, unknown>) => Promise<Record<string, unknown>>,
  expression: string,
): Promise<unknown> {
  const out = await page("Runtime.evaluate", {
    expression,
    returnByValue: true,
    awaitPromise: true,
  });
  if (out.exceptionDetails) {
    throw new Error(`page script failed: ${JSON.stringify(out.exceptionDetails)}`);
  }
  return (out.result as { value: unknown }).value;
}

async function devtoolsUrl(child: Deno.ChildProcess, deadline: number): Promise<string> {
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
    const url = seen.match(/DevTools listening on (ws:\/\/\S+)/)?.[1];
    if (url) {
      // Keep draining stderr so Chromium never blocks on a full pipe.
      (async () => {
        while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
      })();
      return url;
    }
  }
  throw new Error(`chromium did not open its DevTools port:\n${seen}`);
}

/** A minimal DevTools protocol client over a WebSocket. */
class Cdp {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  onEvent: (method: string, params: Record<string, unknown>) => void = () => {};

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data as string);
      if (msg.id === undefined) return this.onEvent(msg.method, msg.params ?? {});
      const waiter = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      if (msg.error) waiter?.reject(new Error(`CDP ${JSON.stringify(msg.error)}`));
      else waiter?.resolve(msg.result ?? {});
    };
    ws.onclose = () => {
      for (const w of this.#pending.values()) w.reject(new Error("chromium closed the connection"));
      this.#pending.clear();
    };
  }

  static connect(url: string, deadline: number): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(
        () => reject(new Error(`no DevTools connection to ${url}`)),
        Math.max(0, deadline - Date.now()),
      );
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(new Cdp(ws));
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`DevTools connection to ${url} failed`));
      };
    });
  }

  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}

/** Pixel statistics of a rectangle of a PNG. */
export interface RegionStats {
  /** Pixels counted. */
  pixels: number;
  /** Standard deviation of luminance (0–255); a blank region has 0. */
  lumaStd: number;
  /** Fraction of pixels that are not near-white. */
  inked: number;
  /** Distinct colours after rounding each channel to 16 levels. */
  colors: number;
}

/**
 * Luminance spread, inked fraction and colour count inside `rect` of a PNG (CSS pixels at
 * scale 1), to tell a drawn plot from a blank box.
 *
 * @example
 * ```ts ignore
 * import { regionStats } from "./chromium.ts";
 * const stats = regionStats(page.screenshot, page.plots[0]);
 * ```
 */
export function regionStats(
  png: Uint8Array,
  rect: { x: number; y: number; width: number; height: number },
): RegionStats {
  const image = PNG.sync.read(Buffer.from(png));
  const x0 = Math.max(0, Math.floor(rect.x));
  const y0 = Math.max(0, Math.floor(rect.y));
  const x1 = Math.min(image.width, Math.ceil(rect.x + rect.width));
  const y1 = Math.min(image.height, Math.ceil(rect.y + rect.height));
  let n = 0, sum = 0, sumSq = 0, inked = 0;
  const colors = new Set<number>();
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * image.width + x) * 4;
      const [r, g, b] = [image.data[i], image.data[i + 1], image.data[i + 2]];
      const luma = 0.2126 * r + 0.7152 * g + 0.0722 * b;
      n++;
      sum += luma;
      sumSq += luma * luma;
      if (luma < 235) inked++;
      colors.add(((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4));
    }
  }
  const mean = n ? sum / n : 0;
  return {
    pixels: n,
    lumaStd: n ? Math.sqrt(Math.max(0, sumSq / n - mean * mean)) : 0,
    inked: n ? inked / n : 0,
    colors: colors.size,
  };
}
