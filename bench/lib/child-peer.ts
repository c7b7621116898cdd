// A peer that lives in a child process (jax-js needs a V8 flag on Node 20; PyTorch is Python)
// and speaks JSON lines: one request object per stdin line, one reply per stdout line. Tensors
// travel as files (tensor-files.ts). Child stderr is forwarded to ours with a prefix.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

export interface ChildReply {
  id: number;
  ok: boolean;
  error?: string;
  timesMs?: number[];
  note?: string;
  peakMB?: number;
  baselineMB?: number;
  [k: string]: unknown;
}

export interface ChildOptions {
  env?: NodeJS.ProcessEnv;
  /** Kill the child when its resident memory exceeds this many MB (memory cases). */
  maxRssMB?: number;
  log?: (msg: string) => void;
}

/** Every running child, killed when this process exits (Ctrl-C included) so none is orphaned. */
const running = new Set<ChildProcess>();
process.on("exit", () => { for (const p of running) p.kill("SIGKILL"); });

export class ChildPeer {
  private proc: ChildProcess | null = null;
  private nextId = 1;
  private pending = new Map<number, { resolve(r: ChildReply): void; reject(e: Error): void }>();
  private exitReason: string | null = null;
  private watchdog: NodeJS.Timeout | null = null;

  constructor(readonly name: string, private readonly cmd: string, private readonly args: string[], private readonly opts: ChildOptions = {}) {}

  private start(): ChildProcess {
    if (this.proc) return this.proc;
    const p = spawn(this.cmd, this.args, { env: this.opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    this.proc = p;
    running.add(p);
    this.exitReason = null;
    createInterface({ input: p.stdout! }).on("line", (line) => {
      let msg: ChildReply;
      try { msg = JSON.parse(line) as ChildReply; } catch { this.opts.log?.(`[${this.name}] ${line}`); return; }
      const w = this.pending.get(msg.id);
      if (w) { this.pending.delete(msg.id); w.resolve(msg); }
    });
    createInterface({ input: p.stderr! }).on("line", (line) => this.opts.log?.(`[${this.name}] ${line}`));
    const fail = (why: string) => {
      this.exitReason ??= why;
      for (const w of this.pending.values()) w.reject(new Error(this.exitReason));
      this.pending.clear();
      this.proc = null;
      if (this.watchdog) clearInterval(this.watchdog);
      this.watchdog = null;
    };
    p.on("error", (e) => fail(`${this.name} could not start: ${e.message}`));
    p.on("exit", (code, sig) => { running.delete(p); fail(`${this.name} exited (${sig ?? `code ${code}`})`); });
    if (this.opts.maxRssMB && p.pid) {
      const pid = p.pid, limit = this.opts.maxRssMB;
      this.watchdog = setInterval(() => {
        const mb = rssMB(pid);
        if (mb !== null && mb > limit) {
          this.exitReason = `killed: resident memory passed the ${limit} MB limit`;
          p.kill("SIGKILL");
        }
      }, 50);
    }
    return p;
  }

  /** Send one request; resolves with the child's reply (rejects if the child dies or times out). */
  request(msg: Record<string, unknown>, timeoutMs?: number): Promise<ChildReply> {
    const p = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = timeoutMs ? setTimeout(() => {
        this.exitReason = `timed out after ${Math.round(timeoutMs / 1000)} s`;
        p.kill("SIGKILL");
      }, timeoutMs) : null;
      const done = <T>(f: (v: T) => void) => (v: T) => { if (timer) clearTimeout(timer); f(v); };
      this.pending.set(id, { resolve: done(resolve), reject: done(reject) });
      p.stdin!.write(JSON.stringify({ ...msg, id }) + "\n");
    });
  }

  close(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    this.proc?.stdin?.end();
    this.proc = null;
  }
}

/** Resident set size of a process in MB from /proc (Linux), or null. */
export function rssMB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
