// The decoder side of an encoder–decoder explanation: the explained output token's decoder self-attention (over the
// decoder's input tokens) and cross-attention (over the source), by raw attention, rollout and the gradient-weighted
// relevance of Chefer, Gur & Wolf (2021) for encoder–decoders. Browser-safe.
//
// Records: every attention module whose name passes ExplainTarget.decoder.filter (default: the name contains
// "decoder") is captured while target.score() runs; self-attention records are (1, H, Tt, Tt), cross-attention ones
// (1, H, Tt, Ts), in call order (a decoder layer's self-attention before its cross-attention). The explained row p is
// the last decoder position (the one whose logit is the score).
//
// Relevance (Chefer et al. 2021, eqs. 6–11; Ā = mean_h (∇A ⊙ A)^+ per layer):
//   R^ss = encoder relevance (I + Ā R^ss over the encoder layers; ExplainRun's "grad" matrices)
//   R^tt = I, R^ts = 0
//   decoder self-attention:  R^tt += Ā R^tt;  R^ts += Ā R^ts
//   cross-attention:         R^ts += (R̄^tt)ᵀ Ā R̄^ss,   R̄ = normalise_rows(R − I) + I  (a zero row stays zero)
//   importance: grad.self = R^tt[p, :] without its own entry, grad.cross = R^ts[p, :] (source specials zeroed), sum 1.
// raw: the head-mean row p of the last layer; rollout: Abnar & Zuidema rollout of the decoder self-attention
// (residual 0.5, head mean, causal rows), row p; cross raw: the last layer's head-mean cross-attention row p.

import type { Module } from "../nn/module.js";
import type { ExplainTarget } from "../tasks/task.js";
import { noGrad, setGradEnabled } from "../autograd.js";
import { captureAttention } from "./capture.js";
import { attentionRollout } from "./rollout.js";
import type { AttentionStack } from "./attention-stack.js";

/** The decoder part of an Explanation (JSON: plain numbers). */
export interface DecoderExplanation {
  /** Labels of the decoder's input positions (decoder start token, then the tokens generated before the target). */
  tokens: string[];
  /** The explained decoder row (the last: its logit is the score). */
  position: number;
  layers: number;
  heads: number;
  selfNames: string[];
  crossNames: string[];
  /** (Ld, H, Tt, Tt) decoder self-attention and (Ld, H, Tt, Ts) cross-attention (with `matrices`). */
  selfAttention?: number[][][][];
  crossAttention?: number[][][][];
  /** d score / d attention, same shapes (grad method, with `matrices`). */
  selfAttentionGrad?: number[][][][];
  crossAttentionGrad?: number[][][][];
  methods: {
    raw?: { self: number[]; cross: number[] };
    rollout?: { self: number[] };
    grad?: { self: number[]; cross: number[] };
  };
}

interface Stack4 { data: Float32Array | Float64Array; L: number; H: number; Tq: number; Tk: number }

/** Captures the decoder's self- and cross-attention (and, withGrad, their gradients) while target.score() runs. */
export function decoderAttention(target: ExplainTarget, model: Module | null, withGrad: boolean):
  { self: Stack4; cross: Stack4; selfGrad: Float32Array | null; crossGrad: Float32Array | null; selfNames: string[]; crossNames: string[] } {
  const filter = target.decoder?.filter ?? ((n: string) => n.includes("decoder"));
  const params = model ? model.parameters() : [];
  const saved = params.map((p) => p.grad);
  const run = () => {
    const { result, records } = captureAttention(model, () => target.score(), { mode: "full", withGrad, filter });
    try {
      if (withGrad) result.backward();
      const pack = (kind: "self" | "cross") => {
        const rs = records.filter((r) => r.kind === kind);
        if (!rs.length) throw new Error(`no decoder ${kind}-attention was recorded while scoring the input (recorded: ${records.map((r) => `${r.name} [${r.kind}]`).join(", ") || "none"})`);
        const [B, H, Tq, Tk] = rs[0].weights.shape;
        for (const r of rs) {
          const s = r.weights.shape;
          if (r.headMean || s.length !== 4 || s[0] !== 1 || B !== 1 || s[1] !== H || s[2] !== Tq || s[3] !== Tk) {
            throw new RangeError(`decoder ${kind}-attention record ${r.name} has shape [${s.join(", ")}], expected [1, ${H}, ${Tq}, ${Tk}] like ${rs[0].name}`);
          }
        }
        const n = H * Tq * Tk, data = new Float32Array(rs.length * n), grad = withGrad ? new Float32Array(rs.length * n) : null;
        rs.forEach((r, l) => {
          data.set(r.weights.dataSync() as Float32Array, l * n);
          if (grad) {
            if (!r.weights.grad) throw new Error(`no gradient reached the recorded attention of ${r.name}`);
            grad.set(r.weights.grad.dataSync() as Float32Array, l * n);
          }
        });
        return { st: { data, L: rs.length, H, Tq, Tk }, grad, names: rs.map((r) => r.name) };
      };
      const s = pack("self"), c = pack("cross");
      if (s.st.L !== c.st.L || s.st.Tq !== c.st.Tq) throw new RangeError(`decoder self-attention (${s.st.L} layers, ${s.st.Tq} rows) and cross-attention (${c.st.L} layers, ${c.st.Tq} rows) do not pair up`);
      return { self: s.st, cross: c.st, selfGrad: s.grad, crossGrad: c.grad, selfNames: s.names, crossNames: c.names };
    } finally {
      for (const r of records) { r.weights.grad = null; r.weights.dispose(); }
    }
  };
  try {
    return withGrad ? setGradEnabled(true, run) : noGrad(run);
  } finally {
    params.forEach((p, i) => { p.grad = saved[i]; });
  }
}

