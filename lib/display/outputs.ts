/**
 * Every output of a notebook cell is published before Deno's Jupyter kernel says the cell
 * has finished.
 *
 * **The race.** Deno's kernel (2.9) runs a cell on a REPL thread. What the cell prints
 * (`stream`), displays (`display_data`) and returns (`execute_result`) goes into a channel that
 * the kernel's main thread drains onto the iopub socket, one message at a time, while the same
 * thread sends `execute_reply` and the `idle` status as soon as the evaluation is over. Nothing
 * orders the two: the reply and the idle status can overtake outputs still in the channel (a
 * large bundle, whose signing takes longer, most often). A client that stops listening at idle,
 * as `jupyter nbconvert --execute` does, then drops those outputs without a word, or files them
 * under the next cell.
 *
 * **The fix.** The last thing the kernel does for a cell that did not throw is to await
 * `Deno[Deno.internal].jupyter.broadcastResult` (it queues the `execute_result`), and only then
 * reply. {@linkcode installOutputOrdering} wraps that function so that it also waits for
 * {@linkcode flushOutputs}: the kit subscribes to the kernel's own iopub socket like any
 * frontend (the connection file named on the kernel's command line gives the port), queues two
 * marker messages behind the cell's outputs and waits until the second comes back. The channel
 * is first in, first out, and the kernel writes one message to every subscriber before it takes
 * the next, so when the second marker arrives, the first, and every output queued before it,
 * has been written to every frontend. The markers are `status: busy` messages (the kernel is
 * busy then; clients ignore a repeated busy), tagged in their metadata.
 *
 * Outputs that precede an exception are not covered (the kernel formats the error without
 * calling back into the kit).
 *
 * @module
 */
import { type ConnectionInfo, IopubSubscriber, kernelConnectionFile } from "./iopub.ts";
import { kernelApi } from "./jupyter.ts";

/** Metadata key of the marker messages. */
const MARK = "ri_flush";
/** Marks a wrapped `broadcastResult`, so that two copies of the kit wrap it once. */
const WRAPPED = Symbol.for("ri.outputOrdering");

/** Whether cells' outputs are ordered before their end, and how (or why not). */
export interface OutputOrdering {
  /** True when every cell ends with a flush. */
  active: boolean;
  /** How, or why not. */
  detail: string;
}

type BroadcastResult = ((count: number, result: unknown) => Promise<void>) & {
  [WRAPPED]?: boolean;
};

interface KernelInternals {
  jupyter?: { broadcastResult?: BroadcastResult };
}

let subscriber: IopubSubscriber | undefined;
let connecting: Promise<IopubSubscriber | undefined> | undefined;
let failure: string | undefined;
const waiting = new Map<string, () => void>();

/**
 * Makes every cell of the running Deno kernel end only after its outputs were published (see
 * the module doc). Idempotent; does nothing outside a kernel or on a Deno whose kernel has no
 * `broadcastResult` to wrap.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { installOutputOrdering } from "./outputs.ts";
 * deepEqual(installOutputOrdering(), { active: false, detail: "not in a Jupyter kernel" });
 * ```
 */
export function installOutputOrdering(): OutputOrdering {
  if (!kernelApi()) return { active: false, detail: "not in a Jupyter kernel" };
  const jupyter = internals()?.jupyter;
  const original = jupyter?.broadcastResult;
  if (!jupyter || typeof original !== "function") {
    return { active: false, detail: "this Deno's kernel has no broadcastResult to wrap" };
  }
  if (!original[WRAPPED]) {
    const wrapped: BroadcastResult = async (count, result) => {
      try {
        await original(count, result);
      } finally {
        await flushOutputs();
      }
    };
    wrapped[WRAPPED] = true;
    jupyter.broadcastResult = wrapped;
  }
  return outputOrdering();
}

/**
 * Whether cells' outputs are being ordered, and how.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { outputOrdering } from "./outputs.ts";
 * deepEqual(outputOrdering(), { active: false, detail: "not in a Jupyter kernel" });
 * ```
 */
