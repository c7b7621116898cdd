// Fuzz suite for hostile files: mutates valid safetensors files, attnflow checkpoints (tiny models of the four tasks,
// with and without the integrity record, and the shipped models), PNG and PGM/PPM images and tokenizer JSON (bit
// flips, truncation, byte insertion and deletion, and edits of header fields: dtypes, shapes, offsets, lengths, JSON
// structure, config values, image sizes), then runs them through the library loaders (in worker processes) and
// through the CLI (`node bin/attnflow.js predict|info`), each case with a time limit. A failure is
//   crash  — an exception that is not one of the library's clear error classes (SafetensorsError, CheckpointError,
//            ConfigError, ImageFormatError, FileReadError, TokenizerError), a CLI exit code other than 0/1/2 (70 is
//            the CLI's "internal error"), or a process that died by a signal;
//   hang   — a case still running after --timeout-s (default 10 s);
//   silent acceptance — a loader accepted a file that bench/fuzz-oracle.ts (an independent checker; its header
//            comment defines "structurally invalid") judges structurally invalid.
// A mutated file that is still valid (a flipped weight byte without an integrity record) counts as accepted-valid.
//
//   node dist/bench/fuzz.js [--lib 10000] [--cli 500] [--seed 1] [--timeout-s 10] [--jobs 2] [--json]
import { fork, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";
import { Rng } from "../src/data/hash.js";
import { checkpointInvalid, pngInvalid, pnmInvalid, safetensorsInvalid, tokenizerInvalid, type CheckpointSeedFacts } from "./fuzz-oracle.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const BIN = join(REPO, "bin", "attnflow.js");

type Kind = "safetensors" | "checkpoint" | "png" | "pnm" | "tokenizer";
interface Seed { id: string; kind: Kind; bytes: Uint8Array; facts?: CheckpointSeedFacts; path?: string; input?: string; flags?: string[] }
interface Case { id: number; seed: Seed; bytes: Uint8Array; mutation: string }
type Outcome = "accepted" | "rejected" | "crash" | "hang";
interface Result { id: number; seed: string; kind: Kind; mutation: string; outcome: Outcome; verdict: string | null | "unjudged"; detail?: string; via: "lib" | "cli" }

// ------------------------------------------------------------------------------------------------ seeds

const enc = new TextEncoder(), dec = new TextDecoder();

async function buildSeeds(dir: string): Promise<Seed[]> {
  const { serializeSafetensors, parseSafetensors, fromFloat32, fromInt32, fromBool, INTEGRITY_KEY } = await import("../src/io/safetensors.js");
  const { serializeCheckpoint, readCheckpoint } = await import("../src/node/checkpoint.js");
  const { findTask } = await import("../src/node/tasks/index.js");
  const { manualSeed } = await import("../src/random.js");
  const { encodePng } = await import("../src/node/image-file.js");
  const seeds: Seed[] = [];
  const f = (n: number, k = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 3);

  // Plain safetensors files: every dtype, with and without metadata / an integrity record.
  const mixed = {
    "w.f32": fromFloat32(f(12), [3, 4]), "w.f16": fromFloat32(f(6, 2), [6], "F16"), "w.bf16": fromFloat32(f(4, 3), [2, 2], "BF16"),
    "ids.i64": fromInt32(Int32Array.from([1, -2, 3, 40000]), [4], "I64"), "ids.i32": fromInt32(Int32Array.from([7, 8]), [2]),
    mask: fromBool(Uint8Array.from([1, 0, 1]), [3]), bytes: { dtype: "U8" as const, shape: [5], data: Uint8Array.from([1, 2, 3, 4, 5]) },
    scalar: fromFloat32(f(1), []), empty: fromFloat32(new Float32Array(0), [0, 3]),
  };
  seeds.push({ id: "st-mixed", kind: "safetensors", bytes: serializeSafetensors(mixed) });
  seeds.push({ id: "st-mixed-meta", kind: "safetensors", bytes: serializeSafetensors(mixed, { note: "fuzz seed", n: "3" }) });
  seeds.push({ id: "st-mixed-integrity", kind: "safetensors", bytes: serializeSafetensors(mixed, { note: "fuzz seed" }, { integrity: true }) });
  seeds.push({ id: "st-f16-integrity", kind: "safetensors", bytes: serializeSafetensors({ a: fromFloat32(f(64), [8, 8], "F16"), b: fromFloat32(f(8), [8], "F16") }, {}, { integrity: true }) });

  // Tiny checkpoints of the four tasks: the shipped configs (tokenizers, labels) with small dimensions.
  const tiny: Record<string, Record<string, unknown>> = {
    "fortunes-classifier": { dModel: 16, depth: 1, heads: 2, ff: 32 },
    dates: { dModel: 16, heads: 2, encoderLayers: 1, decoderLayers: 1, dimFeedforward: 32 },
    "char-lm": { dModel: 16, nHeads: 2, nLayers: 1, dimFeedforward: 32, blockSize: 32 },
    "fashion-vit": { dModel: 16, depth: 1, heads: 2, mlpDim: 32, stemChannels: [4] },
  };
  const img = encodePng(28, 28, Uint8Array.from({ length: 784 }, (_, i) => (i * 37) % 256), { channels: 1 });
  const imgPath = join(dir, "input.png");
  writeFileSync(imgPath, img);
  const inputs: Record<string, { input: string; flags?: string[] }> = {
    "fortunes-classifier": { input: "the cat sat on the mat" }, dates: { input: "march 3 1999" },
    "char-lm": { input: "The cat", flags: ["--max-tokens", "4", "--no-compare"] }, "fashion-vit": { input: imgPath },
  };
  for (const [task, dims] of Object.entries(tiny)) {
    const shipped = await readCheckpoint(join(REPO, "models", `${task}.safetensors`));
    const config = { ...shipped.config, ...dims };
    manualSeed(1234);
    const model = (await findTask(task)).modelFromConfig(config);
    const bytes = serializeCheckpoint({ task, config, model, metrics: { accuracy: 0.5 }, notes: "fuzz seed" }, { floatDType: "F16" });
    const parsed = parseSafetensors(bytes);
    const legacyMeta = Object.fromEntries(Object.entries(parsed.metadata).filter(([k]) => k !== INTEGRITY_KEY));
    const legacy = serializeSafetensors(parsed.tensors, legacyMeta);
    const facts: CheckpointSeedFacts = { task, config: parsed.metadata.config, shapes: new Map([...parsed.tensors].map(([k, t]) => [k, t.shape])) };
    const seedsOfTask: [string, Uint8Array][] = [[`ck-${task}`, bytes], [`ck-${task}-legacy`, legacy]];
    if (task === "dates") {
      // A resumable training checkpoint: trainer state, optimizer moments and scalars, history with a NaN (null) loss.
      const first = model.parameters()[0];
      seedsOfTask.push([`ck-${task}-trainer`, serializeCheckpoint({
        task, config, model, metrics: { exactMatch: 0.25, loss: NaN },
        optimizer: { tensors: { "0.exp_avg": new Float32Array(first.numel()).fill(0.01) }, scalars: { stepCount: 3, "group0.lr": 0.001 } },
        trainer: { epoch: 0, batchInEpoch: 3, globalStep: 3, totalSteps: 10, seed: 1, rng: [1, 2, 3, 4], finished: false,
          options: { epochs: 1, batchSize: 8, lr: 0.001, weightDecay: 0.01, warmupSteps: 0, clipNorm: 1 },
          history: [{ step: 3, epoch: 0, loss: 1.5 }, { step: 4, epoch: 0, loss: NaN }] },
      })]);
    }
    for (const [id, b] of seedsOfTask) {
      const path = join(dir, `${id}.safetensors`);
      writeFileSync(path, b);
      seeds.push({ id, kind: "checkpoint", bytes: b, facts, path, ...inputs[task] });
    }
    const realBytes = new Uint8Array(readFileSync(join(REPO, "models", `${task}.safetensors`)));
    const real = parseSafetensors(realBytes);
    seeds.push({ id: `shipped-${task}`, kind: "checkpoint", bytes: realBytes, path: join(REPO, "models", `${task}.safetensors`), ...inputs[task],
      facts: { task, config: real.metadata.config, shapes: new Map([...real.tensors].map(([k, t]) => [k, t.shape])) } });
    const tokField = task === "dates" ? "srcTokenizer" : task === "fashion-vit" ? undefined : "tokenizer";
    if (tokField) seeds.push({ id: `tok-${task}`, kind: "tokenizer", bytes: enc.encode(JSON.stringify(config[tokField])) });
  }

  // Images: grey, grey+alpha, RGB, RGBA PNGs; the shipped test image; binary and ASCII PGM/PPM.
  seeds.push({ id: "png-grey", kind: "png", bytes: img });
  seeds.push({ id: "png-ga", kind: "png", bytes: encodePng(9, 7, Uint8Array.from({ length: 126 }, (_, i) => i * 2), { channels: 2 }) });
  seeds.push({ id: "png-rgb", kind: "png", bytes: encodePng(12, 5, Uint8Array.from({ length: 180 }, (_, i) => i), { channels: 3 }) });
  seeds.push({ id: "png-rgba", kind: "png", bytes: encodePng(6, 6, Uint8Array.from({ length: 144 }, (_, i) => 255 - i)) });
  seeds.push({ id: "png-shipped", kind: "png", bytes: new Uint8Array(readFileSync(join(REPO, "models", "fashion-mnist-test-0.png"))) });
  const p5 = new Uint8Array([...enc.encode("P5\n# fuzz\n6 4\n255\n"), ...Array.from({ length: 24 }, (_, i) => i * 10)]);
  seeds.push({ id: "pgm-p5", kind: "pnm", bytes: p5 });
  seeds.push({ id: "pgm-p2", kind: "pnm", bytes: enc.encode("P2\n3 2\n15\n0 3 6\n9 12 15\n") });
  seeds.push({ id: "ppm-p6-16bit", kind: "pnm", bytes: new Uint8Array([...enc.encode("P6 2 2 1000\n"), ...Array.from({ length: 24 }, (_, i) => (i % 2 ? i * 9 : 1))]) });
  return seeds;
}

// ------------------------------------------------------------------------------------------------ mutations

function headerOf(b: Uint8Array): { n: number; text: string } | null {
  if (b.length < 8) return null;
  const n = new DataView(b.buffer, b.byteOffset).getUint32(0, true);
  if (8 + n > b.length) return null;
  return { n, text: dec.decode(b.subarray(8, 8 + n)) };
}

/** The file with a new header text (length field rewritten, padded to 8 with spaces) and the old data section. */
function withHeader(b: Uint8Array, text: string): Uint8Array {
  const h = headerOf(b)!, bytes = enc.encode(text), padded = Math.ceil(bytes.length / 8) * 8;
  const out = new Uint8Array(8 + padded + b.length - 8 - h.n).fill(0x20, 8, 8 + padded);
  new DataView(out.buffer).setUint32(0, padded, true);
  out.set(bytes, 8);
  out.set(b.subarray(8 + h.n), 8 + padded);
  return out;
}

const DTYPES = ["F64", "I64", "F32", "I32", "F16", "BF16", "I16", "I8", "U8", "BOOL", "F8_E4M3", "f32", "", 5, null];
const ODD_NUMBERS = [-1, 0, 1, 1.5, 2 ** 53, 1e20, -0.5, 65536, 1e9, "3", null, NaN];

function byteMutation(rng: Rng, b: Uint8Array, headerEnd: number): { bytes: Uint8Array; mutation: string } {
  const at = (span: number) => (headerEnd > 0 && rng.next() < 0.6 ? rng.int(Math.max(1, Math.min(span, headerEnd))) : rng.int(Math.max(1, span)));
  switch (rng.int(4)) {
    case 0: {
      const out = b.slice(), k = 1 + rng.int(4), where: number[] = [];
      for (let i = 0; i < k && out.length; i++) { const p = at(out.length); out[p] ^= 1 << rng.int(8); where.push(p); }
      return { bytes: out, mutation: `bit flips at ${where.join(",")}` };
    }
    case 1: { const cut = rng.int(Math.max(1, b.length)); return { bytes: b.slice(0, cut), mutation: `truncated to ${cut}` }; }
    case 2: {
      const p = at(b.length + 1), k = 1 + rng.int(16), ins = Uint8Array.from({ length: k }, () => rng.int(256));
      const out = new Uint8Array(b.length + k);
      out.set(b.subarray(0, p)); out.set(ins, p); out.set(b.subarray(p), p + k);
      return { bytes: out, mutation: `inserted ${k} bytes at ${p}` };
    }
    default: {
      const p = at(b.length), k = Math.min(1 + rng.int(16), b.length - p), out = new Uint8Array(b.length - k);
      out.set(b.subarray(0, p)); out.set(b.subarray(p + k), p);
      return { bytes: out, mutation: `deleted ${k} bytes at ${p}` };
    }
  }
}

/** Structure-aware edits of a safetensors header (dtypes, shapes, offsets, lengths, JSON structure, metadata). */
function headerEdit(rng: Rng, b: Uint8Array): { bytes: Uint8Array; mutation: string } {
  const h = headerOf(b)!;
  const obj = JSON.parse(h.text) as Record<string, Record<string, unknown>>;
  const names = Object.keys(obj).filter((k) => k !== "__metadata__");
  const name = names.length ? rng.pick(names) : "__none__", e = obj[name];
  const meta = obj.__metadata__ as Record<string, unknown> | undefined;
  const put = (m: string) => ({ bytes: withHeader(b, JSON.stringify(obj)), mutation: m });
  const op = rng.int(meta ? 14 : 11);
  if (!e && op < 9) return byteMutation(rng, b, 8 + h.n);
  switch (op) {
    case 0: {
      const d = e.dtype === "F16" && rng.next() < 0.5 ? "BF16" : e.dtype === "BF16" && rng.next() < 0.5 ? "F16" : rng.pick(DTYPES);
      e.dtype = d as string;
      return put(`tensor ${name} dtype → ${JSON.stringify(d)}`);
    }
    case 1: {
      const s = (e.shape as unknown[]).slice();
      const how = rng.int(5);
      if (how === 0 && s.length) s[rng.int(s.length)] = rng.pick(ODD_NUMBERS);
      else if (how === 1 && s.length) s[rng.int(s.length)] = (s[0] as number) + (rng.next() < 0.5 ? 1 : -1);
      else if (how === 2) s.push(1);
      else if (how === 3) s.reverse();
      else s.pop();
      e.shape = s;
      return put(`tensor ${name} shape → ${JSON.stringify(s)}`);
    }
    case 2: {
      const o = (e.data_offsets as number[]).slice(), i = rng.int(2), how = rng.int(4);
      const v = how === 0 ? o[i] + (rng.int(9) - 4) : how === 1 ? rng.pick(ODD_NUMBERS) : how === 2 ? o[1 - i] : o[i] + 1;
      (o as unknown[])[i] = v;
      e.data_offsets = o;
      return put(`tensor ${name} data_offsets → ${JSON.stringify(o)}`);
    }
    case 3: {
      const other = rng.pick(names);
      [e.data_offsets, obj[other].data_offsets] = [obj[other].data_offsets, e.data_offsets];
      return put(`data_offsets of ${name} and ${other} swapped`);
    }
    case 4: { delete e[rng.pick(["dtype", "shape", "data_offsets"])]; return put(`tensor ${name} lost a field`); }
    case 5: {
      const t = JSON.stringify(obj), entry = `${JSON.stringify(name)}:${JSON.stringify(e)}`;
      return { bytes: withHeader(b, t.replace(entry, `${entry},${entry}`)), mutation: `tensor ${name} defined twice` };
    }
    case 6: {
      const depth = rng.pick([63, 65, 1000, 200_000]);
      const t = JSON.stringify(obj).replace(`"shape":${JSON.stringify(e.shape)}`, `"shape":${"[".repeat(depth)}${"]".repeat(depth)}`);
      return { bytes: withHeader(b, t), mutation: `tensor ${name} shape nested ${depth} deep` };
    }
    case 7: { obj[name] = rng.pick([null, [], "x", 3, { dtype: "F32" }]) as Record<string, unknown>; return put(`tensor ${name} replaced by a non-entry`); }
    case 8: {
      const newName = rng.next() < 0.5 ? name + ".x" : "__proto__";
      obj[newName] = e; delete obj[name];
      return put(`tensor ${name} renamed ${newName}`);
    }
    case 9: { delete obj[name]; return put(`tensor ${name} removed from the header`); }
    case 10: {
      const dv = b.slice(), v = rng.pick([h.n + 1, h.n - 1, 0, 7, 2 ** 31, 0xffffffff]);
      new DataView(dv.buffer).setUint32(0, v >>> 0, true);
      if (rng.next() < 0.2) new DataView(dv.buffer).setUint32(4, 1, true);
      return { bytes: dv, mutation: `header length field → ${v}` };
    }
    case 11: {
      const k = rng.pick(Object.keys(meta!));
      if (rng.next() < 0.3) { delete meta![k]; return put(`metadata ${k} removed`); }
      meta![k] = rng.pick([3, null, ["a"], { a: 1 }, "", "not json", "[]"]);
      return put(`metadata ${k} → ${JSON.stringify(meta![k])}`);
    }
    default: return configEdit(rng, b, obj, meta!, put);
  }
}

/** Edits of the JSON inside metadata "config" (values, tokenizers): what the config rules and tokenizer checks see. */
function configEdit(rng: Rng, b: Uint8Array, obj: Record<string, unknown>, meta: Record<string, unknown>,
  put: (m: string) => { bytes: Uint8Array; mutation: string }): { bytes: Uint8Array; mutation: string } {
  if (typeof meta.config !== "string") return byteMutation(rng, b, 0);
  let cfg: Record<string, unknown>;
  try { cfg = JSON.parse(meta.config) as Record<string, unknown>; } catch { return byteMutation(rng, b, 0); }
  const keys = Object.keys(cfg), k = rng.pick(keys);
  const tokKey = keys.find((x) => /okenizer$/.test(x) && typeof cfg[x] === "object");
  if (tokKey && rng.next() < 0.3) {
    const t = cfg[tokKey] as { tokens: unknown[]; kind: unknown; version: unknown };
    const how = rng.int(5);
    if (how === 0) t.tokens.splice(rng.int(6), 1);
    else if (how === 1) t.tokens.push(t.tokens[7] ?? "x");
    else if (how === 2) t.tokens.pop();
    else if (how === 3) t.kind = "bytes";
    else t.tokens[rng.int(t.tokens.length)] = 5;
    meta.config = JSON.stringify(cfg);
    return put(`config ${tokKey} edited (${["special removed", "duplicate token", "last token removed", "kind", "non-string token"][how]})`);
  }
  cfg[k] = rng.pick([-1, 1.5, 0, 1e9, 2 ** 31, "x", null, true, [], -0.5, 0.999]);
  meta.config = JSON.stringify(cfg);
  void obj;
  return put(`config ${k} → ${JSON.stringify(cfg[k])}`);
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const c = new Uint8Array(12 + data.length), dv = new DataView(c.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) c[4 + i] = type.charCodeAt(i);
  c.set(data, 8);
  let crc = -1;
  for (const x of c.subarray(4, 8 + data.length)) { crc ^= x; for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1)); }
  dv.setUint32(8 + data.length, (crc ^ -1) >>> 0);
  return c;
}

