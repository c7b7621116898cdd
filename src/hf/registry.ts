// model_type → architecture family. Registering a family is one line in FAMILIES below.
import { HFImportError, type HFConfig, type HFFamily, type HFModel } from "./types.js";
import { bertFamily } from "./bert.js";
import { gpt2Family } from "./gpt2.js";
import { vitFamily } from "./vit.js";
import { llamaFamily } from "./llama.js";
import { mistralFamily } from "./mistral.js";
import { marianFamily } from "./marian.js";
import { bartFamily } from "./bart.js";
import { t5Family } from "./t5.js";

const FAMILIES: HFFamily[] = [
  bertFamily,
  gpt2Family,
  vitFamily,
  llamaFamily,
  mistralFamily,
  marianFamily,
  bartFamily,
  t5Family,
];

const byType = new Map<string, HFFamily>();
for (const f of FAMILIES) registerFamily(f);

/** Add a family at run time (e.g. from a plugin); its model_types must be new. */
export function registerFamily(f: HFFamily): void {
  for (const t of f.modelTypes) {
    if (byType.has(t) && byType.get(t) !== f) throw new Error(`registerFamily: model_type "${t}" is already registered`);
    byType.set(t, f);
  }
}

export function supportedModelTypes(): string[] { return [...byType.keys()].sort(); }

export function familyFor(config: HFConfig): HFFamily {
  const t = config.model_type;
  if (typeof t !== "string") throw new HFImportError(`config.json: "model_type" is missing (supported: ${supportedModelTypes().join(", ")})`);
  const f = byType.get(t);
  if (!f) throw new HFImportError(`config.json: "model_type" "${t}" is not supported (supported: ${supportedModelTypes().join(", ")})`);
  return f;
}

/** The architecture config.json names (its first "architectures" entry), or the family's first, checked against the family. */
export function architectureFor(config: HFConfig, requested?: string): { family: HFFamily; architecture: string } {
  const family = familyFor(config);
  const archs = config.architectures;
  if (archs !== undefined && (!Array.isArray(archs) || archs.some((a) => typeof a !== "string"))) {
    throw new HFImportError(`config.json: "architectures" must be a list of class names, got ${JSON.stringify(archs)}`);
  }
  const architecture = requested ?? archs?.[0] ?? family.architectures[0];
  if (!family.architectures.includes(architecture)) {
    throw new HFImportError(`config.json: architecture "${architecture}" is not supported for model_type "${config.model_type}" (supported: ${family.architectures.join(", ")})`);
  }
  return { family, architecture };
}

/** A randomly initialised model (HF's init) for a config. */
export function modelFromConfig(config: HFConfig, architecture?: string): HFModel {
  const a = architectureFor(config, architecture);
  return a.family.fromConfig(config, a.architecture);
}
