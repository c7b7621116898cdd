// Peak memory of causal attention forward+backward on (1, 12, T, 64), loss = sum(o · g).
// Each implementation runs once in a fresh child process; the row's peakMemMB is peak RSS minus
// the RSS after inputs are loaded (so it counts attention's working memory and the gradients).
// A parent-side watchdog kills a child that passes the limit; PyTorch's explicit attention
// materialises (12, T, T) matrices and is skipped when its estimate exceeds the limit.
import { fileURLToPath } from "node:url";
import type { BenchCase, BenchRow } from "../types.js";
import { attnflowBackends, loadAttnflow } from "../attnflow-adapter.js";
import { ChildPeer } from "../lib/child-peer.js";
import { buildResult, estimatedSeconds, harnessConfig, wanted, type CaseMeta } from "../lib/harness.js";
import { errorText, type PeerRun } from "../lib/peer-types.js";
import { randnArray } from "../lib/prng.js";
import { outputPath, readTensorFile, releaseTensorFiles, tensorFile } from "../lib/tensor-files.js";
import { sdpaFlops } from "../lib/tasks.js";
import { torchProcess, torchVersion, TORCH_IMPL } from "../peers/torch-peer.js";
import { untunedEnv } from "../lib/malloc-env.js";

const H = 12, d = 64;
const LIMIT_MB = 8192;

async function measureChild(impl: string, child: ChildPeer, req: Record<string, unknown>, timeoutMs: number, out: string, extra: Map<string, Partial<BenchRow>>): Promise<PeerRun> {
  try {
    const r = await child.request({ ...req, out }, timeoutMs);
    if (!r.ok) return { impl, note: `failed: ${r.error ?? "unknown error"}` };
    extra.set(impl, { peakMemMB: r.peakMB });
    const note = [`baseline ${Math.round(r.baselineMB ?? 0)} MB`, r.note].filter(Boolean).join("; ");
    return { impl, timesMs: r.timesMs, output: readTensorFile(out), note };
  } catch (e) {
    return { impl, note: errorText(e) };
  } finally {
    child.close();
  }
}

function memoryCase(T: number): BenchCase {
  const name = `memory-causal-t${T}`;
  const description = `peak RSS − baseline, causal SDPA forward+backward on (1, ${H}, ${T}, ${d}); limit ~${LIMIT_MB / 1024} GB`;
  const meta: CaseMeta = { name, group: "memory", description };
  return {
    ...meta,
    async run({ quick }) {
      const log = harnessConfig().log;
      const n = H * T * d;
      const inputs = (["q", "k", "v", "g"] as const).map((k) => randnArray(n, `${name}:${k}`));
      const files = Object.fromEntries(["q", "k", "v", "g"].map((k, i) => [k, tensorFile(inputs[i], `mem-${k}`)]));
      const inputsMB = (4 * n * 4) / 2 ** 20;
      const maxRssMB = LIMIT_MB + inputsMB + 1024; // working memory limit + inputs + runtime
      const timeoutMs = (quick ? 300 : 900) * 1000;
      // one run per implementation, so allow 10× --max-run-s before skipping on the estimate
      const flops = 3 * sdpaFlops(1, H, T, d, true);
      const maxS = harnessConfig().maxRunS * 10;
      const tooSlow = (impl: string): string | null => {
        const est = estimatedSeconds(impl, flops);
        return est > maxS ? `skipped: ~${Math.round(est)} s estimated > 10 × --max-run-s` : null;
      };
      const shape = { B: 1, H, T, d };
      const runs: PeerRun[] = [];
      const extra = new Map<string, Partial<BenchRow>>();

      const loaded = await loadAttnflow();
      if (!loaded.ok) runs.push({ impl: "attnflow", note: `attnflow unavailable: ${loaded.reason}` });
      else for (const backend of attnflowBackends(loaded.api)) {
        const impl = `attnflow-${backend}`;
        const skip = tooSlow(impl);
        if (skip) { runs.push({ impl, note: skip }); continue; }
        const child = new ChildPeer(impl, process.execPath, ["--expose-gc", fileURLToPath(new URL("../memory-child.js", import.meta.url))],
          { log, maxRssMB, env: untunedEnv() });
        runs.push(await measureChild(impl, child, { backend, shape, files }, timeoutMs, outputPath("mem-af"), extra));
      }

      if (wanted(TORCH_IMPL)) {
        // explicit attention keeps ~4 (12, T, T) float32 matrices alive: scores, probs, their grads
        const estMB = (4 * H * T * T * 4) / 2 ** 20;
        const v = await torchVersion(log);
        if (v.error) runs.push({ impl: TORCH_IMPL, note: `PyTorch unavailable: ${String(v.error)}` });
        else if (tooSlow(TORCH_IMPL)) runs.push({ impl: TORCH_IMPL, note: tooSlow(TORCH_IMPL)! });
        else if (estMB > LIMIT_MB) runs.push({ impl: TORCH_IMPL, note: `skipped: would need ~${(estMB / 1024).toFixed(0)} GB (> ${LIMIT_MB / 1024} GB)` });
        else runs.push(await measureChild(TORCH_IMPL, torchProcess(log, maxRssMB), { op: "memory", shape, files }, timeoutMs, outputPath("mem-torch"), extra));
      }
      releaseTensorFiles();
      for (const r of runs) log(`  ${name} ${r.impl}: ${r.timesMs ? `${r.timesMs[0].toFixed(0)} ms, ${extra.get(r.impl)?.peakMemMB?.toFixed(0)} MB` : "—"}${r.note ? ` (${r.note})` : ""}`);
      return buildResult(meta, runs, flops, extra);
    },
  };
}

export const cases: BenchCase[] = [4096, 16384, 32768].map(memoryCase);