let zbomb: Uint8Array | undefined;
function pngEdit(rng: Rng, b: Uint8Array): { bytes: Uint8Array; mutation: string } {
  const ihdr = b.slice(16, 29), dv = new DataView(ihdr.buffer);
  const rest = b.subarray(33), op = rng.int(6);
  const rebuild = (newIhdr: Uint8Array, tail: Uint8Array = rest) => new Uint8Array([...b.subarray(0, 8), ...pngChunk("IHDR", newIhdr), ...tail]);
  switch (op) {
    case 0: {
      const which = rng.int(2) * 4, v = rng.pick([0, 1, dv.getUint32(which) + 1, dv.getUint32(which) * 2, 16384, 16385, 65536, 2 ** 31]);
      dv.setUint32(which, v >>> 0);
      return { bytes: rebuild(ihdr), mutation: `IHDR ${which ? "height" : "width"} → ${v} (CRC fixed)` };
    }
    case 1: { ihdr[8 + rng.int(5)] = rng.pick([0, 1, 2, 3, 4, 6, 7, 8, 16, 255]); return { bytes: rebuild(ihdr), mutation: "IHDR depth/colour/method byte edited (CRC fixed)" }; }
    case 2: {
      zbomb ??= new Uint8Array(deflateSync(new Uint8Array(64 << 20)));
      const iend = pngChunk("IEND", new Uint8Array(0));
      return { bytes: rebuild(ihdr, new Uint8Array([...pngChunk("IDAT", zbomb), ...iend])), mutation: "IDAT → 64 MB zlib bomb (CRC fixed)" };
    }
    case 3: {
      const big = ihdr.slice(); new DataView(big.buffer).setUint32(0, 16384); new DataView(big.buffer).setUint32(4, 16384);
      return { bytes: rebuild(big), mutation: "IHDR 16384x16384 (CRC fixed)" };
    }
    case 4: {
      const junk = Uint8Array.from({ length: 1 + rng.int(40) }, () => rng.int(256));
      return { bytes: new Uint8Array([...b.subarray(0, 33), ...pngChunk(rng.next() < 0.5 ? "ABCD" : "IDAT", junk), ...rest]), mutation: "extra chunk with valid CRC" };
    }
    default: return { bytes: b.subarray(0, b.length - 12), mutation: "IEND removed" };
  }
}

