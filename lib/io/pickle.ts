/**
 * A restricted reader of Python pickles: it understands the opcodes that plain data (None,
 * booleans, numbers, strings, bytes, lists, tuples, dicts) is pickled with, and a caller-given
 * whitelist of globals whose calls (REDUCE) and persistent ids are handed to the caller's own
 * functions. It never imports or calls anything: a pickle naming a global outside the
 * whitelist, or using an opcode that builds arbitrary objects (INST, OBJ, NEWOBJ, EXT, …), is
 * rejected with an error naming the global or the opcode and its position.
 *
 * @module
 */

/** A value the restricted reader can produce. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleDict
  | PickleGlobal
  | PickleObject;

/** A Python dict (plain or `collections.OrderedDict`): keys are strings or numbers. */
export type PickleDict = Map<string | number, PickleValue>;

/** A whitelisted global, by its module and name. */
export class PickleGlobal {
  /** Records a reference to `module.name` (nothing is imported). */
  constructor(
    /** The Python module. */
    readonly module: string,
    /** The name in that module. */
    readonly name: string,
  ) {}

  /** `module.name`. */
  get fullName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Base of values the caller's functions build (tensors, storages); opaque to the reader. */
export abstract class PickleObject {}

/** What the caller allows a pickle to use. */
export interface PickleRules {
  /** Allowed globals as `module.name`; the reader rejects every other global. */
  readonly globals: ReadonlySet<string>;
  /**
   * Called for REDUCE on an allowed global with the argument tuple; returns the result or
   * throws to reject the call.
   */
  call(fn: PickleGlobal, args: PickleValue[]): PickleValue;
  /** Called for BINPERSID with the persistent id; returns the object it stands for. */
  persistentLoad(id: PickleValue): PickleValue;
}

/** An error about a pickle, naming where it was read from and the position of the opcode. */
export class PickleError extends Error {
  /** Builds the error; the message reads `WHERE: pickle byte POS: PROBLEM`. */
  constructor(readonly where: string, readonly position: number, problem: string) {
    super(`${where}: pickle byte ${position}: ${problem}`);
    this.name = "PickleError";
  }
}

const MARK = Symbol("mark");
type StackItem = PickleValue | typeof MARK;

/** Opcodes that construct arbitrary objects or need features this reader leaves out. */
const REFUSED: Record<number, string> = {
  0x69: "INST (builds an object of any class)",
  0x6f: "OBJ (builds an object of any class)",
  0x81: "NEWOBJ (builds an object of any class)",
  0x92: "NEWOBJ_EX (builds an object of any class)",
  0x82: "EXT1 (extension registry)",
  0x83: "EXT2 (extension registry)",
  0x84: "EXT4 (extension registry)",
  0x50: "PERSID (text persistent id)",
  0x97: "NEXT_BUFFER (out-of-band buffer)",
  0x98: "READONLY_BUFFER (out-of-band buffer)",
};

/**
 * Reads a pickle under `rules`. `where` names the source in errors (a file and member).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { readPickle } from "./pickle.ts";
 * // pickle.dumps({"a": [1, 2.5, None]}, protocol=2)
 * const bytes = Uint8Array.from(atob("gAJ9cQBYAQAAAGFxAV1xAihLAUdABAAAAAAAAE5lcy4="), (c) => c.charCodeAt(0));
 * const none = { globals: new Set<string>(), call: () => null, persistentLoad: () => null };
 * deepEqual(readPickle(bytes, none, "example"), new Map([["a", [1, 2.5, null]]]));
 * ```
 */
export function readPickle(bytes: Uint8Array, rules: PickleRules, where: string): PickleValue {
  return new Reader(bytes, rules, where).run();
}

class Reader {
  readonly #view: DataView;
  #pos = 0;
  #op = 0; // position of the current opcode, for errors
  readonly #stack: StackItem[] = [];
  readonly #memo = new Map<number, PickleValue>();

