// Self-check for the hand-written ONNX encoder: every model the benchmark builds runs in
// onnxruntime-node on small shapes and must match the plain-JS reference.
// Run: node dist/bench/peers/verify-onnx.js   (exit code 1 on a mismatch)
import { refMha, refSdpa } from "../lib/reference.js";
import { bhtdToBthd, bthdToBhtd, makeMhaTask, makeSdpaTask, maxAbsDiff } from "../lib/tasks.js";
import { mhaFusedModel, mhaPlainModel, sdpaFusedModel, sdpaPlainModel, type OnnxModel } from "./onnx-models.js";
import { loadOrt, ortRunOnce, ortSession } from "./ort-peer.js";

const TOL = 1e-4;

async function check(label: string, model: OnnxModel, data: Record<string, Float32Array>, expected: Float32Array, post = (o: Float32Array) => o): Promise<boolean> {
  const ort = loadOrt();
  const session = await ortSession(ort, model, 1);
  const got = post(await ortRunOnce(ort, session, model, data));
  await session.release();
  const diff = maxAbsDiff(got, expected);
  const ok = diff <= TOL;
  console.log(`${ok ? "ok  " : "FAIL"} ${label.padEnd(40)} ${model.variant.padEnd(28)} max|Δ| = ${diff.toExponential(2)}`);
  return ok;
}

export async function verifyOnnx(): Promise<boolean> {
  let ok = true;
  for (const [B, T, D, H] of [[2, 7, 32, 4], [1, 16, 64, 2]]) {
    const t = makeMhaTask(B, T, D, H, `verify-mha-${B}-${T}`);
    const ref = refMha(t.x, t.w, B, T, D, H);
    ok = (await check(`mha B${B} T${T} D${D} H${H}`, mhaPlainModel(B, T, D, H, t.w), { x: t.x }, ref)) && ok;
    ok = (await check(`mha B${B} T${T} D${D} H${H}`, mhaFusedModel(B, T, D, H, t.w), { x: t.x }, ref)) && ok;
  }
  for (const causal of [false, true]) {
    for (const [B, H, T, d] of [[1, 3, 9, 8], [2, 2, 33, 16]]) {
      const t = makeSdpaTask(B, H, T, d, causal, `verify-sdpa-${T}`);
      const ref = refSdpa(t.q, t.k, t.v, B, H, T, d, causal);
      const label = `sdpa${causal ? " causal" : ""} (${B},${H},${T},${d})`;
      ok = (await check(label, sdpaPlainModel(B, H, T, d, causal), { q: t.q, k: t.k, v: t.v }, ref)) && ok;
      const bsnh = { q: bhtdToBthd(t.q, B, H, T, d), k: bhtdToBthd(t.k, B, H, T, d), v: bhtdToBthd(t.v, B, H, T, d) };
      ok = (await check(label, sdpaFusedModel(B, H, T, d, causal), bsnh, ref, (o) => bthdToBhtd(o, B, H, T, d))) && ok;
    }
  }
  return ok;
}

if (process.argv[1]?.endsWith("verify-onnx.js")) {
  verifyOnnx().then((ok) => {
    console.log(ok ? "all ONNX models match the reference" : "ONNX model mismatch");
    process.exitCode = ok ? 0 : 1;
  }, (e) => { console.error(e); process.exitCode = 1; });
}
