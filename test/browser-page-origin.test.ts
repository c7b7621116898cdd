// The explainer page promises that nothing leaves the browser, so its URL parameters may name only paths on the
// server that served it: a crafted link with ?report=//other-host/…&autorun=1 must not POST the summary (derived
// from the user's input) to another site, and ?model= / ?image= must not load from one. "Another site" here is a
// second server on another loopback address (127.0.0.2), which records every request it gets. The server behind
// `attnflow web` is read-only for cross-origin pages too: POSTs and preflights get 405 and no CORS grant.
// Browser parts skip without Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, request, type IncomingHttpHeaders } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startWebServer } from "../src/node/web-server.js";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));   // dist/test/ → package root

/** A server on 127.0.0.2 standing for another web site: records every request (method, path, body), answers 204. */
async function otherSite(): Promise<{ port: number; seen: string[]; close: () => void }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => { seen.push(`${req.method} ${req.url} ${body.slice(0, 200)}`); res.writeHead(204).end(); });
  });
  await new Promise<void>((res, rej) => { server.once("error", rej); server.listen(0, "127.0.0.2", res); });
  return { port: (server.address() as { port: number }).port, seen, close: () => { server.closeAllConnections(); server.close(); } };
}

interface FrameResult { query: string; urlNotice: string; status: string; error: string }

/**
 * A page (same origin as the explainer) that opens the explainer once per query in iframes, waits until each has
 * finished (<body data-done>), and posts what each one shows to /__result.
 */
function framesPage(queries: string[]): string {
  return `<!doctype html><meta charset="utf-8"><body><script>
const queries = ${JSON.stringify(queries)};
const frames = queries.map((q) => { const f = document.createElement("iframe"); f.src = "/?" + q; document.body.append(f); return f; });
const text = (d, id) => d.getElementById(id)?.textContent ?? "";
(async () => {
  while (!frames.every((f) => f.contentDocument?.body?.dataset.done)) await new Promise((r) => setTimeout(r, 100));
  const results = frames.map((f, i) => { const d = f.contentDocument; return { query: queries[i], urlNotice: text(d, "url-notice"), status: text(d, "status"), error: text(d, "error") }; });
  await fetch("/__result", { method: "POST", body: JSON.stringify(results) });
})();
</script></body>`;
}

test("browser: the page sends nothing to and loads nothing from another site; a same-origin ?report= still works", { skip, timeout: 240_000 }, async () => {
  const other = await otherSite();
  const elsewhere = `127.0.0.2:${other.port}`;
  const same: string[] = [];
  const q = (s: string) => encodeURIComponent(s);
  const queries = [
    `report=${q(`//${elsewhere}/collect`)}&autorun=1`,            // protocol-relative
    `report=${q(`/\\${elsewhere}/collect`)}&autorun=1`,           // a backslash reads as a slash in http(s) URLs
    `report=${q(`http://${elsewhere}/collect`)}&autorun=1`,       // absolute
    `model=${q(`//${elsewhere}/m.safetensors`)}&image=${q(`http://${elsewhere}/i.png`)}&autorun=1&report=/__same`,
    "autorun=1&report=/models/",                                  // same origin, but the read-only server refuses it
  ];
  try {
    const frames = await pageReport<FrameResult[]>({
      mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models") },
      index: join(ROOT, "examples", "browser", "explain.html"),
      pathAndQuery: "/__frames",
      handle: (req, res) => {
        if (req.method === "GET" && req.url === "/__frames") { res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(framesPage(queries)); return true; }
        if (req.method === "POST" && req.url === "/__same") {
          let body = "";
          req.on("data", (c) => { body += c; });
          req.on("end", () => { same.push(body); res.writeHead(204).end(); });
          return true;
        }
        return false;
      },
      timeoutMs: 220_000,
    });
    assert.deepEqual(other.seen, [], `requests reached the other site:\n${other.seen.join("\n")}`);
    assert.equal(frames[4].error, "?report=/models/: the server answered HTTP 405 to the summary's POST");
    for (const f of frames.slice(0, 4)) {
      assert.equal(f.error, "", `${f.query}: ${f.error}`);
      assert.match(f.status, /^explained in /, f.query);   // the page still explains, locally
    }
    assert.equal(frames[4].urlNotice, "");
    for (const f of frames.slice(0, 3)) {
      assert.match(f.urlNotice, /Ignored \?report=.*127\.0\.0\.2.*: not a path on this server.*nothing is sent to or loaded from another site/, f.query);
    }
    const notice = frames[3].urlNotice;
    assert.match(notice, /Ignored \?model=\/\/127\.0\.0\.2/, notice);
    assert.match(notice, /Ignored \?image=http:\/\/127\.0\.0\.2/, notice);
    assert.doesNotMatch(notice, /report/, notice);
    // the same-origin report arrived, with the default model's result
    assert.equal(same.length, 1, "one summary posted to this server");
    const summary = JSON.parse(same[0]) as { kind?: string; prediction?: string; error?: string };
    assert.equal(summary.error, undefined, summary.error);
    assert.equal(summary.kind, "text");
    assert.ok(summary.prediction, "a prediction in the same-origin report");
  } finally {
    other.close();
  }
});

function send(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path, method, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("web server: a cross-origin page's POST, PUT or preflight writes nothing and gets no CORS grant", async () => {
  const dir = mkdtempSync(join(tmpdir(), "attnflow-web-origin-"));
  writeFileSync(join(dir, "a.txt"), "original");
  const { url, close } = await startWebServer({ mounts: { "/pub/": dir } });
  try {
    const origin = { Origin: "http://127.0.0.2:9", "Content-Type": "text/plain" };
    for (const [method, path] of [["POST", "/pub/a.txt"], ["POST", "/pub/new.txt"], ["PUT", "/pub/new.txt"]]) {
      const r = await send(url, method, path, origin, "overwritten");
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(r.headers.allow, "GET, HEAD");
      assert.equal(r.headers["access-control-allow-origin"], undefined, `${method} ${path}: no CORS grant`);
    }
    const pre = await send(url, "OPTIONS", "/pub/a.txt", { Origin: "http://127.0.0.2:9", "Access-Control-Request-Method": "PUT" });
    assert.equal(pre.status, 405);
    assert.equal(pre.headers["access-control-allow-origin"], undefined);
    assert.equal(pre.headers["access-control-allow-methods"], undefined);
    assert.equal(readFileSync(join(dir, "a.txt"), "utf8"), "original");
    assert.equal(existsSync(join(dir, "new.txt")), false);
  } finally {
    close();
    rmSync(dir, { recursive: true, force: true });
  }
});
