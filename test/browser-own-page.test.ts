// README "Use it in your own web page": the page shown there, unchanged (its import map included), served the way
// `attnflow web --serve DIR` serves it, runs an attention call on the Wasm backend in headless Chromium and shows the
// output the README prints. Skips without Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serveMounts } from "../cli/web.js";
import { pageReport, skipWithoutChromium as skip } from "./browser-helpers.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));   // dist/test/ → package root

/** The README section's code blocks of one language, in order. */
export function readmeBlocks(section: string, lang: string): string[] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf(`\n## ${section}\n`);
  assert.ok(start >= 0, `README has no section "## ${section}"`);
  const end = readme.indexOf("\n## ", start + 1);
  const body = readme.slice(start, end < 0 ? undefined : end);
  return [...body.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]);
}

test("README: the own-page section has the page, the command and the output", () => {
  const [html] = readmeBlocks("Use it in your own web page", "html");
  assert.match(html, /<script type="importmap">\s*\{ "imports": \{ "attnflow": "\/attnflow\/dist\/src\/index\.js" \} \}/);
  assert.match(readmeBlocks("Use it in your own web page", "sh")[0], /attnflow web --serve mypage/);
  assert.equal(readmeBlocks("Use it in your own web page", "text").length, 1);
});

test("browser: the README's own page, served as --serve serves it, runs attention on Wasm Web Workers", { skip, timeout: 180_000 }, async () => {
  const [html] = readmeBlocks("Use it in your own web page", "html");
  const [shown] = readmeBlocks("Use it in your own web page", "text");
  const dir = mkdtempSync(join(tmpdir(), "attnflow-own-page-"));
  // the page as the README shows it, plus one script (after it) that reports what the page shows once it is done
  const reporter = `<script type="module">
for (let i = 0; i < 600 && document.getElementById("out").textContent === "running…"; i++) await new Promise((r) => setTimeout(r, 100));
await fetch("/__result", { method: "POST", body: JSON.stringify({ shown: document.getElementById("out").textContent }) });
</script>
`;
  writeFileSync(join(dir, "index.html"), html.replace("</body>", reporter + "</body>"));
  try {
    const r = await pageReport<{ shown: string }>({ mounts: serveMounts(dir), pathAndQuery: "/" });
    assert.equal(r.shown, shown.trimEnd());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
