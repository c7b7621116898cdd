// Terminal progress bars for long work: bar, count, rate, ETA and free-form fields, redrawn in place on a TTY and
// printed as occasional plain lines otherwise (CI logs stay readable).
export interface ProgressOptions {
  total: number;
  label?: string;
  unit?: string;                 // what the rate counts ("ex", "batch", "img")
  stream?: NodeJS.WriteStream;   // default process.stderr
  width?: number;                // bar cells
  /** Minimum milliseconds between redraws (TTY) / lines (non-TTY). */
  interval?: number;
  quiet?: boolean;
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "--";
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export class ProgressBar {
  private done = 0;
  private readonly start = performance.now();
  private last = 0;
  private drawnDone = -1;
  private fields: Record<string, string> = {};
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
  }

  /** Advance by n units (or set absolute progress with `set`), updating the displayed fields. */
  tick(n = 1, fields?: Record<string, string | number>): void { this.update(this.done + n, fields); }

  update(done: number, fields?: Record<string, string | number>): void {
    this.done = done;
    if (fields) for (const [k, v] of Object.entries(fields)) this.fields[k] = typeof v === "number" ? fmt(v) : v;
    const now = performance.now();
    const interval = this.o.interval ?? (this.tty ? 100 : 10_000);
    if (now - this.last >= interval || done >= this.o.total) { this.last = now; this.draw(); }
  }

  /** Units per second over the whole run so far. */
  rate(): number { return this.done / Math.max(1e-9, (performance.now() - this.start) / 1000); }

  line(): string {
    const { total, label = "", unit = "it" } = this.o, width = this.o.width ?? 24;
    const frac = total > 0 ? Math.min(1, this.done / total) : 0;
    const cells = frac * width, full = Math.floor(cells);
    const bar = "█".repeat(full) + (full < width ? "▏▎▍▌▋▊▉"[Math.floor((cells - full) * 7)] ?? "" : "") ;
    const rate = this.rate();
    const eta = rate > 0 ? (total - this.done) / rate : Infinity;
    const extra = Object.entries(this.fields).map(([k, v]) => `${k} ${v}`).join("  ");
    return `${label}${label ? " " : ""}${bar.padEnd(width, "·")} ${this.done}/${total} ${(100 * frac).toFixed(0)}%  ${fmt(rate)} ${unit}/s  ETA ${formatDuration(eta)}${extra ? "  " + extra : ""}`;
  }

  private draw(): void {
    if (this.o.quiet) return;
    this.drawnDone = this.done;
    if (this.tty) this.stream.write(`\r\x1b[2K${this.line()}`);
    else this.stream.write(this.line() + "\n");
  }

  /** Final draw and newline; returns elapsed seconds. */
  finish(fields?: Record<string, string | number>): number {
    if (fields) for (const [k, v] of Object.entries(fields)) this.fields[k] = typeof v === "number" ? fmt(v) : v;
    if (!this.o.quiet) {
      if (this.tty) this.stream.write(`\r\x1b[2K${this.line()}\n`);
      else if (this.drawnDone !== this.done || fields) this.stream.write(this.line() + "\n");
    }
    return (performance.now() - this.start) / 1000;
  }

  /** Print a message above the bar without breaking it. */
  log(msg: string): void {
    if (this.o.quiet) return;
    if (this.tty) this.stream.write(`\r\x1b[2K${msg}\n${this.line()}`);
    else this.stream.write(msg + "\n");
  }
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(3) : v.toPrecision(3);
}