function pnmEdit(rng: Rng, b: Uint8Array): { bytes: Uint8Array; mutation: string } {
  const text = dec.decode(b);
  const m = /^(P\d)(\s+(?:#[^\n]*\n\s*)?)(\d+)(\s+)(\d+)(\s+)(\d+)/.exec(text.replace(/[^\x00-\x7f]/g, "?"));
  if (!m) return byteMutation(rng, b, 0);
  const field = 3 + 2 * rng.int(3), v = rng.pick(["0", "1", "99999", "16384", "65536", "1".repeat(rng.pick([10, 300_000])), "255"]);
  const parts = m.slice(1);
  parts[field - 1] = v;
  const head = enc.encode(parts.join(""));
  return { bytes: new Uint8Array([...head, ...b.subarray(enc.encode(m[0]).length)]), mutation: `PNM header field ${["width", "height", "maxval"][(field - 3) / 2]} → ${v.length > 12 ? `${v.length} digits` : v}` };
}

function tokenizerEdit(rng: Rng, b: Uint8Array): { bytes: Uint8Array; mutation: string } {
  const t = JSON.parse(dec.decode(b)) as Record<string, unknown>;
  const how = rng.int(6);
  if (how === 0) delete t[rng.pick(Object.keys(t))];
  else if (how === 1) t.kind = rng.pick(["bpe", 1, null]);
  else if (how === 2) t.version = rng.pick([2, "1", 0]);
  else if (how === 3) (t.tokens as unknown[]).push((t.tokens as unknown[])[6]);
  else if (how === 4) (t.tokens as unknown[])[rng.int(6)] = "[XXX]";
  else t.lowercase = "yes";
  return { bytes: enc.encode(JSON.stringify(t)), mutation: `tokenizer field edit ${how}` };
}

function mutate(rng: Rng, seed: Seed): { bytes: Uint8Array; mutation: string } {
  const b = seed.bytes;
  const structured = rng.next() < 0.5;
  if (seed.kind === "safetensors" || seed.kind === "checkpoint") {
    return structured ? headerEdit(rng, b) : byteMutation(rng, b, 8 + headerOf(b)!.n);
  }
  if (!structured) return byteMutation(rng, b, 0);
  return seed.kind === "png" ? pngEdit(rng, b) : seed.kind === "pnm" ? pnmEdit(rng, b) : tokenizerEdit(rng, b);
}

function verdict(seed: Seed, bytes: Uint8Array, buildsModel: boolean): string | null | "unjudged" {
  switch (seed.kind) {
    case "safetensors": return safetensorsInvalid(bytes);
    case "checkpoint": return checkpointInvalid(bytes, seed.facts!, buildsModel);
    case "png": return pngInvalid(bytes);
    case "pnm": return pnmInvalid(bytes);
    case "tokenizer": return tokenizerInvalid(dec.decode(bytes));
  }
}

// ------------------------------------------------------------------------------------------------ worker

const CLEAR = new Set(["SafetensorsError", "CheckpointError", "ConfigError", "ImageFormatError", "FileReadError", "TokenizerError"]);

async function worker(): Promise<void> {
  const { loadSafetensors } = await import("../src/io/state-dict.js");
  const { checkpointFromBytes, trainedModel, asCheckpointError } = await import("../src/io/checkpoint-bytes.js");
  const { findTask } = await import("../src/node/tasks/index.js");
  const { decodeImage, greySquare } = await import("../src/node/image-file.js");
  const { Tokenizer } = await import("../src/data/tokenizer.js");
  const { tidy } = await import("../src/scope.js");
  const { noGrad } = await import("../src/autograd.js");
  const run = async (kind: Kind, bytes: Uint8Array, input?: string, flags?: string[]) => {
    if (kind === "safetensors") loadSafetensors(bytes);
    else if (kind === "png" || kind === "pnm") greySquare(decodeImage(bytes, "fuzz-image"), { size: 28 });
    else if (kind === "tokenizer") Tokenizer.fromJSON(dec.decode(bytes)).encode("hello world, the cat");
    else {
      const raw = checkpointFromBytes(bytes, "fuzz.safetensors");
      let task;
      try { task = await findTask(raw.task); } catch (e) { throw asCheckpointError(e, raw.path, `metadata field "task"`); }
      const { model, config } = trainedModel(raw, raw.task, (c) => task.modelFromConfig(c));
      const o: Record<string, string | boolean> = { json: true };
      for (let i = 0; flags && i < flags.length; i++) o[flags[i].slice(2)] = flags[i + 1] && !flags[i + 1].startsWith("--") ? flags[++i] : true;
      tidy(() => noGrad(() => { task.predict(model, config, input!, o); }));
    }
  };
  process.on("message", (m: { id: number; kind: Kind; bytes: Uint8Array; input?: string; flags?: string[] }) => {
    run(m.kind, m.bytes, m.input, m.flags).then(
      () => process.send!({ id: m.id, outcome: "accepted" }),
      (e: unknown) => {
        const clear = e instanceof Error && CLEAR.has(e.name);
        process.send!({ id: m.id, outcome: clear ? "rejected" : "crash", detail: e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}${clear ? "" : `\n${e.stack?.split("\n").slice(1, 4).join("\n")}`}` : String(e) });
      });
  });
  process.send!({ ready: true });
}

// ------------------------------------------------------------------------------------------------ runner

interface Options { lib: number; cli: number; seed: number; timeoutS: number; jobs: number; json: boolean }

class LibPool {
  private procs: { child: ReturnType<typeof fork>; busy?: { c: Case; done: (r: { outcome: Outcome; detail?: string }) => void; timer: NodeJS.Timeout } }[] = [];
  constructor(private timeoutS: number) {}
  private async spawnOne(): Promise<(typeof this.procs)[number]> {
    const child = fork(SELF, ["--worker"], { serialization: "advanced", stdio: ["ignore", "ignore", "pipe", "ipc"], execArgv: ["--max-old-space-size=2048"] });
    child.stderr!.on("data", () => undefined);
    const slot: (typeof this.procs)[number] = { child };
    await new Promise<void>((res, rej) => { child.once("message", () => res()); child.once("exit", (c) => rej(new Error(`fuzz worker exited (${c}) before it was ready`))); });
    child.on("message", (m: { id: number; outcome: Outcome; detail?: string }) => {
      const b = slot.busy;
      if (!b || b.c.id !== m.id) return;
      clearTimeout(b.timer);
      slot.busy = undefined;
      b.done({ outcome: m.outcome, detail: m.detail });
    });
    child.on("exit", (code, signal) => {
      const b = slot.busy;
      this.procs = this.procs.filter((p) => p !== slot);
      if (b) { clearTimeout(b.timer); slot.busy = undefined; b.done({ outcome: "crash", detail: `worker died: code ${code}, signal ${signal}` }); }
    });
    this.procs.push(slot);
    return slot;
  }
  async run(c: Case): Promise<{ outcome: Outcome; detail?: string }> {
    let slot = this.procs.find((p) => !p.busy);
    if (!slot) slot = await this.spawnOne();
    const s = slot;
    return new Promise((done) => {
      const timer = setTimeout(() => {
        const b = s.busy;
        s.busy = undefined;
        s.child.kill("SIGKILL");
        b?.done({ outcome: "hang", detail: `no answer in ${this.timeoutS} s` });
      }, this.timeoutS * 1000);
      s.busy = { c, done, timer };
      s.child.send({ id: c.id, kind: c.seed.kind, bytes: c.bytes, input: c.seed.input, flags: c.seed.flags });
    });
  }
  close(): void { for (const p of this.procs) p.child.kill(); }
}

function runCli(args: string[], timeoutS: number): Promise<{ outcome: Outcome; detail?: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let err = "", hung = false;
    child.stderr.on("data", (d: Buffer) => { if (err.length < 4000) err += d.toString(); });
    const timer = setTimeout(() => { hung = true; child.kill("SIGKILL"); }, timeoutS * 1000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const line = err.trim().split("\n").pop() ?? "";
      if (hung) done({ outcome: "hang", detail: `no exit in ${timeoutS} s` });
      else if (signal) done({ outcome: "crash", detail: `killed by ${signal}: ${err.slice(0, 300)}` });
      else if (code === 0) done({ outcome: "accepted" });
      else if ((code === 1 || code === 2) && err.startsWith("attnflow:")) done({ outcome: "rejected", detail: line.slice(0, 300) });
      else done({ outcome: "crash", detail: `exit ${code}: ${err.slice(0, 400)}` });
    });
  });
}

function isFailure(r: Result): boolean {
  return r.outcome === "crash" || r.outcome === "hang" || (r.outcome === "accepted" && typeof r.verdict === "string" && r.verdict !== "unjudged");
}

async function main(o: Options): Promise<number> {
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "attnflow-fuzz-"));
  try {
    const seeds = await buildSeeds(dir);
    // One generator per case, seeded by (seed, case id): the cases do not depend on which worker finishes first.
    const caseRng = (id: number) => new Rng((o.seed * 1_000_003 + id) % 2 ** 31);
    const by = (k: Kind) => seeds.filter((s) => s.kind === k);
    const shipped = (s: Seed) => s.id.startsWith("shipped-");
    const libMix: [number, Seed[]][] = [[0.25, by("safetensors")], [0.3, by("checkpoint").filter((s) => !shipped(s))], [0.05, by("checkpoint").filter(shipped)],
      [0.2, by("png")], [0.08, by("pnm")], [0.12, by("tokenizer")]];
    const pickSeed = (rng: Rng, mix: [number, Seed[]][]) => {
      let u = rng.next();
      for (const [w, list] of mix) { if (u < w) return rng.pick(list); u -= w; }
      return rng.pick(mix[mix.length - 1][1]);
    };
    const results: Result[] = [];
    const pool = new LibPool(o.timeoutS);
    let next = 0;
    const libWorker = async () => {
      while (next < o.lib) {
        const id = next++, rng = caseRng(id);
        const seed = pickSeed(rng, libMix), m = mutate(rng, seed);
        const r = await pool.run({ id, seed, bytes: m.bytes, mutation: m.mutation });
        results.push({ id, seed: seed.id, kind: seed.kind, mutation: m.mutation, ...r, verdict: verdict(seed, m.bytes, true), via: "lib" });
        if (!o.json && results.length % 1000 === 0) process.stderr.write(`  library: ${results.length}/${o.lib} cases (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
      }
    };
    await Promise.all(Array.from({ length: o.jobs }, libWorker));
    pool.close();

    // CLI: predict on tiny and shipped checkpoints, info, and predict of the tiny ViT on mutated images.
    const cks = by("checkpoint"), vit = seeds.find((s) => s.id === "ck-fashion-vit")!, images = by("png");
    let cliNext = 0, cliDone = 0;
    const cliWorker = async () => {
      while (cliNext < o.cli) {
        const id = o.lib + cliNext++, rng = caseRng(id);
        const u = rng.next();
        const mode = u < 0.6 ? "predict" : u < 0.8 ? "info" : "image";
        const seed = mode === "image" ? rng.pick(images) : rng.pick(cks);
        const m = mutate(rng, seed);
        const file = join(dir, `case-${id}${mode === "image" ? ".png" : ".safetensors"}`);
        writeFileSync(file, m.bytes);
        const args = mode === "image" ? ["predict", "--model", vit.path!, file, "--json"]
          : mode === "info" ? ["info", "--model", file, ...(rng.next() < 0.5 ? ["--json"] : [])] : ["predict", "--model", file, seed.input!, "--json", ...(seed.flags ?? [])];
        const r = await runCli(args, o.timeoutS);
        rmSync(file, { force: true });
        results.push({ id, seed: seed.id, kind: seed.kind, mutation: `${mode}: ${m.mutation}`, ...r, verdict: verdict(seed, m.bytes, mode === "predict"), via: "cli" });
        if (!o.json && ++cliDone % 100 === 0) process.stderr.write(`  CLI: ${cliDone}/${o.cli} cases (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
      }
    };
    await Promise.all(Array.from({ length: o.jobs }, cliWorker));

    const count = (via: "lib" | "cli") => {
      const rs = results.filter((r) => r.via === via);
      const judged = (r: Result) => typeof r.verdict === "string" && r.verdict !== "unjudged";
      return {
        cases: rs.length,
        acceptedValid: rs.filter((r) => r.outcome === "accepted" && r.verdict === null).length,
        rejectedInvalid: rs.filter((r) => r.outcome === "rejected" && judged(r)).length,
        rejectedValid: rs.filter((r) => r.outcome === "rejected" && r.verdict === null).length,
        unjudged: rs.filter((r) => r.verdict === "unjudged" && (r.outcome === "accepted" || r.outcome === "rejected")).length,
        crashes: rs.filter((r) => r.outcome === "crash").length,
        hangs: rs.filter((r) => r.outcome === "hang").length,
        silentAcceptances: rs.filter((r) => r.outcome === "accepted" && judged(r)).length,
        byKind: Object.fromEntries((["safetensors", "checkpoint", "png", "pnm", "tokenizer"] as Kind[]).map((k) => [k, rs.filter((r) => r.kind === k).length])),
      };
    };
    const failures = results.filter(isFailure).sort((a, b) => a.id - b.id);
    const report = {
      date: new Date().toISOString(), seed: o.seed, timeoutS: o.timeoutS, jobs: o.jobs, seconds: Math.round((Date.now() - t0) / 1000),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
      library: count("lib"), cli: count("cli"), failures: failures.slice(0, 50),
      // Not failures, but worth a look: valid files the loaders refused (e.g. a BOOL byte flipped to 2, an I64 past int32).
      rejectedValid: results.filter((r) => r.outcome === "rejected" && r.verdict === null).slice(0, 10),
    };
    if (o.json) console.log(JSON.stringify(report, null, 1));
    else {
      console.log(`fuzz: seed ${o.seed}, ${o.lib} library + ${o.cli} CLI cases, ${o.timeoutS} s per case, ${report.seconds} s`);
      for (const via of ["library", "cli"] as const) {
        const c = report[via];
        console.log(`  ${via.padEnd(8)} ${String(c.cases).padStart(6)} cases: ${c.crashes} crashes, ${c.hangs} hangs, ${c.silentAcceptances} silent acceptances | ` +
          `accepted-valid ${c.acceptedValid}, rejected-invalid ${c.rejectedInvalid}, rejected-valid ${c.rejectedValid}, unjudged ${c.unjudged}`);
      }
      for (const f of failures.slice(0, 20)) console.log(`  FAIL #${f.id} ${f.via} ${f.seed} [${f.mutation}] ${f.outcome}${f.verdict ? ` (oracle: ${f.verdict})` : ""}: ${f.detail ?? ""}`);
    }
    return failures.length ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parse(argv: string[]): Options {
  const o: Options = { lib: 10_000, cli: 500, seed: 1, timeoutS: 10, jobs: Math.max(1, Math.min(2, cpus().length)), json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) throw new Error(`fuzz: ${a} needs a non-negative integer, got ${argv[i]}`);
      return n;
    };
    if (a === "--lib") o.lib = v();
    else if (a === "--cli") o.cli = v();
    else if (a === "--seed") o.seed = v();
    else if (a === "--timeout-s") o.timeoutS = Math.max(1, v());
    else if (a === "--jobs") o.jobs = Math.max(1, v());
    else if (a === "--json") o.json = true;
    else throw new Error(`fuzz: unknown option ${a} (--lib N --cli N --seed N --timeout-s S --jobs N --json)`);
  }
  return o;
}

if (process.argv[2] === "--worker") await worker();
else process.exitCode = await main(parse(process.argv.slice(2)));
