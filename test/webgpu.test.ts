// WebGPU device: every WGSL kernel against the reference backend on odd shapes (strided and broadcast views, sizes that
// cross the GEMM tiles), autograd through device ops, and the device rules (async reads, errors naming both devices,
// "not yet supported on webgpu: <op>"). Runs on whatever adapter Dawn finds; without a GPU on Linux, SwiftShader
// (Chromium's software Vulkan). No adapter: skipped with the reason, or failed under CI=true (.ci/run installs it).
import assert from "node:assert/strict";
import { ICD, gpuTest, close } from "./helpers/webgpu.js";
import * as af from "../src/index.js";
import type { Tensor } from "../src/tensor.js";

af.setBackend("reference");   // the oracle

const gen = new af.Generator(1234);
const rand = (shape: number[]) => af.randn(shape, { generator: gen } as never);
const G = (t: Tensor) => t.to("webgpu");

gpuTest("adapter is reported", async () => {
  const d = af.webgpuDevice()!;
  assert.ok(d.describe().startsWith("WebGPU: "), d.describe());
  if (process.env.VK_ICD_FILENAMES === ICD) assert.equal(d.info.architecture, "swiftshader");
});

gpuTest("unary ops on a transposed (strided) view, including NaN/±Inf inputs", async () => {
  const x = rand([3, 5, 7]).mul(2).transpose(0, 2);                  // (7, 5, 3), not contiguous
  // WGSL allows sin/cos an absolute error of 2^-11 on [−π, π] (SwiftShader uses it): checked to that bound
  for (const op of ["sin", "cos"] as const) await close((G(x) as Tensor)[op](), x[op](), op, 2 ** -11, 0);
  const ops = ["neg", "exp", "abs", "tanh", "sigmoid", "relu", "erf", "square", "sign", "floor", "ceil", "round",
    "gelu", "geluTanh", "geluGrad", "geluTanhGrad", "expm1", "reciprocal"] as const;
  const { unaryOp } = await import("../src/ops/elementwise.js");
  for (const op of ops) await close(unaryOp(G(x), op), unaryOp(x, op), op, 2e-6, 2e-5);
  for (const op of ["log", "sqrt", "rsqrt", "log1p"] as const) await close(unaryOp(G(x.abs()), op), unaryOp(x.abs(), op), op, 2e-6, 2e-5);
  const special = af.tensor([NaN, Infinity, -Infinity, 0, -0, 2.5, -2.5, 0.5, 1.5]);
  for (const op of ["neg", "abs", "relu", "round", "sigmoid", "tanh", "exp"] as const) await close(unaryOp(G(special), op), unaryOp(special, op), `${op} special`);
  await close(G(special).logicalNot(), special.logicalNot(), "not");
});

gpuTest("binary ops with broadcasting, int32 and bool operands, scalars", async () => {
  const a = rand([3, 1, 7]), b = rand([5, 1]), c = rand([7]).abs().add(0.5);
  for (const op of ["add", "sub", "mul", "div", "maximum", "minimum"] as const) await close(G(a)[op](G(b)), a[op](b), op);
  await close(G(c).pow(G(b.narrow(0, 0, 1).reshape([1]))), c.pow(b.narrow(0, 0, 1).reshape([1])), "pow");
  await close(G(a).pow(2), a.pow(2), "pow 2 (negative base, integer exponent)");
  await close(G(a).mul(3).add(1), a.mul(3).add(1), "scalars");
  for (const op of ["eq", "ne", "lt", "le", "gt", "ge"] as const) await close((G(a) as any)[op](G(b)), (a as any)[op](b), op);
  const i = af.tensor([[1, -2, 3], [4, 5, -6]], { dtype: "int32" }), j = af.tensor([2, 0, -1], { dtype: "int32" });
  await close(G(i).add(G(j)), i.add(j), "int add");
  await close(G(i).mul(G(j)), i.mul(j), "int mul");
  await close(G(i).div(G(j.add(3))), i.div(j.add(3)), "int div → float");
  await close(G(i).maximum(G(j)), i.maximum(j), "int maximum");
  const m = a.gt(0), n = b.lt(0.3);
  await close(G(m).logicalAnd(G(n)), m.logicalAnd(n), "and");
  await close(G(m).logicalOr(G(n)), m.logicalOr(n), "or");
  await close(af.where(G(m), G(b), 7), af.where(m, b, 7), "where");
  await close(G(a).maskedFill(G(a.lt(0)), -1), a.maskedFill(a.lt(0), -1), "maskedFill");
  await close(G(a.mul(3)).int(), a.mul(3).int(), "float → int truncates");
  await close(G(a).bool(), a.bool(), "float → bool");
  await close(G(i).float(), i.float(), "int → float");
  await close(G(a).clamp(-0.5, 0.5), a.clamp(-0.5, 0.5), "clamp");
});

