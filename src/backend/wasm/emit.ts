// A small WebAssembly binary emitter: enough of the module format (types, imported memory, functions, exports) and
// of the instruction set (MVP integer/float ops, bulk memory, SIMD128) to build attnflow's Wasm kernels at startup
// from TypeScript, with no toolchain and no files: the module bytes are generated, validated and compiled in-process.
//
// Code is written as byte arrays: an expression is the bytes that push its value (children first, stack order),
// a statement is the bytes of an expression that pushes nothing. FuncBuilder appends statements and tracks the
// nesting of blocks so branches can name their target label instead of counting depths by hand.

export const i32 = 0x7f, f32 = 0x7d, f64 = 0x7c, v128 = 0x7b;
export type ValType = typeof i32 | typeof f32 | typeof f64 | typeof v128;
/** Bytes as a tree (flattened once, when emitted): building an expression never copies its children. */
export type Expr = ExprItem[];
export type ExprItem = number | Expr;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`uleb: bad value ${n}`);
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(n: number): number[] {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0xffffffff) throw new Error(`sleb: bad value ${n}`);
  n |= 0;
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}

const f32buf = new Float32Array(1), f32bytes = new Uint8Array(f32buf.buffer);
function f32le(x: number): number[] { f32buf[0] = x; return [...f32bytes]; }
const f64buf = new Float64Array(1), f64bytes = new Uint8Array(f64buf.buffer);
function f64le(x: number): number[] { f64buf[0] = x; return [...f64bytes]; }

/** Append src to out (no spread: arrays here can be tens of kilobytes). */
function append(out: number[], src: ArrayLike<number>): number[] { for (let i = 0; i < src.length; i++) out.push(src[i]); return out; }
function vec(items: number[][]): number[] { const out = uleb(items.length); for (const it of items) append(out, it); return out; }
function str(s: string): number[] { const b = new TextEncoder().encode(s); return append(uleb(b.length), b); }
function section(id: number, body: number[]): number[] { return body.length ? append(append([id], uleb(body.length)), body) : []; }

/** Concatenate expressions/statements. */
export function seq(...parts: Expr[]): Expr { return parts; }

/** Append the bytes of a tree to out. */
export function flattenInto(e: Expr, out: number[]): void {
  for (const x of e) if (typeof x === "number") out.push(x); else flattenInto(x, out);
}

// ------------------------------------------------------------------------------------------------- instructions
const mem = (op: number, align: number) => (addr: Expr, offset = 0): Expr => [addr, op, align, uleb(offset)];
const memSt = (op: number, align: number) => (addr: Expr, value: Expr, offset = 0): Expr => [addr, value, op, align, uleb(offset)];
const bin = (op: number) => (a: Expr, b: Expr): Expr => [a, b, op];
const un = (op: number) => (a: Expr): Expr => [a, op];
const simd = (op: number): number[] => [0xfd, ...uleb(op)];
const vbin = (op: number) => (a: Expr, b: Expr): Expr => [a, b, simd(op)];
const vun = (op: number) => (a: Expr): Expr => [a, simd(op)];
const vmem = (op: number) => (addr: Expr, offset = 0): Expr => [addr, simd(op), 2, uleb(offset)];

export const I32 = {
  const: (v: number): Expr => [0x41, ...sleb(v)],
  load: mem(0x28, 2), load8u: mem(0x2d, 0), store: memSt(0x36, 2), store8: memSt(0x3a, 0),
  eqz: un(0x45), eq: bin(0x46), ne: bin(0x47), lt: bin(0x48), ltu: bin(0x49), gt: bin(0x4a), gtu: bin(0x4b),
  le: bin(0x4c), leu: bin(0x4d), ge: bin(0x4e), geu: bin(0x4f),
  add: bin(0x6a), sub: bin(0x6b), mul: bin(0x6c), divs: bin(0x6d), divu: bin(0x6e), rems: bin(0x6f), remu: bin(0x70),
  and: bin(0x71), or: bin(0x72), xor: bin(0x73), shl: bin(0x74), shrs: bin(0x75), shru: bin(0x76),
  truncF32: un(0xa8), reinterpret: un(0xbc),
  min: (a: Expr, b: Expr): Expr => [a, b, a, b, 0x48, 0x1b],   // select(a, b, a < b): a, b must be pure
  max: (a: Expr, b: Expr): Expr => [a, b, a, b, 0x4a, 0x1b],
};

