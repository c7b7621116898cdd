// A local static server for attnflow's browser pages (`attnflow web`): serves chosen folders of the package with the
// cross-origin-isolation headers (COOP same-origin + COEP require-corp) that SharedArrayBuffer — and so the Wasm
// kernels' Web Workers — need. Read-only, GET/HEAD only, no directory listings, bound to 127.0.0.1 by default:
// the page and the text it explains stay on this machine.
//
// Hardened because any web page the user visits can make the browser send requests here (`<img src=…>`): every
// request gets a status code and nothing a request holds can end the process (bad escapes, NUL bytes, over-long
// paths, files that vanish or fail mid-read, a throwing extra handler); symlinks are resolved and refused when they
// leave a mount; and only requests naming this machine in their Host header are answered (a DNS-rebinding page
// would send its own host name).
import { open, realpath } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Duplex } from "node:stream";

export const ISOLATION_HEADERS = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json", ".css": "text/css", ".wasm": "application/wasm", ".png": "image/png", ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg", ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8", ".map": "application/json",
  ".safetensors": "application/octet-stream",
};

/** Longest URL path answered; longer ones get 414 before the file system sees them (PATH_MAX is 4096 on Linux). */
const MAX_PATH = 4096;

export interface WebServerOptions {
  /** URL prefix → folder, e.g. { "/dist/": "<pkg>/dist", "/models/": "<pkg>/models" }; the longest matching prefix wins. */
  mounts: Record<string, string>;
  /** The file served at "/" (unless a mount's prefix is "/", which then serves index.html of its folder at "/"). */
  index?: string;
  port?: number;
  host?: string;
  /**
   * Host names (or addresses) besides localhost, 127.x.x.x and [::1] that requests may name in their Host header,
   * always with the server's port. The address given as `host` is added unless it is a wildcard (0.0.0.0, ::).
   */
  allowedHosts?: string[];
  /**
   * Bare module specifiers → URLs, rewritten in the served .js / .mjs files (import "x", from "x", import("x")): a
   * page's import map does not reach its module Web Workers in Chromium, so the modules they import must name URLs.
   * Only these exact specifiers are rewritten; every other byte is served as stored.
   */
  importMap?: Record<string, string>;
  /** Extra handler tried first (tests use it to receive results); return true when it answered. */
  handle?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

/** Starts the server; resolves with its URL once it listens. */
export function startWebServer(o: WebServerOptions): Promise<{ url: string; server: Server; close: () => void }> {
  const bind = o.host ?? "127.0.0.1";
  const extraHosts = new Set([...(o.allowedHosts ?? []), ...(isWildcard(bind) ? [] : [bind])].map(hostKey));
  const mounts = Object.entries(o.mounts).sort((a, b) => b[0].length - a[0].length);
  let port = 0;
  const rewrite = importRewriter(o.importMap ?? {});
  const server = createServer((req, res) => {
    answer(req, res).catch((e: unknown) => fail(res, e));
  });
  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    res.setHeader("Cache-Control", "no-store");
    res.setHeader("X-Content-Type-Options", "nosniff");
    // other sites may not embed what is served here (<script>, <img> of the user's --serve files or the models)
    res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
    if (!hostAllowed(req.headers.host, port, extraHosts)) {
      throw new HttpError(403, `refused: the Host header ${JSON.stringify(req.headers.host ?? "")} does not name this server ` +
        "(only localhost, 127.x.x.x, [::1] or the address given with --host, with the server's port)");
    }
    if (o.handle?.(req, res)) return;
    if (req.method !== "GET" && req.method !== "HEAD") { res.writeHead(405, { Allow: "GET, HEAD" }).end(); return; }
    const path = urlPath(req.url ?? "/");
    const file = path === "/" && o.index !== undefined ? o.index : await resolveMounted(mounts, path);
    if (!file) throw new HttpError(404, `not found: ${path}`);
    await sendFile(file, path, req.method === "HEAD", res, rewrite);
  }
  // CONNECT never reaches the request handler (Node would just drop the socket): answer it too
  server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
    socket.on("error", () => undefined);
    socket.end("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, bind, () => {
      server.off("error", reject);
      server.on("error", () => undefined);   // after listening, socket errors are per connection: never fatal
      const a = server.address() as { port: number; address: string };
      port = a.port;
      const host = a.address.includes(":") ? `[${a.address}]` : a.address;
      resolve({ url: `http://${host}:${a.port}/`, server, close: () => { server.closeAllConnections(); server.close(); } });
    });
  });
}

/** Any failure becomes a status code on this response (or, once the body has started, a closed connection). */
function fail(res: ServerResponse, e: unknown): void {
  if (res.headersSent) { res.destroy(); return; }
  const status = e instanceof HttpError ? e.status : 500;
  const text = e instanceof HttpError ? e.message : "internal error";
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" }).end(text + "\n");
}