gpuTest("reductions over one or more dims of permuted and narrowed views", async () => {
  const x = rand([4, 6, 5]).permute(2, 0, 1).narrow(1, 1, 3);   // (5, 3, 6)
  await close(G(x).sum(), x.sum(), "sum all", 1e-5, 1e-5);
  await close(G(x).sum([0, 2], true), x.sum([0, 2], true), "sum 0,2 keepDim");
  await close(G(x).mean(1), x.mean(1), "mean");
  await close(G(x).max(2), x.max(2), "max");
  await close(G(x).min(0), x.min(0), "min");
  await close(G(x).argmax(1), x.argmax(1), "argmax");
  await close(G(x).argmin(2), x.argmin(2), "argmin");
  await close(G(x).var(2), x.var(2), "var");
  await close(G(x).logsumexp(0), x.logsumexp(0), "logsumexp");
  const n = af.tensor([[1, NaN, 3], [2, 5, 1]]);
  await close(G(n).max(1), n.max(1), "max propagates NaN");
  await close(G(n).argmax(1), n.argmax(1), "argmax of NaN");
  const i = af.tensor([[1, 2, 3], [4, 5, 6]], { dtype: "int32" });
  await close(G(i).sum(0), i.sum(0), "int sum");
});

gpuTest("matmul: odd shapes across the 64×64 tiles, transposed operands, batched and broadcast batches, 1-D", async () => {
  const cases: [number[], number[], string][] = [[[5, 7], [7, 3], "small"], [[67, 33], [33, 70], "crosses tiles"], [[2, 3, 5, 17], [17, 9], "batch broadcast"],
    [[3, 1, 4, 6], [2, 6, 5], "both batched"], [[7], [7, 4], "1-D × 2-D"], [[4, 7], [7], "2-D × 1-D"],
    [[2, 131, 67], [67, 130], "the tiled kernel (> 2^20 multiply-adds; smaller products take the one-thread-per-output one)"]];
  for (const [sa, sb, what] of cases) {
    const a = rand(sa), b = rand(sb);
    await close(G(a).matmul(G(b)), a.matmul(b), what, 1e-4, 1e-4);
  }
  const a = rand([9, 70]), b = rand([13, 70]);
  await close(G(a).matmul(G(b).t()), a.matmul(b.t()), "A·Bᵀ (B transposed by flag)", 1e-4, 1e-4);
  await close(G(a).t().matmul(G(a)), a.t().matmul(a), "Aᵀ·A", 1e-4, 1e-4);
  const A = rand([200, 90]), Bt = rand([110, 200]);
  await close(G(A).t().matmul(G(Bt).t()), A.t().matmul(Bt.t()), "tiled: Aᵀ·Bᵀ", 1e-4, 1e-4);
  const w = rand([11, 70]), bias = rand([11]);
  await close(af.F.linear(G(a), G(w), G(bias)), af.F.linear(a, w, bias), "linear", 1e-4, 1e-4);
  await close(af.F.linear(G(a), G(w), G(bias), "gelu"), af.F.linear(a, w, bias, "gelu"), "linear + gelu", 1e-4, 1e-4);
});

