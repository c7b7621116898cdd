// Hugging Face checkpoints, side by side (group "hf"):
//   hf-bert-base-t128 / -t512  BertModel forward, batch 1 (12 layers, 768, 12 heads, intermediate 3072, vocab 30522)
//   hf-llama-gen-ctx512        Llama-shaped decoder (12 layers, 768, 12 heads, 4 KV heads, SiLU MLP 2048, vocab 32000,
//                              rope_theta 1e4): prefill 512 tokens, then N greedy steps with the KV cache; the row's
//                              time is ms per decode step (tokens/s and the prefill time in the note)
//   hf-load-1gb                fromPretrained of a >1 GB checkpoint (float32, and the same weights in bfloat16): load
//                              time and peak RSS above the baseline, relative to the file and to the float32 weights
// The weights are written once into bench/.cache/hf/ (ATTNFLOW_BENCH_CACHE overrides) by HF's own code (transformers
// 4.44.2 vendored in ../shared/hf-ref, HF's _init_weights, seeded): save_pretrained(safe_serialization=True), plus
// torch.onnx.export of the same model for onnxruntime-node (peers/hf_peer.py says exactly what is exported). Every
// implementation loads that folder: attnflow through hf.fromPretrained, PyTorch + HF eager through from_pretrained,
// onnxruntime-node the exported graph. Without PyTorch the folder is written by attnflow's own HF-init code and the two
// peers are reported unavailable.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchCase, BenchRow } from "../types.js";
import { loadAttnflow } from "../attnflow-adapter.js";
import { ChildPeer } from "../lib/child-peer.js";
import { buildResult, harnessConfig, wanted, type CaseMeta } from "../lib/harness.js";
import { defaultPolicy, median, settle } from "../lib/measure.js";
import { errorText, type PeerRun } from "../lib/peer-types.js";
import { mulberry32 } from "../lib/prng.js";
import { BENCH_SRC, PEERS_DIR } from "../lib/paths.js";
import { outputPath, readTensorFile } from "../lib/tensor-files.js";
import { peerVersion } from "../lib/peer-modules.js";

const THREADS = Number(process.env.ATTNFLOW_NUM_THREADS ?? 2);
const ORT_IMPL = `onnxruntime-node-${THREADS}t`, TORCH_IMPL = "pytorch-hf-eager";
const SEED = 1;

export const cacheDir = (): string => process.env.ATTNFLOW_BENCH_CACHE ?? join(BENCH_SRC, ".cache", "hf");

type Kind = "bert" | "llama" | "big";
interface Folder { dir: string; byHF: boolean; onnx: boolean; note: string }

interface PyReply { ok: boolean; error?: string; [k: string]: unknown }

