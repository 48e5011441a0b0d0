import { deepStrictEqual, equal, match } from "node:assert/strict";
import { progress, type ProgressOptions } from "../../lib/display/mod.ts";
import { textBar } from "../../lib/display/progress.ts";

/** A bar whose clock the test moves by hand, recording what it writes. */
function recorded(mode: ProgressOptions["mode"], total: number, extra: ProgressOptions = {}) {
  const clock = { ms: 0 };
  const written: string[] = [];
  const bar = progress("RI mnist", total, {
    mode,
    now: () => clock.ms,
    write: (s) => written.push(s),
    ...extra,
  });
  return { bar, clock, written };
}

Deno.test("lines mode: first state, then one line per interval, then the final state", async () => {
  const { bar, clock, written } = recorded("lines", 100, { lineInterval: 10_000 });
  for (let i = 1; i <= 100; i++) {
    clock.ms = i * 500; // 0.5 s per step: a line every 20 steps
    bar.update(i, { loss: 1 / i });
  }
  clock.ms = 50_500;
  await bar.done();
  deepStrictEqual(written.map((l) => l.split("  ").slice(0, 3).join(" ")), [
    "RI mnist 1% 1/100",
    "RI mnist 21% 21/100",
    "RI mnist 41% 41/100",
    "RI mnist 61% 61/100",
    "RI mnist 81% 81/100",
    "RI mnist 100% 100/100",
  ]);
  for (const line of written) match(line, /\n$/);
  equal(written.at(-1), "RI mnist  100%  100/100  done in 51s  loss 0.01\n");
});

Deno.test("ETA and rate come from the progress made since the start", () => {
  const { bar, clock } = recorded("off", 100);
  clock.ms = 10_000;
  bar.update(25, { loss: 0.5, phase: "warm-up" });
  equal(bar.eta(), 30);
  equal(bar.line(), "RI mnist  25%  25/100  2.5/s  ETA 30s  loss 0.5  phase warm-up");
  equal(
    bar.line(true),
    `RI mnist  ${textBar(0.25)}  25%  25/100  2.5/s  ETA 30s  loss 0.5  phase warm-up`,
  );
});

Deno.test("terminal mode redraws in place, at most once per interval", async () => {
  const { bar, clock, written } = recorded("terminal", 10, { interval: 100 });
  bar.update(1);
  bar.update(2); // same instant: skipped
  clock.ms = 150;
  bar.update(3);
  clock.ms = 200;
  bar.tick(); // 50 ms after the last draw: skipped
  await bar.done();
  equal(written.length, 3);
  for (const w of written) equal(w.startsWith("\r") && w.includes("\x1b[K"), true);
  equal(written[0].includes("10%  1/10"), true);
  equal(written[1].includes("30%  3/10"), true);
  equal(written[2].endsWith("100%  10/10  done in 0s\x1b[K\n"), true);
});

Deno.test("off mode writes nothing; updates after done are ignored", async () => {
  const off = recorded("off", 5);
  off.bar.update(3);
  await off.bar.done();
  deepStrictEqual(off.written, []);
  const lines = recorded("lines", 5);
  await lines.bar.done();
  lines.bar.update(1);
  await lines.bar.done();
  equal(lines.written.length, 1);
  equal(lines.bar.current, 5);
});

Deno.test("an unknown total shows the count without a bar or ETA", async () => {
  const { bar, clock, written } = recorded("lines", 0);
  clock.ms = 2000;
  bar.update(40);
  equal(bar.line(true), "RI mnist  40  20/s");
  equal(Number.isNaN(bar.eta()), true);
  await bar.done();
  equal(written.at(-1), "RI mnist  40  done in 2s\n");
});

Deno.test("a writer that throws does not break the work being reported", async () => {
  const bar = progress("x", 2, {
    mode: "lines",
    write: () => {
      throw new Error("closed pipe");
    },
  });
  bar.update(1);
  await bar.done();
  equal(bar.current, 2);
});
