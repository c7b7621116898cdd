// Node loaders for the datasets shipped by Debian packages (or a user-supplied directory):
//   Fashion-MNIST  — package dataset-fashion-mnist  → /usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz
//   fortunes       — packages fortunes, fortunes-min → /usr/share/games/fortunes/<category>
// Parsing lives in browser-safe src/data/*; this file only does file-system access and gunzip.

import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { buildCharCorpus, buildFortuneDataset, FORTUNE_CATEGORIES, type CharCorpus, type FortuneDataset, type FortuneFile } from "../data/fortunes.js";
import { parseIdx } from "../data/idx.js";
import type { TrainOptions } from "../data/tokenizer.js";
import { FASHION_MNIST_CLASSES } from "../tasks/fashion-vit-model.js";
import { FileReadError, readRegularFileSync } from "./read-file.js";

export { FASHION_MNIST_CLASSES };

export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";
export const FORTUNES_DIR = "/usr/share/games/fortunes";


export interface FashionMnist {
  /** (N_train, 28, 28) row-major pixels 0..255. */
  trainImages: Uint8Array;
  /** (N_train,) labels 0..9. */
  trainLabels: Uint8Array;
  /** (N_test, 28, 28). */
  testImages: Uint8Array;
  /** (N_test,). */
  testLabels: Uint8Array;
  classNames: string[];
  /** [N_train, 28, 28] and [N_test, 28, 28]. */
  trainShape: [number, number, number];
  testShape: [number, number, number];
}

/**
 * Largest data file read (before and after gunzip): Fashion-MNIST's biggest file is 47 MB unpacked, the fortune
 * files are kilobytes. Bounds a device given as --data, or a gzip bomb, to an error instead of exhausting memory.
 */
export const MAX_DATA_FILE_BYTES = 512 * 1024 * 1024;

