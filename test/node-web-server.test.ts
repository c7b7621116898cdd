// The local server behind `attnflow web`: isolation headers on every answer, files only from the mounted folders
// (no way out with .. or encoded dots), read-only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
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
