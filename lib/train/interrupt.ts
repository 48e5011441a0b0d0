/**
 * Stop requests for long training loops: Ctrl-C in a terminal, Interrupt in a notebook. Both
 * arrive as SIGINT (the project's kernelspec sets `interrupt_mode: "signal"`); a loop that
 * watches them stops between two steps, saves what it keeps and throws.
 *
 * In a terminal a watch listens only while its loop runs: the first Ctrl-C asks the loop to
 * stop after its step, a second exits at once (status 130), and outside any loop SIGINT ends
 * the process as usual (every artefact is written atomically, so nothing is partial).
 *
 * In Deno's Jupyter kernel SIGINT must never end the process, or Interrupt would lose the
 * kernel and its variables: {@linkcode installKernelInterrupts} (run when `mod.ts` is loaded
 * in a kernel) keeps one listener for the kernel's lifetime, which routes Interrupt to the
 * loops that watch and otherwise says that nothing of this kit was running. Code that never
 * yields to the event loop cannot be interrupted this way: restart the kernel to stop it.
 *
 * The state lives on `globalThis`, so two copies of this module (imported under different
 * URLs) share one listener.
 *
 * @module
 */

/** A running loop's view of stop requests. */
export interface InterruptWatch extends Disposable {
  /** Yields to the event loop (where signals arrive), then tells whether a stop was asked. */
  requested(): Promise<boolean>;
}

/** Where an Interrupt goes. */
interface Watcher {
  count: number;
}

interface SharedState {
  kernel: boolean;
  watchers: Set<Watcher>;
  log: (line: string) => void;
}

const KEY = Symbol.for("resolving-interference.interrupt");

function shared(): SharedState {
  const g = globalThis as unknown as Record<symbol, SharedState | undefined>;
  return g[KEY] ??= { kernel: false, watchers: new Set(), log: (line) => console.error(line) };
}

/**
 * A training loop stopped between two steps by Ctrl-C in a terminal or Interrupt in a notebook
 * (SIGINT), with what it kept.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { InterruptedError } from "./interrupt.ts";
 * const err = new InterruptedError("RI mnist", 40, 200, "state.safetensors");
 * equal(
 *   err.message,
 *   "RI mnist: interrupted after step 40 of 200; " +
 *     "state saved to state.safetensors: run the same command again to resume",
 * );
 * equal(err.name, "InterruptedError");
 * equal(err.step, 40);
 * ```
 */
export class InterruptedError extends Error {
  /**
   * Builds it from its parts.
   *
   * @param title what was training
   * @param step the last step done
   * @param steps the steps asked for
   * @param statePath where the state was saved (none: see `kept`)
   * @param kept what is kept when there is no state path (default: nothing)
   */
  constructor(
    title: string,
    readonly step: number,
    steps: number,
    statePath?: string,
    kept = "no state path was given, so nothing is kept",
  ) {
    super(
      `${title}: interrupted after step ${step} of ${steps}; ` +
        (statePath ? `state saved to ${statePath}: run the same command again to resume` : kept),
    );
    this.name = "InterruptedError";
  }
}

/** Options of {@linkcode watchInterrupt}. */
export interface WatchOptions {
  /**
   * Listen in a terminal too (default true). False leaves SIGINT's default there (the process
   * ends), for loops whose partial work is not worth a clean stop; in a kernel every watch
   * listens.
   */
  terminal?: boolean;
}

/**
 * Watches for stop requests while a loop runs; dispose it when the loop ends.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { watchInterrupt } from "./interrupt.ts";
 * using stop = watchInterrupt();
 * let done = 0;
 * for (let step = 1; step <= 3; step++) {
 *   if (await stop.requested()) break;
 *   done = step;
 * }
 * equal(done, 3); // nobody pressed Ctrl-C: every step ran
 * ```
 */
export function watchInterrupt(options: WatchOptions = {}): InterruptWatch {
  const state = shared();
  const watcher: Watcher = { count: 0 };
  let listening = false;
  let onSignal: (() => void) | undefined;
  if (state.kernel) {
    state.watchers.add(watcher);
    listening = true;
  } else if (options.terminal ?? true) {
    onSignal = () => {
      if (++watcher.count > 1) Deno.exit(130);
      state.log("\nCtrl-C: stopping after this step (press again to quit at once)");
    };
    listening = addListener(onSignal);
  }
  return {
    requested: async () => {
      if (listening) await new Promise((resolve) => setTimeout(resolve, 0));
      return watcher.count > 0;
    },
    [Symbol.dispose]: () => {
      state.watchers.delete(watcher);
      if (onSignal && listening) Deno.removeSignalListener("SIGINT", onSignal);
    },
  };
}

/**
 * Keeps the Jupyter kernel alive on Interrupt (SIGINT) for its whole lifetime and routes each
 * Interrupt to the loops watching it. Idempotent; `mod.ts` calls it when loaded in a kernel.
 * Returns false where signals cannot be listened to.
 *
 * @example
 * ```ts ignore
 * import { installKernelInterrupts } from "./interrupt.ts";
 * installKernelInterrupts(); // in a notebook: Interrupt now stops RI after its step
 * ```
 */
export function installKernelInterrupts(): boolean {
  const state = shared();
  if (state.kernel) return true;
  state.kernel = addListener(() => routeKernelInterrupt(state));
  return state.kernel;
}

function routeKernelInterrupt(state: SharedState): void {
  if (state.watchers.size === 0) {
    state.log(
      "Interrupt: no training loop of this kit is running, so nothing was stopped " +
        "(code that never awaits cannot be interrupted: restart the kernel to stop it)",
    );
    return;
  }
  const again = [...state.watchers].some((w) => w.count > 0);
  for (const watcher of state.watchers) watcher.count++;
  state.log(
    again
      ? "Interrupt: already stopping after this step"
      : "\nInterrupt: stopping after this step (its state is saved)",
  );
}

function addListener(listener: () => void): boolean {
  try {
    Deno.addSignalListener("SIGINT", listener);
    return true;
  } catch {
    return false; // no signals on this platform: loops run to their end
  }
}
