// Dynamic int8 vs float32, and vs the peers' int8, on the same shapes and weights (issue 18):
//   MHA forward (D 768, 12 heads) at (B, T) = (1, 128), (8, 128), (1, 512)
//   a BERT-base-sized encoder forward: 12 post-norm layers, D 768, 12 heads, FFN 3072 GELU, (1, 128) and (1, 512)
// attnflow: nn.MultiheadAttention / nn.TransformerEncoder (native backend), float32 and after nn.quantizeDynamic.
// onnxruntime-node: com.microsoft.DynamicQuantizeMatMul for every projection (int8 weights per output column, u8
// activations per tensor), attention in float ops. PyTorch: torch.ao.quantization.quantize_dynamic (qint8,
// per-channel weights) of the same modules written with nn.Linear, on the engine this torch has (fbgemm if present,
// else onednn), via bench/peers/int8_torch.py. Median of timed runs after warm-up, 2 threads everywhere.
// Run under the shared lock: flock /tmp/attnflow-bench.lock node dist/bench/int8.js [--reps 20] [--json out.json]
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { nn, noGrad, manualSeed, Tensor, getBackend } from "../src/node.js";
import { loadNativeKernels } from "../src/node/native-addon.js";
import { OnnxGraph } from "./peers/onnx-builder.js";
import { loadOrt, ortVersion } from "./peers/ort-peer.js";

const D = 768, H = 12, FF = 3072, LAYERS = 12;
const args = process.argv.slice(2);
const reps = Number(args[args.indexOf("--reps") + 1]) || 20;
const jsonOut = args.includes("--json") ? args[args.indexOf("--json") + 1] : null;

function timeMs(fn: () => unknown, n = reps): number {
  for (let i = 0; i < 3; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < n; i++) { const t0 = performance.now(); fn(); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}
async function timeMsAsync(fn: () => Promise<unknown>, n = reps): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < n; i++) { const t0 = performance.now(); await fn(); t.push(performance.now() - t0); }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

/** Per-output-channel symmetric int8 of W (N, K) → Wqᵀ (K, N) int8 and scales (N), PyTorch's observer rule. */
function int8Columns(w: Float32Array, N: number, K: number): { qT: Int8Array; scale: Float32Array } {
  const qT = new Int8Array(N * K), scale = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let a = 0;
    for (let k = 0; k < K; k++) a = Math.max(a, Math.abs(w[n * K + k]));
    const s = Math.max(a / 127.5, 1.1920929e-7);
    scale[n] = s;
    for (let k = 0; k < K; k++) qT[k * N + n] = Math.max(-128, Math.min(127, Math.round(w[n * K + k] / s)));
  }
  return { qT, scale };
}

/** y = DynamicQuantizeMatMul(x, Wᵀ int8, scales) + b. */
function qLinear(g: OnnxGraph, x: string, w: Float32Array, b: Float32Array, N: number, K: number, name: string): string {
  const { qT, scale } = int8Columns(w, N, K);
  const wq = g.initInt8(`${name}_wq`, [K, N], qT);
  const ws = g.init(`${name}_ws`, [N], scale);
  const bias = g.init(`${name}_b`, [N], b);
  return g.op("DynamicQuantizeMatMul", [x, wq, ws, "", bias], {}, "com.microsoft");
}

interface LayerW { inW: Float32Array; inB: Float32Array; outW: Float32Array; outB: Float32Array; f1W?: Float32Array; f1B?: Float32Array; f2W?: Float32Array; f2B?: Float32Array }
const data = (t: Tensor | null) => (t ? (t.dataSync() as Float32Array) : new Float32Array(0));

function mhaWeights(m: nn.MultiheadAttention): LayerW {
  return { inW: data(m.inProjWeight), inB: data(m.inProjBias), outW: data((m.outProj as nn.Linear).weight), outB: data((m.outProj as nn.Linear).bias) };
}

/** Self-attention with int8 projections on (B, T, D): returns the output name. */
function ortAttention(g: OnnxGraph, x: string, B: number, T: number, w: LayerW, p: string): string {
  const d = D / H;
  const headShape = g.initInt64(`${p}_hs`, [B, T, H, d]), flat = g.initInt64(`${p}_fs`, [B, T, D]);
  const scale = g.init(`${p}_scale`, [], Float32Array.of(1 / Math.sqrt(d)));
  const qkv = qLinear(g, x, w.inW, w.inB, 3 * D, D, `${p}_in`);
  const [q0, k0, v0] = g.node("Split", [qkv], [`${p}_q0`, `${p}_k0`, `${p}_v0`], { axis: 2 });
  const q = g.op("Transpose", [g.op("Reshape", [q0, headShape])], { perm: [0, 2, 1, 3] });
  const kT = g.op("Transpose", [g.op("Reshape", [k0, headShape])], { perm: [0, 2, 3, 1] });
  const v = g.op("Transpose", [g.op("Reshape", [v0, headShape])], { perm: [0, 2, 1, 3] });
  const pr = g.op("Softmax", [g.op("Mul", [g.op("MatMul", [q, kT]), scale])], { axis: -1 });
  const o = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [pr, v])], { perm: [0, 2, 1, 3] }), flat]);
  return qLinear(g, o, w.outW, w.outB, D, D, `${p}_out`);
}