/** Ā = mean_h (g ⊙ A)^+ of layer l: (Tq, Tk). */
function abar(a: Stack4, g: ArrayLike<number>, l: number): Float64Array {
  const n = a.Tq * a.Tk, out = new Float64Array(n);
  for (let h = 0; h < a.H; h++) {
    const o = (l * a.H + h) * n;
    for (let e = 0; e < n; e++) { const x = a.data[o + e] * g[o + e]; if (x > 0) out[e] += x / a.H; }
  }
  return out;
}

/** (m × k) @ (k × n). */
function mm(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) { const x = a[i * k + p]; if (x !== 0) for (let j = 0; j < n; j++) out[i * n + j] += x * b[p * n + j]; }
  return out;
}

/** R̄ = normalise_rows(R − I) + I (Chefer et al.'s handle_residual); a row of R − I summing to 0 stays 0. */
export function residualNormalised(R: Float64Array, T: number): Float64Array {
  const out = R.slice();
  for (let i = 0; i < T; i++) {
    out[i * T + i] -= 1;
    let s = 0;
    for (let j = 0; j < T; j++) s += out[i * T + j];
    for (let j = 0; j < T; j++) out[i * T + j] = s !== 0 ? out[i * T + j] / s : 0;
    out[i * T + i] += 1;
  }
  return out;
}

/**
 * Chefer et al. (2021) decoder relevance: R^tt (Tt, Tt) and R^ts (Tt, Ts) from the decoder's self- and
 * cross-attention and their gradients, given the encoder relevance R^ss (Ts, Ts).
 */
export function encoderDecoderRelevance(self: Stack4, selfGrad: Float32Array, cross: Stack4, crossGrad: Float32Array, Rss: Float64Array): { Rtt: Float64Array; Rts: Float64Array } {
  const Tt = self.Tq, Ts = cross.Tk;
  if (Rss.length !== Ts * Ts) throw new RangeError(`encoder relevance has ${Rss.length} entries, expected ${Ts}x${Ts} for ${Ts} source positions`);
  let Rtt = new Float64Array(Tt * Tt), Rts = new Float64Array(Tt * Ts);
  for (let i = 0; i < Tt; i++) Rtt[i * Tt + i] = 1;
  const RssBar = residualNormalised(Rss, Ts);
  for (let l = 0; l < self.L; l++) {
    const As = abar(self, selfGrad, l);
    const addTT = mm(As, Rtt, Tt, Tt, Tt), addTS = mm(As, Rts, Tt, Tt, Ts);
    Rtt = Rtt.map((x, e) => x + addTT[e]); Rts = Rts.map((x, e) => x + addTS[e]);
    const Ac = abar(cross, crossGrad, l), RttBar = residualNormalised(Rtt, Tt);
    const RttBarT = new Float64Array(Tt * Tt);
    for (let i = 0; i < Tt; i++) for (let j = 0; j < Tt; j++) RttBarT[i * Tt + j] = RttBar[j * Tt + i];
    const add = mm(RttBarT, mm(Ac, RssBar, Tt, Ts, Ts), Tt, Tt, Ts);
    Rts = Rts.map((x, e) => x + add[e]);
  }
  return { Rtt, Rts };
}