gpuTest("softmax, log-softmax, layer norm, embedding (forward)", async () => {
  const x = rand([3, 4, 67]);
  await close(G(x).softmax(-1), x.softmax(-1), "softmax last");
  await close(G(x).softmax(1), x.softmax(1), "softmax dim 1");
  await close(G(x).logSoftmax(-1), x.logSoftmax(-1), "logSoftmax");
  const wide = rand([5, 131]);   // rows > 64: a workgroup per row with tree reductions (short rows: a thread per row)
  await close(G(wide).softmax(-1), wide.softmax(-1), "softmax wide rows");
  await close(af.F.layerNorm(G(wide), [131], null, null), af.F.layerNorm(wide, [131], null, null), "layerNorm wide rows", 1e-5, 1e-4);
  const masked = af.tensor([[-Infinity, -Infinity], [0, -Infinity]]);
  await close(G(masked).softmax(-1), masked.softmax(-1), "all −inf row is NaN like torch");
  const w = rand([67]), b = rand([67]);
  await close(af.F.layerNorm(G(x), [67], G(w), G(b)), af.F.layerNorm(x, [67], w, b), "layerNorm", 1e-5, 1e-4);
  await close(af.F.layerNorm(G(x), [67], null, null), af.F.layerNorm(x, [67], null, null), "layerNorm no affine", 1e-5, 1e-4);
  const table = rand([11, 5]), idx = af.tensor([[3, 0, 10], [3, 7, 1]], { dtype: "int32" });
  await close(af.F.embedding(idx, G(table)), af.F.embedding(idx, table), "embedding, CPU indices");
  await close(af.F.embedding(G(idx), G(table)), af.F.embedding(idx, table), "embedding, device indices");
  assert.throws(() => af.F.embedding(af.tensor([11], { dtype: "int32" }), G(table)), /index 11 out of range for a table of 11 rows/);
});

gpuTest("autograd through device ops: a two-layer MLP with layer norm, embedding and softmax cross-entropy", async () => {
  const emb = rand([13, 8]), w1 = rand([16, 8]), b1 = rand([16]), g = rand([16]), w2 = rand([5, 16]);
  const ids = af.tensor([1, 4, 4, 12, 0, 7], { dtype: "int32" }), target = rand([6, 5]).softmax(-1);
  const forward = (P: Tensor[], idx: Tensor, tgt: Tensor) => {
    const [e, a, bb, gg, c] = P;
    const h = af.F.gelu(af.F.linear(af.F.embedding(idx, e, 0), a, bb));
    const z = af.F.linear(af.F.layerNorm(h, [16], gg, null), c);
    return z.logSoftmax(-1).mul(tgt).sum().neg().div(6);
  };
  const cpuP = [emb, w1, b1, g, w2].map((t) => t.clone().requiresGrad_(true));
  const gpuP = [emb, w1, b1, g, w2].map((t) => G(t).requiresGrad_(true));
  const lc = forward(cpuP, ids, target), lg = forward(gpuP, G(ids), G(target));
  await close(lg, lc, "loss", 1e-5, 1e-4);
  lc.backward(); lg.backward();
  const names = ["embedding", "w1", "b1", "ln weight", "w2"];
  for (let i = 0; i < 5; i++) {
    assert.equal(gpuP[i].grad!.device, "webgpu", `${names[i]}.grad stays on the device`);
    await close(gpuP[i].grad!, cpuP[i].grad!, `grad ${names[i]}`, 1e-5, 1e-3);
  }
  assert.equal((await gpuP[0].grad!.data())[0], 0, "padding row gets no gradient");
  // an optimizer-style in-place update stays on the device
  const before = await gpuP[1].data();
  gpuP[1].addInPlace(gpuP[1].grad!, -0.1);
  const after = await gpuP[1].data(), gr = await gpuP[1].grad!.data();
  assert.ok(Math.abs(after[3] - (before[3] - 0.1 * gr[3])) < 1e-6);
});

