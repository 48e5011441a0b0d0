/**
 * A minimal subscriber to a Jupyter kernel's iopub channel (ZMTP 3.0, NULL security, SUB
 * socket over TCP), used by {@linkcode ./outputs.ts} to see when the kernel has written a
 * message to its frontends. It reads frames and hands each message's frames to a callback;
 * it never sends anything but its handshake and its subscription.
 *
 * ZMTP 3.0 in brief (rfc.zeromq.org/spec/23): each side sends a 64-byte greeting (signature
 * `FF 00×8 7F`, version 3.0, mechanism `NULL` padded to 20 bytes, as-server flag, filler), then
 * a `READY` command carrying its `Socket-Type`; messages are frames of `flags, size, body`
 * (flags: bit 0 more frames follow, bit 1 8-byte size, bit 2 command). A 3.0 subscriber
 * subscribes by sending a message whose body is `0x01` followed by the prefix (empty: all).
 *
 * @module
 */

/** What a kernel's connection file holds that the subscriber needs. */
export interface ConnectionInfo {
  /** Host the kernel listens on. */
  ip: string;
  /** Port of the iopub (PUB) socket. */
  iopub_port: number;
  /** `tcp` (the only transport this subscriber speaks). */
  transport?: string;
}

/**
 * The path of the connection file the running kernel was started with (`--conn FILE` on its
 * command line, read from `/proc/self/cmdline`), or undefined where that is not available.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { kernelConnectionFile } from "./iopub.ts";
 * equal(kernelConnectionFile(), undefined); // outside a kernel
 * ```
 */
export function kernelConnectionFile(): string | undefined {
  let args: string[];
  try {
    args = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
  } catch {
    return undefined; // not Linux, or no read permission
  }
  const i = args.indexOf("--conn");
  if (i >= 0 && args[i + 1]) return args[i + 1];
  const joined = args.find((a) => a.startsWith("--conn="));
  return joined?.slice("--conn=".length);
}

/** Receives each message (its frames) published on iopub. */
export type MessageHandler = (frames: Uint8Array[]) => void;

/**
 * A connected iopub subscriber: call {@linkcode IopubSubscriber.connect}, then every
 * published message reaches `onMessage` until {@linkcode IopubSubscriber.close}.
 *
 * @example
 * ```ts ignore
 * import { IopubSubscriber } from "./iopub.ts";
 * const sub = await IopubSubscriber.connect({ ip: "127.0.0.1", iopub_port: 5555 }, (f) => {});
 * sub.close();
 * ```
 */
export class IopubSubscriber {
  #conn: Deno.TcpConn;
  #closed = false;
  /** Resolves when the read loop ends (connection closed or failed). */
  readonly done: Promise<void>;

  private constructor(conn: Deno.TcpConn, reader: FrameReader, onMessage: MessageHandler) {
    this.#conn = conn;
    this.done = this.#readLoop(reader, onMessage);
  }

  /** Connects, does the ZMTP handshake and subscribes to every message. */
  static async connect(info: ConnectionInfo, onMessage: MessageHandler): Promise<IopubSubscriber> {
    if (info.transport && info.transport !== "tcp") {
      throw new Error(`iopub transport ${info.transport} is not supported (tcp only)`);
    }
    const conn = await Deno.connect({ hostname: info.ip, port: info.iopub_port });
    try {
      conn.setNoDelay(true);
      await writeAll(conn, greeting());
      const reader = new FrameReader(conn);
      await reader.exact(64); // the peer's greeting
      await writeAll(conn, readyCommand("SUB"));
      const ready = await reader.frame();
      if (!ready.command) throw new Error("iopub handshake: expected a READY command");
      await writeAll(conn, frame(new Uint8Array([1]), false, false)); // subscribe to all
      return new IopubSubscriber(conn, reader, onMessage);
    } catch (error) {
      conn.close();
      throw error;
    }
  }

  /** True once the connection has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Lets the process (the kernel's REPL) idle without this connection keeping it busy. */
  unref(): void {
    this.#conn.unref();
  }

  /** Closes the connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed by the peer
    }
  }

  async #readLoop(reader: FrameReader, onMessage: MessageHandler): Promise<void> {
    try {
      while (!this.#closed) {
        const frames: Uint8Array[] = [];
        for (;;) {
          const f = await reader.frame();
          if (f.command) break; // commands (e.g. PING) carry no message
          frames.push(f.body);
          if (!f.more) break;
        }
        if (frames.length) onMessage(frames);
      }
    } catch {
      // connection closed or broken: the owner reconnects when it needs to
    } finally {
      this.close();
    }
  }
}

/** Buffered reads of whole byte counts and ZMTP frames. */
class FrameReader {
  #conn: Deno.Conn;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async exact(n: number): Promise<Uint8Array> {
    while (this.#end - this.#start < n) {
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#buf.length < n) {
        const bigger = new Uint8Array(Math.max(n, this.#buf.length * 2));
        bigger.set(this.#buf.subarray(0, this.#end));
        this.#buf = bigger;
      }
      const read = await this.#conn.read(this.#buf.subarray(this.#end));
      if (read === null) throw new Error("iopub connection closed");
      this.#end += read;
    }
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  async frame(): Promise<{ body: Uint8Array; more: boolean; command: boolean }> {
    const [flags] = await this.exact(1);
    let size: number;
    if (flags & 0x02) {
      const b = await this.exact(8);
      const view = new DataView(b.buffer, b.byteOffset, 8);
      size = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
    } else {
      size = (await this.exact(1))[0];
    }
    return {
      body: await this.exact(size),
      more: (flags & 0x01) !== 0,
      command: (flags & 0x04) !== 0,
    };
  }
}

function greeting(): Uint8Array {
  const g = new Uint8Array(64);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3; // version 3.0
  g.set(new TextEncoder().encode("NULL"), 12);
  return g; // as-server 0, filler zeros
}

function readyCommand(socketType: string): Uint8Array {
  const enc = new TextEncoder();
  const name = enc.encode("READY");
  const key = enc.encode("Socket-Type");
  const value = enc.encode(socketType);
  const body = new Uint8Array(1 + name.length + 1 + key.length + 4 + value.length);
  let o = 0;
  body[o++] = name.length;
  body.set(name, o);
  o += name.length;
  body[o++] = key.length;
  body.set(key, o);
  o += key.length;
  new DataView(body.buffer).setUint32(o, value.length);
  body.set(value, o + 4);
  return frame(body, false, true);
}

function frame(body: Uint8Array, more: boolean, command: boolean): Uint8Array {
  const long = body.length > 255;
  const head = long ? 9 : 2;
  const out = new Uint8Array(head + body.length);
  out[0] = (more ? 0x01 : 0) | (long ? 0x02 : 0) | (command ? 0x04 : 0);
  if (long) new DataView(out.buffer).setUint32(5, body.length);
  else out[1] = body.length;
  out.set(body, head);
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length;) o += await conn.write(bytes.subarray(o));
}
