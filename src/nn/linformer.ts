// Linformer self-attention (Wang et al. 2020): keys and values are projected along the sequence to a fixed number k
// of slots by learned matrices E, F (k × n, n = the longest input), so attention is T × k instead of T × T:
//
//   K' = E[:, :T] · K   (B, H, k, D)      V' = F[:, :T] · V   (B, H, k, Dv)
//   P  = softmax(Q·K'ᵀ / √D)   (B, H, T, k)          out = P · V'
//
// Time and memory O(T·k). E and F are shared by the heads ("headwise" sharing of the paper); shareKV uses E for
// both ("key-value" sharing). Linformer mixes every position into every slot, so it has no causal form (isCausal is
// an error) — it is an encoder attention.
//
// "Attention weights" of Linformer: P itself is a distribution over the k slots, not over tokens (slotWeights,
// (B, H, T, k)). For token-level explanations each slot is traced back to the tokens whose keys E mixed into it, in
// proportion to |E[s, j]|:
//   A_ij = Σ_s P_is · |E_sj| / Σ_j' |E_sj'|        (B, H, T, T)
// non-negative with rows summing to 1, so rollout and attention flow apply; this is what is recorded (weights)
// and returned by needWeights. A is an attribution through the key projection, not a matrix the output is computed
// with (out = P·F·V), so gradient-weighted rollout (which needs d score / d weights) is not available for it.
import { Tensor } from "../tensor.js";
import { shapeStr } from "../shape.js";
import { randn } from "../creation.js";
import { sdpa } from "../ops/attention.js";
import { activeRecorder } from "../explain/capture.js";
import { Module, Parameter } from "./module.js";
import { Linear } from "./layers.js";
import { checkDropout, checkPositiveInt } from "./check.js";

export interface LinformerOptions {
  /** Biases on the q/k/v/out projections (default true). */
  bias?: boolean;
  /** Use E for the values too (no proj_v parameter). Default false. */
  shareKV?: boolean;
  /** Dropout on the slot weights while training. */
  dropout?: number;
}

export interface LinformerForwardOptions {
  /** (B, T) bool, true = padding: those keys and values are zeroed before the projection. */
  keyPaddingMask?: Tensor | null;
  /** Also return the token-level weights A (B, H, T, T) and the slot weights P (B, H, T, k). */
  needWeights?: boolean;
  /** Not supported (Linformer is non-causal): throws. */
  isCausal?: boolean;
}

/** Linformer self-attention; x (B, T, E) with T ≤ maxLength → (B, T, E). Parameters q/k/v/out_proj, proj_k (, proj_v). */
export class LinformerAttention extends Module {
  qProj: Linear;
  kProj: Linear;
  vProj: Linear;
  outProj: Linear;
  /** E (k, maxLength). */
  projK: Tensor;
  /** F (k, maxLength), or null with shareKV. */
  projV: Tensor | null;
  readonly headDim: number;
  readonly dropout: number;

