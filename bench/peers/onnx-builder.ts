// A minimal ONNX writer: just enough protobuf to emit ModelProto / GraphProto / NodeProto /
// TensorProto / ValueInfoProto / AttributeProto bytes for onnxruntime, without Python's onnx.
// Field numbers follow onnx.proto (IR version 8, opset 17 + com.microsoft 1).

// ---- protobuf wire format ----------------------------------------------------------------
// Each field is a key varint (field << 3 | wireType) followed by its payload:
// wire type 0 = varint, 2 = length-delimited (bytes, strings, sub-messages, packed arrays), 5 = fixed32.

class PbWriter {
  private parts: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): void { this.parts.push(b); this.size += b.length; }

  private varint(v: number | bigint): void {
    // int64 semantics: negative values are written as 10-byte two's complement
    let x = BigInt.asUintN(64, BigInt(v));
    const bytes: number[] = [];
    while (x >= 0x80n) { bytes.push(Number(x & 0x7fn) | 0x80); x >>= 7n; }
    bytes.push(Number(x));
    this.push(Uint8Array.from(bytes));
  }

  private key(field: number, wire: number): void { this.varint((field << 3) | wire); }

  int(field: number, v: number | bigint): this { this.key(field, 0); this.varint(v); return this; }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }
  bytes(field: number, b: Uint8Array): this { this.key(field, 2); this.varint(b.length); this.push(b); return this; }
  string(field: number, s: string): this { return this.bytes(field, new TextEncoder().encode(s)); }
  message(field: number, m: PbWriter): this { return this.bytes(field, m.finish()); }
  packedInts(field: number, vs: readonly number[]): this {
    const inner = new PbWriter();
    for (const v of vs) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.length; }
    return out;
  }
}

// ---- ONNX enums ----------------------------------------------------------------------------
const DT_FLOAT = 1;
const DT_INT64 = 7;
const ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_INTS = 7;

export type AttrValue = number | number[] | { float: number };

function attribute(name: string, v: AttrValue): PbWriter {
  const a = new PbWriter().string(1, name);
  if (Array.isArray(v)) return a.int(20, ATTR_INTS).packedInts(8, v);
  if (typeof v === "object") return a.int(20, ATTR_FLOAT).float(2, v.float);
  return a.int(20, ATTR_INT).int(3, v); // plain numbers are int attributes
}

function tensorProto(name: string, dims: readonly number[], data: Float32Array | BigInt64Array): PbWriter {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength); // little-endian raw_data
  const t = new PbWriter();
  if (dims.length) t.packedInts(1, dims);
  return t.int(2, data instanceof Float32Array ? DT_FLOAT : DT_INT64).string(8, name).bytes(9, raw);
}

function valueInfo(name: string, dims: readonly number[]): PbWriter {
  const shape = new PbWriter();
  for (const d of dims) shape.message(1, new PbWriter().int(1, d)); // Dimension.dim_value
  const tensorType = new PbWriter().int(1, DT_FLOAT).message(2, shape);
  return new PbWriter().string(1, name).message(2, new PbWriter().message(1, tensorType));
}

// ---- graph builder -------------------------------------------------------------------------

export class OnnxGraph {
  private nodes: PbWriter[] = [];
  private inits: PbWriter[] = [];
  private inputs: PbWriter[] = [];
  private outputs: PbWriter[] = [];
  private counter = 0;
  private usesMicrosoft = false;

  constructor(private readonly name: string) {}

  /** A fresh intermediate tensor name. */
  tmp(hint: string): string { return `${hint}_${this.counter++}`; }

  input(name: string, dims: readonly number[]): string { this.inputs.push(valueInfo(name, dims)); return name; }
  output(name: string, dims: readonly number[]): string { this.outputs.push(valueInfo(name, dims)); return name; }

  /** A constant float tensor stored in the model (weights, masks). */
  init(name: string, dims: readonly number[], data: Float32Array): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`onnx init ${name}: dims [${dims}] hold ${n} values, data has ${data.length}`);
    this.inits.push(tensorProto(name, dims, data));
    return name;
  }

  /** A constant int8 tensor (quantized weights for MatMulInteger / DynamicQuantizeMatMul). */
  initInt8(name: string, dims: readonly number[], data: Int8Array): string {
    const t = new PbWriter();
    if (dims.length) t.packedInts(1, dims);
    this.inits.push(t.int(2, 3 /* INT8 */).string(8, name).bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
    return name;
  }

  /** A constant int64 vector (Reshape targets). */
  initInt64(name: string, values: readonly number[]): string {
    this.inits.push(tensorProto(name, [values.length], BigInt64Array.from(values.map((v) => BigInt(v)))));
    return name;
  }

  /** Append a node; `domain` "com.microsoft" selects the contrib op set. Returns its outputs. */
  node(op: string, inputs: readonly string[], outputs: readonly string[], attrs: Record<string, AttrValue> = {}, domain = ""): string[] {
    const n = new PbWriter();
    for (const i of inputs) n.string(1, i);
    for (const o of outputs) n.string(2, o);
    n.string(3, this.tmp(op)).string(4, op);
    for (const [k, v] of Object.entries(attrs)) n.message(5, attribute(k, v));
    if (domain) { n.string(7, domain); if (domain === "com.microsoft") this.usesMicrosoft = true; }
    this.nodes.push(n);
    return [...outputs];
  }

  /** Convenience: a single-output node with an auto-named output. */
  op(op: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, domain = ""): string {
    return this.node(op, inputs, [this.tmp(op.toLowerCase())], attrs, domain)[0];
  }

  /** Serialize to ModelProto bytes (IR 8, opset 17, plus com.microsoft 1 when used). */
  toModel(): Uint8Array {
    const g = new PbWriter();
    for (const n of this.nodes) g.message(1, n);
    g.string(2, this.name);
    for (const t of this.inits) g.message(5, t);
    for (const i of this.inputs) g.message(11, i);
    for (const o of this.outputs) g.message(12, o);
    const m = new PbWriter().int(1, 8).string(2, "attnflow-bench").message(7, g);
    m.message(8, new PbWriter().string(1, "").int(2, 17));
    if (this.usesMicrosoft) m.message(8, new PbWriter().string(1, "com.microsoft").int(2, 1));
    return m.finish();
  }
}
