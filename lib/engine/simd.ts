/**
 * The fused kernels' loops as WebAssembly SIMD, built with `wasm_asm.ts` and instantiated on
 * the tfjs wasm backend's own memory: each function reads and writes tensors where they lie,
 * four float32 lanes per instruction, with a scalar loop for the last `n mod 4` values.
 *
 * Every loop computes what the chain of tfjs ops it replaces computes (see `fused.ts`); where
 * that chain's float32 rounding is visible the same rounding happens here (the AdamW update is
 * bit for bit the unfused one; LayerNorm's row sums add in another order, within float32
 * rounding of tfjs's).
 *
 * exp(x) for the sigmoid: x = k·ln 2 + r with k = nearest(x·log₂e) and r = x − k·ln 2 (ln 2 in
 * two parts, the first exact in float32 products with |k| ≤ 128), so |r| ≤ ln2/2; e^r by its
 * Taylor polynomial to r⁷ (remainder below 0.35⁸/8! ≈ 6e-9, a tenth of float32's
 * resolution) in Horner form; 2^k built in the float's exponent bits. x is first clamped to
 * [−87.3, 88.3], where 2^k stays a normal float.
 *
 * @module
 */
import { assemble, Code, F32, F64, type FunctionDef, I32, V128 } from "./wasm_asm.ts";

/** Emits code that leaves one value on the stack (4 lanes in vector mode, one f32 otherwise). */
type Expr = () => void;

/** The arithmetic of one loop body, emitted as SIMD (`vector`) or scalar f32 instructions. */
class Ops {
  constructor(readonly c: Code, readonly vector: boolean, readonly index: number) {}

  /** The value at `pointer + index` (pointer: an i32 local holding a byte address). */
  load(pointer: number): Expr {
    return () => {
      this.c.get(pointer).get(this.index).op(0x6a);
      if (this.vector) this.c.mem(0x00, 2, true);
      else this.c.mem(0x2a, 2);
    };
  }

  /** Stores `value` at `pointer + index`. */
  store(pointer: number, value: Expr): void {
    this.c.get(pointer).get(this.index).op(0x6a);
    value();
    if (this.vector) this.c.mem(0x0b, 2, true);
    else this.c.mem(0x38, 2);
  }

  /** A constant (splat over the lanes). */
  k(x: number): Expr {
    return () => {
      if (this.vector) this.c.v128f32(x);
      else this.c.f32(x);
    };
  }

  /** An f32 local (a parameter), splat over the lanes. */
  scalar(local: number): Expr {
    return () => {
      this.c.get(local);
      if (this.vector) this.c.simd(0x13);
    };
  }

  /** Evaluates `value` once into a new local; returns an expression that reads it. */
  let(value: Expr): Expr {
    const local = this.c.local(this.vector ? V128 : F32);
    value();
    this.c.set(local);
    return () => void this.c.get(local);
  }

  #binary(simd: number, scalar: number): (a: Expr, b: Expr) => Expr {
    return (a, b) => () => {
      a();
      b();
      if (this.vector) this.c.simd(simd);
      else this.c.op(scalar);
    };
  }

  #unary(simd: number, scalar: number): (a: Expr) => Expr {
    return (a) => () => {
      a();
      if (this.vector) this.c.simd(simd);
      else this.c.op(scalar);
    };
  }

  add = this.#binary(0xe4, 0x92);
  sub = this.#binary(0xe5, 0x93);
  mul = this.#binary(0xe6, 0x94);
  div = this.#binary(0xe7, 0x95);
  /** min and max that need not propagate NaN of their second operand (one x86 instruction). */
  pmin = this.#binary(0xea, 0x96);
  pmax = this.#binary(0xeb, 0x97);
  sqrt = this.#unary(0xe3, 0x91);

  /**
   * e^x (see the module documentation). k = round(x·log₂e) comes from adding M = 1.5·2^23:
   * t = x·log₂e + M rounds to an integer whose low mantissa bits are k (M − 2^22 < t < M +
   * 2^22), t − M is k exactly, and (bits of t + 127) shifted left by 23 are the float 2^k (M's
   * own bits shift out).
   */
  exp(x: Expr): Expr {
    return () => {
      const v = this.let(this.pmax(this.pmin(x, this.k(88.3)), this.k(-87.3)));
      const t = this.let(this.add(this.mul(v, this.k(Math.LOG2E)), this.k(MAGIC)));
      const k = this.let(this.sub(t, this.k(MAGIC)));
      const r = this.let(
        this.sub(this.sub(v, this.mul(k, this.k(LN2_HI))), this.mul(k, this.k(LN2_LO))),
      );
      let p = this.k(1 / 5040);
      for (const coefficient of [1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1]) {
        p = this.add(this.mul(p, r), this.k(coefficient));
      }
      p();
      this.add(t, this.k(127))();
      if (this.vector) this.c.i32(23).simd(0xab);
      else this.c.op(0xbc).i32(23).op(0x74).op(0xbe); // i32.reinterpret_f32, shl, f32.reinterpret_i32
      this.mul(() => {}, () => {})(); // p · 2^k (both already on the stack)
    };
  }

  /** σ(x) = 1 / (1 + e^−x). */
  sigmoid(x: Expr): Expr {
    return this.div(this.k(1), this.add(this.k(1), this.exp(this.sub(this.k(0), x))));
  }
}