/** Run peers/hf_peer.py on `request` (stderr forwarded to the log); the reply is the last stdout line. */
function python(request: object, log: (m: string) => void): Promise<PyReply> {
  const py = process.env.ATTNFLOW_BENCH_PYTHON ?? "/usr/bin/python3";
  if (!existsSync(py)) return Promise.resolve({ ok: false, error: `python3 not found (${py}; set ATTNFLOW_BENCH_PYTHON)` });
  const dir = join(cacheDir(), "req");
  mkdirSync(dir, { recursive: true });
  const req = join(dir, `req-${process.pid}-${Date.now()}.json`);
  writeFileSync(req, JSON.stringify(request));
  // Debian's torch calls sgemm through libblas.so.3; when that alternative points at the reference BLAS, prefer the
  // installed OpenBLAS (what `update-alternatives` would pick on its own), so PyTorch runs at its best here
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  const openblas = "/usr/lib/x86_64-linux-gnu/openblas-pthread";
  if (existsSync(join(openblas, "libblas.so.3"))) env.LD_LIBRARY_PATH = [openblas, env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  return new Promise((resolve) => {
    const p = spawn(py, [join(PEERS_DIR, "hf_peer.py"), req], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", errTail = "";
    p.stdout.on("data", (d: Buffer) => { out += d.toString(); });
    p.stderr.on("data", (d: Buffer) => {
      const s = d.toString();
      errTail = (errTail + s).slice(-2000);
      for (const l of s.split("\n")) if (l.startsWith("[hf-peer]")) log(`  ${l}`);
    });
    p.on("error", (e) => resolve({ ok: false, error: e.message }));
    p.on("close", (code) => {
      rmSync(req, { force: true });
      const line = out.trim().split("\n").pop() ?? "";
      try { resolve(JSON.parse(line) as PyReply); } catch { resolve({ ok: false, error: `no reply (exit ${code}): ${errTail.trim().split("\n").slice(-3).join(" | ")}` }); }
    });
  });
}

const FOLDERS: Record<string, { kind: Kind; dtype: string; layers: number; onnx: boolean }> = {
  "bert-base": { kind: "bert", dtype: "float32", layers: 12, onnx: true },
  "llama-768-l12": { kind: "llama", dtype: "float32", layers: 12, onnx: true },
  "big-f32": { kind: "big", dtype: "float32", layers: 12, onnx: false },
  "big-bf16": { kind: "big", dtype: "bfloat16", layers: 12, onnx: false },
};

/** The config attnflow writes when PyTorch is missing (the same as hf_peer.py's). */
function fallbackConfig(kind: Kind): Record<string, unknown> {
  if (kind === "bert") {
    return { architectures: ["BertModel"], model_type: "bert", vocab_size: 30522, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12,
      intermediate_size: 3072, hidden_act: "gelu", max_position_embeddings: 512, type_vocab_size: 2, layer_norm_eps: 1e-12, initializer_range: 0.02 };
  }
  const big = kind === "big";
  return { architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: 32000, hidden_size: big ? 2048 : 768, intermediate_size: big ? 5632 : 2048,
    num_hidden_layers: 12, num_attention_heads: big ? 16 : 12, num_key_value_heads: 4, rope_theta: 10000, rms_norm_eps: 1e-6,
    tie_word_embeddings: false, hidden_act: "silu", initializer_range: 0.02 };
}

/** The cached HF folder `name`, written on first use (by HF's code, else by attnflow's). */
async function folder(name: string, log: (m: string) => void): Promise<Folder> {
  const spec = FOLDERS[name];
  const dir = join(cacheDir(), `${name}-seed${SEED}`);
  const done = join(dir, "bench-complete.json");
  if (!existsSync(done)) {
    rmSync(dir, { recursive: true, force: true });
    log(`[bench] writing ${dir} (once; later runs reuse it)`);
    const r = await python({ op: "make", kind: spec.kind, dir, seed: SEED, dtype: spec.dtype, layers: spec.layers, onnx: spec.onnx }, log);
    let byHF = true, note = "";
    if (!r.ok) {
      log(`[bench] HF's code could not write ${name} (${r.error}); attnflow writes it with HF's init scheme instead`);
      const loaded = await loadAttnflow();
      if (!loaded.ok) throw new Error(`cannot write ${name}: ${r.error}; attnflow unavailable: ${loaded.reason}`);
      const hf = (loaded.api as unknown as { hf: { modelFromConfig(c: object): unknown; savePretrainedDir(m: unknown, d: string, o?: object): Promise<void> } }).hf;
      const cfg = fallbackConfig(spec.kind);
      await hf.savePretrainedDir(hf.modelFromConfig(cfg), dir, { floatDType: spec.dtype === "bfloat16" ? "BF16" : "F32" });
      byHF = false;
      note = `weights by attnflow (HF unavailable: ${r.error})`;
    }
    writeFileSync(done, JSON.stringify({ byHF, note, reply: r }, null, 2));
  }
  const meta = JSON.parse(readFileSync(done, "utf8")) as { byHF: boolean; note: string };
  return { dir, byHF: meta.byHF, onnx: existsSync(join(dir, "onnx")), note: meta.note };
}

/** Token ids in [0, vocab): the same file for every implementation. */
function idsFile(T: number, vocab: number, label: string): string {
  const rnd = mulberry32(SEED * 7919 + T), ids = new Int32Array(T);
  for (let i = 0; i < T; i++) ids[i] = Math.floor(rnd() * vocab);
  const p = outputPath(`ids-${label}`).replace(/\.f32$/, ".i32");
  writeFileSync(p, new Uint8Array(ids.buffer));
  return p;
}

function nodeChild(impl: string): ChildPeer {
  return new ChildPeer(impl, process.execPath, ["--expose-gc", fileURLToPath(new URL("../hf-child.js", import.meta.url))],
    { log: harnessConfig().log, env: { ...process.env, ATTNFLOW_NUM_THREADS: String(THREADS) } });
}

async function inChild(impl: string, req: Record<string, unknown>, timeoutMs: number): Promise<{ run: PeerRun; reply: Record<string, unknown> | null }> {
  const child = nodeChild(impl), out = outputPath(impl);
  try {
    const r = await child.request({ ...req, out }, timeoutMs);
    if (!r.ok) return { run: { impl, note: `failed: ${r.error ?? "unknown error"}` }, reply: null };
    return { run: { impl, timesMs: r.timesMs, output: readTensorFile(out), note: r.note }, reply: r };
  } catch (e) {
    return { run: { impl, note: errorText(e) }, reply: null };
  } finally {
    child.close();
  }
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

/** The note of a generation row: tokens/s and the prefill's median. */
function genNote(reply: Record<string, unknown> | null, run: PeerRun): string | undefined {
  if (!reply || !run.timesMs?.length) return run.note;
  const pre = reply.prefillMs as number[];
  return [`${fmt(1000 / median(run.timesMs))} tokens/s; prefill 512: ${fmt(median(pre))} ms`, run.note].filter(Boolean).join("; ");
}

function torchNote(r: PyReply): string {
  const blas = r.blas as { loaded?: string[] } | undefined;
  return `torch ${String(r.torch)}, transformers ${String(r.transformers)}, torch.get_num_threads() ${String(r.torchThreads)}, BLAS ${blas?.loaded?.join(", ") || "?"}`;
}

interface ModelCase { name: string; model: "bert-base" | "llama-768-l12"; T: number; N?: number; description: string }

function modelCase(c: ModelCase): BenchCase {
  const meta: CaseMeta = { name: c.name, group: "hf", description: c.description };
  const gen = c.model === "llama-768-l12";
  return {
    ...meta,
    async run({ quick, repeats }) {
      const log = harnessConfig().log;
      const f = await folder(c.model, log);
      const N = c.N ?? 0;
      const ids = idsFile(c.T, gen ? 32000 : 30522, c.name);
      const policy = defaultPolicy(quick, repeats);
      const genRuns = quick ? 1 : 3;
      const base = { dir: f.dir, ids, T: c.T, N, genRuns, policy };
      const timeoutMs = (quick ? 300 : 900) * 1000;
      const runs: PeerRun[] = [];

      // attnflow: the native backend (the Wasm and reference backends are far slower on a model this size; run them
      // with ATTNFLOW_BENCH_HF_BACKENDS=native,wasm)
      const backends = (process.env.ATTNFLOW_BENCH_HF_BACKENDS ?? "native").split(",");
      for (const backend of backends) {
        await settle(policy.settleMs ?? 0);
        const r = await inChild(`attnflow-${backend}`, { ...base, op: gen ? "attnflow-llama" : "attnflow-bert", backend }, timeoutMs);
        if (gen) r.run.note = genNote(r.reply, r.run);
        if (!f.byHF) r.run.note = [r.run.note, f.note].filter(Boolean).join("; ");
        runs.push(r.run);
      }

      if (wanted(ORT_IMPL)) {
        if (!peerVersion("onnxruntime-node")) runs.push({ impl: ORT_IMPL, note: "unavailable: onnxruntime-node is not installed in bench/peers" });
        else if (!f.onnx) runs.push({ impl: ORT_IMPL, note: "unavailable: no ONNX export (torch.onnx.export needs PyTorch)" });
        else {
          await settle(policy.settleMs ?? 0);
          const r = await inChild(ORT_IMPL, { ...base, op: gen ? "ort-llama" : "ort-bert", threads: THREADS }, timeoutMs);
          const what = gen ? "onnx/decoder_with_past.onnx (prefill with an empty past)" : "onnx/model.onnx";
          r.run.note = [gen ? genNote(r.reply, r.run) : r.run.note, `torch.onnx.export of HF's ${gen ? "LlamaForCausalLM" : "BertModel"}, opset 14: ${what}; onnxruntime-node ${peerVersion("onnxruntime-node")}, ${THREADS} intra-op threads`].filter(Boolean).join("; ");
          runs.push(r.run);
        }
      }

      if (wanted(TORCH_IMPL)) {
        if (!f.byHF) runs.push({ impl: TORCH_IMPL, note: `unavailable: ${f.note}` });
        else {
          await settle(policy.settleMs ?? 0);
          const out = outputPath("torch");
          const r = await python({ ...base, op: gen ? "llama" : "bert", threads: THREADS, out }, log);
          if (!r.ok) runs.push({ impl: TORCH_IMPL, note: `unavailable: ${r.error}` });
          else {
            const run: PeerRun = { impl: TORCH_IMPL, timesMs: r.timesMs as number[], output: readTensorFile(out), note: r.note as string | undefined };
            run.note = [gen ? genNote(r, run) : run.note, torchNote(r)].filter(Boolean).join("; ");
            runs.push(run);
          }
        }
      }
      for (const r of runs) log(`  ${c.name} ${r.impl}: ${r.timesMs?.length ? `${median(r.timesMs).toFixed(2)} ms` : "—"}${r.note ? ` (${r.note})` : ""}`);
      return buildResult(meta, runs, gen ? undefined : bertFlops(c.T));
    },
  };
}

/** BertModel forward FLOPs at batch 1: 12 layers of 4 D² + 2·D·3072 weights per token, and 4·T²·D of attention. */
function bertFlops(T: number): number {
  const D = 768, I = 3072, L = 12;
  return L * (2 * T * (4 * D * D + 2 * D * I) + 4 * T * T * D);
}

function loadCase(): BenchCase {
  const meta: CaseMeta = { name: "hf-load-1gb", group: "hf", description: "fromPretrained of a >1 GB Llama-shaped checkpoint (672M parameters; float32 2.7 GB, bfloat16 1.3 GB): load ms, peak RSS above baseline" };
  return {
    ...meta,
    async run() {
      const log = harnessConfig().log;
      const runs: PeerRun[] = [];
      const extra = new Map<string, Partial<BenchRow>>();
      for (const [name, label] of [["big-f32", "float32"], ["big-bf16", "bfloat16"]] as const) {
        const f = await folder(name, log);
        const impl = `attnflow-native (${label} file)`;
        const fileMB = statSync(join(f.dir, "model.safetensors")).size / 2 ** 20;
        await settle(5000);
        const child = nodeChild(impl);
        try {
          const r = await child.request({ op: "load", dir: f.dir, backend: "native" }, 600_000);
          if (!r.ok) { runs.push({ impl, note: `failed: ${r.error}` }); continue; }
          const peak = (r.peakMB as number) - (r.baselineMB as number), f32MB = (r.params as number) * 4 / 2 ** 20;
          extra.set(impl, { peakMemMB: peak });
          runs.push({ impl, timesMs: [r.loadMs as number],
            note: `file ${fmt(fileMB)} MB, float32 weights ${fmt(f32MB)} MB; peak RSS − baseline ${fmt(peak)} MB = ${(peak / f32MB).toFixed(2)}× the float32 weights, ${(peak / fileMB).toFixed(2)}× the file; V8 external peak ${fmt(r.externalPeakMB as number)} MB${f.byHF ? "" : `; ${f.note}`}` });
        } catch (e) {
          runs.push({ impl, note: errorText(e) });
        } finally {
          child.close();
        }
      }
      for (const r of runs) log(`  hf-load-1gb ${r.impl}: ${r.timesMs ? `${r.timesMs[0].toFixed(0)} ms` : "—"} (${r.note})`);
      return buildResult(meta, runs, undefined, extra);
    },
  };
}

export const cases: BenchCase[] = [
  modelCase({ name: "hf-bert-base-t128", model: "bert-base", T: 128, description: "BertModel forward, BERT-base shape (12 × 768, 12 heads, ff 3072), batch 1, T 128, HF-init weights" }),
  modelCase({ name: "hf-bert-base-t512", model: "bert-base", T: 512, description: "BertModel forward, BERT-base shape (12 × 768, 12 heads, ff 3072), batch 1, T 512, HF-init weights" }),
  modelCase({ name: "hf-llama-gen-ctx512", model: "llama-768-l12", T: 512, N: 32,
    description: "LlamaForCausalLM (12 × 768, 12 heads, 4 KV heads, SiLU 2048): prefill 512, then 32 greedy steps with the KV cache; ms per step" }),
  loadCase(),
];
