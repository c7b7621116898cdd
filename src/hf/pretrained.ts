// Open a Hugging Face folder (browser-safe: the files come as bytes or as a reader of byte ranges) and write one back.
//
// Loading streams tensor by tensor: only the safetensors headers are parsed up front, every name and shape is checked
// against the model built from config.json before any weight is read, then each tensor's byte range is read, converted
// to float32 (float16 / bfloat16 / float64 on load) and copied into its parameter. float32 / float16 / bfloat16 bytes
// are read straight into the parameter's storage (half-width ones widened in place there), or in chunks of 8 MiB for
// readers that cannot read into a buffer: peak memory is the model plus at most one chunk, never two copies of a tensor.
import { pruneHeads, prunedHeadsOf } from "../nn/prune.js";
import { Tensor } from "../tensor.js";
import { Module, copyInto, isParameter, torchName } from "../nn/module.js";
import { shapeStr } from "../shape.js";
import { quantizeDynamic } from "../nn/quantize.js";
import { parseSafetensorsHeader, safetensorsHeaderLength, toFloat32, toInt32, SafetensorsError, ST_ITEMSIZE, type StHeader, type StHeaderEntry, type StTensor } from "../io/safetensors.js";
import { bfloat16ArrayToFloat32, float16ArrayToFloat32 } from "../io/dtype-convert.js";
import { saveSafetensors } from "../io/state-dict.js";
import { architectureFor } from "./registry.js";
import { withoutInit } from "./common.js";
import { HFImportError, type HFConfig, type HFModel } from "./types.js";

/** Random access to the files of a folder: whole small files, and byte ranges of the big ones. */
export interface HFFileReader {
  /** The file's bytes, or null if the folder has no such file. */
  readFile(name: string): Promise<Uint8Array | null>;
  /** Size in bytes, or null if absent. */
  size(name: string): Promise<number | null>;
  /** Bytes [start, start + length) of a file. */
  readRange(name: string, start: number, length: number): Promise<Uint8Array>;
  /** Optional: bytes [start, start + dst.length) of a file straight into dst (float32 weights land in their parameter
   *  without a temporary copy). */
  readInto?(name: string, start: number, dst: Uint8Array): Promise<void>;
}

export type HFFiles = Map<string, Uint8Array> | Record<string, Uint8Array>;

/** A reader over files already in memory (a browser's picked files, or tests). */
export function memoryReader(files: HFFiles): HFFileReader {
  const m = files instanceof Map ? files : new Map(Object.entries(files));
  const get = (n: string) => m.get(n) ?? m.get(n.split("/").pop()!) ?? null;
  return {
    async readFile(n) { return get(n); },
    async size(n) { return get(n)?.length ?? null; },
    async readRange(n, start, length) {
      const b = get(n);
      if (!b) throw new HFImportError(`${n}: no such file`);
      return b.subarray(start, start + length);
    },
  };
}

/**
 * A reader over Blobs / Files (a browser's picked folder: <input type="file" webkitdirectory>, or drag and drop):
 * ranges are read with Blob.slice, so a checkpoint is never read whole. Files are matched by base name.
 */
export function blobReader(files: Iterable<File> | Map<string, Blob>): HFFileReader {
  const m = new Map<string, Blob>();
  if (files instanceof Map) for (const [n, b] of files) m.set(n.split("/").pop()!, b);
  else for (const f of files) m.set(f.name.split("/").pop()!, f);
  const get = (n: string) => m.get(n.split("/").pop()!) ?? null;
  return {
    async readFile(n) { const b = get(n); return b ? new Uint8Array(await b.arrayBuffer()) : null; },
    async size(n) { return get(n)?.size ?? null; },
    async readRange(n, start, length) {
      const b = get(n);
      if (!b) throw new HFImportError(`${n}: no such file`);
      const bytes = new Uint8Array(await b.slice(start, start + length).arrayBuffer());
      if (bytes.length !== length) throw new HFImportError(`${n}: file ended at byte ${start + bytes.length}, expected ${length} bytes from ${start}`);
      return bytes;
    },
  };
}

