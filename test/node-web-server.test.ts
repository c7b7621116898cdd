// The local server behind `attnflow web`: isolation headers on every answer, files only from the mounted folders
// (no way out with .. or encoded dots), read-only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWebServer } from "../src/node/web-server.js";

function get(url: string, path: string, method = "GET"): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    // raw path: no client-side normalisation of .. segments
    const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = "";
      res.on("data", (c) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

test("web server: isolation headers, mounted files only, no traversal, read-only", async () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-web-"));
  mkdirSync(join(dir, "pub"));
  writeFileSync(join(dir, "pub", "a.js"), "export const a = 1;");
  writeFileSync(join(dir, "secret.txt"), "secret");
  writeFileSync(join(dir, "index.html"), "<!doctype html>hi");
  const { url, close } = await startWebServer({ index: join(dir, "index.html"), mounts: { "/pub/": join(dir, "pub") } });
  try {
    const index = await get(url, "/");
    assert.equal(index.status, 200);
    assert.equal(index.body, "<!doctype html>hi");
    assert.equal(index.headers["cross-origin-opener-policy"], "same-origin");
    assert.equal(index.headers["cross-origin-embedder-policy"], "require-corp");
    const js = await get(url, "/pub/a.js");
    assert.equal(js.status, 200);
    assert.match(String(js.headers["content-type"]), /^text\/javascript/);
    for (const p of ["/pub/../secret.txt", "/pub/%2e%2e/secret.txt", "/pub/..%2fsecret.txt", "/secret.txt", "/pub/", "/pub/missing.js"]) {
      const r = await get(url, p);
      assert.equal(r.status, 404, `${p} → ${r.status}`);
      assert.doesNotMatch(r.body, /secret$/);
    }
    assert.equal((await get(url, "/pub/a.js", "POST")).status, 405);
    assert.equal((await get(url, "/pub/a.js", "HEAD")).status, 200);
  } finally {
    close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("attnflow web: serves the page, its script and the shipped models with isolation headers; a busy port is named", async () => {
  const bin = fileURLToPath(new URL("../../bin/attnflow.js", import.meta.url));
  const child = spawn(process.execPath, [bin, "web", "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (c) => { out += c; const m = /on (http:\/\/\S+\/)/.exec(out); if (m) resolve(m[1]); });
      child.on("exit", (code) => reject(new Error(`attnflow web exited (${code}): ${out}`)));
    });
    const page = await get(url, "/");
    assert.equal(page.status, 200);
    assert.match(page.body, /<script type="module" src="\/dist\/examples\/browser\/explain-page\.js">/);
    assert.equal(page.headers["cross-origin-embedder-policy"], "require-corp");
    assert.equal((await get(url, "/dist/examples/browser/explain-page.js", "HEAD")).status, 200);
    for (const m of ["fortunes-classifier", "fashion-vit", "dates", "char-lm"]) assert.equal((await get(url, `/models/${m}.safetensors`, "HEAD")).status, 200, m);
    const port = new URL(url).port;
    const busy = spawnSync(process.execPath, [bin, "web", "--port", port], { encoding: "utf8", timeout: 20_000 });
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use; pick another with --port N`));
  } finally {
    child.kill();
  }
});
