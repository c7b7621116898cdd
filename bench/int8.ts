// Dynamic int8 vs float32, and vs the peers' int8, on the same shapes and weights (issue 18):
//   MHA forward (D 768, 12 heads) at (B, T) = (1, 128), (8, 128), (1, 512)
//   a BERT-base-sized encoder forward: 12 post-norm layers, D 768, 12 heads, FFN 3072 GELU, (1, 128) and (1, 512)
// attnflow: nn.MultiheadAttention / nn.TransformerEncoder (native backend), float32 and after nn.quantizeDynamic.
// onnxruntime-node: com.microsoft.DynamicQuantizeMatMul for every projection (int8 weights per output column, u8
// activations per tensor), attention in float ops. PyTorch: torch.ao.quantization.quantize_dynamic (qint8,
// per-channel weights) of the same modules written with nn.Linear, on the engine this torch has (fbgemm if present,
// else onednn), via bench/peers/int8_torch.py. attnflow and onnxruntime run round-robin in one process (median and minimum of
// the timed runs after 3 warm-up rounds); 2 threads everywhere.
// Where the addon runs AMX tiles, attnflow int8 is also timed with the AVX-512 VNNI kernel (native setInt8), right
// after the AMX run on the same module: an A/B of the two kernels in one process.
// Run under the shared lock: flock /tmp/attnflow-bench.lock node dist/bench/int8.js [--reps 20] [--json out.json]
//   [--threads N] [--no-torch] (skip the PyTorch peer) [--cases mha-b1-t128,encoder-b1-t128] (only these)
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
const noTorch = args.includes("--no-torch");
// --threads N: attnflow's pool and onnxruntime's intra-op threads (default 2 = this machine's cores); 1 is the
// steadier comparison on a loaded machine (no thread waits for a preempted sibling)
const threads = args.includes("--threads") ? Number(args[args.indexOf("--threads") + 1]) : 2;
const only = args.includes("--cases") ? new Set(args[args.indexOf("--cases") + 1].split(",")) : null;

/**
 * The implementations of one case timed round-robin (one run of each in turn, after 3 warm-up rounds), so that a
 * shared machine's load changes hit all of them alike: median and minimum ms of each.
 */