/** ln 2 = LN2_HI + LN2_LO, LN2_HI with 16 significant bits (k·LN2_HI exact for |k| ≤ 256). */
const LN2_HI = 0.693145751953125;
const LN2_LO = Math.LN2 - LN2_HI;
/** 1.5·2^23: adding it rounds a float of magnitude below 2^22 to an integer. */
const MAGIC = 12582912;

/** Byte offsets of a row loop: index local, end of the 4-lane part, end of the row. */
interface Span {
  index: number;
  vectorEnd: number;
  end: number;
}

/** Emits `index = 0`, the 4-lane loop over [0, vectorEnd), then the scalar loop to `end`. */
function forSpan(c: Code, span: Span, body: (o: Ops) => void): void {
  const { index, vectorEnd, end } = span;
  c.i32(0).set(index);
  for (const [vector, limit, step] of [[true, vectorEnd, 16], [false, end, 4]] as const) {
    c.loop(
      () => c.get(index).get(limit).op(0x4f), // i32.ge_u
      () => {
        body(new Ops(c, vector, index));
        c.get(index).i32(step).op(0x6a).set(index);
      },
    );
  }
}

/** Sets `span.end` = n·4 bytes and `span.vectorEnd` = the multiple of 16 below it. */
function setSpan(c: Code, span: Span, count: number): void {
  c.get(count).i32(2).op(0x74).tee(span.end).i32(-16).op(0x71).set(span.vectorEnd);
}

function newSpan(c: Code): Span {
  return { index: c.local(I32), vectorEnd: c.local(I32), end: c.local(I32) };
}

/**
 * Emits code leaving the f32 sum over the span of `term` (lanes summed pairwise at the end).
 */
function sumSpan(c: Code, span: Span, term: (o: Ops) => Expr): void {
  const lanes = c.local(V128), tail = c.local(F32);
  c.simd(0x0c, ...new Array(16).fill(0)).set(lanes).f32(0).set(tail);
  forSpan(c, span, (o) => {
    const acc = o.vector ? lanes : tail;
    o.add(() => void c.get(acc), term(o))();
    c.set(acc);
  });
  for (const [a, b] of [[0, 1], [2, 3]]) {
    c.get(lanes).simd(0x1f, a).get(lanes).simd(0x1f, b).op(0x92);
  }
  c.op(0x92).get(tail).op(0x92);
}

/** An elementwise function over n values: parameters (n, ...pointers, ...scalars). */
function elementwise(
  name: string,
  pointers: number,
  scalars: number,
  body: (o: Ops, p: number[], s: number[]) => void,
): FunctionDef {
  const code = new Code([I32, ...Array(pointers).fill(I32), ...Array(scalars).fill(F32)]);
  const p = Array.from({ length: pointers }, (_, i) => 1 + i);
  const s = Array.from({ length: scalars }, (_, i) => 1 + pointers + i);
  const span = newSpan(code);
  setSpan(code, span, 0);
  forSpan(code, span, (o) => body(o, p, s));
  return { name, code };
}

/**
 * A function over the rows of a [rows, d] layout: parameters (rows, d, ...pointers,
 * ...scalars); `row` gets each pointer advanced to the current row (`rowPointers` of them,
 * the first ones) and the others as they are, and the span of one row.
 */
function rowwise(
  name: string,
  pointers: number,
  rowPointers: number,
  scalars: number,
  row: (c: Code, span: Span, p: number[], s: number[], d: number) => void,
): FunctionDef {
  const c = new Code([I32, I32, ...Array(pointers).fill(I32), ...Array(scalars).fill(F32)]);
  const [rows, d] = [0, 1];
  const p = Array.from({ length: pointers }, (_, i) => 2 + i);
  const s = Array.from({ length: scalars }, (_, i) => 2 + pointers + i);
  const r = c.local(I32);
  const span = newSpan(c);
  setSpan(c, span, d);
  const current = p.map((q, i) => (i < rowPointers ? c.local(I32) : q));
  c.i32(0).set(r);
  c.loop(
    () => c.get(r).get(rows).op(0x4f),
    () => {
      for (let i = 0; i < rowPointers; i++) {
        c.get(p[i]).get(r).get(span.end).op(0x6c).op(0x6a).set(current[i]);
      }
      row(c, span, current, s, d);
      c.get(r).i32(1).op(0x6a).set(r);
    },
  );
  return { name, code: c };
}