/** The decoded path of a request target; 400 for bad escapes and NUL bytes, 414 for over-long paths. */
function urlPath(target: string): string {
  const raw = target.split(/[?#]/, 1)[0];
  if (raw.length > MAX_PATH) throw new HttpError(414, `the path is ${raw.length} characters long; at most ${MAX_PATH} are served`);
  let path: string;
  try { path = decodeURIComponent(raw.startsWith("/") ? raw : new URL(raw).pathname); } catch { throw new HttpError(400, "bad request path (invalid % escape or URL)"); }
  if (path.includes("\0")) throw new HttpError(400, "bad request path (NUL byte)");
  if (path.length > MAX_PATH) throw new HttpError(414, `the path is ${path.length} characters long; at most ${MAX_PATH} are served`);
  return path;
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]" || host === "";
}

/** Lower-case host without brackets, for comparisons. */
function hostKey(h: string): string {
  return h.toLowerCase().replace(/^\[(.*)\]$/, "$1");
}

/** Whether a Host header names this machine (localhost, 127.x.x.x, ::1) or an allowed host, with our port. */
export function hostAllowed(header: string | undefined, port: number, extra: ReadonlySet<string> = new Set()): boolean {
  if (!header) return false;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d+))?$/.exec(header.trim());
  if (!m) return false;
  const hostPort = m[2] === undefined ? 80 : Number(m[2]);
  if (hostPort !== port) return false;
  const h = hostKey(m[1]);
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || extra.has(h);
}

/** The real path of the file a URL path names inside one of the mounts, or null (never outside a mount's real root). */
async function resolveMounted(mounts: ReadonlyArray<[string, string]>, path: string): Promise<string | null> {
  for (const [prefix, dir] of mounts) {
    if (!path.startsWith(prefix)) continue;
    let rel = path.slice(prefix.length);
    if (rel === "" || rel.endsWith("/")) rel += "index.html";   // a folder's index page; no listings
    const root = normalize(dir);
    const file = normalize(join(root, rel));
    if (!inside(file, root)) return null;
    // symlinks are resolved, and the result must still lie under the mount's own real root
    const [realRoot, realFile] = await Promise.all([realpathOrNull(root), realpathOrNull(file)]);
    return realRoot && realFile && inside(realFile, realRoot) ? realFile : null;
  }
  return null;
}

function inside(file: string, root: string): boolean {
  return file.startsWith(root.endsWith(sep) ? root : root + sep);
}

async function realpathOrNull(p: string): Promise<string | null> {
  try {
    return await realpath(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENAMETOOLONG") throw new HttpError(414, "path too long");
    return null;   // missing, not a folder on the way, unreadable: not found
  }
}

/** Largest script whose imports are rewritten (larger ones are served as stored). */
const MAX_REWRITE = 16 << 20;

/** The rewrite of a script's text for an import map, or null when the map is empty. */
function importRewriter(map: Record<string, string>): ((js: string) => string) | null {
  const specs = Object.keys(map);
  if (!specs.length) return null;
  const alt = specs.map((x) => x.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|");
  const re = new RegExp(`(\\bfrom\\s*|\\bimport\\s*\\(\\s*|\\bimport\\s+)(["'])(${alt})\\2`, "g");
  return (js) => js.replace(re, (_, pre: string, q: string, spec: string) => `${pre}${q}${map[spec]}${q}`);
}

/** Opens the file once (stat and read use that descriptor) and streams it; read errors close the connection. */
async function sendFile(file: string, path: string, head: boolean, res: ServerResponse, rewrite: ((js: string) => string) | null = null): Promise<void> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENAMETOOLONG") throw new HttpError(414, "path too long");
    throw new HttpError(404, `not found: ${path}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new HttpError(404, `not found: ${path}`);
    const ext = extname(file).toLowerCase();
    if (rewrite && (ext === ".js" || ext === ".mjs") && st.size <= MAX_REWRITE) {
      const body = Buffer.from(rewrite((await fh.readFile()).toString("utf8")), "utf8");
      res.writeHead(200, { "Content-Type": MIME[ext], "Content-Length": body.length });
      res.end(head ? undefined : body);
      return;
    }
    res.writeHead(200, { "Content-Type": MIME[extname(file).toLowerCase()] ?? "application/octet-stream", "Content-Length": st.size });
    if (head) { res.end(); return; }
    // pipeline destroys both ends on a read error or when the client goes away; the handle closes with the stream
    const stream = fh.createReadStream({ autoClose: true });
    fh = undefined;
    await pipeline(stream, res);
  } finally {
    await fh?.close();
  }
}
