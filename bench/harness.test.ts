// Fast checks of the benchmark harness itself (no peer needs to be installed; the onnxruntime
// check runs only when bench/peers/node_modules has it).
//   node --test dist/bench/harness.test.js
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildResult } from "./lib/harness.js";
import { measure, settle } from "./lib/measure.js";
import { peerVersion } from "./lib/peer-modules.js";
import { randnArray } from "./lib/prng.js";
import { refMha, refSdpa } from "./lib/reference.js";
import { renderConsole, renderMarkdown, type BenchReport } from "./lib/report.js";
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

test("measure() honours repeats, budget and slow calls", async () => {
  let calls = 0;
  const m = await measure(() => ++calls, { warmup: 2, repeats: 5, budgetMs: 1e4, slowMs: 1e4, warmMs: 0 });
  assert.equal(m.timesMs.length, 5);
  assert.equal(calls, 7);
  assert.equal(m.last, 7);
  const slow = await measure(() => { const t = Date.now(); while (Date.now() - t < 30); return 1; }, { warmup: 2, repeats: 5, budgetMs: 1e4, slowMs: 20, warmMs: 0 });
  assert.equal(slow.timesMs.length, 1);
  assert.match(slow.note ?? "", /slow/);
  // warmMs: fast calls keep warming up until that much time is spent, then the samples follow
  // (time-based, so checked against each call's measured duration, not a call count: a busy machine slows calls)
  const took: number[] = [];
  const warm = await measure(() => { const t = performance.now(); while (performance.now() - t < 2); took.push(performance.now() - t); return took.length; },
    { warmup: 2, repeats: 3, budgetMs: 1e4, slowMs: 1e4, warmMs: 40 });
  assert.equal(warm.timesMs.length, 3);
  const warmUp = took.slice(0, -3), spent = warmUp.reduce((a, b) => a + b, 0);
  // measure() times each call from outside (await included), so its sum is a little above ours: 0.25 ms per call of slack
  assert.ok(spent + 0.25 * warmUp.length >= 40, `warm-up spent ${spent.toFixed(1)} ms over ${warmUp.length} calls; it should go on until 40 ms`);
  assert.ok(spent - warmUp[warmUp.length - 1] < 40, `warm-up went on after 40 ms (${warmUp.length} calls, ${spent.toFixed(1)} ms)`);
});

test("settle() waits for an idle machine, never longer than its limit", async () => {
  const waited = await settle(300);
  assert.ok(waited >= 0 && waited < 300 + 250, `waited ${waited} ms`);
  assert.equal(await settle(0), 0);
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
});