gpuTest("device rules: async reads, sync reads throw saying what to call, mixing devices names both, memory is pooled", async () => {
  const x = af.tensor([[1, 2], [3, 4]]), gx = G(x);
  assert.deepEqual(await gx.array(), [[1, 2], [3, 4]]);
  assert.deepEqual(await (await gx.cpu()).array(), [[1, 2], [3, 4]]);
  assert.throws(() => gx.dataSync(), /tensor lives on webgpu: .*await t\.data\(\)/);
  assert.throws(() => G(af.tensor([5])).item(), /await t\.data\(\)/);
  assert.throws(() => gx.to("cpu"), /use await t\.cpu\(\)/);
  assert.throws(() => x.clone().requiresGrad_(true).mul(2).to("webgpu"), /inside an autograd graph on the CPU/);
  assert.throws(() => gx.add(x), /add: expected all tensors on the same device, found webgpu \(shape \[2,2\]\) and cpu \(shape \[2,2\]\)/);
  assert.throws(() => x.matmul(gx), /matmul: expected all tensors on the same device, found cpu .* and webgpu/);
  const q4 = gx.reshape([1, 1, 2, 2]);
  assert.throws(() => af.F.scaledDotProductAttention(q4, q4, q4, { alibiSlopes: [0.5] }), /not yet supported on webgpu: scaledDotProductAttention with alibiSlopes/);
  assert.throws(() => af.F.crossEntropy(gx, G(af.tensor([0, 1], { dtype: "int32" }))), /crossEntropy: the target lives on webgpu/);
  assert.throws(() => af.F.scaledDotProductAttention(q4, q4, x.reshape([1, 1, 2, 2])), /scaledDotProductAttention: expected all tensors on the same device/);
  const rt = af.webgpuDevice()!.runtime;
  const live = rt.liveBytes;
  const t = G(rand([1000]));
  assert.ok(rt.liveBytes > live);
  t.dispose();
  assert.equal(rt.liveBytes, live, "dispose() returns the buffer to the pool");
  af.tidy(() => { G(rand([1000])).add(1).mul(2); });
  assert.equal(rt.liveBytes, live, "tidy() releases device temporaries");
  assert.throws(() => t.dataSync(), /disposed/);
  // an op whose output shares its buffer with an input (WebGPU forbids binding it twice): the input is snapshotted
  const y = G(af.tensor([1, 2, 3]));
  y.addInPlace(y, 0.5);
  assert.deepEqual(Array.from(await y.data()), [1.5, 3, 4.5]);
});

type Sdpa = Parameters<typeof af.F.scaledDotProductAttention>[3];
/** Fused attention forward (+ maps from the lse) and backward on the device against the reference kernels. */
async function attnCase(what: string, qs: number[], ks: number[], vs: number[], o: NonNullable<Sdpa>, masks: { attnMask?: Tensor; keyPaddingMask?: Tensor } = {}) {
  const q = rand(qs), k = rand(ks), v = rand(vs), g = rand([...qs.slice(0, -1), vs[vs.length - 1]]);
  const cq = q.clone().requiresGrad_(true), ck = k.clone().requiresGrad_(true), cv = v.clone().requiresGrad_(true);
  const gq = G(q).requiresGrad_(true), gk = G(k).requiresGrad_(true), gv = G(v).requiresGrad_(true);
  // masks on the device, or on the CPU (uploaded: the documented exception to the same-device rule)
  const gm = { attnMask: masks.attnMask ? G(masks.attnMask) : undefined, keyPaddingMask: masks.keyPaddingMask };
  for (const mode of ["full", "mean"] as const) {
    const rc = af.F.scaledDotProductAttention(cq, ck, cv, { ...o, ...masks, returnWeights: mode });
    const rg = af.F.scaledDotProductAttention(gq, gk, gv, { ...o, ...gm, returnWeights: mode });
    await close(rg.out, rc.out, `${what}: out`, 2e-5, 1e-4);
    await close(rg.weights!, rc.weights!, `${what}: weights (${mode})`, 2e-6, 1e-4);
    if (mode === "full") {
      rc.out.mul(g).sum().backward();
      rg.out.mul(G(g)).sum().backward();
      await close(gq.grad!, cq.grad!, `${what}: dq`, 2e-5, 1e-3);
      await close(gk.grad!, ck.grad!, `${what}: dk`, 2e-5, 1e-3);
      await close(gv.grad!, cv.grad!, `${what}: dv`, 2e-5, 1e-3);
    }
  }
}

gpuTest("fused attention: forward, maps from the lse and backward; GQA, odd lengths across the tiles, causal block skipping", async () => {
  await attnCase("plain", [2, 4, 37, 8], [2, 2, 45, 8], [2, 2, 45, 6], {});
  await attnCase("causal", [1, 3, 70, 5], [1, 3, 70, 5], [1, 3, 70, 7], { causal: true, scale: 0.3 });
});

