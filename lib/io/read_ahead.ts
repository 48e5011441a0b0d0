/**
 * Reading a sequence one item ahead: item i + 1 is read while the caller works on item i, so
 * the runtime's I/O threads read the next tensor while the main thread forms, checks or writes
 * the current one. Reads run in order and never two at a time; at most two items are held
 * (the one being worked on and the one being read), so a streaming pass over tensors of at
 * most B bytes holds about twice its sequential working set.
 *
 * @module
 */

/**
 * Yields `read(0)`, …, `read(count − 1)` in order, starting each read when the previous item
 * is handed out. A read's error is thrown when its item's turn comes (never as an unhandled
 * rejection before), and the generator does not finish, by completion, error or an early exit
 * of the consumer's loop, before the read it started has settled: no read outlives the loop.
 * With `ahead` false each read starts only when the consumer asks for its item, after its work
 * on the previous one (for sources whose reads must not overlap that work; see
 * `TensorSource.concurrentReads`).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { readAhead } from "./read_ahead.ts";
 * const events: string[] = [];
 * const read = (i: number) => {
 *   events.push(`read ${i}`);
 *   return Promise.resolve(i * 10);
 * };
 * for await (const value of readAhead(3, read)) events.push(`got ${value}`);
 * deepEqual(events, ["read 0", "read 1", "got 0", "read 2", "got 10", "got 20"]);
 * events.length = 0;
 * for await (const value of readAhead(2, read, false)) events.push(`got ${value}`);
 * deepEqual(events, ["read 0", "got 0", "read 1", "got 10"]);
 * ```
 */
export async function* readAhead<T>(
  count: number,
  read: (index: number) => Promise<T>,
  ahead = true,
): AsyncGenerator<T, void, undefined> {
  if (!ahead) {
    for (let i = 0; i < count; i++) yield await read(i);
    return;
  }
  let next = count > 0 ? start(read, 0) : undefined;
  try {
    for (let i = 0; i < count; i++) {
      const value = await next!;
      next = i + 1 < count ? start(read, i + 1) : undefined;
      yield value;
    }
  } finally {
    await next?.catch(() => {});
  }
}

/** Starts `read(index)`: a synchronous throw becomes the rejection, awaited later. */
function start<T>(read: (index: number) => Promise<T>, index: number): Promise<T> {
  const pending = (async () => await read(index))();
  pending.catch(() => {}); // thrown when awaited in turn
  return pending;
}
