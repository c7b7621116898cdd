// Relaxed SIMD in the Wasm backend: the micro-kernels' acc + a·b becomes one f32x4.relaxed_madd where the engine
// has relaxed SIMD (detected at start-up; Chromium ships it, Node 20 needs --experimental-wasm-relaxed-simd). The
// whole Wasm kernel suite (test/backend-wasm.test.ts) runs again in a child Node with the flag, so every kernel is
// checked against the reference backend with the fused path; ATTNFLOW_WASM_RELAXED=0 and setWasmRelaxedSimd(false)
// keep standard SIMD128.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { setWasmRelaxedSimd, wasmModuleBytes, wasmRelaxedSimdActive, wasmRelaxedSimdSupported, wasmSimdSupported } from "../src/backend/wasm/module.js";

const here = dirname(fileURLToPath(import.meta.url));
const FLAG = "--experimental-wasm-relaxed-simd";
const skip = wasmSimdSupported() ? false : "this engine has no Wasm SIMD128";

/** Occurrences of f32x4.relaxed_madd (0xfd 0x85 0x02) in a module. */
function relaxedMadds(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i + 2 < bytes.length; i++) if (bytes[i] === 0xfd && bytes[i + 1] === 0x85 && bytes[i + 2] === 0x02) n++;
  return n;
}

function childNode(args: string[], env: Record<string, string> = {}): { status: number | null; out: string } {
  const e: Record<string, string | undefined> = { ...process.env, ...env };
  delete e.NODE_TEST_CONTEXT; // the child runs its test file standalone, not as a subtest of this runner
  const r = spawnSync(process.execPath, args, { encoding: "utf8", env: e, maxBuffer: 32 << 20 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const probe = `import(${JSON.stringify(join(here, "..", "src", "backend", "wasm", "module.js"))}).then((m) => console.log(JSON.stringify({ supported: m.wasmRelaxedSimdSupported(), active: m.wasmRelaxedSimdActive() })))`;
const withFlag = skip ? null : childNode([FLAG, "-e", probe]);
const flagInfo = withFlag?.status === 0 ? JSON.parse(withFlag.out.trim().split("\n").pop()!) as { supported: boolean; active: boolean } : null;
const skipRelaxed = skip || (flagInfo?.supported ? false : `this Node has no relaxed SIMD, even with ${FLAG}`);

test("relaxed SIMD modules use relaxed_madd in the micro-kernels, standard ones never", { skip }, () => {
  const std = wasmModuleBytes(false, false), rel = wasmModuleBytes(false, true);
  assert.equal(relaxedMadds(std), 0);
  assert.ok(relaxedMadds(rel) >= 8, `expected relaxed_madd in the GEMM, tile and exp2 code, found ${relaxedMadds(rel)}`);
  assert.equal(WebAssembly.validate(std), true);
  assert.equal(WebAssembly.validate(rel), wasmRelaxedSimdSupported(), "a relaxed module validates exactly where relaxed SIMD is detected");
});

test("setWasmRelaxedSimd(false) turns relaxed SIMD off for new modules; true follows detection again", { skip }, () => {
  try {
    setWasmRelaxedSimd(false);
    assert.equal(wasmRelaxedSimdActive(), false);
    setWasmRelaxedSimd(true);
    assert.equal(wasmRelaxedSimdActive(), wasmRelaxedSimdSupported());
  } finally { setWasmRelaxedSimd(true); }
});

test("with relaxed SIMD the whole Wasm kernel suite passes against the reference backend", { skip: skipRelaxed, timeout: 300_000 }, () => {
  assert.deepEqual(flagInfo, { supported: true, active: true });
  const r = childNode([FLAG, "--test-reporter=tap", join(here, "backend-wasm.test.js")], { ATTNFLOW_TEST_EXPECT_RELAXED: "1" });
  assert.equal(r.status, 0, r.out.slice(-4000));
  assert.match(r.out, /^# fail 0$/m);
  assert.match(r.out, /^# pass [1-9]\d*$/m);
  assert.match(r.out, /^ok \d+ - instruction set: relaxed SIMD/m);
});

test("ATTNFLOW_WASM_RELAXED=0 keeps standard SIMD128 where relaxed SIMD exists", { skip: skipRelaxed }, () => {
  const r = childNode([FLAG, "-e", probe], { ATTNFLOW_WASM_RELAXED: "0" });
  assert.equal(r.status, 0, r.out);
  assert.deepEqual(JSON.parse(r.out.trim().split("\n").pop()!), { supported: true, active: false });
});