function ortMha(B: number, T: number, w: LayerW): Uint8Array {
  const g = new OnnxGraph("mha_int8");
  const x = g.input("x", [B, T, D]);
  g.node("Identity", [ortAttention(g, x, B, T, w, "l0")], ["out"]);
  g.output("out", [B, T, D]);
  return g.toModel();
}

function ortEncoder(B: number, T: number, layers: { w: LayerW; n1: [Float32Array, Float32Array]; n2: [Float32Array, Float32Array] }[]): Uint8Array {
  const g = new OnnxGraph("encoder_int8");
  let h = g.input("x", [B, T, D]);
  layers.forEach((l, i) => {
    const a = ortAttention(g, h, B, T, l.w, `l${i}`);
    const ln = (x: string, [s, b]: [Float32Array, Float32Array], n: string) =>
      g.op("LayerNormalization", [x, g.init(`${n}_s`, [D], s), g.init(`${n}_b`, [D], b)], { axis: -1, epsilon: { float: 1e-5 } });
    h = ln(g.op("Add", [h, a]), l.n1, `l${i}_n1`);
    const f = qLinear(g, g.op("Gelu", [qLinear(g, h, l.w.f1W!, l.w.f1B!, FF, D, `l${i}_f1`)], {}, "com.microsoft"), l.w.f2W!, l.w.f2B!, D, FF, `l${i}_f2`);
    h = ln(g.op("Add", [h, f]), l.n2, `l${i}_n2`);
  });
  g.node("Identity", [h], ["out"]);
  g.output("out", [B, T, D]);
  return g.toModel();
}

interface Row { case: string; impl: string; ms: number; maxAbsDiffVsFloat?: number }
const rows: Row[] = [];
const log = (r: Row) => { rows.push(r); console.log(`${r.case.padEnd(22)} ${r.impl.padEnd(34)} ${r.ms.toFixed(2).padStart(9)} ms${r.maxAbsDiffVsFloat !== undefined ? `   max|Δ| vs float ${r.maxAbsDiffVsFloat.toExponential(2)}` : ""}`); };
const maxDiff = (a: Float32Array, b: Float32Array) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

