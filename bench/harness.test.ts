// Fast checks of the benchmark harness itself (no peer needs to be installed; the onnxruntime
// check runs only when bench/peers/node_modules has it).
//   node --test dist/bench/harness.test.js
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildResult } from "./lib/harness.js";
import { measure, settle, type Clock } from "./lib/measure.js";
import { peerVersion } from "./lib/peer-modules.js";
import { randnArray } from "./lib/prng.js";
import { refMha, refSdpa } from "./lib/reference.js";
import { mergeResults, renderConsole, renderMarkdown, type BenchReport } from "./lib/report.js";
import { bhtdToBthd, bthdToBhtd, makeMhaTask, maxAbsDiff, mhaFlops, sdpaFlops, transpose2d } from "./lib/tasks.js";
import { OnnxGraph } from "./peers/onnx-builder.js";
import { discoverCases, parseArgs, selectCases } from "./run.js";
import type { BenchCase } from "./types.js";

test("seeded inputs are deterministic and label-dependent", () => {
  assert.deepEqual(randnArray(64, "a:x"), randnArray(64, "a:x"));
  assert.notDeepEqual(randnArray(64, "a:x"), randnArray(64, "b:x"));
  const big = randnArray(20000, 7);
  const mean = big.reduce((s, v) => s + v, 0) / big.length;
  const std = Math.sqrt(big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length);
  assert.ok(Math.abs(mean) < 0.03 && Math.abs(std - 1) < 0.03, `mean ${mean} std ${std}`);
});

test("layout helpers round-trip and transpose", () => {
  const a = randnArray(2 * 3 * 5 * 4, 1);
  const bsnh = bhtdToBthd(a, 2, 3, 5, 4);
  assert.notDeepEqual(bsnh, a);
  assert.equal(bsnh[(0 * 5 + 1) * 3 * 4 + 2 * 4 + 3], a[((0 * 3 + 2) * 5 + 1) * 4 + 3]); // (b0,t1,h2,c3)
  assert.deepEqual(bthdToBhtd(bsnh, 2, 3, 5, 4), a);
  assert.deepEqual(Array.from(transpose2d(Float32Array.of(1, 2, 3, 4, 5, 6), 2, 3)), [1, 4, 2, 5, 3, 6]);
});

test("FLOP counts follow the brief", () => {
  assert.equal(mhaFlops(1, 128, 768), 2 * 128 * 768 * 768 * 4 + 4 * 128 * 128 * 768);
  assert.equal(sdpaFlops(1, 12, 512, 64, false), 4 * 12 * 512 * 512 * 64);
  assert.equal(sdpaFlops(1, 12, 512, 64, true), 2 * 12 * 512 * 512 * 64);
});

test("reference MHA with identity projections equals reference SDPA per head", () => {
  const B = 1, T = 5, D = 8, H = 2, d = 4;
  const t = makeMhaTask(B, T, D, H, "ident");
  const eye = new Float32Array(D * D);
  for (let i = 0; i < D; i++) eye[i * D + i] = 1;
  const w = { inProjWeight: new Float32Array(3 * D * D), inProjBias: new Float32Array(3 * D), outProjWeight: eye, outProjBias: new Float32Array(D) };
  for (let p = 0; p < 3; p++) w.inProjWeight.set(eye, p * D * D);
  const heads = bthdToBhtd(t.x, B, H, T, d); // x viewed as (B, T, H, d) → (B, H, T, d)
  const want = bhtdToBthd(refSdpa(heads, heads, heads, B, H, T, d, true), B, H, T, d);
  assert.ok(maxAbsDiff(refMha(t.x, w, B, T, D, H, true), want) < 1e-6);
  // causal row 0 attends only to itself: output row 0 = v row 0
  const o = refSdpa(heads, heads, heads, B, H, T, d, true);
  assert.deepEqual(Array.from(o.subarray(0, d)).map((v) => v.toFixed(5)), Array.from(heads.subarray(0, d)).map((v) => v.toFixed(5)));
});

test("ONNX encoder writes the protobuf fields onnxruntime reads", () => {
  const g = new OnnxGraph("g");
  g.input("x", [2, 3]);
  g.node("Softmax", ["x"], ["y"], { axis: -1 });
  g.output("y", [2, 3]);
  const bytes = g.toModel();
  assert.equal(bytes[0], 0x08); // field 1 (ir_version), varint
  assert.equal(bytes[1], 8);
  const text = Buffer.from(bytes).toString("latin1");
  for (const s of ["Softmax", "axis", "attnflow-bench"]) assert.ok(text.includes(s), s);
  // axis = -1 is a 10-byte two's-complement varint
  assert.ok(Buffer.from(bytes).includes(Buffer.from([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])));
  assert.throws(() => g.init("w", [2, 2], new Float32Array(3)), /dims \[2,2\] hold 4 values, data has 3/);
});