/** Loads tokenizer.json & co. when the tokenizer module is present (it registers itself here); null otherwise. */
export type TokenizerLoader = (reader: HFFileReader, config: HFConfig) => Promise<unknown | null>;
let tokenizerLoader: TokenizerLoader | null = null;
export function setTokenizerLoader(fn: TokenizerLoader | null): void { tokenizerLoader = fn; }

export interface PretrainedOptions {
  /** Which HF class to build (default: config.json's first "architectures" entry). */
  architecture?: string;
  /** Missing or unexpected weights are an error (default). false: they are returned, missing ones keep HF's init —
   *  e.g. a new classification head to fine-tune on top of a base checkpoint. */
  strict?: boolean;
  /** Skip the tokenizer even when one could be loaded. */
  tokenizer?: boolean;
  /** Readers without readInto: the most bytes read at once (default STREAM_CHUNK, 8 MiB). */
  chunkBytes?: number;
  /** Long loads show progress: called with the weight bytes read so far and their total (once with 0 before the
   *  first tensor, then after every tensor or chunk). */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
}

export interface Pretrained {
  model: HFModel;
  config: HFConfig;
  /** Filled by the tokenizer module when tokenizer files are present; null when not loaded. */
  tokenizer: unknown | null;
  generationConfig: Record<string, unknown> | null;
  /** HF names of weights that stayed at their initial values (only with strict: false). */
  missingKeys: string[];
  /** Checkpoint tensors that match nothing in the model (only with strict: false), and those ignored as HF ignores them. */
  unexpectedKeys: string[];
  ignoredKeys: string[];
}

/**
 * fromPretrained in any JS runtime: in-memory files ({ "config.json": bytes, "model.safetensors": bytes, … }), picked
 * Files / Blobs (read by range), or any HFFileReader.
 */
export function fromPretrained(files: HFFiles | Iterable<File> | Map<string, Blob> | HFFileReader, opts: PretrainedOptions = {}): Promise<Pretrained> {
  return loadPretrained(toReader(files), opts);
}

function toReader(files: HFFiles | Iterable<File> | Map<string, Blob> | HFFileReader): HFFileReader {
  if (typeof (files as HFFileReader).readRange === "function") return files as HFFileReader;
  if (files instanceof Map) {
    const first = files.values().next().value;
    return typeof Blob !== "undefined" && first instanceof Blob ? blobReader(files as Map<string, Blob>) : memoryReader(files as Map<string, Uint8Array>);
  }
  if (Symbol.iterator in Object(files)) return blobReader(files as Iterable<File>);
  return memoryReader(files as Record<string, Uint8Array>);
}

function parseJson(bytes: Uint8Array, name: string): Record<string, unknown> {
  let v: unknown;
  try { v = JSON.parse(new TextDecoder().decode(bytes)); }
  catch (e) { throw new HFImportError(`${name} is not valid JSON: ${(e as Error).message}`); }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new HFImportError(`${name} must hold a JSON object`);
  return v as Record<string, unknown>;
}

export interface Shard { file: string; header: StHeader }