gpuTest("fused attention: key padding, bool and additive masks, fully masked rows (output 0, no gradient), 3-D inputs", async () => {
  const pad = af.tensor([[false, false, true, false, true, true, false], [true, true, true, true, true, true, true]]);
  await attnCase("key padding (batch 1 fully padded)", [2, 2, 5, 4], [2, 1, 7, 4], [2, 1, 7, 4], {}, { keyPaddingMask: pad });
  const boolMask = rand([5, 7]).gt(-0.3);
  await attnCase("bool mask (broadcast)", [2, 2, 5, 4], [2, 2, 7, 4], [2, 2, 7, 4], { causal: true }, { attnMask: boolMask });
  await attnCase("additive per-head mask", [1, 3, 6, 4], [1, 3, 9, 4], [1, 3, 9, 4], {}, { attnMask: rand([1, 3, 6, 9]) });
  await attnCase("3-D (B, T, D)", [2, 9, 6], [2, 11, 6], [2, 11, 3], {});
});

gpuTest("training on the device: a small classifier over 12 steps of SGD (Nesterov, weight decay), Adam (amsgrad) and AdamW, in place", async () => {
  const X = rand([24, 10]), Y = rand([24, 4]).mul(3).softmax(-1);
  const init = [rand([16, 10]).mul(0.3), rand([16]).mul(0.1), rand([16]), rand([4, 16]).mul(0.3), rand([4]).mul(0.1)];
  const lossOf = (P: Tensor[], x: Tensor, y: Tensor) => {
    const h = af.F.layerNorm(af.F.gelu(af.F.linear(x, P[0], P[1])), [16], P[2], null);
    return af.F.linear(h, P[3], P[4]).logSoftmax(-1).mul(y).sum().neg().div(24);
  };
  const makers: [string, (p: Tensor[]) => { step(): void; zeroGrad(): void }][] = [
    ["SGD", (p) => new af.optim.SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
    ["Adam amsgrad", (p) => new af.optim.Adam(p, { lr: 0.01, amsgrad: true })],
    ["AdamW", (p) => new af.optim.AdamW(p, { lr: 0.01, weightDecay: 0.05 })],
  ];
  for (const [name, make] of makers) {
    const cpu = init.map((t) => t.clone().requiresGrad_(true)), gpu = init.map((t) => G(t).requiresGrad_(true));
    const oc = make(cpu), og = make(gpu);
    const gx = G(X), gy = G(Y);
    const losses: [number, number][] = [];
    for (let s = 0; s < 12; s++) {
      oc.zeroGrad(); og.zeroGrad();
      const lc = lossOf(cpu, X, Y), lg = lossOf(gpu, gx, gy);
      lc.backward(); lg.backward();
      oc.step(); og.step();
      losses.push([lc.item(), (await lg.data())[0]]);
    }
    for (const [c, g] of losses) assert.ok(Math.abs(c - g) < 1e-4, `${name}: loss ${g} on webgpu vs ${c} on the reference`);
    assert.ok(losses[11][1] < losses[0][1], `${name}: the loss goes down (${losses[0][1]} → ${losses[11][1]})`);
    for (let i = 0; i < init.length; i++) {
      assert.equal(gpu[i].device, "webgpu");
      await close(gpu[i], cpu[i], `${name}: parameter ${i} after 12 steps`, 1e-4, 1e-3);
    }
  }
});

gpuTest("movement ops that copy: cat/stack, slice and narrow gradients, tril/triu, rmsNorm, rotary (host tables follow the activations)", async () => {
  const a = rand([2, 3, 4]), b = rand([2, 5, 4]);
  await close(af.cat([G(a), G(b)], 1), af.cat([a, b], 1), "cat");
  await close(af.stack([G(a), G(a.mul(2))], 2), af.stack([a, a.mul(2)], 2), "stack");
  await close(G(b).tril(1), b.tril(1), "tril");
  await close(G(b).triu(), b.triu(), "triu");
  const w = rand([4]);
  await close(af.F.rmsNorm(G(b), [4], G(w)), af.F.rmsNorm(b, [4], w), "rmsNorm", 1e-5, 1e-4);
  const ca = a.clone().requiresGrad_(true), ga = G(a).requiresGrad_(true);
  const f = (x: Tensor) => af.cat([x.slice(1, 0, 3, 2), x.narrow(2, 1, 2).mul(3).sum(2, true).expand([2, 3, 4])], 1).square().sum();
  f(ca).backward(); f(ga).backward();
  await close(ga.grad!, ca.grad!, "grad through slice (step 2), narrow, cat, expand", 1e-5, 1e-4);
});

gpuTest("ATTNFLOW_BACKEND=webgpu npm run parity prints the adapter and passes the Hugging Face BERT case on the device", async () => {
  const { spawnSync } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const r = spawnSync(process.execPath, ["dist/cli/parity.js", "test/fixtures/hf/bert-leftpad"], { cwd: root, encoding: "utf8",
    env: { ...process.env, ATTNFLOW_BACKEND: "webgpu", ATTNFLOW_QUIET: "1" } });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout.split("\n")[0], /^backend: webgpu \(WebGPU: .+\) — from ATTNFLOW_BACKEND; CPU kernels: \w+$/);
  assert.match(r.stdout, /PASS test\/fixtures\/hf\/bert-leftpad \[BertModel, atol 0\.0001\] 5 checks/);
});

