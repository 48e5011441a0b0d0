/**
 * lib/train/interrupt.ts without Jupyter: a child process sends itself SIGINT, as a terminal's
 * Ctrl-C or a notebook's Interrupt (`interrupt_mode: "signal"`) would, and reports what its
 * loops saw. notebook_interrupt_test.ts runs the same through a real kernel.
 */
import { equal, match } from "node:assert/strict";

const MODULE = JSON.stringify(new URL("../../lib/train/interrupt.ts", import.meta.url).href);

/** Runs `body` in a child Deno after importing the module's exports; returns its outputs. */
async function child(body: string) {
  const code = `import { installKernelInterrupts, watchInterrupt } from ${MODULE};
const interrupt = async () => {
  Deno.kill(Deno.pid, "SIGINT");
  await new Promise((resolve) => setTimeout(resolve, 100)); // the signal arrives
};
${body}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("in a terminal: the first Ctrl-C asks the loop to stop, a second exits with 130", async () => {
  const out = await child(`
using watch = watchInterrupt();
console.log("before", await watch.requested());
await interrupt();
console.log("after", await watch.requested());
await interrupt();
console.log("not reached");
`);
  equal(out.stdout, "before false\nafter true\n");
  match(out.stderr, /Ctrl-C: stopping after this step/);
  equal(out.code, 130);
});

Deno.test("in a terminal: once the watch is disposed, Ctrl-C ends the process as usual", async () => {
  const out = await child(`
{ using watch = watchInterrupt(); await watch.requested(); }
console.log("disposed");
await interrupt();
console.log("not reached");
`);
  equal(out.stdout, "disposed\n");
  equal(out.code, 130);
});

Deno.test("in a terminal: a watch with terminal: false leaves SIGINT's default", async () => {
  const out = await child(`
using watch = watchInterrupt({ terminal: false });
await interrupt();
console.log("not reached", await watch.requested());
`);
  equal(out.stdout, "");
  equal(out.code, 130);
});

Deno.test("in a kernel: Interrupt reaches every watch, a second never exits, and with no loop the process lives", async () => {
  const out = await child(`
console.log("installed", installKernelInterrupts(), installKernelInterrupts());
await interrupt();
console.log("alive with no loop");
{
  using outer = watchInterrupt({ terminal: false });
  using inner = watchInterrupt();
  await interrupt();
  console.log("stop asked", await outer.requested(), await inner.requested());
  await interrupt();
  console.log("still alive", await inner.requested());
}
using later = watchInterrupt();
console.log("a later loop starts clean", await later.requested());
`);
  equal(
    out.stdout,
    "installed true true\nalive with no loop\nstop asked true true\nstill alive true\n" +
      "a later loop starts clean false\n",
  );
  match(out.stderr, /Interrupt: no training loop of this kit is running, so nothing was stopped/);
  match(out.stderr, /Interrupt: stopping after this step/);
  match(out.stderr, /Interrupt: already stopping after this step/);
  equal(out.code, 0);
});
