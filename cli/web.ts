// `attnflow web`: the in-browser explainer (examples/browser/explain.html) on a local server with the
// cross-origin-isolation headers, so the Wasm kernels run on Web Workers. Runs until interrupted.
// `attnflow web --serve DIR`: the user's own page instead — DIR at /, attnflow's build at /attnflow/dist/ (and the
// shipped models at /attnflow/models/), for a page that imports attnflow through an import map (README: "Use it in
// your own web page").
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";
import { createRequire } from "node:module";
import { startWebServer } from "../src/node/web-server.js";
import type { Args } from "./attnflow.js";
import { checkFlags, intFlag, stringFlag, UsageError } from "./explain.js";

/** The package root: this file runs as dist/cli/web.js. */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The packages the page imports through its import map (explain.html): the HF folder picker's tokenizers. */
export function pageLibMounts(): Record<string, string> {
  const req = createRequire(import.meta.url);
  // each resolves to <package>/dist/<cjs>/…: two (tokenizers) and three (protobuf) levels below the package folder
  return { "/lib/tokenizers/": join(dirname(req.resolve("@huggingface/tokenizers")), ".."), "/lib/protobuf/": join(dirname(req.resolve("@bufbuild/protobuf")), "..", "..") };
}

/**
 * The explainer page's import map (explain.html names the same): the main thread uses that, and the server rewrites
 * these specifiers in the scripts it serves, because an import map does not reach the page's module Web Worker.
 */
export const PAGE_IMPORT_MAP: Record<string, string> = {
  "@huggingface/tokenizers": "/lib/tokenizers/dist/tokenizers.mjs", "@bufbuild/protobuf/wire": "/lib/protobuf/dist/esm/wire/index.js",
};

/** Where `--serve` mounts the package: a page's import map points "attnflow" at `${ATTNFLOW_PREFIX}dist/src/index.js`. */
export const ATTNFLOW_PREFIX = "/attnflow/";

export const WEB_USAGE = `usage: attnflow web [--port 8080] [--host 127.0.0.1] [--serve DIR]
  Serves a page with the cross-origin-isolation headers (COOP/COEP) that the Wasm backend's Web Workers need.
  --port N      port to listen on (default 8080; 0: any free port)
  --host ADDR   address to listen on (default 127.0.0.1: this machine only). Requests must name this machine in
                their Host header (localhost, 127.x.x.x, [::1]) or ADDR itself, with the port; any other Host gets
                403 (a defence against DNS rebinding). To reach the page from another machine, give the address it
                will use, e.g. --host 192.168.1.5, and open http://192.168.1.5:8080/ there.
  --serve DIR   serve your own page instead of the explainer: DIR at / (DIR/index.html at /), attnflow's build at
                ${ATTNFLOW_PREFIX}dist/ (import map: "attnflow": "${ATTNFLOW_PREFIX}dist/src/index.js") and its
                shipped models at ${ATTNFLOW_PREFIX}models/; the tokenizer libraries at /lib/tokenizers/ and
                /lib/protobuf/ as the explainer has them. Bare imports of "attnflow", "@huggingface/tokenizers" and
                "@bufbuild/protobuf/wire" in served scripts are rewritten to those URLs (module workers see no import map)`;

/**
 * What `--serve DIR` serves: DIR at /, the package's build and shipped models under ATTNFLOW_PREFIX, and the
 * tokenizer libraries at /lib/tokenizers/ and /lib/protobuf/ as the explainer page has them (a page or worker that
 * opens a Hugging Face folder imports them there).
 */
export function serveMounts(dir: string): Record<string, string> {
  return { "/": dir, [`${ATTNFLOW_PREFIX}dist/`]: join(ROOT, "dist"), [`${ATTNFLOW_PREFIX}models/`]: join(ROOT, "models"), ...pageLibMounts() };
}

/** --serve's rewrite of bare specifiers in served scripts (an import map does not reach module Web Workers): the
 *  tokenizer libraries as in the explainer page, and "attnflow" itself. */
export const SERVE_IMPORT_MAP: Record<string, string> = { ...PAGE_IMPORT_MAP, attnflow: `${ATTNFLOW_PREFIX}dist/src/index.js` };

export async function webCommand(args: Args): Promise<number> {
  if (args.flags.help === true) { console.log(WEB_USAGE); return 0; }
  checkFlags(args.flags, ["port", "host", "serve", "help"], "attnflow web");
  const port = intFlag(args.flags, "port", "a port number (0: any free port)") ?? 8080;
  if (port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got ${port}`);
  const host = stringFlag(args.flags, "host", "an address to listen on") ?? "127.0.0.1";
  const serve = stringFlag(args.flags, "serve", "a folder holding your page (index.html)");
  if (!existsSync(join(ROOT, "dist", "src", "index.js"))) throw new Error(`attnflow's build is missing under ${ROOT} (dist/src/index.js; run npm run build)`);
  let site: { index?: string; mounts: Record<string, string>; importMap?: Record<string, string>; what: string };
  if (serve !== undefined) {
    const dir = resolve(serve);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--serve needs a folder, and ${dir} is not one`);
    site = {
      mounts: serveMounts(dir), importMap: SERVE_IMPORT_MAP,
      what: `${dir} (attnflow at ${ATTNFLOW_PREFIX}dist/src/index.js)`,
    };
  } else {
    const index = join(ROOT, "examples", "browser", "explain.html");
    if (!existsSync(index) || !existsSync(join(ROOT, "dist", "examples", "browser", "explain-page.js"))) {
      throw new Error(`the browser explainer is missing under ${ROOT} (examples/browser/explain.html and its build in dist/; run npm run build)`);
    }
    site = { index, mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models"), ...pageLibMounts() }, importMap: PAGE_IMPORT_MAP, what: "the in-browser explainer" };
  }
  let url: string;
  try {
    ({ url } = await startWebServer({ index: site.index, mounts: site.mounts, importMap: site.importMap, port, host }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new Error(`port ${port} on ${host} is already in use; pick another with --port N (0: any free port)`);
    throw e;
  }
  console.log(`attnflow web: ${site.what} on ${url}  (Ctrl-C stops it)`);
  if (serve === undefined) console.log("Everything runs in the page: the model is loaded from this server; your text or image never leaves the browser.");
  return new Promise<number>(() => undefined);   // serve until interrupted
}