test("ONNX models match the JS reference in onnxruntime-node", { skip: peerVersion("onnxruntime-node") === null && "onnxruntime-node not installed in bench/peers" }, async () => {
  const { verifyOnnx } = await import("./peers/verify-onnx.js");
  const log = console.log;
  console.log = () => {};
  try { assert.equal(await verifyOnnx(), true); } finally { console.log = log; }
});

/** A clock that moves only when told: each fake call "takes" exactly the time it advances (no real time involved). */
function fakeClock(jiffies: { busy: number; total: number }[] = []): Clock & { advance(ms: number): void; sleeps: number[] } {
  let t = 0;
  const sleeps: number[] = [];
  return {
    now: () => t,
    advance: (ms) => { t += ms; },
    sleep: async (ms) => { sleeps.push(ms); t += ms; },
    cpuJiffies: async () => jiffies.shift() ?? null,
    sleeps,
  };
}

test("measure() honours repeats, budget and slow calls", async () => {
  // Each call below advances a fake clock by a fixed amount, so the counts are exact whatever the machine's load
  // (this test once failed on a busy machine when it timed real busy-waits).
  let calls = 0;
  const fast = fakeClock();
  const m = await measure(() => { fast.advance(0.5); return ++calls; }, { warmup: 2, repeats: 5, budgetMs: 1e4, slowMs: 1e4, warmMs: 0 }, fast);
  assert.equal(m.timesMs.length, 5);
  assert.deepEqual(m.timesMs, [0.5, 0.5, 0.5, 0.5, 0.5]);
  assert.equal(calls, 7, "2 warm-up calls, then 5 samples");
  assert.equal(m.last, 7);
  assert.equal(m.note, undefined);

  // a first call above slowMs is the whole measurement
  const slowClock = fakeClock();
  let slowCalls = 0;
  const slow = await measure(() => { slowClock.advance(30); return ++slowCalls; }, { warmup: 2, repeats: 5, budgetMs: 1e4, slowMs: 20, warmMs: 0 }, slowClock);
  assert.deepEqual(slow.timesMs, [30]);
  assert.equal(slowCalls, 1);
  assert.match(slow.note ?? "", /slow/);

  // the budget caps the samples: 100 ms calls, 250 ms budget → 2 warm-ups (200 ms fit), then 2 samples
  const budgetClock = fakeClock();
  let budgetCalls = 0;
  const capped = await measure(() => { budgetClock.advance(100); return ++budgetCalls; }, { warmup: 2, repeats: 5, budgetMs: 250, slowMs: 1e4, warmMs: 0 }, budgetClock);
  assert.equal(budgetCalls, 4);
  assert.deepEqual(capped.timesMs, [100, 100]);
  assert.equal(capped.note, "2 runs (time budget)");

  // warmMs: fast calls keep warming up until that much time is spent, then the samples follow
  const warmClock = fakeClock();
  let warmCalls = 0;
  const warm = await measure(() => { warmClock.advance(2); return ++warmCalls; }, { warmup: 2, repeats: 3, budgetMs: 1e4, slowMs: 1e4, warmMs: 40 }, warmClock);
  assert.equal(warm.timesMs.length, 3);
  assert.equal(warmCalls, 20 + 3, "warm-up until 40 ms are spent (20 calls of 2 ms), then 3 samples");
});

test("settle() waits for an idle machine, never longer than its limit", async () => {
  // idle at once: 0.1 of a core busy over the first 100 ms window (2 cores) → one sleep
  const idle = fakeClock([{ busy: 0, total: 0 }, { busy: 1, total: 20 }]);
  assert.equal(await settle(300, idle, 2), 100);
  assert.deepEqual(idle.sleeps, [100]);
  // always busy: gives up at the limit (the first window that ends at or after it)
  const busy = fakeClock(Array.from({ length: 50 }, (_, i) => ({ busy: 10 * i, total: 10 * i })));
  assert.equal(await settle(300, busy, 2), 300);
  // busy, then idle
  const later = fakeClock([{ busy: 0, total: 0 }, { busy: 10, total: 10 }, { busy: 20, total: 20 }, { busy: 20, total: 30 }]);
  assert.equal(await settle(1000, later, 2), 300);
  // no /proc/stat: no wait; no limit: no wait
  assert.equal(await settle(300, fakeClock([]), 2), 0);
  assert.equal(await settle(0), 0);
  // the real clock: returns, within its limit plus one window
  const waited = await settle(50);
  assert.ok(waited >= 0, `waited ${waited} ms`);
});

test("parseArgs reads repeatable flags and rejects bad input", () => {
  const o = parseArgs(["--case", "mha", "--case", "sdpa-t128", "--quick", "--repeats", "4", "--json", "--impl", "torch"]);
  assert.deepEqual(o.cases, ["mha", "sdpa-t128"]);
  assert.deepEqual(o.impls, ["torch"]);
  assert.equal(o.quick && o.json, true);
  assert.equal(o.repeats, 4);
  assert.throws(() => parseArgs(["--repeats", "0"]), /positive number/);
  assert.throws(() => parseArgs(["--case"]), /needs a value/);
  assert.throws(() => parseArgs(["--fast"]), /unknown option "--fast"/);
});

