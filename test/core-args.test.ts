// Public constructors check their arguments (issue 14, item 9): a wrong size, head count, dropout, learning rate or
// schedule is an error naming the argument and its value, never a NaN or a shape error much later.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as nn from "../src/nn/index.js";
import { zeros } from "../src/creation.js";
import { Parameter } from "../src/nn/module.js";
import { SGD, Adam, AdamW } from "../src/optim/optimizers.js";
import { StepLR, CosineWithWarmup, LambdaLR } from "../src/optim/schedulers.js";

function throwsNaming(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: Error) => {
    for (const p of parts) if (typeof p === "string" ? !e.message.includes(p) : !p.test(e.message)) assert.fail(`"${e.message}" lacks ${String(p)}`);
    return true;
  });
}

test("nn modules reject bad sizes, head counts, dropouts and epsilons", () => {
  throwsNaming(() => new nn.Linear(0, 4), "Linear", "inFeatures", "0");
  throwsNaming(() => new nn.Linear(4, 2.5), "outFeatures", "2.5");
  throwsNaming(() => new nn.Embedding(-3, 4), "Embedding", "numEmbeddings", "-3");
  throwsNaming(() => new nn.Embedding(10, NaN), "embeddingDim", "NaN");
  throwsNaming(() => new nn.LayerNorm(0), "LayerNorm", "normalizedShape", "0");
  throwsNaming(() => new nn.LayerNorm(8, { eps: 0 }), "eps", "0");
  throwsNaming(() => new nn.Dropout(1), "Dropout", "p", "1");
  throwsNaming(() => new nn.Dropout(-0.1), "p", "-0.1");
  throwsNaming(() => new nn.SelfAttention(0), "SelfAttention", "dModel", "0");
  throwsNaming(() => new nn.MultiheadAttention(10, 3), "embedDim 10", "numHeads 3");
  throwsNaming(() => new nn.MultiheadAttention(8, 0), "numHeads", "0");
  throwsNaming(() => new nn.MultiheadAttention(8, 2, { dropout: 1.5 }), "dropout", "1.5");
  throwsNaming(() => new nn.MultiheadAttention(8, 2, { kdim: 0 }), "kdim", "0");
  throwsNaming(() => new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: -1 }), "dimFeedforward", "-1");
  throwsNaming(() => new nn.TransformerEncoderLayer(8, 2, { dropout: 1 }), "dropout", "1");
  throwsNaming(() => new nn.TransformerDecoderLayer(8, 3), "8", "3");
  throwsNaming(() => new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(8, 2), 0), "numLayers", "0");
  throwsNaming(() => new nn.SinusoidalPositionalEncoding(16, { maxLen: 0 }), "maxLen", "0");
  throwsNaming(() => new nn.LearnedPositionalEmbedding(16, 0), "dModel", "0");
  throwsNaming(() => new nn.GELU("fast" as "none"), "approximate", "fast");
  // valid edge values still work
  new nn.Dropout(0); new nn.MultiheadAttention(8, 8, { dropout: 0.999 }); new nn.LayerNorm([2, 3], { eps: 1e-12 });
});

test("optimizers reject bad hyper-parameters, also per parameter group", () => {
  const p = () => [Parameter(zeros([2]))];
  throwsNaming(() => new SGD(p(), { lr: -1 }), "SGD", "lr", "-1");
  throwsNaming(() => new SGD(p(), { lr: 0.1, momentum: -0.5 }), "momentum", "-0.5");
  throwsNaming(() => new Adam(p(), { lr: NaN }), "Adam", "lr", "NaN");
  throwsNaming(() => new Adam(p(), { betas: [0.9, 1] }), "betas", "1");
  throwsNaming(() => new Adam(p(), { betas: [-0.1, 0.9] }), "betas", "-0.1");
  throwsNaming(() => new AdamW(p(), { eps: 0 }), "AdamW", "eps", "0");
  throwsNaming(() => new AdamW(p(), { weightDecay: -0.01 }), "weightDecay", "-0.01");
  throwsNaming(() => new AdamW([{ params: p(), lr: -2 }], { lr: 1e-3 }), "lr", "-2");
  throwsNaming(() => new Adam([], {}), "Adam", "no parameters");
  new SGD(p(), { lr: 0 }); new Adam(p(), { betas: [0, 0.999], weightDecay: 0 });
});

test("schedulers accept PyTorch's positional arguments and an options object, and reject wrong ones", () => {
  const opt = () => new SGD([Parameter(zeros([2]))], { lr: 1 });
  const a = opt(), sa = new StepLR(a, 2, 0.5), b = opt(), sb = new StepLR(b, { stepSize: 2, gamma: 0.5 });
  for (let i = 0; i < 5; i++) { sa.step(); sb.step(); assert.equal(b.lr, a.lr); assert.ok(Number.isFinite(b.lr)); }
  assert.equal(a.lr, 0.25);
  const c = opt(), sc = new CosineWithWarmup(c, 2, 10), d = opt(), sd = new CosineWithWarmup(d, { warmupSteps: 2, totalSteps: 10 });
  for (let i = 0; i < 12; i++) { sc.step(); sd.step(); assert.equal(d.lr, c.lr); assert.ok(Number.isFinite(d.lr)); }
  const e = opt(), se = new LambdaLR(e, { lrLambda: (s: number) => 1 / (s + 1) });
  se.step(); assert.equal(e.lr, 0.5);
  throwsNaming(() => new StepLR(opt(), 0), "StepLR", "stepSize", "0");
  throwsNaming(() => new StepLR(opt(), { stepSize: 3, gamma: -1 }), "gamma", "-1");
  throwsNaming(() => new StepLR(opt(), { step_size: 3 } as unknown as number), "stepSize");
  throwsNaming(() => new CosineWithWarmup(opt(), -1, 10), "warmupSteps", "-1");
  throwsNaming(() => new CosineWithWarmup(opt(), { warmupSteps: 0, totalSteps: 0 }), "totalSteps", "0");
  throwsNaming(() => new CosineWithWarmup(opt(), 1, 10, 2), "minFactor", "2");
  throwsNaming(() => new CosineWithWarmup(opt(), { warmupSteps: 1, totalSteps: 10, warmup: 3 } as unknown as number, 10), "warmup");
  throwsNaming(() => new LambdaLR(opt(), 3 as unknown as () => number), "LambdaLR", "lrLambda");
  throwsNaming(() => new StepLR({} as never, 2), "StepLR", "optimizer");
});
