// `attnflow web`: the in-browser explainer (examples/browser/explain.html) on a local server with the
// cross-origin-isolation headers, so the Wasm kernels run on Web Workers. Runs until interrupted.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { startWebServer } from "../src/node/web-server.js";
import type { Args } from "./attnflow.js";
import { checkFlags, intFlag, stringFlag, UsageError } from "./explain.js";

/** The package root: this file runs as dist/cli/web.js. */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export async function webCommand(args: Args): Promise<number> {
  checkFlags(args.flags, ["port", "host"], "attnflow web");
  const port = intFlag(args.flags, "port", "a port number (0: any free port)") ?? 8080;
  if (port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got ${port}`);
  const host = stringFlag(args.flags, "host", "an address to listen on") ?? "127.0.0.1";
  const index = join(ROOT, "examples", "browser", "explain.html");
  if (!existsSync(index) || !existsSync(join(ROOT, "dist", "examples", "browser", "explain-page.js"))) {
    throw new Error(`the browser explainer is missing under ${ROOT} (examples/browser/explain.html and its build in dist/; run npm run build)`);
  }
  let url: string;
  try {
    ({ url } = await startWebServer({ index, mounts: { "/dist/": join(ROOT, "dist"), "/models/": join(ROOT, "models") }, port, host }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new Error(`port ${port} on ${host} is already in use; pick another with --port N (0: any free port)`);
    throw e;
  }
  console.log(`attnflow web: the in-browser explainer on ${url}  (Ctrl-C stops it)`);
  console.log("Everything runs in the page: the model is loaded from this server; your text or image never leaves the browser.");
  return new Promise<number>(() => undefined);   // serve until interrupted
}
