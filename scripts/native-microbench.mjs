#!/usr/bin/env node
// Micro-benchmark of the native kernels (median of repeated runs, ms and GFLOP/s):
//   node scripts/native-microbench.mjs [gemm|attn|mha|all] [--threads N] [--isa avx2] [--quick]
// Attention counts 4·T²·D flops per (batch, head) forward (half of it with causal masking) and 2.5× that for the
// backward (five T×T×D products instead of two), as FlashAttention reports them.
import { createRequire } from "node:module";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const n = createRequire(import.meta.url)(join(root, "native", "build", "Release", "attnflow_native.node"));
const argv = process.argv.slice(2);
const opt = (name) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
if (opt("--threads")) n.setNumThreads(Number(opt("--threads")));
if (opt("--isa") && !n.setIsa(opt("--isa"))) throw new Error(`ISA ${opt("--isa")} not available`);
const quick = argv.includes("--quick");
const what = argv.find((a) => ["gemm", "attn", "mha", "all"].includes(a)) ?? "all";

function randn(len) {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

function time(fn, minMs = quick ? 150 : 400) {
  for (let i = 0; i < 2; i++) fn();
  const samples = [];
  const t0 = performance.now();
  while (samples.length < 5 || (performance.now() - t0 < minMs && samples.length < 200)) {
    const s = performance.now();
    fn();
    samples.push(performance.now() - s);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

function row(name, ms, flops) {
  console.log(`${name.padEnd(44)} ${ms.toFixed(3).padStart(9)} ms ${(flops / ms / 1e6).toFixed(1).padStart(7)} GFLOP/s`);
}

function benchGemm(M, N, K, batch = 1, transB = false) {
  const A = randn(M * K * batch), B = randn(K * N * batch), C = new Float32Array(M * N * batch);
  const ms = time(() => n.gemm(false, transB, M, N, K, 1, A, 0, K, B, 0, transB ? K : N, 0, C, 0, N, batch, M * K, K * N, M * N));
  row(`gemm ${M}x${N}x${K}${batch > 1 ? ` batch ${batch}` : ""}${transB ? " (B^T)" : ""}`, ms, 2 * M * N * K * batch);
}

function benchAttn(B, H, T, D, causal, backward) {
  const q = randn(B * H * T * D), k = randn(B * H * T * D), v = randn(B * H * T * D), out = new Float32Array(B * H * T * D);
  const lse = new Float32Array(B * H * T), dout = randn(B * H * T * D);
  const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
  const s = 1 / Math.sqrt(D);
  const fwd = () => n.attnForward(q, k, v, out, lse, B, H, H, T, T, D, D, s, causal, null, null, 1, 1, 0, 0);
  const bwd = () => n.attnBackward(q, k, v, out, dout, lse, dq, dk, dv, B, H, H, T, T, D, D, s, causal, null, null, 1, 1, 0, 0);
  const flops = 4 * B * H * T * T * D * (causal ? 0.5 : 1);
  const tag = `attn (${B},${H},${T},${D})${causal ? " causal" : ""}`;
  const fms = time(fwd);
  row(`${tag} fwd`, fms, flops);
  if (backward) {
    fwd();
    const bms = time(bwd);
    row(`${tag} bwd`, bms, 2.5 * flops);
    row(`${tag} fwd+bwd`, fms + bms, 3.5 * flops);
  }
}

// Multi-head attention forward, D = 768, 12 heads, as a module would run it with no copies: one fused QKV
// projection GEMM (+bias) writing (T, 3·768), fused attention reading q/k/v out of it through strides and writing
// its output token-major (T, 768), then the output projection GEMM (+bias).
function benchMha(T) {
  const Dm = 768, H = 12, Dh = 64, W = 3 * Dm;
  const x = randn(T * Dm), wqkv = randn(Dm * W), bqkv = randn(W), wo = randn(Dm * Dm), bo = randn(Dm);
  const qkv = new Float32Array(T * W), o = new Float32Array(T * Dm), lse = new Float32Array(H * T), y = new Float32Array(T * Dm);
  const layout = { q: [0, T * W, Dh, W], k: [Dm, T * W, Dh, W], v: [2 * Dm, T * W, Dh, W], out: [0, T * Dm, Dh, Dm] };
  const run = () => {
    n.gemmBiasAct(false, false, T, W, Dm, 1, x, 0, Dm, wqkv, 0, W, 0, qkv, 0, W, 1, 0, 0, 0, bqkv, 0, 0);
    n.attnForward(qkv, qkv, qkv, o, lse, 1, H, H, T, T, Dh, Dh, 1 / 8, false, null, null, 1, 1, 0, 0, layout);
    n.gemmBiasAct(false, false, T, Dm, Dm, 1, o, 0, Dm, wo, 0, Dm, 0, y, 0, Dm, 1, 0, 0, 0, bo, 0, 0);
  };
  const flops = 4 * 2 * T * Dm * Dm + 4 * T * T * Dm;
  row(`MHA (1,${T},768) fwd`, time(run), flops);
}

const info = n.info();
console.log(`attnflow native ${info.version}: isa ${info.isa}, ${info.threads} threads, load average ${loadavg()[0].toFixed(2)}`);
if (what === "gemm" || what === "all") {
  benchGemm(768, 768, 768);
  benchGemm(1024, 1024, 1024);
  benchGemm(1024, 3072, 768);
  benchGemm(128, 128, 64, 12, true);
  benchGemm(2048, 2048, 64, 1, true);
  benchGemm(2048, 64, 2048);
}
if (what === "attn" || what === "all") {
  for (const T of quick ? [512, 2048] : [512, 2048, 4096])
    for (const causal of [false, true]) benchAttn(1, 12, T, 64, causal, true);
}
if (what === "mha" || what === "all") {
  for (const T of quick ? [512] : [128, 512, 2048]) benchMha(T);
}