/** Emits the row's mean and 1/√(variance + eps) into the f32 locals `mean` and `rstd`. */
function rowStats(c: Code, span: Span, x: number, d: number, eps: number) {
  const mean = c.local(F32), rstd = c.local(F32);
  const dF = () => void c.get(d).op(0xb2); // f32.convert_i32_s
  sumSpan(c, span, (o) => o.load(x));
  dF();
  c.op(0x95).set(mean);
  sumSpan(c, span, (o) => {
    const centered = o.let(o.sub(o.load(x), o.scalar(mean)));
    return o.mul(centered, centered);
  });
  dF();
  c.op(0x95).get(eps).op(0x92).op(0x91); // sqrt(var + eps)
  c.set(rstd).f32(1).get(rstd).op(0x95).set(rstd);
  return { mean, rstd };
}

/**
 * (n, x) → Σ x², each square rounded to float32 (as a Square op rounds it) and summed in
 * float64: a float32 running sum over the millions of values of a model's gradient would
 * drift by up to n·2^−24 of itself.
 */
function sumSquares(): FunctionDef {
  const c = new Code([I32, I32], [F64]);
  const span = newSpan(c);
  const acc = c.local(V128), tail = c.local(F64), square = c.local(V128);
  setSpan(c, span, 0);
  c.simd(0x0c, ...new Array(16).fill(0)).set(acc).raw(0x44, 0, 0, 0, 0, 0, 0, 0, 0).set(tail);
  const at = () => c.get(1).get(span.index).op(0x6a);
  c.i32(0).set(span.index);
  c.loop(() => c.get(span.index).get(span.vectorEnd).op(0x4f), () => {
    at();
    c.mem(0x00, 2, true).tee(square).get(square).simd(0xe6).set(square); // x² in f32 lanes
    // acc += promote(lanes 0, 1) + promote(lanes 2, 3)
    c.get(acc).get(square).simd(0x5f).simd(0xf0);
    c.get(square).get(square)
      .simd(0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)
      .simd(0x5f).simd(0xf0).set(acc);
    c.get(span.index).i32(16).op(0x6a).set(span.index);
  });
  const value = c.local(F32);
  c.loop(() => c.get(span.index).get(span.end).op(0x4f), () => {
    at();
    c.mem(0x2a, 2).tee(value).get(value).op(0x94).op(0xbb).get(tail).op(0xa0).set(tail);
    c.get(span.index).i32(4).op(0x6a).set(span.index);
  });
  c.get(acc).simd(0x21, 0).get(acc).simd(0x21, 1).op(0xa0).get(tail).op(0xa0);
  return { name: "sumSquares", code: c };
}