gpuTest("gather and indexSelect along each axis of strided views (CPU and device indices, repeated indices), with gradients", async () => {
  const x = rand([5, 4, 6]).permute(2, 0, 1);                             // (6, 5, 4), not contiguous
  const ix = af.tensor([3, 0, 3, 5, 1, 3, 2], { dtype: "int32" });
  for (let d = 0; d < 3; d++) {
    const n = x.shape[d], sel = af.tensor(Array.from(ix.dataSync()).map((v) => v % n), { dtype: "int32" });
    const cx = x.clone().requiresGrad_(true), gx = G(x).requiresGrad_(true);
    const yc = cx.indexSelect(d, sel), yg = gx.indexSelect(d, d === 1 ? G(sel) : sel);
    await close(yg, yc, `indexSelect dim ${d}`);
    const w = rand(yc.shape);
    yc.mul(w).sum().backward(); yg.mul(G(w)).sum().backward();
    await close(gx.grad!, cx.grad!, `indexSelect dim ${d}: grad (repeated rows accumulate)`, 1e-6, 1e-5);
  }
  const gi = af.tensor([[[1, 0], [2, 2]], [[0, 0], [1, 3]], [[3, 1], [0, 2]]], { dtype: "int32" });   // (3, 2, 2) into dim 2 of (6, 5, 4)
  const cx = x.clone().requiresGrad_(true), gx = G(x).requiresGrad_(true);
  const yc = cx.gather(2, gi), yg = gx.gather(2, G(gi));
  await close(yg, yc, "gather dim 2 (index smaller than the input)");
  yc.square().sum().backward(); yg.square().sum().backward();
  await close(gx.grad!, cx.grad!, "gather grad", 1e-6, 1e-5);
  const gi0 = af.tensor([[[5], [0]]], { dtype: "int32" });                 // dim 0
  await close(G(x).gather(0, gi0), x.gather(0, gi0), "gather dim 0, CPU index");
  const ints = af.tensor([[4, -1], [7, 9]], { dtype: "int32" });
  const si = af.tensor([1, 1, 0], { dtype: "int32" });
  await close(G(ints).indexSelect(1, si), ints.indexSelect(1, si), "int32 indexSelect");
  assert.throws(() => G(x).gather(2, af.tensor([[[4]]], { dtype: "int32" })), /gather: index 4 out of range for size 4/);
});

gpuTest("conv2d (stride, padding, dilation, rectangular kernels, no bias) forward and gradients match the reference", async () => {
  const cases: [number[], number[], { stride?: number | [number, number]; padding?: number | [number, number]; dilation?: number | [number, number] }, boolean][] = [
    [[2, 3, 7, 9], [5, 3, 3, 3], { padding: 1 }, true],
    [[1, 2, 9, 8], [4, 2, 2, 3], { stride: [2, 1], dilation: [2, 1], padding: [0, 1] }, false],
    [[2, 1, 8, 8], [3, 1, 4, 4], { stride: 4 }, true],
  ];
  for (const [xs, ws, o, bias] of cases) {
    const x = rand(xs), w = rand(ws).mul(0.3), b = rand([ws[0]]);
    const cp = [x, w, b].map((t) => t.clone().requiresGrad_(true)), gp = [x, w, b].map((t) => G(t).requiresGrad_(true));
    const yc = af.F.conv2d(cp[0], cp[1], bias ? cp[2] : null, o), yg = af.F.conv2d(gp[0], gp[1], bias ? gp[2] : null, o);
    const what = `conv2d x ${JSON.stringify(xs)} w ${JSON.stringify(ws)} ${JSON.stringify(o)}`;
    await close(yg, yc, what, 1e-5, 1e-4);
    const g = rand(yc.shape);
    yc.mul(g).sum().backward(); yg.mul(G(g)).sum().backward();
    for (let i = 0; i < (bias ? 3 : 2); i++) await close(gp[i].grad!, cp[i].grad!, `${what}: grad ${["x", "w", "b"][i]}`, 1e-4, 1e-4);
  }
});

