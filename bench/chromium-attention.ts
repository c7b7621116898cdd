// attnflow-wasm and onnxruntime-web side by side in headless Chromium (issue 17: the browser's Wasm, where relaxed
// SIMD — f32x4.relaxed_madd, an FMA — is on by default for attnflow; onnxruntime-web's Wasm build uses standard
// SIMD128 there too). Same inputs (bench/lib/tasks.ts, same labels as `npm run bench`, so the same numbers) and the
// same ONNX graphs as the Node rows (peers/ort-peer.ts variantsFor: plain graph and fused com.microsoft op, best of
// the two). Every row runs in a fresh Chromium on a cross-origin-isolated page (SharedArrayBuffer: both libraries'
// worker threads), at 1 and 2 threads. The page times step() — forward plus reading the output into a Float32Array —
// after ≥ 1 s of warm-up, median of up to --repeats samples (budget 20 s), and posts the last output back; outputs are
// compared with attnflow-wasm's.
//   flock /tmp/attnflow-bench.lock node dist/bench/chromium-attention.js [--case mha-b1-t128 …] [--threads 1,2]
//     [--repeats 20] [--json out.json]
// Cases: mha-bB-tT (D 768, 12 heads) and sdpa[-causal]-tT ((1, 12, T, 64)); default mha-b1-t128.
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWebServer } from "../src/node/web-server.js";
import { chromium, launchChromium } from "../test/browser-helpers.js";
import { makeMhaTask, makeSdpaTask, maxAbsDiff, taskFlops, type Task } from "./lib/tasks.js";
import { variantsFor } from "./peers/ort-peer.js";
import { peerVersion, resolvePeer } from "./lib/peer-modules.js";
import { gitCommit, machineInfo } from "./lib/machine.js";

const DIST = fileURLToPath(new URL("..", import.meta.url));   // dist/ (this file runs as dist/bench/…)
const args = process.argv.slice(2);
const opt = (n: string) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : undefined; };
const cases = args.flatMap((a, i) => (args[i - 1] === "--case" ? [a] : []));
const threadCounts = (opt("--threads") ?? "1,2").split(",").map(Number);
const repeats = Number(opt("--repeats") ?? 20);
const jsonOut = opt("--json");

function taskOf(name: string): Task {
  let m = /^mha-b(\d+)-t(\d+)$/.exec(name);
  if (m) return makeMhaTask(Number(m[1]), Number(m[2]), 768, 12, name);
  m = /^(sdpa|sdpa-causal)-t(\d+)$/.exec(name);
  if (m) return makeSdpaTask(1, 12, Number(m[2]), 64, m[1] === "sdpa-causal", name);
  throw new Error(`chromium-attention: unknown case ${JSON.stringify(name)} (mha-bB-tT, sdpa-tT, sdpa-causal-tT)`);
}

// The page: ?impl=attnflow|ort&threads=N&case=NAME&variant=I. Data comes from /data/<key> (raw float32 / ONNX bytes).
const PAGE = `
const p = new URLSearchParams(location.search), threads = Number(p.get("threads")), repeats = Number(p.get("repeats"));
const get = async (k) => new Uint8Array(await (await fetch("/data/" + k)).arrayBuffer());
const f32 = async (k) => { const b = await get(k); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
const meta = await (await fetch("/data/meta.json")).json();
const out = { threads };
async function time(step) {
  let last = await step();
  const t0 = performance.now();
  for (let n = 1; n < 2 || performance.now() - t0 < 1000; n++) last = await step();
  const ms = [], s0 = performance.now();
  while (ms.length < repeats && (ms.length < 3 || performance.now() - s0 < 20000)) { const s = performance.now(); last = await step(); ms.push(performance.now() - s); }
  return { ms, last };
}
try {
  if (!crossOriginIsolated) throw new Error("the page is not cross-origin isolated");
  if (p.get("impl") === "attnflow") {
    const af = await import("/src/index.js");
    if (threads > 1 && !af.configureBrowserWasmThreads(threads)) throw new Error("configureBrowserWasmThreads failed");
    if (!(await af.wasmBackendReady())) throw new Error("the wasm backend did not start");
    af.setBackend("wasm");
    let step;
    const T = af.Tensor.fromArray;
    if (meta.kind === "mha") {
      const { B, T: L, D, H } = meta;
      const mha = new af.nn.MultiheadAttention(D, H, { batchFirst: true });
      mha.loadStateDict({ in_proj_weight: T(await f32("inProjWeight"), [3 * D, D]), in_proj_bias: T(await f32("inProjBias"), [3 * D]),
        "out_proj.weight": T(await f32("outProjWeight"), [D, D]), "out_proj.bias": T(await f32("outProjBias"), [D]) });
      mha.eval();
      const x = T(await f32("x"), [B, L, D]);
      step = () => af.tidy(() => af.noGrad(() => mha.forward(x, x, x, { needWeights: false })[0].dataSync()));
    } else {
      const dims = [meta.B, meta.H, meta.T, meta.d];
      const [q, k, v] = [await f32("q"), await f32("k"), await f32("v")].map((a) => T(a, dims));
      step = () => af.tidy(() => af.noGrad(() => af.functional.scaledDotProductAttention(q, k, v, { causal: meta.causal }).dataSync()));
    }
    step();
    for (let i = 0; i < 200 && af.wasmWorkerCount() < threads - 1; i++) await new Promise((r) => setTimeout(r, 50));
    out.workers = af.wasmWorkerCount();
    out.relaxed = af.wasmRelaxedSimdActive();
    const r = await time(async () => step());
    out.timesMs = r.ms; out.last = r.last;
  } else {
    const ort = await import("/ort/ort.wasm.min.mjs");
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmPaths = "/ort/";
    ort.env.logLevel = "error";
    const v = meta.variants[Number(p.get("variant"))];
    const session = await ort.InferenceSession.create(await get("model" + p.get("variant")),
      { executionProviders: ["wasm"], graphOptimizationLevel: "all", executionMode: "sequential" });
    const feeds = {};
    for (const i of v.inputs) feeds[i.name] = new ort.Tensor("float32", await f32(i.key), i.dims);
    const step = async () => {
      const r = await session.run(feeds);
      const d = r[v.output].data.slice();
      for (const t of Object.values(r)) t.dispose?.();
      return d;
    };
    const r = await time(step);
    out.timesMs = r.ms; out.last = r.last;
    await session.release();
  }
} catch (e) {
  out.error = String(e && e.stack || e);
}
if (out.last) { await fetch("/__output", { method: "POST", body: out.last }); delete out.last; }
await fetch("/__result", { method: "POST", body: JSON.stringify(out) });
`;

