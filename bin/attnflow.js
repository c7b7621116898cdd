#!/usr/bin/env node
// Entry of the `attnflow` command: runs the compiled CLI (built by `npm install` / `npm run build`).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
const cli = new URL("../dist/cli/attnflow.js", import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  console.error("attnflow: the package is not built yet — run `npm install` (or `npm run build`) in its folder first.");
  process.exit(1);
}
await import(cli.href);