gpuTest("crossEntropy (ignore index, label smoothing) on device logits with host targets; clipGradNormTensor", async () => {
  const logits = rand([6, 5]), t = af.tensor([1, 4, -100, 0, 2, 4], { dtype: "int32" });
  for (const o of [{}, { labelSmoothing: 0.2 }, { reduction: "sum" as const }, { reduction: "none" as const }]) {
    const c = logits.clone().requiresGrad_(true), g = G(logits).requiresGrad_(true);
    const lc = af.F.crossEntropy(c, t, o), lg = af.F.crossEntropy(g, t, o);
    await close(lg, lc, `crossEntropy ${JSON.stringify(o)}`);
    lc.sum().backward(); lg.sum().backward();
    await close(g.grad!, c.grad!, `crossEntropy ${JSON.stringify(o)}: grad`, 1e-6, 1e-5);
  }
  for (const [maxNorm, p] of [[0.5, 2], [100, 2], [0.1, Infinity]] as const) {
    const grads = [rand([3, 4]), rand([7])];
    const cp = grads.map((g) => { const t = af.zeros(g.shape).requiresGrad_(true); t.grad = g.clone(); return t; });
    const gp = grads.map((g) => { const t = G(af.zeros(g.shape)).requiresGrad_(true); t.grad = G(g); return t; });
    const total = af.clipGradNorm(cp, maxNorm, p), tg = af.clipGradNormTensor(gp, maxNorm, p);
    await close(tg, af.tensor(total), `clipGradNormTensor total (max ${maxNorm}, p ${p})`);
    for (let i = 0; i < 2; i++) await close(gp[i].grad!, cp[i].grad!, `clipped grad ${i} (max ${maxNorm}, p ${p})`, 1e-6, 1e-5);
  }
});

gpuTest("dropout: F.dropout and attention dropout drop the same elements as the reference for the same generator state, with gradients", async () => {
  const x = rand([4, 33]);
  const dc = af.F.dropout(x, 0.3, true, new af.Generator(99)), dg = af.F.dropout(G(x), 0.3, true, new af.Generator(99));
  await close(dg, dc, "F.dropout");
  const dcv = dc.dataSync();
  assert.ok(dcv.some((v) => v === 0) && dcv.some((v) => v !== 0), "some dropped, some kept");
  // attention dropout: the counter-based hash mask (backend/dropout-hash.ts) in WGSL, forward and backward
  const q = rand([2, 3, 13, 8]), k = rand([2, 3, 17, 8]), v = rand([2, 3, 17, 5]), g = rand([2, 3, 13, 5]);
  for (const o of [{ dropout: 0.25 }, { dropout: 0.5, causal: true }] as const) {
    const cp = [q, k, v].map((t) => t.clone().requiresGrad_(true)), gp = [q, k, v].map((t) => G(t).requiresGrad_(true));
    const rc = af.F.scaledDotProductAttention(cp[0], cp[1], cp[2], { ...o, generator: new af.Generator(5), returnWeights: true });
    const rg = af.F.scaledDotProductAttention(gp[0], gp[1], gp[2], { ...o, generator: new af.Generator(5), returnWeights: true });
    await close(rg.out, rc.out, `attention ${JSON.stringify(o)}: out`, 2e-5, 1e-4);
    await close(rg.weights!, rc.weights!, `attention ${JSON.stringify(o)}: weights (before dropout, like the CPU)`, 2e-6, 1e-4);
    rc.out.mul(g).sum().backward(); rg.out.mul(G(g)).sum().backward();
    for (let i = 0; i < 3; i++) await close(gp[i].grad!, cp[i].grad!, `attention ${JSON.stringify(o)}: d${"qkv"[i]}`, 2e-5, 1e-3);
  }
  const nodrop = af.F.scaledDotProductAttention(G(q), G(k), G(v));
  const drop = af.F.scaledDotProductAttention(G(q), G(k), G(v), { dropout: 0.25, generator: new af.Generator(5) });
  const a = await nodrop.data(), b = await drop.data();
  assert.ok(a.some((x, i) => Math.abs(x - b[i]) > 1e-3), "dropout changes the output");
});