interface PageResult { threads: number; timesMs?: number[]; error?: string; workers?: number; relaxed?: boolean }
interface Row { case: string; impl: string; medianMs: number | null; minMs?: number; maxMs?: number; samples?: number; maxAbsDiff?: number | null; note: string }

const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

async function runPage(data: Map<string, Uint8Array>, query: string): Promise<{ r: PageResult; output: Float32Array | null }> {
  let deliver!: (r: PageResult) => void;
  const result = new Promise<PageResult>((res) => { deliver = res; });
  let output: Float32Array | null = null;
  const ortDir = join(resolvePeer("onnxruntime-web"), "..");
  const { url, close } = await startWebServer({
    mounts: { "/src/": join(DIST, "src"), "/ort/": ortDir },
    handle: (req, res) => {
      const u = req.url ?? "";
      if (u.startsWith("/bench.html")) {
        res.writeHead(200, { "Content-Type": "text/html" });
        res.end(`<!doctype html><meta charset="utf-8"><title>attnflow chromium bench</title><script type="module">${PAGE}</script>`);
        return true;
      }
      if (u.startsWith("/data/") && req.method === "GET") {
        const b = data.get(u.slice(6));
        if (!b) { res.writeHead(404).end(); return true; }
        res.writeHead(200, { "Content-Type": "application/octet-stream" });
        res.end(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
        return true;
      }
      if (req.method === "POST" && (u === "/__output" || u === "/__result")) {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const body = Buffer.concat(chunks);
          res.writeHead(204).end();
          if (u === "/__output") output = new Float32Array(new Uint8Array(body).buffer);
          else deliver(JSON.parse(body.toString("utf8")) as PageResult);
        });
        return true;
      }
      return false;
    },
  });
  const browser = launchChromium(new URL(`/bench.html?${query}`, url).href);
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      result,
      browser.exited.then((code): never => { throw new Error(`Chromium exited (${code}) before the page reported:\n${browser.stderr().slice(-2000)}`); }),
      new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error("no result in 180 s")), 180_000); }),
    ]);
    return { r, output };
  } finally {
    clearTimeout(timer);
    browser.stop();
    close();
  }
}