export const F32 = {
  const: (v: number): Expr => [0x43, ...f32le(v)],
  load: mem(0x2a, 2), store: memSt(0x38, 2),
  eq: bin(0x5b), ne: bin(0x5c), lt: bin(0x5d), gt: bin(0x5e), le: bin(0x5f), ge: bin(0x60),
  abs: un(0x8b), neg: un(0x8c), floor: un(0x8e), sqrt: un(0x91),
  add: bin(0x92), sub: bin(0x93), mul: bin(0x94), div: bin(0x95), min: bin(0x96), max: bin(0x97),
  fromI32: un(0xb2), fromF64: un(0xb6), reinterpret: un(0xbe),
};

export const F64 = {
  const: (v: number): Expr => [0x44, ...f64le(v)],
  add: bin(0xa0), sub: bin(0xa1), mul: bin(0xa2), div: bin(0xa3),
  fromF32: un(0xbb), fromI32: un(0xb7),
};

export const V128 = {
  load: vmem(0x00), loadSplat32: vmem(0x09),
  /** v128.load64_zero: 8 bytes into the low half, the high half zero. */
  load64Zero: vmem(0x5d),
  /** Store lane `lane` (64-bit) of value at addr. */
  store64Lane: (addr: Expr, value: Expr, lane: number, offset = 0): Expr => [addr, value, simd(0x5b), 2, uleb(offset), lane],
  store: (addr: Expr, value: Expr, offset = 0): Expr => [addr, value, simd(0x0b), 2, uleb(offset)],
  /** Store lane `lane` (32-bit) of value at addr. */
  store32Lane: (addr: Expr, value: Expr, lane: number, offset = 0): Expr => [addr, value, simd(0x5a), 2, uleb(offset), lane],
  constF32: (a: number, b: number, c: number, d: number): Expr => [...simd(0x0c), ...f32le(a), ...f32le(b), ...f32le(c), ...f32le(d)],
  constI32: (a: number, b: number, c: number, d: number): Expr => {
    const buf = new Int32Array([a, b, c, d]);
    return [...simd(0x0c), ...new Uint8Array(buf.buffer)];
  },
  /** i8x16.shuffle with 32-bit lane indices (0–3 from a, 4–7 from b). */
  shuffle32: (a: Expr, b: Expr, lanes: [number, number, number, number]): Expr =>
    [a, b, simd(0x0d), lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])],
  not: vun(0x4d), and: vbin(0x4e), andnot: vbin(0x4f), or: vbin(0x50), xor: vbin(0x51),
  /** bitselect(a, b, mask): bits of a where mask is 1, else b. */
  bitselect: (a: Expr, b: Expr, m: Expr): Expr => [a, b, m, simd(0x52)],
  anyTrue: vun(0x53),
};

export const F32x4 = {
  splat: vun(0x13),
  extract: (a: Expr, lane: number): Expr => [a, simd(0x1f), lane],
  replace: (a: Expr, lane: number, x: Expr): Expr => [a, x, simd(0x20), lane],
  eq: vbin(0x41), ne: vbin(0x42), lt: vbin(0x43), gt: vbin(0x44), le: vbin(0x45), ge: vbin(0x46),
  ceil: vun(0x67), floor: vun(0x68), trunc: vun(0x69), nearest: vun(0x6a),
  abs: vun(0xe0), neg: vun(0xe1), sqrt: vun(0xe3),
  add: vbin(0xe4), sub: vbin(0xe5), mul: vbin(0xe6), div: vbin(0xe7), min: vbin(0xe8), max: vbin(0xe9),
  pmin: vbin(0xea), pmax: vbin(0xeb),
  fromI32x4: vun(0xfa),
  /** Relaxed SIMD f32x4.relaxed_madd: a·b + c, fused or not as the engine's hardware does it (x64 FMA, arm64 fmla). */
  relaxedMadd: (a: Expr, b: Expr, c: Expr): Expr => [a, b, c, simd(0x105)],
};

