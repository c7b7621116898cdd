// Capturing attention from any model built with attnflow modules, without changing the model code: every attention
// module asks the active recorder (if any) whether to hand out its weights. On the fused path the weights are
// recomputed from the saved log-sum-exp, so capture never forces the slow path; withGrad switches to the composed
// path so the captured weights carry gradients (for gradient-weighted attention).
import type { Tensor } from "../tensor.js";
import { keep } from "../scope.js";

export interface AttentionRecord {
  /** Module path in the model, e.g. "layers.0.self_attn". */
  name: string;
  kind: "self" | "cross";
  /** (B, H, Tq, Tk) per head, or (B, Tq, Tk) when the recorder keeps only the head mean. */
  weights: Tensor;
  headMean: boolean;
  /** (B, Tk) bool, true = padded key (when the call had one). */
  keyPaddingMask: Tensor | null;
  causal: boolean;
  /**
   * With CaptureOptions.withQK: the queries and keys the scores were computed from, (B, H, Tq, D) and (B, H, Tk, D)
   * (after any rotary embedding), and the scale applied to q·k. Scores = scale · q·kᵀ, plus `scoreBias` when the
   * module adds one (ALiBi, relative position bias, masks): the recorded weights are the softmax of the full scores.
   */
  queries?: Tensor;
  keys?: Tensor;
  scale?: number;
  /** What else enters the scores besides scale · q·kᵀ (e.g. "ALiBi", "position bias"), when the module knows. */
  scoreBias?: string;
  /**
   * Low-rank attention (nn.LinformerAttention): the softmax over the k projected key slots, (B, H, Tq, k); `weights`
   * then holds its map back to tokens (see linformer.ts).
   */
  slotWeights?: Tensor;
}

export interface CaptureOptions {
  /** "full" keeps every head; "mean" keeps only the head average (H× less memory). */
  mode?: "full" | "mean";
  /** Keep the weights in the autograd graph (composed attention path) so their gradients can be read after backward. */
  withGrad?: boolean;
  /** Record only modules whose name matches. */
  filter?: (name: string) => boolean;
  /** Also keep each module's queries and keys (AttentionRecord.queries/keys/scale), for the neuron view. */
  withQK?: boolean;
}

export class AttentionRecorder {
  readonly records: AttentionRecord[] = [];
  readonly mode: "full" | "mean";
  readonly withGrad: boolean;
  readonly withQK: boolean;
  private names = new Map<object, string>();
  private filter?: (name: string) => boolean;

  constructor(root: { namedModules(): [string, object][] } | null, opts: CaptureOptions = {}) {
    this.mode = opts.withGrad ? "full" : opts.mode ?? "full";
    this.withGrad = !!opts.withGrad;
    this.withQK = !!opts.withQK;
    this.filter = opts.filter;
    if (root) for (const [n, m] of root.namedModules()) this.names.set(m, n || "attention");
  }

  wants(module: object): boolean {
    const name = this.names.get(module) ?? "attention";
    return !this.filter || this.filter(name);
  }

  add(module: object, r: Omit<AttentionRecord, "name">): void {
    const name = this.names.get(module) ?? `attention${this.records.length}`;
    if (this.withGrad) r.weights.retainGrad();
    const rec: AttentionRecord = { ...r, name, weights: keep(r.weights) };
    if (r.slotWeights) rec.slotWeights = keep(r.slotWeights);
    if (this.withQK && r.queries && r.keys) { rec.queries = keep(r.queries); rec.keys = keep(r.keys); }
    else { delete rec.queries; delete rec.keys; delete rec.scale; }
    this.records.push(rec);
  }
}

const stack: AttentionRecorder[] = [];

/** The innermost active recorder, or null (the common, zero-cost case). */
export function activeRecorder(): AttentionRecorder | null { return stack.length ? stack[stack.length - 1] : null; }

/** Run fn with attention recording on; returns fn's result and the records in call order. */
export function captureAttention<T>(model: { namedModules(): [string, object][] } | null, fn: () => T, opts: CaptureOptions = {}): { result: T; records: AttentionRecord[] } {
  const rec = new AttentionRecorder(model, opts);
  stack.push(rec);
  try {
    const result = fn();
    return { result, records: rec.records };
  } finally {
    stack.pop();
  }
}