test("case discovery finds the case files and --case selects names or groups", async () => {
  const all = await discoverCases(() => {});
  const names = all.map((c) => c.name);
  for (const n of ["mha-b1-t128", "sdpa-causal-t4096", "train-mha-b8-t128", "memory-causal-t32768"]) assert.ok(names.includes(n), n);
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(selectCases(all, ["sdpa"]).map((c) => c.name), ["sdpa-t128", "sdpa-t512", "sdpa-t2048", "sdpa-t4096"]);
  assert.deepEqual(selectCases(all, ["mha-b8-t128"]).map((c) => c.name), ["mha-b8-t128"]);
  assert.throws(() => selectCases(all, ["sdpa-t999"]), /unknown case or group "sdpa-t999"/);
  const fake: BenchCase = { name: "x", group: "g", description: "", run: async () => { throw new Error("unused"); } };
  assert.deepEqual(selectCases([fake], []), [fake]);
});

test("buildResult: medians, GFLOP/s, cross-check and ratio", () => {
  const out = Float32Array.of(1, 2, 3);
  const r = buildResult({ name: "c", group: "g", description: "" }, [
    { impl: "attnflow-native", timesMs: [4, 2, 3], output: out },
    { impl: "peer-a", timesMs: [6, 6, 9], output: Float32Array.of(1, 2.5, 3) },
    { impl: "peer-b", note: "unavailable" },
  ], 3e6);
  assert.equal(r.rows[0].medianMs, 3);
  assert.equal(r.rows[0].gflops, 1);
  assert.equal(r.rows[1].maxAbsDiff, 0.5);
  assert.equal(r.rows[2].medianMs, null);
  assert.equal(r.ratioToBestPeer, 0.5);
  assert.equal(r.checkedAgainst, "attnflow-native");
  const noAf = buildResult({ name: "c", group: "g", description: "" }, [{ impl: "attnflow-native", note: "failed" }, { impl: "pytorch-cpu", timesMs: [1], output: out }], undefined);
  assert.equal(noAf.ratioToBestPeer, null);
  assert.equal(noAf.checkedAgainst, "pytorch-cpu (no attnflow output)");
});

test("reports render every row and the ratio", () => {
  const res = buildResult({ name: "mha-b1-t128", group: "mha", description: "" }, [
    { impl: "attnflow-native", timesMs: [2], output: Float32Array.of(0) },
    { impl: "onnxruntime-node-2t", timesMs: [4], output: Float32Array.of(0), note: "a | b" },
  ], 4e6);
  const text = renderConsole([res]);
  assert.match(text, /== mha ==/);
  assert.match(text, /onnxruntime-node-2t\s+4\.00/);
  assert.match(text, /attnflow \/ best peer: 0\.50 \(attnflow faster\)/);
  const rep: BenchReport = {
    tool: "attnflow-bench", date: "2025-01-01T00:00:00.000Z", command: "node dist/bench/run.js",
    machine: { cpu: "AMD EPYC", cores: 2, arch: "x64", platform: "linux", kernel: "6", totalMemGB: 24, node: "v20", cpuFlags: ["avx512f"] },
    versions: { "onnxruntime-node": "1.30.0" }, options: { quick: true, repeats: null, maxRunS: 8, cases: ["mha-b1-t128"] }, results: [res],
  };
  const md = renderMarkdown(rep);
  assert.match(md, /\| mha-b1-t128 \| 2\.00 \(2\.0\) \| 4\.00 \(1\.0\) \| 0\.50 \(attnflow faster\) \|/);
  assert.match(md, /AMD EPYC, 2 cores/);
  assert.match(md, /a \\\| b/); // pipes in notes are escaped
  // One section per machine class: a run replaces its own class's section and keeps the others and the hand-written text.
  const other = "# attnflow benchmark results\n\nintro\n\n<!-- bench-results begin: Zen (x64, AVX2) -->\nold zen\n<!-- bench-results end: Zen (x64, AVX2) -->\n\nhand note\n";
  const once = mergeResults(other, rep);
  assert.ok(once.startsWith(other.trimEnd()), "the other class's section and the note are kept");
  assert.match(once, /## AMD EPYC \(x64, AVX-512\), 2 cores/);
  const faster = { ...rep, results: [{ ...res, rows: res.rows.map((r) => ({ ...r })) }], date: "2025-02-02T00:00:00.000Z" };
  const twice = mergeResults(once, faster);
  assert.equal(twice.split("bench-results begin: AMD EPYC").length, 2, "the class's section is replaced, not appended again");
  assert.match(twice, /2025-02-02/);
  assert.doesNotMatch(twice, /2025-01-01/);
  assert.match(twice, /old zen/);
  assert.match(twice, /hand note/);
  assert.throws(() => mergeResults("<!-- bench-results begin: AMD EPYC (x64, AVX-512) -->\n", rep), /no end marker/);
});