const FUNCTIONS: FunctionDef[] = [
  sumSquares(),
  // (n, a, b, out)
  elementwise("add", 3, 0, (o, [a, b, out]) => o.store(out, o.add(o.load(a), o.load(b)))),
  // (n, w, m, v, g, outW, outM, outV; β1, 1−β1, β2, 1−β2, lr, decay, c1, c2, ε, scale of g)
  elementwise(
    "adamw",
    7,
    10,
    (o, [w, m, v, g, ow, om, ov], [b1, ob1, b2, ob2, lr, dec, c1, c2, e, gs]) => {
      const grad = o.let(o.mul(o.load(g), o.scalar(gs)));
      const mNew = o.let(o.add(o.mul(o.load(m), o.scalar(b1)), o.mul(grad, o.scalar(ob1))));
      const vNew = o.let(
        o.add(o.mul(o.load(v), o.scalar(b2)), o.mul(o.mul(grad, grad), o.scalar(ob2))),
      );
      const den = o.add(o.sqrt(o.div(vNew, o.scalar(c2))), o.scalar(e));
      const update = o.mul(o.div(o.div(mNew, o.scalar(c1)), den), o.scalar(lr));
      o.store(ow, o.sub(o.mul(o.load(w), o.scalar(dec)), update));
      o.store(om, mNew);
      o.store(ov, vNew);
    },
  ),
  // (n, x, y)
  elementwise("quickGelu", 2, 0, (o, [x, y]) => {
    const xv = o.let(o.load(x));
    o.store(y, o.mul(xv, o.sigmoid(o.mul(xv, o.k(1.702)))));
  }),
  // (n, dy, x, dx): dy·s + ((dy·x)·(s·(1 − s)))·1.702
  elementwise("quickGeluGrad", 3, 0, (o, [dy, x, dx]) => {
    const g = o.let(o.load(dy)), xv = o.let(o.load(x));
    const s = o.let(o.sigmoid(o.mul(xv, o.k(1.702))));
    const slope = o.mul(o.mul(o.mul(g, xv), o.mul(s, o.sub(o.k(1), s))), o.k(1.702));
    o.store(dx, o.add(o.mul(g, s), slope));
  }),
  // (rows, d, x, y, γ, β; eps): y = ((x − μ)·r)·γ + β
  rowwise("layerNorm", 4, 2, 1, (c, span, [x, y, gamma, beta], [eps], d) => {
    const { mean, rstd } = rowStats(c, span, x, d, eps);
    forSpan(c, span, (o) => {
      const centered = o.sub(o.load(x), o.scalar(mean));
      o.store(y, o.add(o.mul(o.mul(centered, o.scalar(rstd)), o.load(gamma)), o.load(beta)));
    });
  }),
  // (rows, d, dy, x, dx, γ; eps): dx = r·(ĝ − mean ĝ − x̂·mean(ĝ·x̂)), ĝ = dy·γ
  rowwise("layerNormGrad", 4, 3, 1, (c, span, [dy, x, dx, gamma], [eps], d) => {
    const { mean, rstd } = rowStats(c, span, x, d, eps);
    const mg = c.local(F32), mgx = c.local(F32);
    const xhat = (o: Ops) => o.mul(o.sub(o.load(x), o.scalar(mean)), o.scalar(rstd));
    sumSpan(c, span, (o) => o.mul(o.load(dy), o.load(gamma)));
    c.get(d).op(0xb2).op(0x95).set(mg);
    sumSpan(c, span, (o) => o.mul(o.mul(o.load(dy), o.load(gamma)), xhat(o)));
    c.get(d).op(0xb2).op(0x95).set(mgx);
    forSpan(c, span, (o) => {
      const ghat = o.mul(o.load(dy), o.load(gamma));
      const inner = o.sub(o.sub(ghat, o.scalar(mg)), o.mul(xhat(o), o.scalar(mgx)));
      o.store(dx, o.mul(o.scalar(rstd), inner));
    });
  }),
  // (rows, d, dy, x, dγ; eps): dγ += dy·x̂ row by row (dγ zeroed by the caller)
  rowwise("layerNormGammaGrad", 3, 2, 1, (c, span, [dy, x, dGamma], [eps], d) => {
    const { mean, rstd } = rowStats(c, span, x, d, eps);
    forSpan(c, span, (o) => {
      const xhat = o.mul(o.sub(o.load(x), o.scalar(mean)), o.scalar(rstd));
      o.store(dGamma, o.add(o.load(dGamma), o.mul(o.load(dy), xhat)));
    });
  }),
];

/** The SIMD functions, called with byte addresses in the memory they were instantiated on. */
export interface SimdKernels {
  add(n: number, a: number, b: number, out: number): void;
  adamw(
    n: number,
    w: number,
    m: number,
    v: number,
    g: number,
    outW: number,
    outM: number,
    outV: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    lr: number,
    decay: number,
    c1: number,
    c2: number,
    epsilon: number,
    gradScale: number,
  ): void;
  sumSquares(n: number, x: number): number;
  quickGelu(n: number, x: number, y: number): void;
  quickGeluGrad(n: number, dy: number, x: number, dx: number): void;
  layerNorm(
    rows: number,
    d: number,
    x: number,
    y: number,
    gamma: number,
    beta: number,
    eps: number,
  ): void;
  layerNormGrad(
    rows: number,
    d: number,
    dy: number,
    x: number,
    dx: number,
    gamma: number,
    eps: number,
  ): void;
  layerNormGammaGrad(
    rows: number,
    d: number,
    dy: number,
    x: number,
    dGamma: number,
    eps: number,
  ): void;
}

let bytes: Uint8Array<ArrayBuffer> | undefined;

/**
 * The module's bytes (assembled once).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { simdModuleBytes } from "./simd.ts";
 * equal(WebAssembly.validate(simdModuleBytes()), true); // where wasm SIMD runs
 * ```
 */
export function simdModuleBytes(): Uint8Array<ArrayBuffer> {
  bytes ??= assemble(FUNCTIONS);
  return bytes;
}

/**
 * Instantiates the kernels on `memory` (the tfjs wasm backend's), or returns undefined where
 * the runtime has no wasm SIMD.
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { simdKernels } from "./simd.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const k = simdKernels(memory)!;
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4, 5], 0);
 * f.set([10, 20, 30, 40, 50], 8);
 * k.add(5, 0, 32, 64);
 * deepEqual([...f.slice(16, 21)], [11, 22, 33, 44, 55]);
 * ```
 */
export function simdKernels(memory: WebAssembly.Memory): SimdKernels | undefined {
  const module = simdModuleBytes();
  if (!WebAssembly.validate(module)) return undefined;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(module), { env: { memory } });
  return instance.exports as unknown as SimdKernels;
}