export const I32x4 = {
  splat: vun(0x11),
  extract: (a: Expr, lane: number): Expr => [a, simd(0x1b), lane],
  eq: vbin(0x37), ne: vbin(0x38), lt: vbin(0x39), gt: vbin(0x3b), le: vbin(0x3d), ge: vbin(0x3f), geu: vbin(0x40),
  shl: vbin(0xab), shrs: vbin(0xac), shru: vbin(0xad),   // (vector, i32 count)
  add: vbin(0xae), sub: vbin(0xb1), mul: vbin(0xb5),
  truncSatF32x4: vun(0xf8),
};

// ------------------------------------------------------------------------------------------------- functions
export class Local {
  constructor(readonly index: number, readonly type: ValType) {}
}
export const get = (l: Local): Expr => [0x20, uleb(l.index)];
export const set = (l: Local, e: Expr): Expr => [e, 0x21, uleb(l.index)];
export const tee = (l: Local, e: Expr): Expr => [e, 0x22, uleb(l.index)];
export const drop = (e: Expr): Expr => [e, 0x1a];
/** select(a, b, cond): a if cond ≠ 0 else b. */
export const select = (a: Expr, b: Expr, cond: Expr): Expr => [a, b, cond, 0x1b];
export const memoryCopy = (dst: Expr, src: Expr, n: Expr): Expr => [dst, src, n, 0xfc, 0x0a, 0, 0];
export const memoryFill = (dst: Expr, byte: Expr, n: Expr): Expr => [dst, byte, n, 0xfc, 0x0b, 0];

/** A branch target; `depth` is the block nesting level it was opened at. */
export interface Label { readonly depth: number }

export class FuncBuilder {
  readonly params: Local[];
  private locals: Local[] = [];
  private code: number[] = [];
  private depth = 0;

  constructor(readonly name: string, readonly paramTypes: ValType[], readonly results: ValType[]) {
    this.params = paramTypes.map((t, i) => new Local(i, t));
  }

  local(type: ValType): Local {
    const l = new Local(this.paramTypes.length + this.locals.length, type);
    this.locals.push(l);
    return l;
  }

  emit(...stmts: Expr[]): void { for (const s of stmts) flattenInto(s, this.code); }

  private nested(op: number, body: (l: Label) => void, blockType = 0x40): void {
    this.code.push(op, blockType);
    this.depth++;
    body({ depth: this.depth });
    this.depth--;
    this.code.push(0x0b);
  }

  /** block … end: `br(label)` inside jumps past the end. */
  block(body: (exit: Label) => void): void { this.nested(0x02, body); }
  /** loop … end: `br(label)` inside jumps back to the start. */
  loop(body: (again: Label) => void): void { this.nested(0x03, body); }

  if(cond: Expr, then: () => void, otherwise?: () => void): void {
    this.emit(cond);
    this.code.push(0x04, 0x40);
    this.depth++;
    then();
    if (otherwise) { this.code.push(0x05); otherwise(); }
    this.depth--;
    this.code.push(0x0b);
  }

  private rel(l: Label): number[] {
    if (l.depth > this.depth || l.depth < 1) throw new Error(`${this.name}: branch to a label not in scope`);
    return uleb(this.depth - l.depth);
  }
  br(l: Label): void { this.code.push(0x0c, ...this.rel(l)); }
  brIf(l: Label, cond: Expr): void { this.emit(cond); this.code.push(0x0d, ...this.rel(l)); }
  ret(value?: Expr): void { if (value) this.emit(value); this.code.push(0x0f); }

