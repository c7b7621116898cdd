// Hostile and corrupt files (issue 14, items 3, 4 and 6): decompression bombs, endless and non-regular files, atomic
// writes through symlinks and onto special files, temp files of killed saves, corrupt safetensors headers (duplicate
// names, deep nesting, unaligned offsets, dtype flips caught by the integrity record) and invalid stored configs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync, gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { after } from "node:test";
import {
  fromFloat32, INTEGRITY_KEY, MAX_HEADER_DEPTH, parseSafetensors, SafetensorsError, serializeSafetensors,
} from "../src/io/safetensors.js";
import { sha256Hex } from "../src/io/sha256.js";
import { CheckpointError, checkpointFromBytes } from "../src/io/checkpoint-bytes.js";
import { readSafetensorsFile, writeFileAtomic } from "../src/node/safetensors-file.js";
import { decodePng, decodePnm, encodePng, ImageFormatError, MAX_IMAGE_PIXELS, readImageFile } from "../src/node/image-file.js";
import { readMaybeGzip } from "../src/node/datasets.js";
import { loadCheckpoint, readCheckpoint, saveCheckpoint, serializeCheckpoint } from "../src/node/checkpoint.js";
import { ConfigError } from "../src/tasks/config-check.js";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url)); // dist/test/ → repo root

