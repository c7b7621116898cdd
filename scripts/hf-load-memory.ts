// Peak memory while opening a Hugging Face checkpoint: writes a GPT-2-shaped float16 model.safetensors with random
// weights (tensor by tensor, never whole in memory), opens it with fromPretrainedDir, and samples the process's
// memory at every tensor read. Expected: peak ≈ the float32 model + one tensor, far below model + checkpoint copies.
//
//   node dist/scripts/hf-load-memory.js [n_embd=768] [n_layer=6] [dir=/tmp/attnflow-hf-mem]
import { open, mkdir, writeFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { folderReader } from "../src/hf/node-pretrained.js";
import { loadPretrained, type HFFileReader } from "../src/hf/pretrained.js";
import { float32ArrayToFloat16 } from "../src/io/dtype-convert.js";

const [nEmbd = 768, nLayer = 6] = process.argv.slice(2, 4).map(Number);
const dir = process.argv[4] ?? "/tmp/attnflow-hf-mem";
const config = { model_type: "gpt2", architectures: ["GPT2LMHeadModel"], vocab_size: 50257, n_positions: 1024, n_embd: nEmbd, n_layer: nLayer, n_head: 12 };

function shapes(): [string, number[]][] {
  const E = nEmbd, out: [string, number[]][] = [["transformer.wte.weight", [50257, E]], ["transformer.wpe.weight", [1024, E]],
    ["transformer.ln_f.weight", [E]], ["transformer.ln_f.bias", [E]]];
  for (let i = 0; i < nLayer; i++) {
    const p = `transformer.h.${i}.`;
    out.push([p + "ln_1.weight", [E]], [p + "ln_1.bias", [E]], [p + "ln_2.weight", [E]], [p + "ln_2.bias", [E]],
      [p + "attn.c_attn.weight", [E, 3 * E]], [p + "attn.c_attn.bias", [3 * E]], [p + "attn.c_proj.weight", [E, E]], [p + "attn.c_proj.bias", [E]],
      [p + "mlp.c_fc.weight", [E, 4 * E]], [p + "mlp.c_fc.bias", [4 * E]], [p + "mlp.c_proj.weight", [4 * E, E]], [p + "mlp.c_proj.bias", [E]]);
  }
  return out.sort(([a], [b]) => (a < b ? -1 : 1));
}

/** safetensors written tensor by tensor (all F16, so the layout is by name). */
async function writeCheckpoint(): Promise<number> {
  const list = shapes();
  let off = 0;
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  for (const [n, s] of list) { const len = s.reduce((a, b) => a * b, 1) * 2; header[n] = { dtype: "F16", shape: s, data_offsets: [off, off + len] }; off += len; }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const fh = await open(join(dir, "model.safetensors"), "w");
  try {
    const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(json.length));
    await fh.write(len); await fh.write(Buffer.from(json));
    for (const [, s] of list) {
      const f = new Float32Array(s.reduce((a, b) => a * b, 1));
      for (let i = 0; i < f.length; i++) f[i] = (Math.random() - 0.5) * 0.04;
      await fh.write(new Uint8Array(float32ArrayToFloat16(f).buffer));
    }
  } finally { await fh.close(); }
  return 8 + json.length + off;
}

const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;
await mkdir(dir, { recursive: true });
await writeFile(join(dir, "config.json"), JSON.stringify(config));
const fileBytes = await writeCheckpoint();
(globalThis as { gc?: () => void }).gc?.();
const base = process.memoryUsage();
let peakRss = base.rss, peakAb = base.arrayBuffers;
const inner = folderReader(dir);
const sampling: HFFileReader = { ...inner, readRange: async (n, s, l) => {
  const r = await inner.readRange(n, s, l);
  const m = process.memoryUsage();
  peakRss = Math.max(peakRss, m.rss); peakAb = Math.max(peakAb, m.arrayBuffers);
  return r;
} };
const t0 = performance.now();
const { model } = await loadPretrained(sampling);
const modelBytes = model.parameters().reduce((s, p) => s + p.numel() * 4, 0);
console.log(`checkpoint ${mb(fileBytes)} (float16), model ${mb(modelBytes)} as float32, loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
console.log(`peak during load above the baseline: rss +${mb(peakRss - base.rss)}, array buffers +${mb(peakAb - base.arrayBuffers)}`);
console.log(`(holding the checkpoint and a decoded float32 copy besides the model would need at least +${mb(modelBytes + fileBytes + modelBytes)})`);

await rm(dir, { recursive: true, force: true });
