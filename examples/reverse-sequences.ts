// A tiny training loop: a 2-layer Transformer encoder learns to reverse sequences of digits.
// Run: node dist/examples/reverse-sequences.js   (after `npm install`)
import { nn, optim, F, randint, manualSeed, noGrad, Tensor, type Generator } from "../src/node.js";

export interface ReversalConfig { vocab: number; seqLen: number; dModel: number; heads: number; layers: number }

export class Reverser extends nn.Module {
  embed: nn.Embedding;
  pos: nn.SinusoidalPositionalEncoding;
  encoder: nn.TransformerEncoder;
  head: nn.Linear;
  constructor(readonly cfg: ReversalConfig) {
    super();
    this.embed = new nn.Embedding(cfg.vocab, cfg.dModel);
    this.pos = new nn.SinusoidalPositionalEncoding(cfg.dModel, { maxLen: cfg.seqLen });
    this.encoder = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(cfg.dModel, cfg.heads,
      { dimFeedforward: 2 * cfg.dModel, dropout: 0, batchFirst: true, normFirst: true }), cfg.layers, new nn.LayerNorm(cfg.dModel));
    this.head = new nn.Linear(cfg.dModel, cfg.vocab);
  }
  /** ids (B, T) int32 → logits (B, T, vocab). */
  forward(ids: Tensor): Tensor {
    return this.head.forward(this.encoder.forward(this.pos.forward(this.embed.forward(ids))));
  }
}

/** Random sequences and their reversals. */
export function reversalBatch(batch: number, cfg: ReversalConfig, generator?: Generator): { x: Tensor; y: Tensor } {
  const x = randint(0, cfg.vocab, [batch, cfg.seqLen], { generator });
  const xd = x.dataSync(), yd = new Int32Array(xd.length);
  for (let b = 0; b < batch; b++) for (let t = 0; t < cfg.seqLen; t++) yd[b * cfg.seqLen + t] = xd[b * cfg.seqLen + cfg.seqLen - 1 - t];
  return { x, y: Tensor.fromArray(yd, [batch, cfg.seqLen]) };
}

export interface TrainResult { losses: number[]; accuracy: number; model: Reverser }

export function trainReversal(o: { steps?: number; batch?: number; seed?: number; lr?: number; log?: (s: string) => void; cfg?: Partial<ReversalConfig> } = {}): TrainResult {
  manualSeed(o.seed ?? 1);
  const cfg: ReversalConfig = { vocab: 10, seqLen: 8, dModel: 32, heads: 4, layers: 2, ...o.cfg };
  const model = new Reverser(cfg);
  const opt = new optim.AdamW(model.parameters(), { lr: o.lr ?? 1e-2, weightDecay: 0.01 });
  const steps = o.steps ?? 400, batch = o.batch ?? 32;
  const sched = new optim.CosineWithWarmup(opt, 20, steps, 0.1);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { x, y } = reversalBatch(batch, cfg);
    const logits = model.forward(x);                                   // (B, T, V)
    const loss = F.crossEntropy(logits.reshape([-1, cfg.vocab]), y.reshape([-1]));
    opt.zeroGrad();
    loss.backward();
    optim.clipGradNorm(model.parameters(), 1.0);
    opt.step();
    sched.step();
    losses.push(loss.item());
    if (o.log && (s % 50 === 0 || s === steps - 1)) o.log(`step ${String(s).padStart(4)}  loss ${loss.item().toFixed(4)}`);
  }
  // held-out accuracy (per token) on fresh sequences
  const { x, y } = reversalBatch(256, cfg);
  const pred = noGrad(() => model.forward(x).argmax(-1));
  const p = pred.dataSync(), t = y.dataSync();
  let ok = 0;
  for (let i = 0; i < p.length; i++) ok += +(p[i] === t[i]);
  return { losses, accuracy: ok / p.length, model };
}

// Run as a script: train and report.
if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  const r = trainReversal({ log: console.log });
  console.log(`final loss ${r.losses[r.losses.length - 1].toFixed(4)}, held-out token accuracy ${(100 * r.accuracy).toFixed(1)}% ` +
    `(${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