gpuTest("fused attention: sliding windows (causal and symmetric, with an offset) match the reference", async () => {
  await attnCase("window 4 causal", [1, 2, 19, 4], [1, 2, 19, 4], [1, 2, 19, 4], { causal: true, window: 4 });
  await attnCase("window [2, 3] offset 5", [2, 2, 9, 4], [2, 1, 15, 4], [2, 1, 15, 4], { window: [2, 3], windowOffset: 5 });
});

gpuTest("ATTNFLOW_BACKEND=webgpu npm run parity passes the PyTorch op fixtures (primitives incl. conv2d, cross entropy, clipping; sdpa) on the device", async () => {
  const { spawnSync } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const root = fileURLToPath(new URL("../..", import.meta.url));
  for (const dir of ["test/fixtures/pytorch/primitives", "test/fixtures/pytorch/sdpa"]) {
    const r = spawnSync(process.execPath, ["dist/cli/parity.js", dir], { cwd: root, encoding: "utf8",
      env: { ...process.env, ATTNFLOW_BACKEND: "webgpu", ATTNFLOW_QUIET: "1" } });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout.split("\n")[0], /^backend: webgpu \(WebGPU: .+\)/);
    assert.match(r.stdout, /PASS conv2d_3x3_pad1 \[conv2d\]|PASS additive_mask \[sdpa\]/);
    assert.match(r.stdout, /\d+ passed, 0 failed/);
  }
});

gpuTest("maskedRows \"uniform\" with an additive mask on the device (T5's position bias): fully masked rows spread evenly like the reference", async () => {
  const q = rand([2, 2, 5, 4]), k = rand([2, 2, 6, 4]), v = rand([2, 2, 6, 3]);
  const LOW = -3.4028234663852886e38;
  const bias = rand([1, 2, 5, 6]).dataSync().slice();
  for (let j = 0; j < 6; j++) { bias[6 * 1 + j] = LOW; bias[30 + 6 * 3 + j] = j === 2 ? -Infinity : LOW; }   // head 0 row 1, head 1 row 3 (one key at −∞)
  const m = af.tensor(Array.from(bias)).reshape([1, 2, 5, 6]);
  const pad = af.tensor([[false, false, false, false, true, true], [true, true, true, true, true, true]]);
  for (const o of [{}, { causal: true }, { keyPaddingMask: pad }] as const) {
    const opts = { ...o, maskedRows: "uniform" as const, returnWeights: "full" as const };
    const rc = af.F.scaledDotProductAttention(q, k, v, { ...opts, attnMask: m });
    const rg = af.F.scaledDotProductAttention(G(q), G(k), G(v), { ...opts, attnMask: G(m) });
    await close(rg.out, rc.out, `uniform rows ${JSON.stringify(o)}: out`, 2e-5, 1e-4);
    await close(rg.weights!, rc.weights!, `uniform rows ${JSON.stringify(o)}: weights`, 2e-6, 1e-4);
  }
});

gpuTest("ATTNFLOW_BACKEND=webgpu npm run parity: HF generate() on the device — GPT-2 greedy/sampling/beam cases and Llama's greedy tokens and step logits identical to HF", async () => {
  const { spawnSync } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const root = fileURLToPath(new URL("../..", import.meta.url));
  for (const [dir, arch] of [["test/fixtures/hf-gen/gen-gpt2", "GPT2LMHeadModel"], ["test/fixtures/hf/llama-gqa4-linear", "LlamaForCausalLM"]]) {
    const r = spawnSync(process.execPath, ["dist/cli/parity.js", dir], { cwd: root, encoding: "utf8",
      env: { ...process.env, ATTNFLOW_BACKEND: "webgpu", ATTNFLOW_QUIET: "1" } });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`PASS ${dir.replace(/[/-]/g, "\\$&")} \\[${arch}`));
  }
});
