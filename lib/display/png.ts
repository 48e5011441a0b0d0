/**
 * SVG to PNG through a headless Chromium (Debian's `chromium`, or `RI_CHROMIUM`): the
 * browser draws the figure's static SVG at its own size (times `scale`) and takes a
 * screenshot, so the PNG shows exactly what the SVG shows. No other rasteriser is needed.
 *
 * @module
 */

/** The Chromium used for PNGs: `RI_CHROMIUM`, else the first of the usual names on the PATH. */
export function chromiumPath(): string {
  try {
    const fromEnv = Deno.env.get("RI_CHROMIUM");
    if (fromEnv) return fromEnv;
  } catch {
    // no --allow-env
  }
  return "chromium";
}

/**
 * Renders `svg` (a standalone SVG document with width and height) to a PNG file at `path`,
 * `scale` device pixels per SVG pixel (default 2). Throws naming what to install when no
 * Chromium can be run.
 *
 * @example
 * ```ts ignore
 * import { svgToPng } from "./png.ts";
 * await svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "/tmp/x.png");
 * ```
 */
export async function svgToPng(svg: string, path: string, scale = 2): Promise<void> {
  const width = Number(svg.match(/width="([\d.]+)"/)?.[1]);
  const height = Number(svg.match(/height="([\d.]+)"/)?.[1]);
  if (!(width > 0 && height > 0)) throw new Error("svgToPng: the SVG has no width and height");
  const dir = await Deno.makeTempDir({ prefix: "ri-png-" });
  try {
    const page = `${dir}/figure.html`;
    await Deno.writeTextFile(
      page,
      `<!DOCTYPE html><html><head><meta charset="utf-8"><style>html,body{margin:0;` +
        `padding:0;background:#fff}svg{display:block}</style></head><body>${svg}</body></html>`,
    );
    const shot = `${dir}/shot.png`;
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(chromiumPath(), {
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--hide-scrollbars",
          "--no-first-run",
          `--user-data-dir=${dir}/profile`,
          `--force-device-scale-factor=${scale}`,
          `--window-size=${Math.ceil(width)},${Math.ceil(height)}`,
          `--screenshot=${shot}`,
          `file://${page}`,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
    } catch (error) {
      throw new Error(
        `savePng needs Chromium (${chromiumPath()}: ${(error as Error).message}); ` +
          `install it (Debian: apt-get install chromium) or set RI_CHROMIUM`,
      );
    }
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-2).join(" ");
      throw new Error(`${chromiumPath()} could not draw the PNG (exit ${out.code}): ${err}`);
    }
    const bytes = await Deno.readFile(shot);
    const temp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    await Deno.writeFile(temp, bytes);
    await Deno.rename(temp, path);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
