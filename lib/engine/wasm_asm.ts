/**
 * A small WebAssembly assembler: enough of the binary format to build a module of numeric
 * functions over an imported memory (`env.memory`), with 128-bit SIMD. The fused kernels
 * (`simd.ts`) are written with it and run on the tfjs wasm backend's own heap, so that they
 * read and write tensors in place, four float32 lanes at a time.
 *
 * Format (WebAssembly core specification 1.0 + fixed-width SIMD): the header, then the type,
 * import, function, export and code sections; integers as LEB128; every function's body is a
 * byte sequence of instructions ending in `end` (0x0B).
 *
 * @module
 */

/** Value types. */
export const I32 = 0x7f, F32 = 0x7d, F64 = 0x7c, V128 = 0x7b;

/** Unsigned LEB128. */
function uleb(n: number, out: number[]): void {
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
}

/** Signed LEB128 (32-bit). */
function sleb(n: number, out: number[]): void {
  n |= 0;
  while (true) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

const scratch = new DataView(new ArrayBuffer(4));

/**
 * The body of one function under construction: instructions appended in order. Locals are
 * numbered after the parameters, in the order {@linkcode Code.local} declares them.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { Code, F32, I32 } from "./wasm_asm.ts";
 * const c = new Code([I32]);
 * const x = c.local(F32);
 * c.f32(1.5).set(x);
 * equal(x, 1); // locals are numbered after the parameters
 * ```
 */
export class Code {
  /** Instruction bytes. */
  readonly bytes: number[] = [];
  /** Types of the declared locals (after the parameters). */
  readonly locals: number[] = [];

  /** A body for a function with these parameter types (and result types, if any). */
  constructor(readonly params: number[], readonly results: number[] = []) {}

  /** Declares a local of type `type`; returns its index. */
  local(type: number): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  /** Appends raw bytes. */
  raw(...bytes: number[]): this {
    this.bytes.push(...bytes);
    return this;
  }

  /** `local.get i`. */
  get(i: number): this {
    this.bytes.push(0x20);
    uleb(i, this.bytes);
    return this;
  }

  /** `local.set i`. */
  set(i: number): this {
    this.bytes.push(0x21);
    uleb(i, this.bytes);
    return this;
  }

  /** `local.tee i`. */
  tee(i: number): this {
    this.bytes.push(0x22);
    uleb(i, this.bytes);
    return this;
  }

  /** `i32.const n`. */
  i32(n: number): this {
    this.bytes.push(0x41);
    sleb(n, this.bytes);
    return this;
  }

  /** `f32.const x`. */
  f32(x: number): this {
    scratch.setFloat32(0, x, true);
    this.bytes.push(0x43, ...new Uint8Array(scratch.buffer));
    return this;
  }

  /** `v128.const` with `x` (as float32) in every lane. */
  v128f32(x: number): this {
    scratch.setFloat32(0, x, true);
    const lane = [...new Uint8Array(scratch.buffer)];
    return this.simd(0x0c, ...lane, ...lane, ...lane, ...lane);
  }

  /** A one-byte opcode (i32 and f32 arithmetic, control). */
  op(code: number): this {
    this.bytes.push(code);
    return this;
  }

  /** A SIMD instruction: prefix 0xFD, LEB128 opcode, then its immediates. */
  simd(code: number, ...immediates: number[]): this {
    this.bytes.push(0xfd);
    uleb(code, this.bytes);
    this.bytes.push(...immediates);
    return this;
  }

  /** A memory access with alignment exponent `align` and offset 0. */
  mem(code: number, align: number, simd = false): this {
    if (simd) this.simd(code, align, 0);
    else this.bytes.push(code, align, 0);
    return this;
  }

  /**
   * `block; loop; <cond> br_if 1; body; step; br 0; end; end`: runs `body` while `exit` (code
   * leaving an i32 on the stack) is false.
   */
  loop(exit: (c: this) => void, body: (c: this) => void): this {
    this.bytes.push(0x02, 0x40, 0x03, 0x40);
    exit(this);
    this.bytes.push(0x0d, 1);
    body(this);
    this.bytes.push(0x0c, 0, 0x0b, 0x0b);
    return this;
  }
}

/** One exported function of a module. */
export interface FunctionDef {
  /** Export name. */
  name: string;
  /** Its body (parameters and locals inside). */
  code: Code;
}

/**
 * Encodes a module that imports its memory as `env.memory` and exports `functions`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { assemble, Code, I32 } from "./wasm_asm.ts";
 * const bytes = assemble([{ name: "nop", code: new Code([I32]) }]);
 * equal(WebAssembly.validate(bytes), true);
 * ```
 */
export function assemble(functions: readonly FunctionDef[]): Uint8Array<ArrayBuffer> {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const section = (id: number, body: number[]) => {
    out.push(id);
    uleb(body.length, out);
    out.push(...body);
  };
  const name = (text: string, into: number[]) => {
    const bytes = new TextEncoder().encode(text);
    uleb(bytes.length, into);
    into.push(...bytes);
  };
  const types: number[] = [];
  uleb(functions.length, types);
  for (const f of functions) {
    types.push(0x60);
    uleb(f.code.params.length, types);
    types.push(...f.code.params);
    uleb(f.code.results.length, types);
    types.push(...f.code.results);
  }
  section(1, types);
  const imports: number[] = [1];
  name("env", imports);
  name("memory", imports);
  imports.push(0x02, 0x00, 0x01); // memory, limits: minimum 1 page, no maximum
  section(2, imports);
  const funcs: number[] = [];
  uleb(functions.length, funcs);
  functions.forEach((_, i) => uleb(i, funcs));
  section(3, funcs);
  const exports: number[] = [];
  uleb(functions.length, exports);
  functions.forEach((f, i) => {
    name(f.name, exports);
    exports.push(0x00);
    uleb(i, exports);
  });
  section(7, exports);
  const code: number[] = [];
  uleb(functions.length, code);
  for (const f of functions) {
    const body: number[] = [];
    uleb(f.code.locals.length, body);
    for (const type of f.code.locals) body.push(1, type);
    body.push(...f.code.bytes, 0x0b);
    uleb(body.length, code);
    code.push(...body);
  }
  section(10, code);
  return new Uint8Array(out);
}