const r6 = (x: number) => (x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(6)));
/** v with `zero` positions set to 0 and negatives clamped, normalised to sum 1. */
function norm1(v: ArrayLike<number>, zero: ReadonlySet<number> = new Set()): number[] {
  const o = Array.from(v, (x, j) => (zero.has(j) || !(x > 0) ? 0 : x));
  const s = o.reduce((a, b) => a + b, 0);
  return o.map((x) => r6(s > 0 ? x / s : 0));
}
function headMeanRow(a: Stack4, l: number, p: number): Float64Array {
  const out = new Float64Array(a.Tk), n = a.Tq * a.Tk;
  for (let h = 0; h < a.H; h++) for (let j = 0; j < a.Tk; j++) out[j] += a.data[(l * a.H + h) * n + p * a.Tk + j] / a.H;
  return out;
}
function nested(d: ArrayLike<number>, L: number, H: number, Tq: number, Tk: number): number[][][][] {
  return Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => Array.from({ length: Tq }, (_, i) =>
    Array.from({ length: Tk }, (_, j) => r6(d[((l * H + h) * Tq + i) * Tk + j])))));
}

/**
 * The decoder part of an encoder–decoder explanation (see the file comment). `encoder`: the explained encoder stack and
 * its gradients (needed for grad); `sourceSpecial`: source positions zeroed in the cross importances.
 */
export function explainDecoder(target: ExplainTarget, model: Module | null, o: {
  methods: readonly string[]; encoder: { stack: AttentionStack; grads: AttentionStack | null }; sourceSpecial: readonly number[]; matrices: boolean;
}): DecoderExplanation {
  if (!target.decoder) throw new Error("explainDecoder: the target has no decoder");
  const withGrad = o.methods.includes("grad");
  const d = decoderAttention(target, model, withGrad);
  const Tt = d.self.Tq, Ts = d.cross.Tk, p = Tt - 1, L = d.self.L;
  if (target.decoder.tokens.length !== Tt) throw new RangeError(`ExplainTarget.decoder.tokens has ${target.decoder.tokens.length} labels but the decoder attention has ${Tt} positions`);
  if (Ts !== o.encoder.stack.tokens) throw new RangeError(`cross-attention reads ${Ts} source positions but the encoder stack has ${o.encoder.stack.tokens}`);
  const srcSpecial = new Set(o.sourceSpecial);
  const out: DecoderExplanation = { tokens: target.decoder.tokens.slice(), position: p, layers: L, heads: d.self.H, selfNames: d.selfNames, crossNames: d.crossNames, methods: {} };
  if (o.matrices) {
    out.selfAttention = nested(d.self.data, L, d.self.H, Tt, Tt);
    out.crossAttention = nested(d.cross.data, L, d.cross.H, Tt, Ts);
    if (d.selfGrad && d.crossGrad) { out.selfAttentionGrad = nested(d.selfGrad, L, d.self.H, Tt, Tt); out.crossAttentionGrad = nested(d.crossGrad, L, d.cross.H, Tt, Ts); }
  }
  if (o.methods.includes("raw")) out.methods.raw = { self: norm1(headMeanRow(d.self, L - 1, p)), cross: norm1(headMeanRow(d.cross, L - 1, p), srcSpecial) };
  if (o.methods.includes("rollout")) {
    const st = { data: d.self.data, layers: L, heads: d.self.H, tokens: Tt };
    const r = attentionRollout(st, { causal: true });
    out.methods.rollout = { self: norm1(r.data.subarray((L - 1) * Tt * Tt + p * Tt, (L - 1) * Tt * Tt + (p + 1) * Tt)) };
  }
  if (withGrad) {
    const enc = o.encoder;
    if (!enc.grads) throw new Error("explainDecoder: grad needs the encoder's attention gradients");
    // R^ss over every encoder layer
    const S = enc.stack.tokens, SS = S * S;
    let Rss = new Float64Array(SS);
    for (let i = 0; i < S; i++) Rss[i * S + i] = 1;
    const eA: Stack4 = { data: enc.stack.data, L: enc.stack.layers, H: enc.stack.heads, Tq: S, Tk: S };
    for (let l = 0; l < enc.stack.layers; l++) {
      const add = mm(abar(eA, enc.grads.data, l), Rss, S, S, S);
      Rss = Rss.map((x, e) => x + add[e]);
    }
    const { Rtt, Rts } = encoderDecoderRelevance(d.self, d.selfGrad!, d.cross, d.crossGrad!, Rss);
    out.methods.grad = { self: norm1(Rtt.subarray(p * Tt, (p + 1) * Tt), new Set([p])), cross: norm1(Rts.subarray(p * Ts, (p + 1) * Ts), srcSpecial) };
  }
  return out;
}