  constructor(readonly embedDim: number, readonly numHeads: number, readonly maxLength: number, readonly projLength: number,
    opts: LinformerOptions = {}) {
    super();
    for (const [n, v] of [["embedDim", embedDim], ["numHeads", numHeads], ["maxLength", maxLength], ["projLength", projLength]] as const) {
      checkPositiveInt("LinformerAttention", n, v);
    }
    if (embedDim % numHeads !== 0) throw new RangeError(`LinformerAttention: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    this.dropout = opts.dropout ?? 0;
    checkDropout("LinformerAttention", "dropout", this.dropout);
    this.headDim = embedDim / numHeads;
    const bias = opts.bias !== false;
    this.qProj = new Linear(embedDim, embedDim, { bias });
    this.kProj = new Linear(embedDim, embedDim, { bias });
    this.vProj = new Linear(embedDim, embedDim, { bias });
    this.outProj = new Linear(embedDim, embedDim, { bias });
    // N(0, 1/k), the paper's initialisation: each slot starts as a random mix of positions
    const init = () => Parameter(randn([projLength, maxLength]).mul(1 / Math.sqrt(projLength)));
    this.projK = init();
    this.projV = opts.shareKV ? null : init();
  }

  forward(x: Tensor, o: LinformerForwardOptions = {}): { out: Tensor; weights: Tensor | null; slotWeights: Tensor | null } {
    if (o.isCausal) throw new Error("LinformerAttention: no causal form (the projection mixes later positions into every slot); use LinearAttention or a sliding window for decoders");
    if (x.ndim !== 3 || x.shape[2] !== this.embedDim) throw new Error(`LinformerAttention: expected x (B, T, ${this.embedDim}), got ${shapeStr(x.shape)}`);
    const [B, T] = x.shape, H = this.numHeads, D = this.headDim;
    if (T > this.maxLength) throw new RangeError(`LinformerAttention: input length ${T} exceeds maxLength ${this.maxLength} (x ${shapeStr(x.shape)}, proj_k ${shapeStr(this.projK.shape)})`);
    const heads = (z: Tensor) => z.reshape([B, T, H, D]).permute([0, 2, 1, 3]);                     // (B, H, T, D)
    const q = heads(this.qProj.forward(x));
    let k = heads(this.kProj.forward(x)), v = heads(this.vProj.forward(x));
    const kpm = o.keyPaddingMask ?? null;
    if (kpm) {
      if (kpm.dtype !== "bool" || kpm.ndim !== 2 || kpm.shape[0] !== B || kpm.shape[1] !== T) {
        throw new Error(`LinformerAttention: keyPaddingMask must be a bool (${B}, ${T}) tensor (true = padding), got ${kpm.dtype} ${shapeStr(kpm.shape)}`);
      }
      const keep = kpm.logicalNot().float().reshape([B, 1, T, 1]);
      k = k.mul(keep); v = v.mul(keep);
    }
    const E = this.projK.narrow(1, 0, T), Fm = this.projV ? this.projV.narrow(1, 0, T) : E;        // (k, T)
    const rec = activeRecorder(), recording = !!rec && rec.wants(this);
    const want = !!o.needWeights || recording;
    const r = linformerCore(q, k, v, E, Fm, { dropout: this.training ? this.dropout : 0, returnWeights: want });
    const y = this.outProj.forward(r.out.permute([0, 2, 1, 3]).reshape([B, T, H * D]));
    let weights: Tensor | null = null;
    if (want) {
      weights = linformerTokenWeights(r.weights!, E);                                                // (B, H, T, T)
      if (recording) rec!.add(this, { kind: "self", weights, headMean: false, keyPaddingMask: kpm, causal: false, slotWeights: r.weights! });
    }
    return { out: y, weights: o.needWeights ? weights : null, slotWeights: o.needWeights ? r.weights : null };
  }

  protected override extraRepr(): string {
    return `embedDim=${this.embedDim}, numHeads=${this.numHeads}, maxLength=${this.maxLength}, projLength=${this.projLength}, shareKV=${this.projV === null}`;
  }
}

/**
 * The Linformer attention of per-head q (B, H, T, D), k (B, H, T, D), v (B, H, T, Dv) with projections E, F (k, T):
 * out = softmax(q·(E·k)ᵀ/√D)·(F·v) (B, H, T, Dv) through the fused attention kernel, and the slot weights when asked.
 */
export function linformerCore(q: Tensor, k: Tensor, v: Tensor, E: Tensor, F: Tensor, o: { dropout?: number; returnWeights?: boolean } = {}): { out: Tensor; weights: Tensor | null } {
  const T = k.shape[2];
  if (E.ndim !== 2 || F.ndim !== 2 || E.shape[1] !== T || F.shape[1] !== T || F.shape[0] !== E.shape[0]) {
    throw new Error(`linformerCore: E ${shapeStr(E.shape)} and F ${shapeStr(F.shape)} must both be (k, ${T}) for k ${shapeStr(k.shape)}`);
  }
  return sdpa(q, E.matmul(k), F.matmul(v), { dropout: o.dropout ?? 0, returnWeights: o.returnWeights ? "full" : false });
}

/** Token weights A = P · Ē (B, H, T, T) from slot weights P (B, H, T, k) and E (k, T): Ē = |E| with rows summing to 1. */
export function linformerTokenWeights(slot: Tensor, E: Tensor): Tensor {
  const a = E.detach().abs();
  return slot.matmul(a.div(a.sum(1, true).clamp(1e-30)));
}