async function runCase(name: string): Promise<Row[]> {
  const task = taskOf(name);
  const data = new Map<string, Uint8Array>();
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const variants = variantsFor(task);
  const meta: Record<string, unknown> = task.kind === "mha" ? { kind: "mha", B: task.B, T: task.T, D: task.D, H: task.H }
    : task.kind === "sdpa" ? { kind: "sdpa", B: task.B, H: task.H, T: task.T, d: task.d, causal: task.causal } : {};
  if (task.kind === "mha") {
    data.set("x", bytes(task.x));
    for (const k of ["inProjWeight", "inProjBias", "outProjWeight", "outProjBias"] as const) data.set(k, bytes(task.w[k]));
  } else if (task.kind === "sdpa") {
    data.set("q", bytes(task.q)); data.set("k", bytes(task.k)); data.set("v", bytes(task.v));
  }
  meta.variants = variants.map((v, i) => {
    data.set(`model${i}`, v.model.bytes);
    const inputs = v.model.inputs.map((inp) => { const key = `v${i}-${inp.name}`; data.set(key, bytes(v.data[inp.name])); return { name: inp.name, dims: inp.dims, key }; });
    return { variant: v.model.variant, output: v.model.output, inputs };
  });
  data.set("meta.json", new TextEncoder().encode(JSON.stringify(meta)));
  const rows: Row[] = [];
  const ref = new Map<number, Float32Array>();
  const fmt = (ms: number) => ms.toFixed(ms < 10 ? 2 : 1);
  for (const threads of threadCounts) {
    process.stderr.write(`${name}: attnflow-wasm, ${threads} thread(s)…\n`);
    const impl = `attnflow-wasm-chromium-${threads}t`;
    try {
      const { r, output } = await runPage(data, `impl=attnflow&threads=${threads}&repeats=${repeats}`);
      if (r.error || !r.timesMs?.length) rows.push({ case: name, impl, medianMs: null, note: `failed: ${r.error ?? "no samples"}` });
      else {
        if (output) ref.set(threads, output);
        rows.push({ case: name, impl, medianMs: median(r.timesMs), minMs: Math.min(...r.timesMs), maxMs: Math.max(...r.timesMs), samples: r.timesMs.length,
          maxAbsDiff: null, note: `${r.relaxed ? "relaxed SIMD (FMA)" : "SIMD128"}, ${r.workers} worker(s)` });
      }
    } catch (e) { rows.push({ case: name, impl, medianMs: null, note: `failed: ${String(e)}` }); }
  }
  const base = ref.get(threadCounts[0]) ?? null;
  for (const threads of threadCounts) {
    const impl = `onnxruntime-web-chromium-${threads}t`;
    let best: Row | null = null;
    const parts: string[] = [];
    for (let i = 0; i < variants.length; i++) {
      process.stderr.write(`${name}: onnxruntime-web ${variants[i].model.variant}, ${threads} thread(s)…\n`);
      try {
        const { r, output } = await runPage(data, `impl=ort&threads=${threads}&repeats=${repeats}&variant=${i}`);
        if (r.error || !r.timesMs?.length) { parts.push(`${variants[i].model.variant} failed: ${(r.error ?? "no samples").split("\n")[0]}`); continue; }
        const med = median(r.timesMs);
        parts.push(`${variants[i].model.variant} ${fmt(med)} ms`);
        const diff = base && output ? maxAbsDiff(variants[i].toCanonical(output), base) : null;
        if (!best || med < best.medianMs!) {
          best = { case: name, impl, medianMs: med, minMs: Math.min(...r.timesMs), maxMs: Math.max(...r.timesMs), samples: r.timesMs.length, maxAbsDiff: diff, note: variants[i].model.variant };
        }
      } catch (e) { parts.push(`${variants[i].model.variant} failed: ${String(e).split("\n")[0]}`); }
    }
    rows.push(best ? { ...best, note: `best: ${best.note} (${parts.join("; ")})` } : { case: name, impl, medianMs: null, note: parts.join("; ") });
  }
  void taskFlops;
  return rows;
}

async function main(): Promise<void> {
  if (!chromium) throw new Error("chromium-attention: needs headless Chromium (apt-get install chromium-headless-shell, or ATTNFLOW_CHROMIUM)");
  if (peerVersion("onnxruntime-web") === null) throw new Error("chromium-attention: onnxruntime-web is not installed in bench/peers (npm ci there)");
  const load0 = loadavg()[0];
  const all: Row[] = [];
  for (const c of cases.length ? cases : ["mha-b1-t128"]) all.push(...await runCase(c));
  const load1 = loadavg()[0];
  const fmt = (ms: number | null | undefined) => (ms == null ? "—" : ms.toFixed(ms < 10 ? 2 : 1));
  console.log(`Chromium ${chromium}; onnxruntime-web ${peerVersion("onnxruntime-web")}; load average ${load0.toFixed(2)} → ${load1.toFixed(2)}\n`);
  console.log("| case | row | median ms | min–max | runs | max abs diff | note |\n|---|---|---:|---:|---:|---:|---|");
  for (const r of all) {
    console.log(`| ${r.case} | ${r.impl} | ${fmt(r.medianMs)} | ${r.minMs != null ? `${fmt(r.minMs)}–${fmt(r.maxMs)}` : ""} | ${r.samples ?? ""} | ${r.maxAbsDiff != null ? r.maxAbsDiff.toExponential(1) : ""} | ${r.note} |`);
  }
  console.log("\nratio = attnflow-wasm ÷ onnxruntime-web in Chromium, same thread count (below 1: attnflow faster):");
  for (const c of new Set(all.map((r) => r.case))) {
    const parts = threadCounts.map((t) => {
      const a = all.find((r) => r.case === c && r.impl === `attnflow-wasm-chromium-${t}t`)?.medianMs, o = all.find((r) => r.case === c && r.impl === `onnxruntime-web-chromium-${t}t`)?.medianMs;
      return `${t}t ${a && o ? (a / o).toFixed(2) : "—"}`;
    });
    console.log(`- ${c}: ${parts.join(", ")}`);
  }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ machine: machineInfo(load0), loadEnd: load1, commit: gitCommit(), chromium, ortWeb: peerVersion("onnxruntime-web"), rows: all }, null, 1));
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
