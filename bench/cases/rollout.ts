// Attention rollout (Abnar & Zuidema 2020) benchmark, next to the flow cases: L = 12 layers, H = 12 heads, the same
// seeded random softmax attention as bench/cases/flow.ts, heads averaged + residual, float64 like the reference.
//   rollout-row-t{T}:    one output token of the last layer rolled out to every input token (a vector pushed down
//                        the layers: attentionRolloutRow)
//   rollout-matrix-t{T}: the whole rollout, every layer's T x T matrix (attentionRollout), as the reference's
//                        compute_joint_attention does it
// The timed work starts from the raw (L, H, T, T) attention for every implementation (head mean, residual, row
// normalisation and the products). Peers through bench/peers/rollout_peer.py (system /usr/bin/python3): NumPy (the
// reference implementation's own library) and PyTorch (Debian python3-torch), both float64.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchCase, BenchResult, BenchRow } from "../types.js";
import { defaultPolicy, measure, median } from "../lib/measure.js";
import { runPythonPeer } from "../lib/python-peer.js";
import { attentionRollout, attentionRolloutRow } from "../../src/explain/rollout.js";
import { FLOW_TS, H, L, randomAttention } from "./flow.js";

type RolloutKind = "row" | "matrix";

interface PeerReply { ok: boolean; error?: string; version?: string; times_s?: number[]; cpu_s?: number[] }

function fmtMs(ms: number): string { return ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(2)} ms`; }

function runPeer(impl: "numpy" | "torch", attFile: string, T: number, kind: RolloutKind, token: number, repeats: number, budgetS: number): { reply: PeerReply; out: Float64Array | null } {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-rolloutout-"));
  try {
    const outFile = join(dir, "out.f64");
    const reply = runPythonPeer<PeerReply>("rollout_peer.py", { impl, att: attFile, L, H, T, kind, token, repeats, budget_s: budgetS, out: outFile });
    if (!reply.ok || !existsSync(outFile)) return { reply, out: null };
    const b = readFileSync(outFile);
    return { reply, out: new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runRolloutCase(T: number, kind: RolloutKind, opts: { repeats: number; quick: boolean }): Promise<BenchResult> {
  const name = `rollout-${kind}-t${T}`;
  const token = 0;
  const description = kind === "row"
    ? `attention rollout of token ${token} of the last layer to all ${T} inputs (L ${L}, H ${H}, T ${T}), from raw attention`
    : `attention rollout, every layer's ${T}x${T} matrix (L ${L}, H ${H}, T ${T}), from raw attention`;
  const att = { data: randomAttention(T), layers: L, heads: H, tokens: T };
  const compute = (): Float64Array => kind === "row"
    ? attentionRolloutRow(att, token)
    : (() => { const r = attentionRollout(att); return r.data.subarray((L - 1) * T * T); })();
  const rows: BenchRow[] = [];
  const policy = defaultPolicy(opts.quick, opts.repeats);
  process.stderr.write(`[${name}] attnflow\n`);
  const m = await measure(compute, policy);
  const ours = m.last as Float64Array;
  rows.push({ impl: "attnflow", medianMs: median(m.timesMs), minMs: Math.min(...m.timesMs), maxMs: Math.max(...m.timesMs),
    note: ["TypeScript, float64, one thread (browser-safe code path)", m.note].filter(Boolean).join("; ") });
  const dir = mkdtempSync(join(tmpdir(), "attnflow-rolloutatt-"));
  try {
    const attFile = join(dir, "att.f32");
    writeFileSync(attFile, new Uint8Array(att.data.buffer, att.data.byteOffset, att.data.byteLength));
    for (const impl of ["numpy", "torch"] as const) {
      const label = impl === "numpy" ? "numpy" : "pytorch-cpu";
      process.stderr.write(`[${name}] ${label}\n`);
      const { reply, out } = runPeer(impl, attFile, T, kind, token, policy.repeats, policy.budgetMs / 1000);
      if (!reply.ok || !reply.times_s?.length) { rows.push({ impl: label, medianMs: null, note: reply.error ?? "no result" }); continue; }
      const times = reply.times_s.map((s) => s * 1000);
      let diff = 0;
      if (out && out.length === ours.length) for (let i = 0; i < out.length; i++) diff = Math.max(diff, Math.abs(out[i] - ours[i]));
      else diff = NaN;
      const cpu = reply.cpu_s?.length ? median(reply.cpu_s.map((s) => s * 1000)) : undefined;
      rows.push({ impl: label, medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times), maxAbsDiff: diff,
        note: [`${impl} ${reply.version}`, "float64", cpu !== undefined ? `CPU ${fmtMs(cpu)} per run` : "", `${times.length} runs`].filter(Boolean).join("; ") });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const peers = rows.filter((r) => r.impl !== "attnflow" && r.medianMs !== null).map((r) => r.medianMs as number);
  const ratio = rows[0].medianMs !== null && peers.length ? rows[0].medianMs / Math.min(...peers) : null;
  return { case: name, group: "rollout", description, rows, ratioToBestPeer: ratio, checkedAgainst: "attnflow" };
}

export const cases: BenchCase[] = FLOW_TS.flatMap((T) => (["row", "matrix"] as const).map((kind): BenchCase => ({
  name: `rollout-${kind}-t${T}`,
  group: "rollout",
  description: `attention rollout, ${kind === "row" ? "one output row" : "every layer's T x T matrix"} at L ${L}, H ${H}, T ${T}`,
  run: (o) => runRolloutCase(T, kind, o),
})));
