// The memory soak in headless Chromium: a page runs a workload of soak-loop.ts on the Wasm backend without tidy(),
// synchronously, and at each mark blocks on a synchronous XMLHttpRequest while this process reads the RSS of
// Chromium's renderer processes from /proc — so, as in Node, no task (and no finalizer) runs inside the loop.
// Used by the bench's soak case and by test/memory-soak-browser.test.ts. Linux only (/proc).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWebServer } from "../../src/node/web-server.js";
import { chromium, launchChromium } from "../../test/browser-helpers.js";
import { untunedEnv } from "./malloc-env.js";
import type { SoakWorkload } from "./soak-loop.js";

const DIST = fileURLToPath(new URL("../..", import.meta.url));  // dist/ (this file runs as dist/bench/lib/…)

export interface BrowserSoakOptions {
  workload: SoakWorkload; warmup: number; steps: number; every: number;
  /** Run gc() (exposed with --js-flags) before each mark, and sweep array buffers synchronously: the test's setting. */
  gc: boolean;
  timeoutMs?: number;
}
export interface BrowserSoakMark { step: number; rendererRssMB: number; jsHeapMB: number | null }
export interface BrowserSoakReport { backend: string; workers: number; marks: BrowserSoakMark[]; msPerStep: number; chromium: string }

export const chromiumAvailable = !!chromium && process.platform === "linux";

const PAGE_SCRIPT = `
import * as af from "/src/index.js";
import { soakStep } from "/bench/lib/soak-loop.js";
const p = new URLSearchParams(location.search), n = (k) => Number(p.get(k));
const out = {};
try {
  af.configureBrowserWasmThreads(2);
  if (!(await af.wasmBackendReady())) throw new Error("the wasm backend did not start");
  af.setBackend("wasm");
  const step = soakStep(af, p.get("workload"));
  step();
  for (let i = 0; i < 100 && af.wasmWorkerCount() < 1; i++) await new Promise((r) => setTimeout(r, 50));
  out.workers = af.wasmWorkerCount();
  out.backend = af.getBackend();
  // from here on nothing yields: a synchronous request blocks the page while the server reads its memory
  const mark = (i) => {
    globalThis.gc?.();
    const x = new XMLHttpRequest();
    x.open("POST", "/__mark", false);
    x.send(JSON.stringify({ step: i, jsHeap: performance.memory ? performance.memory.usedJSHeapSize : null }));
  };
  for (let i = 0; i < n("warmup"); i++) step();
  mark(0);
  const t0 = performance.now();
  for (let i = 1; i <= n("steps"); i++) { step(); if (i % n("every") === 0 || i === n("steps")) mark(i); }
  out.msPerStep = (performance.now() - t0) / n("steps");
} catch (e) {
  out.error = String(e && e.stack || e);
}
await fetch("/__result", { method: "POST", body: JSON.stringify(out) });
`;

/** Pids of `root`'s descendants whose command line says they are renderers. */
function rendererPids(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(join("/proc", d, "stat"), "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch { /* exited meanwhile */ }
  }
  const isUnder = (pid: number): boolean => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && hops < 16; p = parent.get(p), hops++) if (p === root) return true;
    return false;
  };
  return [...parent.keys()].filter((pid) => {
    if (!isUnder(pid)) return false;
    try { return readFileSync(join("/proc", String(pid), "cmdline"), "utf8").includes("--type=renderer"); } catch { return false; }
  });
}

function rssMB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(join("/proc", String(pid), "status"), "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch { return 0; }
}

function readBody(req: import("node:http").IncomingMessage): Promise<string> {
  return new Promise((res, rej) => { let b = ""; req.on("data", (c) => { b += c; }); req.on("end", () => res(b)); req.on("error", rej); });
}

/** Runs the soak page in headless Chromium; rejects when Chromium is missing, exits early or the page fails. */
export async function browserSoak(o: BrowserSoakOptions): Promise<BrowserSoakReport> {
  if (!chromiumAvailable) throw new Error("browser soak: needs headless Chromium on Linux (apt-get install chromium-headless-shell)");
  let rootPid = 0;
  const marks: BrowserSoakMark[] = [];
  let deliver!: (r: Record<string, unknown>) => void;
  const result = new Promise<Record<string, unknown>>((res) => { deliver = res; });
  const { url, close } = await startWebServer({
    index: join(DIST, "src", "index.js"),
    mounts: { "/src/": join(DIST, "src"), "/bench/lib/": join(DIST, "bench", "lib") },
    handle: (req, res) => {
      if (req.url?.startsWith("/soak.html")) {
        res.writeHead(200, { "Content-Type": "text/html" });
        res.end(`<!doctype html><meta charset="utf-8"><title>attnflow soak</title><script type="module">${PAGE_SCRIPT}</script>`);
        return true;
      }
      if (req.method !== "POST" || (req.url !== "/__mark" && req.url !== "/__result")) return false;
      void readBody(req).then((body) => {
        const msg = JSON.parse(body) as Record<string, unknown>;
        if (req.url === "/__mark") {
          // the page is blocked in this request: its memory cannot change while it is read
          const pids = rendererPids(rootPid);
          if (!pids.length) { deliver({ error: "no renderer process found under Chromium's process" }); res.writeHead(204).end(); return; }
          const rss = pids.reduce((s, pid) => s + rssMB(pid), 0);
          marks.push({ step: msg.step as number, rendererRssMB: rss, jsHeapMB: typeof msg.jsHeap === "number" ? msg.jsHeap / 2 ** 20 : null });
        } else deliver(msg);
        res.writeHead(204).end();
      });
      return true;
    },
  });
  const q = new URLSearchParams({ workload: o.workload, warmup: String(o.warmup), steps: String(o.steps), every: String(o.every) });
  const flags = o.gc ? ["--js-flags=--expose-gc --no-concurrent-array-buffer-sweeping"] : [];
  // the untuned environment, as the bench's memory cases use (lib/malloc-env.ts); under glibc.malloc.hugetlb Chromium's
  // renderer also keeps its zygote's command line, so it could not be told apart
  const browser = launchChromium(new URL(`/soak.html?${q}`, url).href, flags, untunedEnv());
  rootPid = browser.child.pid!;
  const ms = o.timeoutMs ?? 120_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      result,
      browser.exited.then((code): never => { throw new Error(`Chromium exited (${code}) before the soak page reported:\n${browser.stderr().slice(-2000)}`); }),
      new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`soak page: no result in ${ms / 1000} s`)), ms); }),
    ]);
    if (r.error) throw new Error(`soak page: ${String(r.error)}`);
    return { backend: String(r.backend), workers: Number(r.workers), marks, msPerStep: Number(r.msPerStep), chromium: chromium! };
  } finally {
    clearTimeout(timer);
    browser.stop();
    close();
  }
}
