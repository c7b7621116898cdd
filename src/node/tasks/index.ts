// Task discovery: every other module in this folder that exports `task` is an application; no list to maintain.
import { readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Task } from "../../tasks/task.js";

let cache: Map<string, Task> | null = null;

export async function listTasks(): Promise<Map<string, Task>> {
  if (cache) return cache;
  const dir = dirname(fileURLToPath(import.meta.url));
  const found = new Map<string, Task>();
  const files = readdirSync(dir).filter((f) => f.endsWith(".js") && f !== "index.js").sort();
  for (const f of files) {
    const mod = await import(pathToFileURL(`${dir}/${f}`).href) as { task?: Task };
    if (mod.task && typeof mod.task.name === "string") {
      if (found.has(mod.task.name)) throw new Error(`two task files define the task "${mod.task.name}" (second: ${f})`);
      found.set(mod.task.name, mod.task);
    }
  }
  cache = found;
  return found;
}

export async function findTask(name: string): Promise<Task> {
  const tasks = await listTasks();
  const t = tasks.get(name);
  if (!t) throw new Error(`unknown task "${name}" (available: ${[...tasks.keys()].join(", ") || "none"})`);
  return t;
}
