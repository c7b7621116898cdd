// The local server behind `attnflow web`: isolation headers on every answer, files only from the mounted folders
// (no way out with .. or encoded dots), read-only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWebServer } from "../src/node/web-server.js";
import { PAGE_IMPORT_MAP } from "../cli/web.js";

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

/** The status line a CONNECT request gets (Node hands CONNECT to a separate event, not the request handler). */
function connectStatus(url: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, method: "CONNECT", path: "example.com:443" });
    req.on("connect", (res, socket) => { socket.destroy(); resolve({ status: res.statusCode! }); });
    req.on("response", (res) => { res.resume(); resolve({ status: res.statusCode! }); });
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
    assert.equal(index.headers["cross-origin-resource-policy"], "same-origin");   // no embedding by other sites
    const js = await get(url, "/pub/a.js");
    assert.equal(js.status, 200);
    assert.match(String(js.headers["content-type"]), /^text\/javascript/);
    for (const p of ["/pub/../secret.txt", "/pub/%2e%2e/secret.txt", "/pub/..%2fsecret.txt", "/secret.txt", "/pub/", "/pub/missing.js"]) {
      const r = await get(url, p);
      assert.equal(r.status, 404, `${p} → ${r.status}`);
      assert.doesNotMatch(r.body, /secret$/);
    }
    assert.equal((await get(url, "/pub/a.js", "POST")).status, 405);
    assert.equal((await get(url, "/pub/a.js", "DELETE")).status, 405);
    assert.equal((await connectStatus(url)).status, 405);
    assert.equal((await get(url, "/pub/a.js")).status, 200, "still answering");
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
    // the page's Web Worker imports the tokenizer module: its bare specifier names the /lib/ URL there (no import map
    // reaches a worker), the same URL as the page's import map, and that URL is served
    const tok = await get(url, "/dist/src/hf/tokenizer.js");
    assert.equal(tok.status, 200);
    assert.match(tok.body, /from "\/lib\/tokenizers\/dist\/tokenizers\.mjs"/);
    assert.doesNotMatch(tok.body, /from "@huggingface\/tokenizers"/);
    assert.equal(Number(tok.headers["content-length"]), Buffer.byteLength(tok.body));
    const map = JSON.parse(/<script type="importmap">(.*?)<\/script>/s.exec(page.body)![1]).imports as Record<string, string>;
    assert.deepEqual(map, PAGE_IMPORT_MAP);
    for (const lib of Object.values(map)) assert.equal((await get(url, lib, "HEAD")).status, 200, lib);
    assert.match((await get(url, "/dist/src/hf/sentencepiece.js")).body, /from "\/lib\/protobuf\/dist\/esm\/wire\/index\.js"/);
    // the reproducers, against the real command: each gets a status code and the process keeps serving
    assert.equal((await get(url, "/models/a%00b")).status, 400);
    assert.equal((await get(url, `/models/${"a".repeat(16_000)}`)).status, 414);
    assert.equal(child.exitCode, null, "attnflow web exited on a request");
    assert.equal((await get(url, "/models/dates.safetensors", "HEAD")).status, 200);
    const port = new URL(url).port;
    const busy = spawnSync(process.execPath, [bin, "web", "--port", port], { encoding: "utf8", timeout: 20_000 });
    assert.equal(busy.status, 1);
    assert.match(busy.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use; pick another with --port N`));
  } finally {
    child.kill();
  }
});

/** A raw request with any Host header (or none) and an arbitrary path; resolves with the status, never rejects on HTTP errors. */
function raw(url: string, path: string, o: { host?: string | null; method?: string } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = {};
    if (o.host !== null) headers.Host = o.host ?? u.host;
    const req = request({ host: u.hostname, port: u.port, path, method: o.method ?? "GET", headers, setHost: false }, (res) => {
      let body = "";
      res.on("data", (c) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

test("web server: hostile paths get a status code and the server keeps answering (NUL, 16,000 characters, bad escapes)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-web-"));
  mkdirSync(join(dir, "models"));
  writeFileSync(join(dir, "models", "m.safetensors"), "weights");
  writeFileSync(join(dir, "index.html"), "<!doctype html>hi");
  const { url, close } = await startWebServer({ index: join(dir, "index.html"), mounts: { "/models/": join(dir, "models") } });
  try {
    const cases: [string, number][] = [
      ["/models/a%00b", 400], ["/%00", 400], ["/models/%2e%2e%00/x", 400],
      [`/models/${"a".repeat(16_000)}`, 414], [`/models/${"a/".repeat(5_000)}x`, 414],
      ["/models/%E0%A4%A", 400], ["/models/%ff", 400],
    ];
    for (const [p, want] of cases) {
      const r = await raw(url, p);
      assert.equal(r.status, want, `${p.slice(0, 40)}… → ${r.status}`);
      assert.equal((await raw(url, "/models/m.safetensors")).status, 200, `still answering after ${p.slice(0, 40)}`);
    }
  } finally {
    close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("web server: importMap rewrites exactly its bare specifiers in served scripts; other files and text stay as stored", async () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-web-map-"));
  const src = `import { a } from "lib-a";\nimport 'lib-a';\nconst b = await import( "lib-b/sub" );\nexport * from "lib-ab";\nconst s = "lib-a";\nimport c from "./lib-a";\n`;
  writeFileSync(join(dir, "m.js"), src);
  writeFileSync(join(dir, "t.txt"), src);
  const { url, close } = await startWebServer({ mounts: { "/": dir }, importMap: { "lib-a": "/lib/a.mjs", "lib-b/sub": "/lib/b/sub.js" } });
  try {
    const js = await get(url, "/m.js");
    assert.equal(js.body, `import { a } from "/lib/a.mjs";\nimport '/lib/a.mjs';\nconst b = await import( "/lib/b/sub.js" );\nexport * from "lib-ab";\nconst s = "lib-a";\nimport c from "./lib-a";\n`);
    assert.equal(Number(js.headers["content-length"]), Buffer.byteLength(js.body));
    const head = await get(url, "/m.js", "HEAD");
    assert.equal(head.headers["content-length"], js.headers["content-length"]);
    assert.equal(head.body, "");
    assert.equal((await get(url, "/t.txt")).body, src);   // not a script: as stored
    assert.equal((await get(url, "/../m.js")).status, 404);
  } finally {
    close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("web server: symlinks that leave a mount are refused; links inside it are served", async () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-web-"));
  mkdirSync(join(dir, "pub", "sub"), { recursive: true });
  mkdirSync(join(dir, "outside"));
  writeFileSync(join(dir, "secret.txt"), "secret");
  writeFileSync(join(dir, "outside", "also-secret.txt"), "secret");
  writeFileSync(join(dir, "pub", "sub", "real.js"), "export const ok = 1;");
  symlinkSync(join(dir, "secret.txt"), join(dir, "pub", "escape.txt"));
  symlinkSync("../secret.txt", join(dir, "pub", "relative-escape.txt"));
  symlinkSync(join(dir, "outside"), join(dir, "pub", "linked-dir"));
  symlinkSync("sub/real.js", join(dir, "pub", "inside.js"));
  writeFileSync(join(dir, "index.html"), "<!doctype html>hi");
  // the mount itself reached through a link: its real root is what counts
  symlinkSync(join(dir, "pub"), join(dir, "pub-link"));
  const { url, close } = await startWebServer({ index: join(dir, "index.html"), mounts: { "/pub/": join(dir, "pub-link") } });
  try {
    for (const p of ["/pub/escape.txt", "/pub/relative-escape.txt", "/pub/linked-dir/also-secret.txt"]) {
      const r = await raw(url, p);
      assert.equal(r.status, 404, `${p} → ${r.status}`);
      assert.doesNotMatch(r.body, /secret$/);
    }
    assert.equal((await raw(url, "/pub/inside.js")).body, "export const ok = 1;");
    assert.equal((await raw(url, "/pub/sub/real.js")).status, 200);
  } finally {
    close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("web server: only local Host headers (DNS rebinding) or the configured host are answered", async () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-web-"));
  writeFileSync(join(dir, "index.html"), "<!doctype html>hi");
  const { url, close } = await startWebServer({ index: join(dir, "index.html"), mounts: {} });
  const port = new URL(url).port;
  try {
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `127.0.0.2:${port}`, `[::1]:${port}`]) {
      assert.equal((await raw(url, "/", { host: h })).status, 200, h);
    }
    for (const h of [`evil.example:${port}`, "evil.example", `localhost:${Number(port) + 1}`, "localhost", `localhost.evil.example:${port}`,
      `127.0.0.1.evil.example:${port}`, `192.168.1.5:${port}`, `[::2]:${port}`, ""]) {
      const r = await raw(url, "/", { host: h });
      assert.equal(r.status, 403, `Host: ${h} → ${r.status}`);
      assert.match(r.body, /Host/);
    }
    assert.equal((await raw(url, "/", { host: null })).status, 400);   // HTTP/1.1 without Host (Node's own check)
    assert.equal((await raw(url, "/")).status, 200, "still answering");
  } finally {
    close();
  }
  // an explicitly configured host name is accepted too (with the port)
  const named = await startWebServer({ index: join(dir, "index.html"), mounts: {}, allowedHosts: ["attnflow.test"] });
  try {
    const p = new URL(named.url).port;
    assert.equal((await raw(named.url, "/", { host: `attnflow.test:${p}` })).status, 200);
    assert.equal((await raw(named.url, "/", { host: `other.test:${p}` })).status, 403);
  } finally {
    named.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("web server: a throwing extra handler answers 500 and the server keeps answering", async () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-web-"));
  writeFileSync(join(dir, "index.html"), "<!doctype html>hi");
  const { url, close } = await startWebServer({
    index: join(dir, "index.html"), mounts: {},
    handle: (req) => { if (req.url === "/boom") throw new Error("boom"); return false; },
  });
  try {
    assert.equal((await raw(url, "/boom")).status, 500);
    assert.equal((await raw(url, "/")).status, 200);
  } finally {
    close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("attnflow web --serve DIR: the user's page at /, attnflow at /attnflow/dist/, isolation headers, the same hardening", async () => {
  const bin = fileURLToPath(new URL("../../bin/attnflow.js", import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), "attnflow-serve-"));
  mkdirSync(join(dir, "site"));
  writeFileSync(join(dir, "site", "index.html"), "<!doctype html>my page");
  writeFileSync(join(dir, "site", "worker.js"), 'import { hf } from "attnflow";\nimport { Tokenizer } from "@huggingface/tokenizers";\nconst s = "attnflow";\n');
  writeFileSync(join(dir, "secret.txt"), "secret");
  symlinkSync(join(dir, "secret.txt"), join(dir, "site", "leak.txt"));
  const child = spawn(process.execPath, [bin, "web", "--serve", join(dir, "site"), "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (c) => { out += c; const m = /on (http:\/\/\S+\/)/.exec(out); if (m) resolve(m[1]); });
      child.on("exit", (code) => reject(new Error(`attnflow web --serve exited (${code}): ${out}`)));
    });
    const page = await get(url, "/");
    assert.equal(page.body, "<!doctype html>my page");
    assert.equal(page.headers["cross-origin-opener-policy"], "same-origin");
    assert.equal((await get(url, "/index.html")).status, 200);
    for (const p of ["/attnflow/dist/src/index.js", "/attnflow/dist/src/backend/wasm/worker.js"]) {
      const r = await get(url, p, "HEAD");
      assert.equal(r.status, 200, p);
      assert.match(String(r.headers["content-type"]), /^text\/javascript/);
      assert.equal(r.headers["cross-origin-embedder-policy"], "require-corp");
    }
    assert.equal((await get(url, "/attnflow/models/dates.safetensors", "HEAD")).status, 200);
    // the tokenizer libraries at /lib/ as in the default page, and bare imports rewritten to served URLs (a module
    // worker sees no import map): attnflow's HF tokenizer module and the user's own scripts
    for (const p of ["/lib/tokenizers/dist/tokenizers.mjs", "/lib/protobuf/dist/esm/wire/index.js"]) assert.equal((await get(url, p, "HEAD")).status, 200, p);
    const tk = (await get(url, "/attnflow/dist/src/hf/tokenizer.js")).body;
    assert.match(tk, /from "\/lib\/tokenizers\/dist\/tokenizers\.mjs"/);
    assert.doesNotMatch(tk, /from "@huggingface\/tokenizers"/);
    assert.equal((await get(url, "/worker.js")).body,
      'import { hf } from "/attnflow/dist/src/index.js";\nimport { Tokenizer } from "/lib/tokenizers/dist/tokenizers.mjs";\nconst s = "attnflow";\n');
    assert.equal((await get(url, "/leak.txt")).status, 404);
    assert.equal((await get(url, "/attnflow/dist/../../package.json")).status, 404);
    assert.equal((await get(url, "/%00")).status, 400);
    assert.equal((await raw(url, "/", { host: "rebind.example" })).status, 403);
    assert.equal((await get(url, "/")).status, 200);
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  const missing = spawnSync(process.execPath, [bin, "web", "--serve", join(tmpdir(), "no-such-attnflow-dir")], { encoding: "utf8", timeout: 20_000 });
  assert.notEqual(missing.status, 0, missing.stderr);
  assert.match(missing.stderr, /--serve needs a folder/);
  const help = spawnSync(process.execPath, [bin, "web", "--help"], { encoding: "utf8", timeout: 20_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--host ADDR/);
  assert.match(help.stdout, /--serve DIR/);
});

test("web server: a file that fails while being read closes that response only; the server keeps answering", { timeout: 60_000 }, async (t) => {
  // /proc/self/mem opens and stats as a regular file, but reading it from offset 0 fails (EIO): a read error
  // after the headers are out, without needing root to make a file unreadable
  try { readFileSync("/proc/self/mem"); t.skip("no /proc/self/mem read error here"); return; } catch { /* EIO, as wanted */ }
  const dir = mkdtempSync(join(tmpdir(), "attnflow-web-"));
  writeFileSync(join(dir, "index.html"), "<!doctype html>hi");
  const { url, close } = await startWebServer({ index: join(dir, "index.html"), mounts: { "/proc/": "/proc/self" } });
  try {
    const r = await raw(url, "/proc/mem").catch((e: Error) => ({ status: 0, body: e.message }));
    assert.notEqual(r.status, 500);
    assert.equal(r.body.includes("\0"), false);
    assert.equal((await raw(url, "/")).status, 200, "still answering");
  } finally {
    close();
    rmSync(dir, { recursive: true, force: true });
  }
});
