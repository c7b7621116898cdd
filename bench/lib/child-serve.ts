// Child side of lib/child-peer.ts: read one JSON request per stdin line, handle them one at a time in arrival order,
// write `{ id, ...reply }` per line (a thrown error becomes { ok: false, error }); exit when stdin closes.
import { createInterface } from "node:readline";

export function serveRequests<R extends { id: number }>(handle: (req: R) => Promise<Record<string, unknown>>): void {
  const queue: string[] = [];
  let busy = false;
  const pump = async () => {
    if (busy) return;
    busy = true;
    while (queue.length) {
      const req = JSON.parse(queue.shift()!) as R;
      let reply: Record<string, unknown>;
      try { reply = await handle(req); } catch (e) { reply = { ok: false, error: e instanceof Error ? e.message : String(e) }; }
      process.stdout.write(JSON.stringify({ id: req.id, ...reply }) + "\n");
    }
    busy = false;
  };
  const rl = createInterface({ input: process.stdin });
  rl.on("line", (l) => { if (l.trim()) { queue.push(l); void pump(); } });
  rl.on("close", () => process.exit(0)); // the harness is gone or done: nobody reads further replies
}