  /**
   * for (i = from; i < to; i += step) body — signed compare; `to` is re-evaluated each iteration (pass a local or
   * a constant). The body gets `brk` (leave the loop) and `next` (skip to the increment).
   */
  for(i: Local, from: Expr, to: Expr, step: number | Expr, body: (brk: Label, next: Label) => void): void {
    this.emit(set(i, from));
    this.block((brk) => {
      this.brIf(brk, I32.ge(get(i), to));
      this.loop((again) => {
        this.block((next) => body(brk, next));
        this.emit(set(i, I32.add(get(i), typeof step === "number" ? I32.const(step) : step)));
        this.brIf(again, I32.lt(get(i), to));
      });
    });
  }

  /** Function body bytes (locals declaration + code + end). */
  bytes(): number[] {
    if (this.depth !== 0) throw new Error(`${this.name}: unbalanced blocks`);
    const groups: number[][] = [];   // runs of locals of one type
    for (const l of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === l.type) last[0]++; else groups.push([1, l.type]);
    }
    for (const g of groups) g.splice(0, 1, ...uleb(g[0]));
    const body = append(vec(groups), this.code);
    body.push(0x0b);
    return append(uleb(body.length), body);
  }
}

// ------------------------------------------------------------------------------------------------- module
export interface MemoryImport { module: string; name: string; initialPages: number; maxPages: number; shared: boolean }

export class ModuleBuilder {
  private types: string[] = [];
  private funcs: { fb: FuncBuilder; type: number; exported: boolean }[] = [];
  private memory: MemoryImport | null = null;

  importMemory(m: MemoryImport): void { this.memory = m; }

  private typeIndex(params: ValType[], results: ValType[]): number {
    const key = JSON.stringify([params, results]);
    let i = this.types.indexOf(key);
    if (i < 0) { i = this.types.length; this.types.push(key); }
    return i;
  }

  /** Define a function; returns its index (for `call`). */
  func(name: string, params: ValType[], results: ValType[], build: (f: FuncBuilder, ...p: Local[]) => void, exported = true): number {
    if (this.funcs.some((f) => f.fb.name === name)) throw new Error(`ModuleBuilder: duplicate function ${name}`);
    const fb = new FuncBuilder(name, params, results);
    build(fb, ...fb.params);
    this.funcs.push({ fb, type: this.typeIndex(params, results), exported });
    return this.funcs.length - 1;
  }

  /** Index of a defined function (for `call`). */
  indexOf(name: string): number {
    const i = this.funcs.findIndex((f) => f.fb.name === name);
    if (i < 0) throw new Error(`ModuleBuilder: no function ${name}`);
    return i;
  }

  bytes(): Uint8Array<ArrayBuffer> {
    const types = this.types.map((k) => {
      const [p, r] = JSON.parse(k) as [number[], number[]];
      return [0x60, ...vec(p.map((t) => [t])), ...vec(r.map((t) => [t]))];
    });
    const imports: number[][] = [];
    if (this.memory) {
      const m = this.memory;
      imports.push([...str(m.module), ...str(m.name), 0x02, m.shared ? 0x03 : 0x01, ...uleb(m.initialPages), ...uleb(m.maxPages)]);
    }
    const exports = this.funcs.map((f, i) => f.exported ? [...str(f.fb.name), 0x00, ...uleb(i)] : []).filter((e) => e.length);
    const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    append(out, section(1, vec(types)));
    append(out, section(2, imports.length ? vec(imports) : []));
    append(out, section(3, vec(this.funcs.map((f) => uleb(f.type)))));
    append(out, section(7, vec(exports)));
    append(out, section(10, vec(this.funcs.map((f) => f.fb.bytes()))));
    return new Uint8Array(out);
  }
}

/** call a function by index. */
export const call = (index: number, ...args: Expr[]): Expr => [args, 0x10, uleb(index)];
