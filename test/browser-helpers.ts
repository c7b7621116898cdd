// Headless Chromium for the browser tests: where it is, and running it on one URL. Tests skip without it (Debian:
// chromium-headless-shell or chromium; or ATTNFLOW_CHROMIUM=/path/to/binary).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWebServer, type WebServerOptions } from "../src/node/web-server.js";

export const chromium = [process.env.ATTNFLOW_CHROMIUM, "/usr/bin/chromium-headless-shell", "/usr/bin/chromium"]
  .find((p): p is string => !!p && existsSync(p));
export const skipWithoutChromium = chromium ? false : "no Chromium here (apt-get install chromium-headless-shell)";

export interface BrowserRun { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null>; stop: () => void }

/** Starts headless Chromium on `url` with a throw-away profile; `stop()` kills its whole process group. */
export function launchChromium(url: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): BrowserRun {
  const profile = mkdtempSync(join(tmpdir(), "attnflow-chromium-"));
  const child = spawn(chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
    `--user-data-dir=${profile}`, ...extraArgs, url], { stdio: ["ignore", "pipe", "pipe"], detached: true, env });
  let out = "", err = "";
  child.stdout!.on("data", (c) => { out += c; });
  child.stderr!.on("data", (c) => { err += c; });
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  return {
    child, stdout: () => out, stderr: () => err, exited,
    stop: () => {
      try { process.kill(-child.pid!, "SIGKILL"); } catch { /* already gone */ }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Serves `index` and `mounts` (src/node/web-server.ts, with its isolation headers), opens `pathAndQuery` in headless
 * Chromium and resolves with the JSON the page POSTs to /__result; rejects when Chromium exits first or after
 * `timeoutMs`. `handle` adds routes (e.g. a generated page).
 */
export async function pageReport<T>(o: {
  index?: string; mounts: Record<string, string>; pathAndQuery: string; handle?: WebServerOptions["handle"]; timeoutMs?: number;
  /** Bare specifiers rewritten in the served scripts (as `attnflow web` does for its page: PAGE_IMPORT_MAP). */
  importMap?: Record<string, string>;
  /** Extra Chromium switches, e.g. --window-size=390,900. */
  browserArgs?: string[];
}): Promise<T> {
  let deliver!: (r: T) => void;
  const result = new Promise<T>((res) => { deliver = res; });
  const { url, close } = await startWebServer({
    index: o.index, mounts: o.mounts, importMap: o.importMap,
    handle: (req, res) => {
      if (req.method === "POST" && req.url === "/__result") {
        let body = "";
        req.on("data", (c) => { body += c; });
        req.on("end", () => { res.writeHead(204).end(); deliver(JSON.parse(body) as T); });
        return true;
      }
      return o.handle?.(req, res) ?? false;
    },
  });
  const browser = launchChromium(new URL(o.pathAndQuery, url).href, o.browserArgs);
  const ms = o.timeoutMs ?? 150_000;
  const exited = browser.exited.then((code): T => { throw new Error(`Chromium exited (${code}) before the page reported:\n${browser.stderr().slice(-2000)}`); });
  const timer = new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no result from the page in ${ms / 1000} s:\n${browser.stderr().slice(-2000)}`)), ms).unref());
  try {
    return await Promise.race([result, exited, timer]);
  } finally {
    browser.stop();
    close();
  }
}