/** The safetensors header(s): model.safetensors, or every shard named by model.safetensors.index.json. */
export async function readHeaders(reader: HFFileReader): Promise<{ shards: Shard[]; where: Map<string, Shard> }> {
  const shards: Shard[] = [], where = new Map<string, Shard>();
  const headerOf = async (file: string): Promise<Shard> => {
    const size = await reader.size(file);
    if (size === null) throw new HFImportError(`${file} is missing from the folder`);
    try {
      const n = safetensorsHeaderLength(await reader.readRange(file, 0, Math.min(8, size)), size);
      return { file, header: parseSafetensorsHeader(await reader.readRange(file, 0, 8 + n), size) };
    } catch (e) {
      if (e instanceof SafetensorsError) throw new SafetensorsError(`${file}: ${e.message}`, { offset: e.offset, field: e.field });
      throw e;
    }
  };
  const index = await reader.readFile("model.safetensors.index.json");
  if (index) {
    const wm = parseJson(index, "model.safetensors.index.json").weight_map;
    if (typeof wm !== "object" || wm === null) throw new HFImportError(`model.safetensors.index.json: "weight_map" must map tensor names to shard files`);
    const byFile = new Map<string, Shard>();
    for (const [name, file] of Object.entries(wm)) {
      if (typeof file !== "string") throw new HFImportError(`model.safetensors.index.json: weight_map["${name}"] must be a file name, got ${JSON.stringify(file)}`);
      let s = byFile.get(file);
      if (!s) { s = await headerOf(file); byFile.set(file, s); shards.push(s); }
      if (!s.header.entries.has(name)) throw new HFImportError(`model.safetensors.index.json maps "${name}" to ${file}, which has no such tensor`);
      where.set(name, s);
    }
    return { shards, where };
  }
  if ((await reader.size("model.safetensors")) === null) {
    const bin = (await reader.size("pytorch_model.bin")) !== null || (await reader.size("pytorch_model.bin.index.json")) !== null;
    throw new HFImportError(`the folder has no model.safetensors or model.safetensors.index.json` +
      (bin ? ` (only pytorch_model.bin: pickled PyTorch weights are not read; convert them with HF's save_pretrained(safe_serialization=True))` : ""));
  }
  const s = await headerOf("model.safetensors");
  shards.push(s);
  for (const name of s.header.entries.keys()) where.set(name, s);
  return { shards, where };
}

/** Every HF name of every parameter and persistent buffer, tied names included (a tied tensor has several). */
export function allNamedTensors(model: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [prefix, m] of model.namedModules()) {
    for (const [k, v] of Object.entries(m)) if (isParameter(v)) out.set(prefix ? `${prefix}.${torchName(k)}` : torchName(k), v);
  }
  for (const [n, b] of model.namedBuffers()) out.set(n, b);
  return out;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Largest temporary of a reader without readInto: a tensor is read and converted in pieces of this many bytes. */
export const STREAM_CHUNK = 8 << 20;

/**
 * float16 / bfloat16 → float32, element i read before element i is written, in ascending order: `src` may lie in the
 * upper half of `out`'s own bytes (src at byte 2n of a 4n-byte out), since out[i] (bytes 4i..4i+3) never reaches
 * src[j > i] (bytes 2n+2j..). bfloat16 is exact (its bits are a float32's top half), float16 too (every float16 is a float32).
 */
export function widenInPlace(dtype: "F16" | "BF16", src: Uint16Array<ArrayBuffer>, out: Float32Array<ArrayBuffer>): void {
  if (dtype === "BF16") bfloat16ArrayToFloat32(src, out);
  else float16ArrayToFloat32(src, out);
}

/**
 * Decode a checkpoint tensor straight into a parameter's storage (float16 / bfloat16 converted in place), so the only
 * temporary is the tensor's raw bytes; unaligned or big-endian input takes the general path through a float32 copy.
 */
function decodeInto(dst: Tensor, t: StTensor, name: string): void {
  if (dst.dtype === "int32") { copyInto(dst, Tensor.fromArray(toInt32(t, name), t.shape, "int32")); return; }
  if (!dst.isContiguous()) { copyInto(dst, Tensor.fromArray(toFloat32(t, name), t.shape, "float32")); return; }
  const n = dst.numel(), out = (dst.storage.data as Float32Array<ArrayBuffer>).subarray(dst.offset, dst.offset + n);
  const aligned = HOST_LE && t.data.byteOffset % ST_ITEMSIZE[t.dtype] === 0;
  if (aligned && t.dtype === "F32") out.set(new Float32Array(t.data.buffer, t.data.byteOffset, n));
  else if (aligned && t.dtype === "F16") float16ArrayToFloat32(new Uint16Array(t.data.buffer, t.data.byteOffset, n), out);
  else if (aligned && t.dtype === "BF16") bfloat16ArrayToFloat32(new Uint16Array(t.data.buffer, t.data.byteOffset, n), out);
  else out.set(toFloat32(t, name));
}