  constructor(
    readonly bytes: Uint8Array,
    readonly rules: PickleRules,
    readonly where: string,
  ) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(problem: string): PickleError {
    return new PickleError(this.where, this.#op, problem);
  }

  run(): PickleValue {
    while (this.#pos < this.bytes.length) {
      this.#op = this.#pos;
      const code = this.bytes[this.#pos++];
      if (code === 0x2e) return this.finish(); // STOP
      this.step(code);
    }
    throw this.fail("the pickle ends without a STOP opcode (truncated?)");
  }

  finish(): PickleValue {
    if (this.#stack.length !== 1) {
      throw this.fail(`STOP with ${this.#stack.length} items on the stack (expected 1)`);
    }
    return this.value(this.#stack.pop()!);
  }

  step(code: number): void {
    if (this.data(code) || this.containers(code) || this.memo(code) || this.objects(code)) return;
    const refused = REFUSED[code];
    const name = refused ?? `0x${code.toString(16).padStart(2, "0")}`;
    throw this.fail(
      `opcode ${name} is not allowed: only plain data, whitelisted functions and persistent ` +
        `ids are read (nothing from the pickle is executed)`,
    );
  }

  /** Scalars and strings. */
  data(code: number): boolean {
    const push = (v: PickleValue) => this.#stack.push(v);
    switch (code) {
      case 0x80: // PROTO
        this.take(1);
        return true;
      case 0x95: // FRAME (a length hint only)
        this.take(8);
        return true;
      case 0x4e: // NONE
        return push(null), true;
      case 0x88: // NEWTRUE
        return push(true), true;
      case 0x89: // NEWFALSE
        return push(false), true;
      case 0x4a: // BININT
        return push(this.#view.getInt32(this.take(4), true)), true;
      case 0x4b: // BININT1
        return push(this.bytes[this.take(1)]), true;
      case 0x4d: // BININT2
        return push(this.#view.getUint16(this.take(2), true)), true;
      case 0x8a: // LONG1
        return push(this.long(this.bytes[this.take(1)])), true;
      case 0x8b: // LONG4
        return push(this.long(this.length(4))), true;
      case 0x47: // BINFLOAT (big-endian)
        return push(this.#view.getFloat64(this.take(8), false)), true;
      case 0x58: // BINUNICODE
        return push(this.utf8(this.length(4))), true;
      case 0x8c: // SHORT_BINUNICODE
        return push(this.utf8(this.length(1))), true;
      case 0x8d: // BINUNICODE8
        return push(this.utf8(this.length(8))), true;
      case 0x55: // SHORT_BINSTRING (Python 2 str, read as Latin-1)
        return push(this.latin1(this.length(1))), true;
      case 0x54: // BINSTRING
        return push(this.latin1(this.length(4))), true;
      case 0x43: // SHORT_BINBYTES
        return push(this.raw(this.length(1))), true;
      case 0x42: // BINBYTES
        return push(this.raw(this.length(4))), true;
      case 0x8e: // BINBYTES8
        return push(this.raw(this.length(8))), true;
    }
    return false;
  }

  /** Marks, tuples, lists and dicts. */
  containers(code: number): boolean {
    const s = this.#stack;
    switch (code) {
      case 0x28: // MARK
        return s.push(MARK), true;
      case 0x30: // POP
        return this.pop(), true;
      case 0x31: // POP_MARK
        return this.popMark(), true;
      case 0x32: // DUP
        return s.push(this.top()), true;
      case 0x29: // EMPTY_TUPLE
      case 0x5d: // EMPTY_LIST
        return s.push([]), true;
      case 0x7d: // EMPTY_DICT
        return s.push(new Map()), true;
      case 0x74: // TUPLE
      case 0x6c: // LIST
        return s.push(this.popMark()), true;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = code - 0x84;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(this.pop());
        return s.push(items), true;
      }
      case 0x64: // DICT
        return s.push(this.setItems(new Map(), this.popMark())), true;
      case 0x61: { // APPEND
        const item = this.pop();
        this.list(0).push(item);
        return true;
      }
      case 0x65: { // APPENDS
        const items = this.popMark();
        this.list(0).push(...items);
        return true;
      }
      case 0x73: { // SETITEM
        const value = this.pop(), key = this.pop();
        this.setItems(this.dict(0), [key, value]);
        return true;
      }
      case 0x75: { // SETITEMS
        const items = this.popMark();
        this.setItems(this.dict(0), items);
        return true;
      }
    }
    return false;
  }

  /** The memo. */
  memo(code: number): boolean {
    switch (code) {
      case 0x71: // BINPUT
        return this.#memo.set(this.bytes[this.take(1)], this.top()), true;
      case 0x72: // LONG_BINPUT
        return this.#memo.set(this.#view.getUint32(this.take(4), true), this.top()), true;
      case 0x94: // MEMOIZE
        return this.#memo.set(this.#memo.size, this.top()), true;
      case 0x68: // BINGET
        return this.#stack.push(this.recall(this.bytes[this.take(1)])), true;
      case 0x6a: // LONG_BINGET
        return this.#stack.push(this.recall(this.#view.getUint32(this.take(4), true))), true;
    }
    return false;
  }

  /** Globals, calls of whitelisted globals, persistent ids and dict state. */
  objects(code: number): boolean {
    switch (code) {
      case 0x63: { // GLOBAL: "module\nname\n"
        const module = this.line(), name = this.line();
        return this.#stack.push(this.global(module, name)), true;
      }
      case 0x93: { // STACK_GLOBAL
        const name = this.pop(), module = this.pop();
        if (typeof module !== "string" || typeof name !== "string") {
          throw this.fail("STACK_GLOBAL needs two strings");
        }
        return this.#stack.push(this.global(module, name)), true;
      }
      case 0x52: { // REDUCE
        const args = this.pop(), fn = this.pop();
        if (!(fn instanceof PickleGlobal) || !Array.isArray(args)) {
          throw this.fail("REDUCE needs a whitelisted global and an argument tuple");
        }
        return this.#stack.push(this.call(fn, args)), true;
      }
      case 0x51: // BINPERSID
        return this.#stack.push(this.persistent(this.pop())), true;
      case 0x62: { // BUILD: only a dict's attributes (an OrderedDict's `_metadata`), dropped
        const state = this.pop();
        if (!(this.top() instanceof Map) || !(state instanceof Map)) {
          throw this.fail("BUILD is allowed only to set a dict's attributes");
        }
        return true;
      }
    }
    return false;
  }

  global(module: string, name: string): PickleGlobal {
    const full = `${module}.${name}`;
    if (!this.rules.globals.has(full)) {
      throw this.fail(
        `refers to ${full}, which is not among the allowed globals ` +
          `(${[...this.rules.globals].join(", ")}); refusing to load it`,
      );
    }
    return new PickleGlobal(module, name);
  }

  call(fn: PickleGlobal, args: PickleValue[]): PickleValue {
    try {
      return this.rules.call(fn, args);
    } catch (err) {
      throw this.fail(`${fn.fullName}: ${(err as Error).message}`);
    }
  }

  persistent(id: PickleValue): PickleValue {
    try {
      return this.rules.persistentLoad(id);
    } catch (err) {
      throw this.fail(`persistent id: ${(err as Error).message}`);
    }
  }

  setItems(dict: PickleDict, items: PickleValue[]): PickleDict {
    if (items.length % 2 !== 0) throw this.fail("odd number of items for a dict");
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i];
      if (typeof key !== "string" && typeof key !== "number") {
        throw this.fail(`dict key of type ${typeName(key)} (only strings and numbers allowed)`);
      }
      dict.set(key, items[i + 1]);
    }
    return dict;
  }

  take(n: number): number {
    const at = this.#pos;
    if (at + n > this.bytes.length) throw this.fail("the pickle ends inside an opcode");
    this.#pos += n;
    return at;
  }

  length(size: 1 | 4 | 8): number {
    const at = this.take(size);
    // Compared as a BigInt and printed whole: a double would round lengths above 2^53.
    const n = size === 1
      ? BigInt(this.bytes[at])
      : size === 4
      ? BigInt(this.#view.getUint32(at, true))
      : this.#view.getBigUint64(at, true);
    if (n > BigInt(this.bytes.length - this.#pos)) {
      throw this.fail(`length ${n} runs past the pickle`);
    }
    return Number(n);
  }

  raw(n: number): Uint8Array {
    const at = this.take(n);
    return this.bytes.slice(at, at + n);
  }

  utf8(n: number): string {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.raw(n));
    } catch {
      throw this.fail("string is not valid UTF-8");
    }
  }

  latin1(n: number): string {
    return String.fromCharCode(...this.raw(n));
  }

  line(): string {
    const end = this.bytes.indexOf(0x0a, this.#pos);
    if (end < 0) throw this.fail("GLOBAL name without a newline");
    return this.latin1(end - this.#pos + 1).slice(0, -1);
  }

  /** A little-endian two's-complement integer of n bytes. */
  long(n: number): number | bigint {
    const at = this.take(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.bytes[at + i]);
    if (n > 0 && this.bytes[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  }

  recall(key: number): PickleValue {
    if (!this.#memo.has(key)) throw this.fail(`memo entry ${key} was never stored`);
    return this.#memo.get(key)!;
  }

  value(item: StackItem): PickleValue {
    if (item === MARK) throw this.fail("a MARK where a value was expected");
    return item;
  }

  top(): PickleValue {
    if (this.#stack.length === 0) throw this.fail("the stack is empty");
    return this.value(this.#stack[this.#stack.length - 1]);
  }

  pop(): PickleValue {
    if (this.#stack.length === 0) throw this.fail("the stack is empty");
    return this.value(this.#stack.pop()!);
  }

  popMark(): PickleValue[] {
    const at = this.#stack.lastIndexOf(MARK);
    if (at < 0) throw this.fail("no MARK on the stack");
    const items = this.#stack.splice(at + 1) as PickleValue[];
    this.#stack.pop();
    return items;
  }

  list(depth: number): PickleValue[] {
    const v = this.#stack[this.#stack.length - 1 - depth];
    if (!Array.isArray(v)) throw this.fail("APPEND needs a list");
    return v;
  }

  dict(depth: number): PickleDict {
    const v = this.#stack[this.#stack.length - 1 - depth];
    if (!(v instanceof Map)) throw this.fail("SETITEM needs a dict");
    return v;
  }
}

/** A Python-ish type name for messages. */
function typeName(v: StackItem): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return "tuple/list";
  if (v instanceof Map) return "dict";
  if (v instanceof PickleGlobal) return `global ${v.fullName}`;
  return typeof v;
}
