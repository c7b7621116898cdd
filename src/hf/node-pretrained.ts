// Node entry point: open / write a Hugging Face folder on disk. Big files are read by byte range (file handles), so a
// checkpoint larger than memory's comfort is never read whole.
import { open, readFile, stat, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../node/safetensors-file.js";
import { fromPretrained as fromPretrainedAnywhere, loadPretrained, savePretrained, type HFFileReader, type Pretrained, type PretrainedOptions } from "./pretrained.js";
import { HFImportError, type HFModel } from "./types.js";

/** A reader over a folder: whole reads for small files, positioned reads for ranges. */
export function folderReader(dir: string): HFFileReader {
  const path = (name: string) => join(dir, name);
  const missing = (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOENT";
  async function readInto(name: string, start: number, buf: Uint8Array): Promise<void> {
    const fh = await open(path(name), "r");
    try {
      const length = buf.length;
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, start + got);
        if (bytesRead === 0) throw new HFImportError(`${path(name)}: file ended at byte ${start + got}, expected ${length} bytes from ${start}`);
        got += bytesRead;
      }
    } finally { await fh.close(); }
  }
  return {
    async readFile(name) {
      try { const b = await readFile(path(name)); return new Uint8Array(b.buffer, b.byteOffset, b.byteLength); }
      catch (e) { if (missing(e)) return null; throw new HFImportError(`cannot read ${path(name)}: ${(e as Error).message}`); }
    },
    async size(name) {
      try { return (await stat(path(name))).size; }
      catch (e) { if (missing(e)) return null; throw new HFImportError(`cannot read ${path(name)}: ${(e as Error).message}`); }
    },
    async readRange(name, start, length) {
      const buf = new Uint8Array(length);
      await readInto(name, start, buf);
      return buf;
    },
    readInto,
  };
}

/** fromPretrained("path/to/hf-folder"): { model, config, tokenizer, … } (see src/hf/pretrained.ts). */
export async function fromPretrainedDir(dir: string, opts: PretrainedOptions = {}): Promise<Pretrained> {
  let st;
  try { st = await stat(dir); } catch { throw new HFImportError(`cannot open ${dir}: no such folder`); }
  if (!st.isDirectory()) throw new HFImportError(`${dir} is not a folder (an HF model is a folder with config.json and model.safetensors)`);
  return loadPretrained(folderReader(dir), opts);
}

/** fromPretrained(dirOrFiles): a folder path, or the files as bytes ({ "config.json": …, "model.safetensors": … }). */
export function fromPretrained(dirOrFiles: string | Parameters<typeof fromPretrainedAnywhere>[0], opts: PretrainedOptions = {}): Promise<Pretrained> {
  return typeof dirOrFiles === "string" ? fromPretrainedDir(dirOrFiles, opts) : fromPretrainedAnywhere(dirOrFiles, opts);
}

/** Write config.json + model.safetensors into dir (created if needed), each file atomically. */
export async function savePretrainedDir(model: HFModel, dir: string, opts: { floatDType?: "F32" | "F16" | "BF16" } = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of savePretrained(model, opts)) await writeFileAtomic(join(dir, name), bytes);
}