/** A list for an error message: every name, or the first 40 and a count. */
function listNames(names: string[]): string {
  return names.length <= 40 ? names.join(", ") : `${names.slice(0, 40).join(", ")} … and ${names.length - 40} more`;
}

/** config.json's quantization_config.quant_method of a folder written by `attnflow quantize`. */
export const HF_QUANT_METHOD = "attnflow-dynamic-int8";
export const INT8_SCHEME = "weights int8 per output channel (symmetric); activations u8 per row at run time (7 bits); int32 accumulation; float output";

/** Open an HF folder through a reader: config.json, the safetensors weights, generation_config.json, the tokenizer. */
export async function loadPretrained(reader: HFFileReader, opts: PretrainedOptions = {}): Promise<Pretrained> {
  const cfgBytes = await reader.readFile("config.json");
  if (!cfgBytes) throw new HFImportError("the folder has no config.json");
  const config = parseJson(cfgBytes, "config.json") as HFConfig;
  const { family, architecture } = architectureFor(config, opts.architecture);
  const { where } = await readHeaders(reader);
  // strict: every weight will come from the checkpoint, so HF's random init would be wasted work on a big model
  const model = (opts.strict ?? true) ? withoutInit(() => family.fromConfig(config, architecture)) : family.fromConfig(config, architecture);
  // pruned heads (HF's config.pruned_heads, {"layer": [heads]}): HF's from_pretrained prunes before loading, so do we
  const ph = config.pruned_heads as unknown;
  if (ph !== undefined && ph !== null && !(typeof ph === "object" && !Array.isArray(ph) && Object.keys(ph as object).length === 0)) {
    if (typeof ph !== "object" || Array.isArray(ph)) throw new HFImportError(`config.json: "pruned_heads" must be {"layer": [heads]}, got ${JSON.stringify(ph).slice(0, 80)}`);
    try { pruneHeads(model, ph as Record<string, number[]>); } catch (e) { throw new HFImportError(`config.json: "pruned_heads": ${(e as Error).message}`); }
  }
  // a dynamic-int8 folder (attnflow quantize): config.json's quantization_config names the int8 layers
  const qc = config.quantization_config as { quant_method?: unknown; modules?: unknown } | undefined;
  if (qc !== undefined) {
    if (qc?.quant_method !== HF_QUANT_METHOD || !Array.isArray(qc.modules) || !qc.modules.every((m) => typeof m === "string")) {
      throw new HFImportError(`config.json: quantization_config ${JSON.stringify(qc).slice(0, 80)} is not one attnflow reads (only {"quant_method": "${HF_QUANT_METHOD}", "modules": [...]}, written by attnflow quantize)`);
    }
    quantizeDynamic(model, { only: qc.modules as string[], structureOnly: true });
  }
  const named = allNamedTensors(model);

  // Base-model prefix ("bert.", "transformer.", "vit."): a bare base checkpoint loads into a model with a head and
  // the other way round, as HF's from_pretrained does; head weights a bare model has no place for are ignored.
  const prefix = family.baseModelPrefix ? `${family.baseModelPrefix}.` : null;
  const modelPrefixed = !!prefix && [...named.keys()].some((k) => k.startsWith(prefix));
  const ckptPrefixed = !!prefix && [...where.keys()].some((k) => k.startsWith(prefix));
  const ignore = model.keysToIgnoreOnLoad?.() ?? [];
  const plan: { ckpt: string; entry: StHeaderEntry; shard: Shard; target: Tensor; name: string }[] = [];
  const unexpected: string[] = [], ignored: string[] = [], shapeErrors: string[] = [];
  for (const [ckpt, shard] of where) {
    let name = ckpt;
    if (prefix && modelPrefixed && !ckptPrefixed) name = prefix + ckpt;
    else if (prefix && !modelPrefixed && ckptPrefixed) {
      if (!ckpt.startsWith(prefix)) { ignored.push(ckpt); continue; }
      name = ckpt.slice(prefix.length);
    }
    const target = named.get(name);
    if (!target) { (ignore.some((r) => r.test(name)) ? ignored : unexpected).push(ckpt); continue; }
    const entry = shard.header.entries.get(ckpt)!;
    if (entry.shape.length !== target.shape.length || entry.shape.some((d, i) => d !== target.shape[i])) {
      shapeErrors.push(`"${ckpt}" is ${shapeStr(entry.shape)} in ${shard.file} but ${shapeStr(target.shape)} from config.json`);
      continue;
    }
    if (target.dtype === "int32" ? !["I8", "I32", "I64"].includes(entry.dtype) : !["F32", "F16", "BF16", "F64"].includes(entry.dtype)) {
      shapeErrors.push(`"${ckpt}" in ${shard.file} has dtype ${entry.dtype}; ${target.dtype === "int32" ? "int8 weights must be I8" : "weights must be F32, F16, BF16 or F64"}`);
      continue;
    }
    plan.push({ ckpt, entry, shard, target, name });
  }
  if (shapeErrors.length) throw new HFImportError(`checkpoint does not fit the ${architecture} that config.json describes: ${shapeErrors.join("; ")}`);
  const covered = new Set(plan.map((p) => p.target));
  const missing = namesForSave(model).filter(([, t]) => !covered.has(t)).map(([n]) => n);
  const strict = opts.strict ?? true;
  if (strict && (missing.length || unexpected.length)) {
    throw new HFImportError(`checkpoint does not match ${architecture}: ` +
      [missing.length ? `missing weights (${missing.length}): ${listNames(missing)}` : "",
        unexpected.length ? `unexpected weights (${unexpected.length}): ${listNames(unexpected)}` : ""].filter(Boolean).join("; ") +
      (missing.length ? ` (pass strict: false to keep HF's initialisation for the missing ones, e.g. a new head to fine-tune)` : ""));
  }

  // Stream: each tensor's bytes go straight into its parameter and are converted there (readInto: float16 / bfloat16
  // bytes land in the upper half of the parameter's float32 storage and widen in place), or are read and converted in
  // chunks of at most STREAM_CHUNK bytes (readers without readInto, e.g. a browser's Files): never a second copy of a
  // tensor, let alone of the checkpoint.
  const totalBytes = plan.reduce((s, p) => s + p.entry.end - p.entry.begin, 0);
  let bytesRead = 0;
  const progress = opts.onProgress ?? (() => undefined);
  progress(0, totalBytes);
  for (const p of plan) {
    const { dataStart } = p.shard.header, { begin, end } = p.entry, start = dataStart + begin;
    const tensorStart = bytesRead;
    bytesRead += end - begin;
    const direct = HOST_LE && p.target.isContiguous() && p.target.dtype === "float32";
    if (direct && reader.readInto && (p.entry.dtype === "F32" || p.entry.dtype === "F16" || p.entry.dtype === "BF16")) {
      const d = p.target.storage.data as Float32Array<ArrayBuffer>, at = d.byteOffset + 4 * p.target.offset, n = p.target.numel();
      if (p.entry.dtype === "F32") await reader.readInto(p.shard.file, start, new Uint8Array(d.buffer, at, end - begin));
      else {
        await reader.readInto(p.shard.file, start, new Uint8Array(d.buffer, at + 2 * n, 2 * n));
        widenInPlace(p.entry.dtype, new Uint16Array(d.buffer, at + 2 * n, n), new Float32Array(d.buffer, at, n));
      }
      progress(bytesRead, totalBytes);
      continue;
    }
    if (direct && (p.entry.dtype === "F32" || p.entry.dtype === "F16" || p.entry.dtype === "BF16")) {
      const item = ST_ITEMSIZE[p.entry.dtype], n = p.target.numel(), per = Math.max(1, Math.floor((opts.chunkBytes ?? STREAM_CHUNK) / item));
      const out = (p.target.storage.data as Float32Array<ArrayBuffer>).subarray(p.target.offset, p.target.offset + n);
      for (let i = 0; i < n; i += per) {
        const m = Math.min(per, n - i);
        let bytes = await reader.readRange(p.shard.file, start + i * item, m * item) as Uint8Array<ArrayBuffer>;
        if (bytes.byteOffset % item !== 0) bytes = bytes.slice();                     // a typed view needs alignment
        const dst = out.subarray(i, i + m);
        if (p.entry.dtype === "F32") dst.set(new Float32Array(bytes.buffer, bytes.byteOffset, m));
        else widenInPlace(p.entry.dtype, new Uint16Array(bytes.buffer, bytes.byteOffset, m), dst);
        progress(tensorStart + (i + m) * item, totalBytes);
      }
      continue;
    }
    const bytes = await reader.readRange(p.shard.file, start, end - begin);
    decodeInto(p.target, { dtype: p.entry.dtype, shape: p.entry.shape, data: bytes }, p.ckpt);
    progress(bytesRead, totalBytes);
  }
  model.eval();

  const gen = await reader.readFile("generation_config.json");
  const generationConfig = gen ? parseJson(gen, "generation_config.json") : null;
  model.generationConfig = generationConfig;                                        // HF's model.generation_config
  const tokenizer = opts.tokenizer === false || !tokenizerLoader ? null : await tokenizerLoader(reader, config);
  return {
    model, config, tokenizer, generationConfig,
    missingKeys: missing, unexpectedKeys: unexpected, ignoredKeys: ignored,
  };
}

