// ONNX graphs for the onnxruntime peer: multi-head attention and the SDPA core, each as a plain
// graph of standard ops and as a fused com.microsoft contrib op. The benchmark takes the best.
import { OnnxGraph } from "./onnx-builder.js";
import { transpose2d, type MhaWeights } from "../lib/tasks.js";

export interface OnnxModel {
  bytes: Uint8Array;
  inputs: { name: string; dims: number[] }[];
  output: string;
  variant: string;   // "plain graph" | "fused Attention op" | ...
  layout: "bhtd" | "bthd" | "btd"; // layout of the SDPA inputs/outputs this model expects
}

/** (T, T) additive causal mask: 0 on and below the diagonal, -inf above (key j > query i). */
export function causalMask(T: number): Float32Array {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) m.fill(-Infinity, i * T + i + 1, (i + 1) * T);
  return m;
}

/**
 * MHA as a plain graph: x (B, T, D) → MatMul+Add (packed QKV, (B, T, 3D)) → Split → Reshape
 * (B, T, H, d) → Transpose (B, H, T, d) → MatMul(q, kᵀ) (B, H, T, T) → Mul scale → Softmax →
 * MatMul v (B, H, T, d) → Transpose (B, T, H, d) → Reshape (B, T, D) → MatMul+Add out projection.
 */
export function mhaPlainModel(B: number, T: number, D: number, H: number, w: MhaWeights): OnnxModel {
  const d = D / H;
  const g = new OnnxGraph("mha_plain");
  const x = g.input("x", [B, T, D]);
  const wIn = g.init("w_in_t", [D, 3 * D], transpose2d(w.inProjWeight, 3 * D, D)); // (D, 3D) = Winᵀ
  const bIn = g.init("b_in", [3 * D], w.inProjBias);
  const wOut = g.init("w_out_t", [D, D], transpose2d(w.outProjWeight, D, D));
  const bOut = g.init("b_out", [D], w.outProjBias);
  const headShape = g.initInt64("head_shape", [B, T, H, d]);
  const flatShape = g.initInt64("flat_shape", [B, T, D]);
  const scale = g.init("scale", [], Float32Array.of(1 / Math.sqrt(d)));

  const qkv = g.op("Add", [g.op("MatMul", [x, wIn]), bIn]); // (B, T, 3D)
  const [q0, k0, v0] = g.node("Split", [qkv], ["q0", "k0", "v0"], { axis: 2 }); // 3 × (B, T, D)
  const q = g.op("Transpose", [g.op("Reshape", [q0, headShape])], { perm: [0, 2, 1, 3] }); // (B, H, T, d)
  const kT = g.op("Transpose", [g.op("Reshape", [k0, headShape])], { perm: [0, 2, 3, 1] }); // (B, H, d, T)
  const v = g.op("Transpose", [g.op("Reshape", [v0, headShape])], { perm: [0, 2, 1, 3] }); // (B, H, T, d)
  const p = g.op("Softmax", [g.op("Mul", [g.op("MatMul", [q, kT]), scale])], { axis: -1 }); // (B, H, T, T)
  const o = g.op("Transpose", [g.op("MatMul", [p, v])], { perm: [0, 2, 1, 3] }); // (B, T, H, d)
  const merged = g.op("Reshape", [o, flatShape]); // (B, T, D)
  g.node("Add", [g.op("MatMul", [merged, wOut]), bOut], ["out"]);
  g.output("out", [B, T, D]);
  return { bytes: g.toModel(), inputs: [{ name: "x", dims: [B, T, D] }], output: "out", variant: "plain graph", layout: "btd" };
}

/** MHA with the fused com.microsoft Attention op (QKV projection + attention) + out projection. */
export function mhaFusedModel(B: number, T: number, D: number, H: number, w: MhaWeights): OnnxModel {
  const g = new OnnxGraph("mha_fused");
  const x = g.input("x", [B, T, D]);
  const wIn = g.init("w_in_t", [D, 3 * D], transpose2d(w.inProjWeight, 3 * D, D)); // (D, 3D), columns [q | k | v]
  const bIn = g.init("b_in", [3 * D], w.inProjBias);
  const wOut = g.init("w_out_t", [D, D], transpose2d(w.outProjWeight, D, D));
  const bOut = g.init("b_out", [D], w.outProjBias);
  const att = g.op("Attention", [x, wIn, bIn], { num_heads: H }, "com.microsoft"); // (B, T, D)
  g.node("Add", [g.op("MatMul", [att, wOut]), bOut], ["out"]);
  g.output("out", [B, T, D]);
  return { bytes: g.toModel(), inputs: [{ name: "x", dims: [B, T, D] }], output: "out", variant: "fused Attention op", layout: "btd" };
}

/** SDPA core as a plain graph on (B, H, T, d): MatMul(q, kᵀ)·scale [+ causal mask] → Softmax → ·v. */
export function sdpaPlainModel(B: number, H: number, T: number, d: number, causal: boolean): OnnxModel {
  const g = new OnnxGraph("sdpa_plain");
  const dims = [B, H, T, d];
  const q = g.input("q", dims), k = g.input("k", dims), v = g.input("v", dims);
  const scale = g.init("scale", [], Float32Array.of(1 / Math.sqrt(d)));
  const kT = g.op("Transpose", [k], { perm: [0, 1, 3, 2] }); // (B, H, d, T)
  let s = g.op("Mul", [g.op("MatMul", [q, kT]), scale]); // (B, H, T, T)
  if (causal) s = g.op("Add", [s, g.init("causal_mask", [T, T], causalMask(T))]); // broadcast over (B, H)
  g.node("MatMul", [g.op("Softmax", [s], { axis: -1 }), v], ["out"]);
  g.output("out", dims);
  const inputs = ["q", "k", "v"].map((name) => ({ name, dims }));
  return { bytes: g.toModel(), inputs, output: "out", variant: causal ? "plain graph + mask" : "plain graph", layout: "bhtd" };
}

/**
 * SDPA core with the fused com.microsoft MultiHeadAttention op. It wants (B, T, H·d) inputs, so
 * the harness hands it q/k/v already in (B, T, H, d) order (converted outside the timed region);
 * causal uses the op's `unidirectional` attribute.
 */
export function sdpaFusedModel(B: number, H: number, T: number, d: number, causal: boolean): OnnxModel {
  const g = new OnnxGraph("sdpa_fused");
  const dims = [B, T, H * d];
  const q = g.input("q", dims), k = g.input("k", dims), v = g.input("v", dims);
  const attrs: Record<string, number> = { num_heads: H };
  if (causal) attrs.unidirectional = 1;
  g.node("MultiHeadAttention", [q, k, v], ["out"], attrs, "com.microsoft");
  g.output("out", dims);
  const inputs = ["q", "k", "v"].map((name) => ({ name, dims }));
  return { bytes: g.toModel(), inputs, output: "out", variant: "fused MultiHeadAttention op", layout: "bthd" };
}
