// Headless Chromium for the browser tests: where it is, and running it on one URL. Tests skip without it (Debian:
// chromium-headless-shell or chromium; or ATTNFLOW_CHROMIUM=/path/to/binary).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const chromium = [process.env.ATTNFLOW_CHROMIUM, "/usr/bin/chromium-headless-shell", "/usr/bin/chromium"]
  .find((p): p is string => !!p && existsSync(p));
export const skipWithoutChromium = chromium ? false : "no Chromium here (apt-get install chromium-headless-shell)";

export interface BrowserRun { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null>; stop: () => void }

/** Starts headless Chromium on `url` with a throw-away profile; `stop()` kills its whole process group. */
export function launchChromium(url: string, extraArgs: string[] = []): BrowserRun {
  const profile = mkdtempSync(join(tmpdir(), "attnflow-chromium-"));
  const child = spawn(chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
    `--user-data-dir=${profile}`, ...extraArgs, url], { stdio: ["ignore", "pipe", "pipe"], detached: true });
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
