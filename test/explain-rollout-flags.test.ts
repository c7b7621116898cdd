// `attnflow explain` rollout options (--head-fusion, --discard-ratio, --start-layer), run through the real CLI on a
// shipped model: the printed rollout must equal the library's attentionRollout called with the same options.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { attentionRollout } from "../src/explain/rollout.js";
import type { Explanation } from "../src/explain/explain-run.js";
import type { HeadFusion } from "../src/explain/attention-stack.js";

const bin = fileURLToPath(new URL("../../bin/attnflow.js", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));
const MODEL = "models/fortunes-classifier.safetensors";
const TEXT = "You will have a long and happy life, full of surprises.";

function cli(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The rollout importance of `e` recomputed from its captured attention with the library: row(s) of the query, specials zeroed, sum 1. */
function libraryImportance(e: Explanation, o: { headFusion?: HeadFusion; discardRatio?: number; startLayer?: number }): number[] {
  const L = e.layers, H = e.heads, T = e.tokens.length;
  const data = new Float64Array(e.attention!.flat(3));
  const r = attentionRollout({ data, layers: L, heads: H, tokens: T }, { ...o, causal: e.causal });
  const k = e.layer - (o.startLayer ?? 0), off = k * T * T;
  const special = new Set(e.special);
  const rows = e.query === "mean" ? [...Array(T).keys()].filter((i) => !special.has(i)) : [e.query as number];
  const v = new Array<number>(T).fill(0);
  for (const i of rows) for (let j = 0; j < T; j++) v[j] += r.data[off + i * T + j];
  let s = 0;
  for (let j = 0; j < T; j++) { if (special.has(j) || !(v[j] > 0)) v[j] = 0; s += v[j]; }
  return v.map((x) => x / s);
}

function close(a: number[], b: number[], tol: number): boolean {
  return a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol);
}

test("explain --head-fusion/--discard-ratio/--start-layer: the CLI's rollout is the library's rollout with those options", () => {
  const opts = { headFusion: "max" as const, discardRatio: 0.6, startLayer: 1 };
  const r = cli("explain", "--model", MODEL, "--text", TEXT, "--method", "rollout", "--head-fusion", "max", "--discard-ratio", "0.6", "--start-layer", "1", "--json");
  assert.equal(r.code, 0, r.err);
  const e = JSON.parse(r.out) as Explanation;
  const got = e.methods.rollout!.importance;
  assert.deepEqual(e.methods.rollout!.options, { headFusion: "max", discardRatio: 0.6, startLayer: 1 });
  const want = libraryImportance(e, opts);
  assert.ok(close(got, want, 1e-5), `CLI ${JSON.stringify(got)}\nlibrary ${JSON.stringify(want)}`);
  // the options change the answer (so the test fails if the CLI ignored them)
  const plain = libraryImportance(e, {});
  assert.ok(!close(plain, want, 1e-3), "the chosen options should change the rollout on this input");
  // perLayer / matrices cover the layers from the start layer on
  assert.equal(e.methods.rollout!.perLayer.length, e.layers - 1);
  assert.equal(e.methods.rollout!.matrices!.length, e.layers - 1);

  const term = cli("explain", "--model", MODEL, "--text", TEXT, "--head-fusion", "max", "--discard-ratio", "0.6", "--start-layer", "1");
  assert.equal(term.code, 0, term.err);
  assert.match(term.out, /── attention rollout \(head max, discard 0\.6, from layer 1\) ──/);
  // the HTML report labels the rollout's per-layer rows with the layers they are (1..3 here, not 0..2)
  const html = join(mkdtempSync(join(tmpdir(), "af-rollout-")), "r.html");
  const h = cli("explain", "--model", MODEL, "--text", TEXT, "--method", "raw,rollout", "--start-layer", "1", "--html", html);
  assert.equal(h.code, 0, h.err);
  const page = readFileSync(html, "utf8");
  assert.match(page, /attention rollout[^<"]* \(layers 1\.\.3\)/i);
  assert.match(page, /raw attention[^<"]* \(layers 0\.\.3\)/i);
  // one option alone is applied too, and the others are recorded at their defaults
  const d = JSON.parse(cli("explain", "--model", MODEL, "--text", TEXT, "--head-fusion", "min", "--json").out) as Explanation;
  assert.ok(close(d.methods.rollout!.importance, libraryImportance(d, { headFusion: "min" }), 1e-5));
  assert.deepEqual(d.methods.rollout!.options, { headFusion: "min", discardRatio: 0, startLayer: 0 });
});

test("explain rollout options: bad values and misuse are clear usage errors", () => {
  let r = cli("explain", "--model", MODEL, "--text", TEXT, "--head-fusion", "median");
  assert.equal(r.code, 2); assert.match(r.err, /--head-fusion must be one of mean, max, min, got "median"/);
  r = cli("explain", "--model", MODEL, "--text", TEXT, "--discard-ratio", "1");
  assert.equal(r.code, 2); assert.match(r.err, /--discard-ratio must be a number >= 0 and < 1, got 1/);
  r = cli("explain", "--model", MODEL, "--text", TEXT, "--discard-ratio", "-0.1");
  assert.equal(r.code, 2); assert.match(r.err, /--discard-ratio must be a number >= 0 and < 1/);
  r = cli("explain", "--model", MODEL, "--text", TEXT, "--start-layer", "1.5");
  assert.equal(r.code, 2); assert.match(r.err, /--start-layer must be an integer >= 0/);
  r = cli("explain", "--model", MODEL, "--text", TEXT, "--start-layer", "9");
  assert.equal(r.code, 2); assert.match(r.err, /--start-layer 9 is out of range: the model has 4 attention layers \(use 0\.\.3\)/);
  r = cli("explain", "--model", MODEL, "--text", TEXT, "--start-layer", "3", "--layer", "1");
  assert.equal(r.code, 2); assert.match(r.err, /--layer 1 is below --start-layer 3/);
  r = cli("explain", "--model", MODEL, "--text", TEXT, "--method", "raw,flow", "--head-fusion", "max");
  assert.equal(r.code, 2); assert.match(r.err, /--head-fusion applies to rollout only, but --method raw,flow has no rollout/);
  r = cli("explain", "--help");
  assert.equal(r.code, 0); assert.match(r.out, /--head-fusion mean\|max\|min\s+rollout only/);
});