async function interleaved(impls: { impl: string; fn: () => unknown }[], n: number): Promise<{ impl: string; ms: number; minMs: number; cpuMs: number }[]> {
  const t: number[][] = impls.map(() => []), c: number[][] = impls.map(() => []);
  for (let i = 0; i < n + 3; i++) {
    for (let j = 0; j < impls.length; j++) {
      const c0 = process.cpuUsage(), t0 = performance.now();
      await impls[j].fn();
      const dt = performance.now() - t0, dc = process.cpuUsage(c0);
      if (i >= 3) { t[j].push(dt); c[j].push((dc.user + dc.system) / 1000); }
    }
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1];
  return impls.map((m, j) => { const s = t[j].sort((a, b) => a - b); return { impl: m.impl, ms: s[s.length >> 1], minMs: s[0], cpuMs: med(c[j]) }; });
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

// cpuMs: median CPU time of the process per run (all its threads): with --threads 1 the work itself, whatever the
// machine's load (time spent preempted is not counted)
interface Row { case: string; impl: string; ms: number; minMs?: number; cpuMs?: number; maxAbsDiffVsFloat?: number }
const rows: Row[] = [];
const log = (r: Row) => {
  rows.push(r); console.log(`${r.case.padEnd(22)} ${r.impl.padEnd(34)} ${r.ms.toFixed(2).padStart(9)} ms (min ${r.minMs?.toFixed(2) ?? "?"}, cpu ${r.cpuMs?.toFixed(2) ?? "?"})${r.maxAbsDiffVsFloat !== undefined ? `   max|Δ| vs float ${r.maxAbsDiffVsFloat.toExponential(2)}` : ""}`); };
const maxDiff = (a: Float32Array, b: Float32Array) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

async function main(): Promise<void> {
  const native = loadNativeKernels().kernels;
  native?.setNumThreads(threads);
  const int8Name = native?.info().int8 ?? "?";
  const abVnni = int8Name === "amx" && !!native?.setInt8;
  /** attnflow int8 with the VNNI kernel instead of AMX (the A/B), when this addon runs AMX. */
  const withVnni = <T>(fn: () => T): T => { native!.setInt8!("avx512-vnni"); try { return fn(); } finally { native!.setInt8!("auto"); } };
  console.log(`backend ${getBackend()}, int8 kernel ${native?.info().int8 ?? "?"}, ${cpus()[0].model}, ${cpus().length} cores, ${threads} threads, load ${loadavg()[0].toFixed(1)}; onnxruntime-node ${ortVersion()}`);
  const ort = loadOrt() as unknown as {
    InferenceSession: { create(b: Uint8Array, o: Record<string, unknown>): Promise<{ run(f: Record<string, unknown>): Promise<Record<string, { data: Float32Array }>> }> };
    Tensor: new (t: "float32", d: Float32Array, dims: number[]) => unknown;
  };
  const sessionOpts = { executionProviders: ["cpu"], intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all" };
  const torchCases: { name: string; kind: "mha" | "encoder"; B: number; T: number; file: string }[] = [];

  manualSeed(18);
  for (const [B, T] of [[1, 128], [8, 128], [1, 512]]) {
    const name = `mha-b${B}-t${T}`;
    if (only && !only.has(name)) continue;
    const mha = new nn.MultiheadAttention(D, H, { batchFirst: true }); mha.eval();
    for (const p of [mha.inProjBias!, (mha.outProj as nn.Linear).bias!]) p.storage.data.set(Float32Array.from({ length: p.numel() }, (_, i) => Math.sin(i) * 0.02));
    const w = mhaWeights(mha);
    const x = Tensor.fromArray(Float32Array.from({ length: B * T * D }, (_, i) => Math.sin(i * 0.37) + 0.3 * Math.cos(i * 0.011)), [B, T, D]);
    const yF = noGrad(() => mha.forward(x, x, x, { needWeights: false })[0].dataSync() as Float32Array);
    const q = new nn.MultiheadAttention(D, H, { batchFirst: true }); q.loadStateDict(mha.stateDict()); nn.quantizeDynamic(q);
    const yQ = noGrad(() => q.forward(x, x, x, { needWeights: false })[0].dataSync() as Float32Array);
    const s = await ort.InferenceSession.create(ortMha(B, T, w), sessionOpts);
    const feed = { x: new ort.Tensor("float32", x.dataSync() as Float32Array, [B, T, D]) };
    const yO = (await s.run(feed)).out.data;
    const fwd = (m: nn.MultiheadAttention) => () => noGrad(() => m.forward(x, x, x, { needWeights: false })[0].dispose());
    const res = await interleaved([
      { impl: "attnflow float32", fn: fwd(mha) },
      { impl: `attnflow int8 (${int8Name})`, fn: fwd(q) },
      ...(abVnni ? [{ impl: "attnflow int8 (avx512-vnni)", fn: () => withVnni(fwd(q)) }] : []),
      { impl: "onnxruntime-node int8 (DQMatMul)", fn: () => s.run(feed) },
    ], reps);
    for (const r of res) log({ case: name, ...r, ...(r.impl.startsWith("attnflow int8 (") && r.impl !== "attnflow int8 (avx512-vnni)" ? { maxAbsDiffVsFloat: maxDiff(yQ, yF) } : r.impl.startsWith("onnx") ? { maxAbsDiffVsFloat: maxDiff(yO, yF) } : {}) });
    const file = `/tmp/attnflow-int8-${name}.bin`;
    writeFileSync(file, Buffer.concat([w.inW, w.inB, w.outW, w.outB, x.dataSync() as Float32Array, yF].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))));
    torchCases.push({ name, kind: "mha", B, T, file });
  }

  for (const T of [128, 512]) {
    const B = 1, name = `encoder-b${B}-t${T}`;
    if (only && !only.has(name)) continue;
    const enc = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(D, H, { dimFeedforward: FF, dropout: 0, activation: "gelu", batchFirst: true }), LAYERS);
    enc.eval();
    const x = Tensor.fromArray(Float32Array.from({ length: B * T * D }, (_, i) => Math.sin(i * 0.37) + 0.3 * Math.cos(i * 0.011)), [B, T, D]);
    const yF = noGrad(() => enc.forward(x).dataSync() as Float32Array);
    const sd = enc.stateDict();
    const layers = Array.from({ length: LAYERS }, (_, i) => {
      const k = (n: string) => data(sd[`layers.${i}.${n}`]);
      return { w: { inW: k("self_attn.in_proj_weight"), inB: k("self_attn.in_proj_bias"), outW: k("self_attn.out_proj.weight"), outB: k("self_attn.out_proj.bias"),
        f1W: k("linear1.weight"), f1B: k("linear1.bias"), f2W: k("linear2.weight"), f2B: k("linear2.bias") },
      n1: [k("norm1.weight"), k("norm1.bias")] as [Float32Array, Float32Array], n2: [k("norm2.weight"), k("norm2.bias")] as [Float32Array, Float32Array] };
    });
    const encQ = new nn.TransformerEncoder(() => new nn.TransformerEncoderLayer(D, H, { dimFeedforward: FF, dropout: 0, activation: "gelu", batchFirst: true }), LAYERS);
    encQ.loadStateDict(sd);
    nn.quantizeDynamic(encQ);
    const yQ = noGrad(() => encQ.forward(x).dataSync() as Float32Array);
    const s = await ort.InferenceSession.create(ortEncoder(B, T, layers), sessionOpts);
    const feed = { x: new ort.Tensor("float32", x.dataSync() as Float32Array, [B, T, D]) };
    const yO = (await s.run(feed)).out.data;
    const fwd = (m: nn.TransformerEncoder) => () => noGrad(() => m.forward(x).dispose());
    const res = await interleaved([
      { impl: "attnflow float32", fn: fwd(enc) },
      { impl: `attnflow int8 (${int8Name})`, fn: fwd(encQ) },
      ...(abVnni ? [{ impl: "attnflow int8 (avx512-vnni)", fn: () => withVnni(fwd(encQ)) }] : []),
      { impl: "onnxruntime-node int8 (DQMatMul)", fn: () => s.run(feed) },
    ], Math.max(5, reps >> 2));
    for (const r of res) log({ case: name, ...r, ...(r.impl.startsWith("attnflow int8 (") && r.impl !== "attnflow int8 (avx512-vnni)" ? { maxAbsDiffVsFloat: maxDiff(yQ, yF) } : r.impl.startsWith("onnx") ? { maxAbsDiffVsFloat: maxDiff(yO, yF) } : {}) });
    const file = `/tmp/attnflow-int8-${name}.bin`;
    const parts: Float32Array[] = [];
    for (const l of layers) parts.push(l.w.inW, l.w.inB, l.w.outW, l.w.outB, l.w.f1W!, l.w.f1B!, l.w.f2W!, l.w.f2B!, ...l.n1, ...l.n2);
    parts.push(x.dataSync() as Float32Array, yF);
    writeFileSync(file, Buffer.concat(parts.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))));
    torchCases.push({ name, kind: "encoder", B, T, file });
  }

  const py = noTorch ? null : spawnSync("/usr/bin/python3", [fileURLToPath(new URL("../../bench/peers/int8_torch.py", import.meta.url)), JSON.stringify({ cases: torchCases, D, H, FF, layers: LAYERS, reps, threads })],
    { encoding: "utf8", timeout: 900_000 });
  if (!py) console.log("PyTorch peer skipped (--no-torch)");
  else if (py.status !== 0) console.log(`PyTorch peer failed: ${py.stderr.slice(-800)}`);
  else for (const line of py.stdout.trim().split("\n")) { const r = JSON.parse(line) as Row; log(r); }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ cpu: cpus()[0].model, cores: cpus().length, threads, load: loadavg()[0], int8Kernel: native?.info().int8, rows }, null, 1));
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
