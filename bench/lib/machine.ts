// Machine and version facts recorded with every benchmark run.
import { existsSync, readFileSync } from "node:fs";
import { cpus, arch, loadavg, platform, release, totalmem } from "node:os";
import { join } from "node:path";
import { attnflowNativeInfo, loadAttnflow } from "../attnflow-adapter.js";
import { jaxVersion } from "../peers/jax-peer.js";
import { ortVersion } from "../peers/ort-peer.js";
import { ortWebVersion } from "../peers/ort-web-peer.js";
import { torchVersion } from "../peers/torch-peer.js";
import { peerVersion } from "./peer-modules.js";
import { REPO_ROOT } from "./paths.js";
import { mallocNote } from "./malloc-env.js";

export interface MachineInfo {
  cpu: string;
  cores: number;
  arch: string;
  platform: string;
  kernel: string;
  totalMemGB: number;
  node: string;
  cpuFlags: string[];
  /** 1-minute load average when the run started and ended: other work on the machine skews timings. */
  loadAvg?: { start: number; end: number };
  /** glibc malloc setting of the process that runs the in-process peers (lib/malloc-env.ts). */
  malloc?: string;
}

export function loadAvg1m(): number {
  return Math.round(loadavg()[0] * 100) / 100;
}

export function machineInfo(loadAtStart?: number): MachineInfo {
  const c = cpus();
  let flags: string[] = [];
  let family = "";
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const fam = /^cpu family\s*:\s*(\d+)$/m.exec(info), mod = /^model\s*:\s*(\d+)$/m.exec(info);
    if (fam && mod) family = ` (family ${fam[1]}, model ${mod[1]})`; // AMD family 26 = Zen 5
    // x86 "flags", arm64 "Features": the ISA extensions the kernels (ours and the peers') choose between
    const m = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(info);
    const interesting = ["sse4_2", "avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
      "amx_tile", "asimd", "asimddp", "fphp", "i8mm", "bf16", "sve", "sve2"];
    if (m) flags = m[1].split(/\s+/).filter((f) => interesting.includes(f));
  } catch { /* not Linux */ }
  return {
    cpu: (c[0]?.model.trim() ?? "unknown") + family, cores: c.length, arch: arch(), platform: platform(), kernel: release(),
    totalMemGB: Math.round((totalmem() / 2 ** 30) * 10) / 10, node: process.version, cpuFlags: flags,
    ...(loadAtStart !== undefined ? { loadAvg: { start: loadAtStart, end: loadAvg1m() } } : {}),
    malloc: mallocNote(),
  };
}

/** The checked-out commit, read from .git without running git. */
export function gitCommit(): string | null {
  try {
    const git = join(REPO_ROOT, ".git");
    const head = readFileSync(join(git, "HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return head.slice(0, 12);
    const ref = head.slice(5);
    if (existsSync(join(git, ref))) return readFileSync(join(git, ref), "utf8").trim().slice(0, 12);
    const packed = readFileSync(join(git, "packed-refs"), "utf8").split("\n").find((l) => l.endsWith(` ${ref}`));
    return packed ? packed.slice(0, 12) : null;
  } catch {
    return null;
  }
}

export async function versions(log: (m: string) => void): Promise<Record<string, unknown>> {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version?: string };
  const af = await loadAttnflow();
  return {
    attnflow: {
      version: pkg.version, commit: gitCommit(),
      ...(af.ok ? { backends: af.api.availableBackends(), native: await attnflowNativeInfo() } : { unavailable: af.reason }),
    },
    "onnxruntime-node": ortVersion(),
    "onnxruntime-web": ortWebVersion(),
    "@tensorflow/tfjs-core": peerVersion("@tensorflow/tfjs-core"),
    "@tensorflow/tfjs-backend-wasm": peerVersion("@tensorflow/tfjs-backend-wasm"),
    "@tensorflow/tfjs-backend-cpu": peerVersion("@tensorflow/tfjs-backend-cpu"),
    "@tensorflow/tfjs": peerVersion("@tensorflow/tfjs"),
    "@jax-js/jax": jaxVersion(),
    pytorch: await torchVersion(log),
  };
}