async function main(): Promise<void> {
  const native = loadNativeKernels().kernels;
  console.log(`backend ${getBackend()}, int8 kernel ${native?.info().int8 ?? "?"}, ${cpus()[0].model}, ${cpus().length} cores, load ${loadavg()[0].toFixed(1)}; onnxruntime-node ${ortVersion()}`);
  const ort = loadOrt() as unknown as {
    InferenceSession: { create(b: Uint8Array, o: Record<string, unknown>): Promise<{ run(f: Record<string, unknown>): Promise<Record<string, { data: Float32Array }>> }> };
    Tensor: new (t: "float32", d: Float32Array, dims: number[]) => unknown;
  };
  const sessionOpts = { executionProviders: ["cpu"], intraOpNumThreads: 2, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all" };
  const torchCases: { name: string; kind: "mha" | "encoder"; B: number; T: number; file: string }[] = [];

  manualSeed(18);
  for (const [B, T] of [[1, 128], [8, 128], [1, 512]]) {
    const name = `mha-b${B}-t${T}`;
    const mha = new nn.MultiheadAttention(D, H, { batchFirst: true }); mha.eval();
    for (const p of [mha.inProjBias!, (mha.outProj as nn.Linear).bias!]) p.storage.data.set(Float32Array.from({ length: p.numel() }, (_, i) => Math.sin(i) * 0.02));
    const w = mhaWeights(mha);
    const x = Tensor.fromArray(Float32Array.from({ length: B * T * D }, (_, i) => Math.sin(i * 0.37) + 0.3 * Math.cos(i * 0.011)), [B, T, D]);
    const yF = noGrad(() => mha.forward(x, x, x, { needWeights: false })[0].dataSync() as Float32Array);
    log({ case: name, impl: "attnflow float32", ms: timeMs(() => noGrad(() => mha.forward(x, x, x, { needWeights: false })[0].dispose())) });
    const q = new nn.MultiheadAttention(D, H, { batchFirst: true }); q.loadStateDict(mha.stateDict()); nn.quantizeDynamic(q);
    const yQ = noGrad(() => q.forward(x, x, x, { needWeights: false })[0].dataSync() as Float32Array);
    log({ case: name, impl: "attnflow int8", ms: timeMs(() => noGrad(() => q.forward(x, x, x, { needWeights: false })[0].dispose())), maxAbsDiffVsFloat: maxDiff(yQ, yF) });
    const s = await ort.InferenceSession.create(ortMha(B, T, w), sessionOpts);
    const feed = { x: new ort.Tensor("float32", x.dataSync() as Float32Array, [B, T, D]) };
    const yO = (await s.run(feed)).out.data;
    log({ case: name, impl: "onnxruntime-node int8 (DQMatMul)", ms: await timeMsAsync(() => s.run(feed)), maxAbsDiffVsFloat: maxDiff(yO, yF) });
    const file = `/tmp/attnflow-int8-${name}.bin`;
    writeFileSync(file, Buffer.concat([w.inW, w.inB, w.outW, w.outB, x.dataSync() as Float32Array, yF].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))));
    torchCases.push({ name, kind: "mha", B, T, file });
  }

  for (const T of [128, 512]) {
    const B = 1, name = `encoder-b${B}-t${T}`;
    const enc = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(D, H, { dimFeedforward: FF, dropout: 0, activation: "gelu", batchFirst: true }), LAYERS);
    enc.eval();
    const x = Tensor.fromArray(Float32Array.from({ length: B * T * D }, (_, i) => Math.sin(i * 0.37) + 0.3 * Math.cos(i * 0.011)), [B, T, D]);
    const yF = noGrad(() => enc.forward(x).dataSync() as Float32Array);
    log({ case: name, impl: "attnflow float32", ms: timeMs(() => noGrad(() => enc.forward(x).dispose()), Math.max(5, reps >> 2)) });
    const sd = enc.stateDict();
    const layers = Array.from({ length: LAYERS }, (_, i) => {
      const k = (n: string) => data(sd[`layers.${i}.${n}`]);
      return { w: { inW: k("self_attn.in_proj_weight"), inB: k("self_attn.in_proj_bias"), outW: k("self_attn.out_proj.weight"), outB: k("self_attn.out_proj.bias"),
        f1W: k("linear1.weight"), f1B: k("linear1.bias"), f2W: k("linear2.weight"), f2B: k("linear2.bias") },
      n1: [k("norm1.weight"), k("norm1.bias")] as [Float32Array, Float32Array], n2: [k("norm2.weight"), k("norm2.bias")] as [Float32Array, Float32Array] };
    });
    nn.quantizeDynamic(enc);
    const yQ = noGrad(() => enc.forward(x).dataSync() as Float32Array);
    log({ case: name, impl: "attnflow int8", ms: timeMs(() => noGrad(() => enc.forward(x).dispose()), Math.max(5, reps >> 2)), maxAbsDiffVsFloat: maxDiff(yQ, yF) });
    const s = await ort.InferenceSession.create(ortEncoder(B, T, layers), sessionOpts);
    const feed = { x: new ort.Tensor("float32", x.dataSync() as Float32Array, [B, T, D]) };
    const yO = (await s.run(feed)).out.data;
    log({ case: name, impl: "onnxruntime-node int8 (DQMatMul)", ms: await timeMsAsync(() => s.run(feed), Math.max(5, reps >> 2)), maxAbsDiffVsFloat: maxDiff(yO, yF) });
    const file = `/tmp/attnflow-int8-${name}.bin`;
    const parts: Float32Array[] = [];
    for (const l of layers) parts.push(l.w.inW, l.w.inB, l.w.outW, l.w.outB, l.w.f1W!, l.w.f1B!, l.w.f2W!, l.w.f2B!, ...l.n1, ...l.n2);
    parts.push(x.dataSync() as Float32Array, yF);
    writeFileSync(file, Buffer.concat(parts.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))));
    torchCases.push({ name, kind: "encoder", B, T, file });
  }

  const py = spawnSync("/usr/bin/python3", [fileURLToPath(new URL("../../bench/peers/int8_torch.py", import.meta.url)), JSON.stringify({ cases: torchCases, D, H, FF, layers: LAYERS, reps })],
    { encoding: "utf8", timeout: 900_000 });
  if (py.status !== 0) console.log(`PyTorch peer failed: ${py.stderr.slice(-800)}`);
  else for (const line of py.stdout.trim().split("\n")) { const r = JSON.parse(line) as Row; log(r); }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ cpu: cpus()[0].model, cores: cpus().length, load: loadavg()[0], int8Kernel: native?.info().int8, rows }, null, 1));
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
