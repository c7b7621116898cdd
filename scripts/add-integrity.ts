// Adds the integrity record (src/io/safetensors.ts, INTEGRITY_KEY) to attnflow checkpoints written before it existed,
// in place and atomically, keeping every tensor byte: the tensors are copied as stored (no dtype conversion) and the
// layout rule is the same, so only the header changes. Refuses a file whose tensors would move or change.
//   node dist/scripts/add-integrity.js models/*.safetensors
import { readFileSync } from "node:fs";
import { INTEGRITY_KEY, parseSafetensors, serializeSafetensors } from "../src/io/safetensors.js";
import { writeFileAtomic } from "../src/node/safetensors-file.js";

async function addIntegrity(path: string): Promise<string> {
  const before = parseSafetensors(new Uint8Array(readFileSync(path)), { aligned: true });
  const out = serializeSafetensors(before.tensors, before.metadata, { integrity: true });
  const after = parseSafetensors(out, { aligned: true }); // verifies the new record
  for (const [name, t] of before.tensors) {
    const u = after.tensors.get(name);
    if (!u || u.dtype !== t.dtype || u.shape.join() !== t.shape.join() || Buffer.compare(u.data, t.data) !== 0) {
      throw new Error(`${path}: tensor "${name}" would change; not rewritten`);
    }
  }
  const had = before.metadata[INTEGRITY_KEY] !== undefined;
  await writeFileAtomic(path, out);
  return `${path}: ${had ? "integrity record renewed" : "integrity record added"} (${before.tensors.size} tensors, tensor bytes unchanged)`;
}

const files = process.argv.slice(2);
if (!files.length) {
  console.error("usage: node dist/scripts/add-integrity.js <checkpoint.safetensors>...");
  process.exitCode = 2;
}
for (const f of files) console.log(await addIntegrity(f));