/** Read a regular file and gunzip it when it starts with the gzip magic (0x1f 0x8b), whatever its name. */
export function readMaybeGzip(path: string, maxBytes = MAX_DATA_FILE_BYTES): Uint8Array {
  const raw = readRegularFileSync(path, "data file", maxBytes);
  if (raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  try {
    const b = gunzipSync(raw, { maxOutputLength: maxBytes });
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileReadError(code === "ERR_BUFFER_TOO_LARGE" ? `data file ${path} unpacks to more than ${maxBytes} bytes (gzip)`
      : `data file ${path} is not valid gzip: ${(e as Error).message}`, { cause: e });
  }
}

/** Locate e.g. "train-images-idx3-ubyte" in dir as .gz or raw, also accepting the "train-images.idx3-ubyte" spelling. */
function findIdx(dir: string, stem: string, idx: string): string | undefined {
  for (const base of [`${stem}-${idx}-ubyte`, `${stem}.${idx}-ubyte`]) {
    for (const name of [`${base}.gz`, base]) {
      const path = join(dir, name);
      if (existsSync(path)) return path;
    }
  }
  return undefined;
}

function missing(what: string, dir: string, pkgs: string, tried: string): Error {
  return new Error(
    `${what} not found in ${dir} (looked for ${tried}). ` +
      `Install it with \`apt-get install ${pkgs}\` (Debian/Ubuntu), or pass a directory holding the files (--data DIR).`,
  );
}

/**
 * Load Fashion-MNIST (60000 train / 10000 test images of 28x28 uint8). `dir` defaults to the Debian
 * package location; files may be gzipped or raw. `maxTrain`/`maxTest` keep only the first N examples.
 */
export function loadFashionMnist(opts: { dir?: string; maxTrain?: number; maxTest?: number } = {}): FashionMnist {
  const dir = opts.dir ?? FASHION_MNIST_DIR;
  const load = (prefix: string, max: number | undefined) => {
    const imgPath = findIdx(dir, `${prefix}-images`, "idx3");
    const lblPath = findIdx(dir, `${prefix}-labels`, "idx1");
    if (!imgPath || !lblPath) {
      throw missing("Fashion-MNIST", dir, "dataset-fashion-mnist", `${prefix}-images-idx3-ubyte[.gz] and ${prefix}-labels-idx1-ubyte[.gz]`);
    }
    const img = parseIdx(readMaybeGzip(imgPath), imgPath);
    const lbl = parseIdx(readMaybeGzip(lblPath), lblPath);
    if (img.dtype !== "uint8" || img.dims.length !== 3 || img.dims[1] !== 28 || img.dims[2] !== 28) {
      throw new Error(`${imgPath}: expected uint8 images of shape (N, 28, 28), got ${img.dtype} [${img.dims.join(", ")}]`);
    }
    if (lbl.dtype !== "uint8" || lbl.dims.length !== 1) {
      throw new Error(`${lblPath}: expected uint8 labels of shape (N,), got ${lbl.dtype} [${lbl.dims.join(", ")}]`);
    }
    if (lbl.dims[0] !== img.dims[0]) {
      throw new Error(`${prefix}: ${img.dims[0]} images but ${lbl.dims[0]} labels (${imgPath}, ${lblPath})`);
    }
    const labels = lbl.data as Uint8Array;
    const bad = labels.findIndex((v) => v > 9);
    if (bad >= 0) throw new Error(`${lblPath}: label[${bad}] = ${labels[bad]} is not a Fashion-MNIST class (0..9)`);
    const n = Math.min(img.dims[0], max ?? Infinity);
    return { images: (img.data as Uint8Array).subarray(0, n * 784), labels: labels.subarray(0, n), n };
  };
  const train = load("train", opts.maxTrain);
  const test = load("t10k", opts.maxTest);
  return {
    trainImages: train.images,
    trainLabels: train.labels,
    testImages: test.images,
    testLabels: test.labels,
    classNames: [...FASHION_MNIST_CLASSES],
    trainShape: [train.n, 28, 28],
    testShape: [test.n, 28, 28],
  };
}

/** True when the Debian Fashion-MNIST files (or those in `dir`) are present. */
export function hasFashionMnist(dir = FASHION_MNIST_DIR): boolean {
  return ["train", "t10k"].every((p) => findIdx(dir, `${p}-images`, "idx3") && findIdx(dir, `${p}-labels`, "idx1"));
}

/** Read fortune files by name (category) from `dir` (default /usr/share/games/fortunes). */
export function readFortuneFiles(names: readonly string[], dir = FORTUNES_DIR): FortuneFile[] {
  const decoder = new TextDecoder("utf-8");
  return names.map((name) => {
    const path = join(dir, name);
    if (!existsSync(path)) throw missing(`fortune file '${name}'`, dir, "fortunes fortunes-min", path);
    return { name, text: decoder.decode(readRegularFileSync(path, "fortune file", MAX_DATA_FILE_BYTES)) };
  });
}

/** Names of all fortune files in `dir`: regular files, skipping the .dat indexes and .u8 links. */
export function listFortuneFiles(dir = FORTUNES_DIR): string[] {
  if (!existsSync(dir)) throw missing("fortune files", dir, "fortunes fortunes-min", dir);
  return readdirSync(dir)
    .filter((n) => !n.endsWith(".dat") && !n.endsWith(".u8") && !n.startsWith("."))
    .filter((n) => statSync(join(dir, n)).isFile())
    .sort();
}

/** True when every default fortune category is present in `dir`. */
export function hasFortunes(dir = FORTUNES_DIR, categories: readonly string[] = FORTUNE_CATEGORIES): boolean {
  return categories.every((c) => existsSync(join(dir, c)));
}

/** The fortune topic-classification dataset (see docs/datasets.md for categories, counts, split rule). */
export function loadFortunes(
  opts: { dir?: string; categories?: readonly string[]; testFraction?: number; minChars?: number } = {},
): FortuneDataset {
  return buildFortuneDataset(readFortuneFiles(opts.categories ?? FORTUNE_CATEGORIES, opts.dir), opts);
}

/** Character-LM corpus over all fortune files in `dir` (or the named `files`). */
export function loadFortuneCharCorpus(
  opts: { dir?: string; files?: readonly string[]; valFraction?: number; keepLines?: boolean; separator?: string; vocab?: TrainOptions } = {},
): CharCorpus {
  const names = opts.files ?? listFortuneFiles(opts.dir);
  return buildCharCorpus(readFortuneFiles(names, opts.dir), opts);
}