export function outputOrdering(): OutputOrdering {
  const wrapped = internals()?.jupyter?.broadcastResult?.[WRAPPED] === true;
  if (!kernelApi()) return { active: false, detail: "not in a Jupyter kernel" };
  if (!wrapped) return { active: false, detail: "not installed" };
  if (failure) return { active: false, detail: failure };
  return { active: true, detail: "each cell waits until its outputs are on iopub" };
}

/**
 * Waits until every output queued so far by this kernel has been written to every frontend
 * (returns at once outside a kernel). Returns false, once saying why on stderr, when the
 * kernel's iopub socket cannot be reached; cells then end as Deno's kernel ends them.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { flushOutputs } from "./outputs.ts";
 * equal(await flushOutputs(), true); // at once, outside a notebook
 * ```
 */
export async function flushOutputs(timeoutMs = 10_000): Promise<boolean> {
  const api = kernelApi();
  if (!api || failure) return !api;
  const sub = await connect();
  if (!sub) return false;
  const token = crypto.randomUUID();
  let seq = 0;
  const mark = () =>
    api.broadcast("status", { execution_state: "busy" }, {
      metadata: { [MARK]: token, seq: ++seq },
    } as never);
  const seen = new Promise<true>((resolve) => waiting.set(token, () => resolve(true)));
  mark();
  mark();
  const started = Date.now();
  let wait = 25;
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = new Promise<false>((
        resolve,
      ) => (timer = setTimeout(() => resolve(false), wait)));
      const done = await Promise.race([seen, tick]);
      clearTimeout(timer);
      if (done) return true;
      if (sub.closed) return await retryAfterDisconnect(timeoutMs - (Date.now() - started));
      if (Date.now() - started > timeoutMs) {
        return fail(`no marker came back on iopub within ${timeoutMs} ms`);
      }
      // Right after connecting, the kernel may not have registered the subscription when the
      // markers went through: send another (any marker after the first proves the first).
      mark();
      wait = Math.min(wait * 2, 500);
    }
  } finally {
    waiting.delete(token);
  }
}

async function retryAfterDisconnect(left: number): Promise<boolean> {
  subscriber = undefined;
  return left > 0 ? await flushOutputs(left) : fail("the iopub connection closed");
}

function fail(why: string): false {
  failure = `outputs not ordered: ${why}`;
  console.error(`ri: ${failure}; a cell's last outputs may arrive after it ends`);
  return false;
}

async function connect(): Promise<IopubSubscriber | undefined> {
  if (subscriber && !subscriber.closed) return subscriber;
  connecting ??= (async () => {
    const file = kernelConnectionFile();
    if (!file) {
      fail("the kernel's connection file is not on its command line");
      return undefined;
    }
    let info: ConnectionInfo;
    try {
      info = JSON.parse(await Deno.readTextFile(file)) as ConnectionInfo;
    } catch (error) {
      fail(`cannot read ${file}: ${(error as Error).message}`);
      return undefined;
    }
    try {
      const sub = await IopubSubscriber.connect(info, onMessage);
      sub.unref();
      return sub;
    } catch (error) {
      fail(`cannot subscribe to ${info.ip}:${info.iopub_port}: ${(error as Error).message}`);
      return undefined;
    }
  })();
  try {
    subscriber = await connecting;
    return subscriber;
  } finally {
    connecting = undefined;
  }
}

const DELIMITER = "<IDS|MSG>";
const decoder = new TextDecoder();

/** Resolves the flush waiting for a marker once a marker after its first comes back. */
function onMessage(frames: Uint8Array[]): void {
  if (waiting.size === 0) return;
  const d = frames.findIndex((f) =>
    f.length === DELIMITER.length && decoder.decode(f) === DELIMITER
  );
  const metadata = d >= 0 ? frames[d + 4] : undefined;
  if (!metadata || metadata.length > 4096) return;
  const text = decoder.decode(metadata);
  if (!text.includes(MARK)) return;
  try {
    const meta = JSON.parse(text) as Record<string, unknown>;
    const resolve = waiting.get(String(meta[MARK]));
    if (resolve && Number(meta.seq) >= 2) resolve();
  } catch {
    // not ours
  }
}

function internals(): KernelInternals | undefined {
  try {
    const deno = Deno as unknown as Record<symbol, KernelInternals> & { internal?: symbol };
    return deno.internal ? deno[deno.internal] : undefined;
  } catch {
    return undefined;
  }
}
