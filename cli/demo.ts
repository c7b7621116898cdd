// `attnflow demo --untrained`: the product brief's example sentence (src/brief.ts) embedded and passed through
// SelfAttention(512) — printing the output shape, the attention matrix and per-token importance.
import { manualSeed, noGrad, tensor, nn } from "../src/index.js";
import { barChart, heatmap } from "../src/viz/terminal.js";

import { BRIEF_SENTENCE } from "../src/brief.js";

export { BRIEF_SENTENCE };

/** Words and punctuation, as the brief counts them: 7 tokens for the brief's sentence. */
export function simpleTokens(text: string): string[] {
  return text.match(/[\p{L}\p{N}']+|[^\s\p{L}\p{N}]/gu) ?? [];
}

export function runUntrainedDemo(opts: { text?: string; seed?: number; color?: boolean; dModel?: number } = {}): string {
  const text = opts.text ?? BRIEF_SENTENCE, dModel = opts.dModel ?? 512, color = opts.color ?? false;
  const tokens = simpleTokens(text);
  if (!tokens.length) throw new Error("demo: the text has no tokens");
  manualSeed(opts.seed ?? 0);
  const vocab = [...new Set(tokens.map((t) => t.toLowerCase()))];
  const embed = new nn.Embedding(vocab.length, dModel);
  const pos = new nn.SinusoidalPositionalEncoding(dModel, { maxLen: Math.max(64, tokens.length) });
  const attn = new nn.SelfAttention(dModel);
  const ids = tensor([tokens.map((t) => vocab.indexOf(t.toLowerCase()))], { dtype: "int32" }); // (1, T)
  const [out, w] = noGrad(() => attn.forwardWithWeights(pos.forward(embed.forward(ids))));      // (1, T, D), (1, T, T)
  const T = tokens.length, W = w!.dataSync() as Float32Array;
  // importance of token j = attention it receives, averaged over all queries (column mean of the weights)
  const importance = new Float64Array(T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) importance[j] += W[i * T + j] / T;
  const lines = [
    `attnflow demo — the brief's SelfAttention(${dModel}) on: "${text}"`,
    `tokens (${T}): ${tokens.map((t) => JSON.stringify(t)).join(" ")}`,
    `embedding: nn.Embedding(${vocab.length}, ${dModel}) + sinusoidal positions → input shape [1, ${T}, ${dModel}]`,
    `output shape: [${out.shape.join(", ")}]   attention weights shape: [${w!.shape.join(", ")}]`,
    "",
    "NOTE: these weights are UNTRAINED (random init, seed " + (opts.seed ?? 0) + "): the pattern shows the mechanism, not meaning.",
    "      Explain a trained model with `attnflow explain --model <checkpoint> --text \"...\"`.",
    "",
    "attention matrix (row = query token, column = key token; each row sums to 1):",
    heatmap(tokens, tokens, W, { color, digits: 3 }),
    "",
    "per-token importance (attention received, averaged over queries):",
    barChart(tokens, importance, { color, width: 36 }),
    "",
    `output[0, :2, :3] = ${JSON.stringify([0, 1].map((i) => [0, 1, 2].map((j) => Number((out.dataSync()[i * dModel + j]).toFixed(4)))))}`,
  ];
  return lines.join("\n");
}
