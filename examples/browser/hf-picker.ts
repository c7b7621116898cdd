// The page's Hugging Face folder picker: the user picks a model folder (input type=file webkitdirectory), its files
// (input type=file multiple) or drops either on the page. This part runs on the page's main thread and only collects
// the File objects (DOM work); the page posts them to its Web Worker (File objects are structured-cloneable: nothing
// is read or copied here), where examples/browser/explainers.ts reads them with fromPretrained by range and builds the
// explainer — predict and every explanation method, nothing uploaded.
// Kinds: sequence classification and ViT image classification (the class probabilities), masked LM (the first
// [MASK]'s top tokens), causal LM and encoder–decoders (greedy output with its probability; explained: the first
// output token).

export interface HFPickerHooks {
  /** The picked or dropped files, and the folder's name. */
  files(files: File[], name: string): void;
  error(e: unknown): void;
}

/** All files of a dropped folder (its top level and sub-folders, by path), or the dropped files. */
async function droppedFiles(dt: DataTransfer): Promise<File[]> {
  const entries = Array.from(dt.items).map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (!entries.length) return Array.from(dt.files);
  const out: File[] = [];
  const walk = async (e: FileSystemEntry): Promise<void> => {
    if (e.isFile) { out.push(await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej))); return; }
    const reader = (e as FileSystemDirectoryEntry).createReader();
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const c of batch) await walk(c);
    }
  };
  for (const e of entries) await walk(e);
  return out;
}

/** The folder's name: the common first path part of webkitRelativePath (or of a dropped folder's entry), else "picked files". */
export function folderName(files: File[], dropped?: string): string {
  if (dropped) return dropped;
  const first = files[0]?.webkitRelativePath?.split("/")[0];
  return first && files.every((f) => f.webkitRelativePath.startsWith(first + "/")) ? first : "picked files";
}

/** Adds the folder picker (folder input, files input, drop zone) to `container`; picked files go to hooks.files. */
export function installHFPicker(container: HTMLElement, hooks: HFPickerHooks): void {
  container.innerHTML = `<p class="hf-picker">or a Hugging Face model folder (config.json, model.safetensors, tokenizer files):
<label>folder <input id="hf-folder" type="file" webkitdirectory multiple></label>
<label>or its files <input id="hf-files" type="file" multiple></label>
<span id="hf-drop" class="hf-drop" style="display:inline-block;border:1px dashed #999;padding:4px 10px;border-radius:4px">or drop it here</span></p>`;
  for (const id of ["hf-folder", "hf-files"]) {
    const el = container.querySelector<HTMLInputElement>(`#${id}`)!;
    el.addEventListener("change", () => { if (el.files?.length) { const f = Array.from(el.files); hooks.files(f, folderName(f)); } });
  }
  // drops anywhere on the page: the browser would otherwise open the dropped file instead
  document.addEventListener("dragover", (e) => { e.preventDefault(); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    if (!e.dataTransfer) return;
    // a single dropped folder names the model
    const entries = Array.from(e.dataTransfer.items).map((i) => i.webkitGetAsEntry?.());
    const dir = entries.length === 1 && entries[0]?.isDirectory ? entries[0].name : undefined;
    droppedFiles(e.dataTransfer).then((f) => { if (f.length) hooks.files(f, folderName(f, dir)); }).catch(hooks.error);
  });
}