const dir = mkdtempSync(join(tmpdir(), "attnflow-hostile-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const enc = new TextEncoder(), dec = new TextDecoder();

/** A safetensors file from a raw header string and `dataLen` data bytes. */
function rawFile(header: string, dataLen: number): Uint8Array {
  const h = enc.encode(header);
  const out = new Uint8Array(8 + h.length + dataLen);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  return out;
}

/** The same file with its header text edited (length re-written, data kept). */
function editHeader(file: Uint8Array, edit: (h: string) => string): Uint8Array {
  const n = new DataView(file.buffer, file.byteOffset).getUint32(0, true);
  const h = enc.encode(edit(dec.decode(file.subarray(8, 8 + n)).trimEnd()));
  const padded = Math.ceil(h.length / 8) * 8;
  const out = new Uint8Array(8 + padded + file.length - 8 - n).fill(0x20, 8, 8 + padded);
  new DataView(out.buffer).setUint32(0, padded, true);
  out.set(h, 8);
  out.set(file.subarray(8 + n), 8 + padded);
  return out;
}

function parseError(bytes: Uint8Array, opts = {}): SafetensorsError {
  try {
    parseSafetensors(bytes, opts);
  } catch (e) {
    assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${String(e)}`);
    return e;
  }
  assert.fail("the file was accepted");
}

/** Runs `code` (an ES module body) in a child Node with a time limit; returns its stdout, stderr and status. */
function child(code: string, timeoutMs = 60_000): { status: number | null; signal: string | null; out: string } {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], { encoding: "utf8", timeout: timeoutMs, cwd: REPO });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}
const distUrl = (p: string) => new URL(`../${p}`, import.meta.url).href;

// ------------------------------------------------------------------ item 3: bombs and endless reads

function pngWithHeader(w: number, h: number, idatRaw: Uint8Array): Uint8Array {
  const small = encodePng(1, 1, new Uint8Array([0]), { channels: 1 });
  // Re-use encodePng's chunk writer by patching: build IHDR + IDAT by hand with correct CRCs.
  const chunk = (type: string, data: Uint8Array) => {
    const c = new Uint8Array(12 + data.length), dv = new DataView(c.buffer);
    dv.setUint32(0, data.length);
    for (let i = 0; i < 4; i++) c[4 + i] = type.charCodeAt(i);
    c.set(data, 8);
    let crc = 0xffffffff;
    for (const x of c.subarray(4, 8 + data.length)) { crc ^= x; for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1)); }
    dv.setUint32(8 + data.length, (crc ^ 0xffffffff) >>> 0);
    return c;
  };
  const ihdr = new Uint8Array(13), dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w); dv.setUint32(4, h); ihdr[8] = 8; ihdr[9] = 0;
  const parts = [small.subarray(0, 8), chunk("IHDR", ihdr), chunk("IDAT", new Uint8Array(deflateSync(idatRaw))), chunk("IEND", new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

test("a PNG declaring 16384×16384 is refused from its header, naming the size and the limit", () => {
  const bomb = pngWithHeader(16384, 16384, new Uint8Array(16385 * 4)); // a few rows of zeros; the rest would be inflated
  assert.throws(() => decodePng(bomb), (e: unknown) => e instanceof ImageFormatError &&
    /16384x16384 = 268435456 pixels is above the limit of 25000000 pixels/.test(e.message) && e.message.includes(String(MAX_IMAGE_PIXELS)));
  assert.throws(() => decodePng(pngWithHeader(40000, 1, new Uint8Array(10))), /40000x1 is not supported \(1\.\.16384 pixels per side\)/);
});

test("a small PNG whose IDAT inflates far past its declared size is refused (bounded inflate)", () => {
  const zbomb = pngWithHeader(64, 64, new Uint8Array(64 * 1024 * 1024)); // 64 MB of zeros, ~64 KB deflated
  assert.ok(zbomb.length < 200_000);
  assert.throws(() => decodePng(zbomb), (e: unknown) => e instanceof ImageFormatError &&
    /IDAT data inflates to more than the 4160 bytes a 64x64 image needs/.test(e.message));
});

test("PNM: oversized headers and endless digit runs are errors, not allocations or stack overflows", () => {
  assert.throws(() => decodePnm(enc.encode("P5 16384 16384 255\n")), /16384x16384 = 268435456 pixels is above the limit/);
  assert.throws(() => decodePnm(enc.encode("P5 " + "1".repeat(300_000) + " 2 255\n")), (e: unknown) =>
    e instanceof ImageFormatError && /width at offset 3 has 300000 digits \(at most 9\)/.test(e.message));
});

test("non-regular files are refused by every reader (a directory here; a FIFO and /dev/zero in a child below)", () => {
  const d = join(dir, "adir.safetensors");
  mkdirSync(d);
  assert.throws(() => readImageFile(d), /adir\.safetensors is a directory, not a regular file/);
  assert.throws(() => readMaybeGzip(d), /adir\.safetensors is a directory, not a regular file/);
  return assert.rejects(readSafetensorsFile(d), /adir\.safetensors is a directory, not a regular file/);
});

test("--model /dev/zero and a FIFO give a clear error at once instead of reading (or waiting) forever", () => {
  const fifo = join(dir, "pipe.safetensors");
  execFileSync("mkfifo", [fifo]);
  const r = child(`
    import { readSafetensorsFile } from ${JSON.stringify(distUrl("src/node/safetensors-file.js"))};
    import { readImageFile } from ${JSON.stringify(distUrl("src/node/image-file.js"))};
    for (const p of ["/dev/zero", ${JSON.stringify(fifo)}]) {
      try { await readSafetensorsFile(p); console.log("accepted " + p); } catch (e) { console.log(e.message); }
      try { readImageFile(p); console.log("accepted " + p); } catch (e) { console.log(e.message); }
    }`);
  assert.equal(r.signal, null, `child was killed (${r.signal}): it hung reading; output so far: ${r.out}`);
  assert.match(r.out, /safetensors file \/dev\/zero is a character device, not a regular file/);
  assert.match(r.out, /image \/dev\/zero is a character device, not a regular file/);
  assert.match(r.out, /pipe\.safetensors is a FIFO \(named pipe\), not a regular file/);
  assert.doesNotMatch(r.out, /accepted/);
});

test("a safetensors file is read only as far as its header declares: shorter or longer files name both sizes", async () => {
  const good = serializeSafetensors({ w: fromFloat32(new Float32Array([1, 2, 3, 4]), [4]) });
  const p = join(dir, "sized.safetensors");
  writeFileSync(p, Buffer.concat([good, Buffer.alloc(5)]));
  await assert.rejects(readSafetensorsFile(p), (e: unknown) => e instanceof SafetensorsError &&
    new RegExp(`file is ${good.length + 5} bytes but its header declares ${good.length} \\(8 \\+ \\d+ header \\+ 16 data bytes\\): 5 trailing bytes`).test(e.message));
  writeFileSync(p, good.subarray(0, good.length - 3));
  await assert.rejects(readSafetensorsFile(p), /declares \d+ .*: truncated/);
});

test("gzip bombs among data files stop at the size limit", () => {
  const p = join(dir, "bomb-idx3-ubyte.gz");
  writeFileSync(p, gzipSync(new Uint8Array(8 * 1024 * 1024)));
  assert.throws(() => readMaybeGzip(p, 1024 * 1024), /bomb-idx3-ubyte\.gz unpacks to more than 1048576 bytes \(gzip\)/);
  assert.equal(readMaybeGzip(p).length, 8 * 1024 * 1024);
});

// ------------------------------------------------------------------ item 4: atomic writes

test("atomic writes go through a symlink to its target and keep the link", async () => {
  const real = join(dir, "real.safetensors"), link = join(dir, "link.safetensors");
  writeFileSync(real, "old");
  symlinkSync(real, link);
  await writeFileAtomic(link, new Uint8Array([1, 2, 3]));
  assert.ok(lstatSync(link).isSymbolicLink(), "the link was replaced by a regular file");
  assert.equal(readlinkSync(link), real);
  assert.deepEqual([...readFileSync(real)], [1, 2, 3]);
  // A dangling link: the file it names is created, the link stays.
  const dangling = join(dir, "dangling.safetensors"), target = join(dir, "made-by-write.safetensors");
  symlinkSync(target, dangling);
  await writeFileAtomic(dangling, new Uint8Array([9]));
  assert.ok(lstatSync(dangling).isSymbolicLink());
  assert.deepEqual([...readFileSync(target)], [9]);
});

test("atomic writes refuse to replace a FIFO or a directory (as they would a device such as /dev/full)", async () => {
  const fifo = join(dir, "out.fifo");
  execFileSync("mkfifo", [fifo]);
  await assert.rejects(writeFileAtomic(fifo, new Uint8Array([1])), /refusing to write .*out\.fifo: it is a FIFO \(named pipe\), not a regular file/);
  assert.ok(lstatSync(fifo).isFIFO(), "the FIFO was replaced");
  const d = join(dir, "out.dir");
  mkdirSync(d);
  await assert.rejects(writeFileAtomic(d, new Uint8Array([1])), /out\.dir: it is a directory, not a regular file/);
  const linkToFifo = join(dir, "link-to-fifo");
  symlinkSync(fifo, linkToFifo);
  await assert.rejects(writeFileAtomic(linkToFifo, new Uint8Array([1])), /link-to-fifo \(a link to .*out\.fifo\): it is a FIFO/);
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes(".tmp-")), []);
});

test("temp files of a save killed mid-write are removed by the next save; a live writer's are kept", async () => {
  const path = join(dir, "killed.safetensors");
  await writeFileAtomic(path, new Uint8Array([0]));
  const script = `
    import { writeFileAtomic } from ${JSON.stringify(distUrl("src/node/safetensors-file.js"))};
    await writeFileAtomic(${JSON.stringify(path)}, new Uint8Array(1000), {
      write: async (fh) => { await fh.write(new Uint8Array(10)); console.log("writing"); await new Promise(() => {}); } });`;
  for (let i = 0; i < 3; i++) {
    const c = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((res) => c.stdout!.once("data", () => res()));
    c.kill("SIGKILL");
    await new Promise((r) => c.once("exit", r));
  }
  const temps = () => readdirSync(dir).filter((n) => n.startsWith(".killed.safetensors.tmp-"));
  // Each killed save left a temp file; each later save (the next child's) removed the one before it.
  assert.equal(temps().length, 1, "the last killed save's temp file");
  const live = `.killed.safetensors.tmp-${process.ppid}-0123456789ab`; // our parent is alive
  writeFileSync(join(dir, live), "in progress");
  await writeFileAtomic(path, new Uint8Array([7]));
  assert.deepEqual(temps(), [live]);
  assert.deepEqual([...readFileSync(path)], [7]);
});

test("a write that fails removes its own temp file", async () => {
  const path = join(dir, "fails.safetensors");
  await assert.rejects(writeFileAtomic(path, new Uint8Array(10), { write: async () => { throw new Error("disk full"); } }), /disk full/);
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(".fails.safetensors.tmp-")), []);
});

// ------------------------------------------------------------------ item 6: corrupt headers

const U8 = (b: number, e: number) => `{"dtype":"U8","shape":[${e - b}],"data_offsets":[${b},${e}]}`;

test("a tensor name given twice in the header is an error naming it and both offsets", () => {
  const e = parseError(rawFile(`{"w":${U8(0, 1)},"w":${U8(1, 2)}}`, 2));
  assert.match(e.message, /header defines tensor "w" twice \(first at byte 9, again at byte \d+\)/);
  assert.equal(e.field, `tensor "w"`);
  // Escaped spellings of the same name are the same key.
  assert.match(parseError(rawFile(`{"w":${U8(0, 1)},"\\u0077":${U8(1, 2)}}`, 2)).message, /tensor "w" twice/);
  // A field given twice inside one entry, and a duplicate __metadata__.
  assert.match(parseError(rawFile(`{"w":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}}`, 1)).message, /key "dtype" inside one header entry twice/);
  assert.match(parseError(rawFile(`{"__metadata__":{},"__metadata__":{"a":"b"}}`, 0)).message, /"__metadata__" twice/);
});

test("a header nested 200,000 levels deep is a clear error, not a stack overflow", () => {
  const deep = "[".repeat(200_000) + "]".repeat(200_000);
  const e = parseError(rawFile(`{"w":{"dtype":"U8","shape":${deep},"data_offsets":[0,0]}}`, 0));
  assert.match(e.message, new RegExp(`nests objects/arrays deeper than ${MAX_HEADER_DEPTH} levels`));
  assert.equal(e.field, "header");
});

test("checkpoints require aligned data_offsets (attnflow writes them aligned); plain files may be unaligned", () => {
  const f = rawFile(`{"a":${U8(0, 1)},"w":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}`, 5);
  assert.equal(parseSafetensors(f).tensors.size, 2);
  const e = parseError(f, { aligned: true });
  assert.match(e.message, /tensor "w"\.data_offsets begin 1 is not a multiple of the F32 item size 4/);
  assert.equal(e.field, `tensor "w".data_offsets`);
});

test("integrity record: written on request, verified on parse; flips of dtype, shape, offsets, data and metadata are caught", () => {
  const tensors = { a: fromFloat32(new Float32Array([1, 2, 3, 4]), [2, 2], "F16"), b: fromFloat32(new Float32Array([5, 6]), [2], "F16") };
  const good = serializeSafetensors(tensors, { task: "t" }, { integrity: true });
  const { metadata } = parseSafetensors(good);
  const rec = JSON.parse(metadata[INTEGRITY_KEY]) as { tensors: Record<string, string>; metadata: Record<string, string> };
  assert.equal(rec.tensors.a.split(" ")[4], createHash("sha256").update(tensors.a.data).digest("hex"));
  assert.equal(rec.metadata.task, sha256Hex(enc.encode("t")));

  const fieldOf = (bytes: Uint8Array) => parseError(bytes);
  let e = fieldOf(editHeader(good, (h) => h.replace(`"a":{"dtype":"F16"`, `"a":{"dtype":"BF16"`)));
  assert.match(e.message, /tensor "a"\.dtype is BF16 in the header but was F16 when written/);
  assert.equal(e.field, `tensor "a".dtype`);
  e = fieldOf(editHeader(good, (h) => h.replace(`"shape":[2,2]`, `"shape":[4,1]`)));
  assert.match(e.message, /tensor "a"\.shape is \[4, 1\] in the header but was \[2,2\] when written/);
  e = fieldOf(editHeader(good, (h) => h.replace(`"data_offsets":[0,8]`, `"data_offsets":[4,12]`).replace(`"data_offsets":[8,12]`, `"data_offsets":[0,4]`)));
  assert.match(e.message, /data_offsets are \[\d+, \d+\] in the header but were \[\d+, \d+\] when written/);
  const flipped = good.slice();
  flipped[flipped.length - 1] ^= 0x01;
  e = fieldOf(flipped);
  assert.match(e.message, /tensor "b" data \(file bytes \[\d+, \d+\)\) has SHA-256 [0-9a-f]{16}… but [0-9a-f]{16}… when written/);
  assert.equal(e.field, `tensor "b".data`);
  e = fieldOf(editHeader(good, (h) => h.replace(`"task":"t"`, `"task":"u"`)));
  assert.match(e.message, /metadata field "task" differs from what was written/);
  e = fieldOf(editHeader(good, (h) => h.replace(`\\"v\\":1`, `\\"v\\":2`)));
  assert.match(e.message, /integrity record is malformed/);
  // A record copied into other metadata is dropped, never written stale.
  const copied = serializeSafetensors({ b: tensors.b }, metadata);
  assert.equal(parseSafetensors(copied).metadata[INTEGRITY_KEY], undefined);
});

// ------------------------------------------------------------------ shipped checkpoints and stored configs

const shipped = (name: string) => join(REPO, "models", `${name}.safetensors`);

test("shipped checkpoints carry an integrity record, so an F16 → BF16 dtype flip is an error, not garbage weights", async () => {
  for (const name of ["fortunes-classifier", "fashion-vit", "dates", "char-lm"]) {
    const bytes = new Uint8Array(readFileSync(shipped(name)));
    assert.ok(parseSafetensors(bytes).metadata[INTEGRITY_KEY], `${name} has no integrity record`);
    const flipped = editHeader(bytes, (h) => h.replace(`"dtype":"F16"`, `"dtype":"BF16"`));
    assert.throws(() => checkpointFromBytes(flipped, name), (e: unknown) => e instanceof SafetensorsError &&
      /tensor ".+"\.dtype is BF16 in the header but was F16 when written/.test(e.message) && e.message.startsWith(name));
  }
});

/** A shipped checkpoint re-saved (with a fresh integrity record) after `edit` changed its config. */
async function withConfig(name: string, edit: (c: Record<string, unknown>) => void): Promise<string> {
  const ck = await readCheckpoint(shipped(name));
  const config = structuredClone(ck.config);
  edit(config);
  const p = join(dir, `${name}-edited.safetensors`);
  writeFileSync(p, serializeCheckpoint({ task: ck.task, config, model: ck.weights, metrics: ck.metrics }));
  return p;
}

test("invalid stored config values are errors naming the field (labelSmoothing: -1, maxVocab: 1.5, ...)", async () => {
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ["fortunes-classifier", (c) => { c.labelSmoothing = -1; }, /config field "labelSmoothing" must be a number in \[0, 1\), got -1/],
    ["fortunes-classifier", (c) => { c.maxVocab = 1.5; }, /config field "maxVocab" must be an integer in \[0, 10000000\], got 1\.5/],
    ["fortunes-classifier", (c) => { c.classWeight = "heavy"; }, /config field "classWeight" must be one of "none", "balanced", got "heavy"/],
    ["fortunes-classifier", (c) => { c.dModel = 1e9; }, /config field "dModel" must be an integer in \[1, 65536\]/],
    ["dates", (c) => { c.labelSmoothing = -1; }, /dates: config field "labelSmoothing" must be a number in \[0, 1\), got -1/],
    ["dates", (c) => { c.beamWidth = 0; }, /dates: config field "beamWidth" must be an integer in \[1, 256\], got 0/],
    // found by the fuzz suite: a bit flip in the key made beamWidth vanish, and predict failed with a bare Error
    ["dates", (c) => { delete c.beamWidth; }, /dates: config field "beamWidth" must be an integer in \[1, 256\], got nothing \(field missing\)/],
    ["char-lm", (c) => { c.layerNormEps = -1; }, /char-lm: config field "layerNormEps" must be a number in \(0, 1\], got -1/],
    ["fashion-vit", (c) => { c.depth = 2.5; }, /fashion-vit: config field "depth" must be an integer in \[1, 1024\], got 2\.5/],
  ];
  for (const [name, edit, re] of cases) {
    const p = await withConfig(name, edit);
    await assert.rejects(loadCheckpoint(p), (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `${name}: expected a CheckpointError, got ${String(e)}`);
      assert.match(e.message, re);
      assert.ok(e.message.startsWith(p), e.message);
      assert.ok(e.cause instanceof ConfigError);
      return true;
    });
  }
});

test("saveCheckpoint writes the integrity record, and loading the saved file verifies it", async () => {
  const ck = await readCheckpoint(shipped("dates"));
  const p = join(dir, "resaved.safetensors");
  await saveCheckpoint(p, { task: ck.task, config: ck.config, model: ck.weights });
  const back = await loadCheckpoint(p);
  assert.equal(back.task.name, "dates");
  const bytes = readFileSync(p);
  bytes[bytes.length - 2] ^= 0x40;
  writeFileSync(p, bytes);
  await assert.rejects(readCheckpoint(p), /resaved\.safetensors: tensor ".+" data .* when written \(integrity record/);
});

test("trainer state, metrics and optimizer scalars are checked by shape; `info` prints a NaN metric instead of crashing", async () => {
  const ck = await readCheckpoint(shipped("dates"));
  const trainer = { epoch: 0, batchInEpoch: 3, globalStep: 3, totalSteps: 10, seed: 1, rng: [1, 2, 3, 4], finished: false,
    options: { epochs: 1, batchSize: 8, lr: 0.001, weightDecay: 0.01, warmupSteps: 0, clipNorm: 1 }, history: [{ step: 3, epoch: 0, loss: NaN }] };
  const save = (name: string, extra: Record<string, unknown>) => {
    const p = join(dir, name);
    writeFileSync(p, serializeCheckpoint({ task: ck.task, config: ck.config, model: ck.weights, ...extra }));
    return p;
  };
  const info = (p: string) => spawnSync(process.execPath, [join(REPO, "bin", "attnflow.js"), "info", "--model", p], { encoding: "utf8", timeout: 120_000 });
  const ok = info(save("nan-metric.safetensors", { metrics: { exactMatch: NaN, loss: 0.5 }, trainer }));
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /exactMatch null/);
  const bad = save("bad-trainer.safetensors", { trainer: { ...trainer, options: undefined } });
  await assert.rejects(readCheckpoint(bad), (e: unknown) => e instanceof CheckpointError &&
    /bad-trainer\.safetensors: metadata "trainer": field "options" must be an object, got nothing \(field missing\)/.test(e.message) &&
    e.field === "__metadata__.trainer.options");
  const r = info(bad);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^attnflow: .*field "options" must be an object/);
  await assert.rejects(readCheckpoint(save("bad-lr.safetensors", { trainer: { ...trainer, options: { ...trainer.options, lr: -1 } } })),
    /metadata "trainer\.options": field "lr" must be a number in \(0, 1000000\], got -1/);
  await assert.rejects(readCheckpoint(save("bad-metrics.safetensors", { metrics: { accuracy: "high" } })),
    /metadata "metrics" must be an object of numbers \(or null\), got \{"accuracy":"high"\}/);
});
