// A local static server for attnflow's browser pages (`attnflow web`): serves chosen folders of the package with the
// cross-origin-isolation headers (COOP same-origin + COEP require-corp) that SharedArrayBuffer — and so the Wasm
// kernels' Web Workers — need. Read-only, GET/HEAD only, no directory listings, bound to 127.0.0.1 by default:
// the page and the text it explains stay on this machine.
import { createReadStream, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";

export const ISOLATION_HEADERS = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json", ".css": "text/css", ".wasm": "application/wasm", ".png": "image/png", ".safetensors": "application/octet-stream",
};

export interface WebServerOptions {
  /** URL prefix → folder, e.g. { "/dist/": "<pkg>/dist", "/models/": "<pkg>/models" }. */
  mounts: Record<string, string>;
  /** The file served at "/". */
  index: string;
  port?: number;
  host?: string;
  /** Extra handler tried first (tests use it to receive results); return true when it answered. */
  handle?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** Starts the server; resolves with its URL once it listens. */
export function startWebServer(o: WebServerOptions): Promise<{ url: string; server: Server; close: () => void }> {
  const server = createServer((req, res) => {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    res.setHeader("Cache-Control", "no-store");
    if (o.handle?.(req, res)) return;
    if (req.method !== "GET" && req.method !== "HEAD") { res.writeHead(405, { Allow: "GET, HEAD" }).end(); return; }
    let path: string;
    try { path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname); } catch { res.writeHead(400).end(); return; }
    const file = path === "/" ? o.index : resolveMounted(o.mounts, path);
    const st = file ? statSync(file, { throwIfNoEntry: false }) : undefined;
    if (!file || !st?.isFile()) { res.writeHead(404, { "Content-Type": "text/plain" }).end(`not found: ${path}\n`); return; }
    res.writeHead(200, { "Content-Type": MIME[extname(file)] ?? "application/octet-stream", "Content-Length": st.size });
    if (req.method === "HEAD") { res.end(); return; }
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, o.host ?? "127.0.0.1", () => {
      const a = server.address() as { port: number; address: string };
      const host = a.address.includes(":") ? `[${a.address}]` : a.address;
      resolve({ url: `http://${host}:${a.port}/`, server, close: () => { server.closeAllConnections(); server.close(); } });
    });
  });
}

/** The file a URL path names inside one of the mounts, or null (never outside a mounted folder). */
function resolveMounted(mounts: Record<string, string>, path: string): string | null {
  for (const [prefix, dir] of Object.entries(mounts)) {
    if (!path.startsWith(prefix)) continue;
    const root = normalize(dir);
    const file = normalize(join(root, path.slice(prefix.length)));
    return file.startsWith(root.endsWith(sep) ? root : root + sep) ? file : null;
  }
  return null;
}