// ------------------------------------------------------------------------------------------------- saving

/** The names HF writes to model.safetensors: one per tensor, tied names left out (HF's save_pretrained rule). */
export function namesForSave(model: HFModel): [string, Tensor][] {
  const tied = new Set(model.tiedWeights?.() ?? []);
  const chosen = new Map<Tensor, string>();
  for (const [n, t] of allNamedTensors(model)) if (!chosen.has(t) && !tied.has(n)) chosen.set(t, n);
  return [...chosen].map(([t, n]) => [n, t]);
}

/**
 * An HF folder as files: config.json (architectures set to the model's class), model.safetensors (float32 by
 * default, metadata {"format": "pt"} as HF's loader requires) and, when the model was loaded with one,
 * generation_config.json — which HF's own from_pretrained loads.
 */
export function savePretrained(model: HFModel, opts: { floatDType?: "F32" | "F16" | "BF16"; quantizedModules?: string[] } = {}): Map<string, Uint8Array> {
  const config: HFConfig = { ...model.config, architectures: [model.architecture] };
  const pruned = prunedHeadsOf(model);
  if (Object.keys(pruned).length) config.pruned_heads = pruned;                 // HF's from_pretrained prunes these on load
  else delete config.pruned_heads;
  if (opts.quantizedModules) config.quantization_config = { quant_method: HF_QUANT_METHOD, modules: opts.quantizedModules, scheme: INT8_SCHEME };
  if (opts.floatDType) config.torch_dtype = { F32: "float32", F16: "float16", BF16: "bfloat16" }[opts.floatDType];
  const tensors = new Map(namesForSave(model));
  const files = new Map<string, Uint8Array>();
  files.set("config.json", new TextEncoder().encode(JSON.stringify(config, null, 2) + "\n"));
  files.set("model.safetensors", saveSafetensors(tensors, { metadata: { format: "pt" }, floatDType: opts.floatDType }));
  if (model.generationConfig) files.set("generation_config.json", new TextEncoder().encode(JSON.stringify(model.generationConfig, null, 2) + "\n"));
  return files;
}
