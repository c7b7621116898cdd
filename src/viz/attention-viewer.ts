// The interactive attention viewer of the report and the page (data: src/explain/views.ts). Five views of one
// explained output, all on <canvas> so that 2,048+ positions stay responsive (only visible rows are drawn, long rows
// by their top-k keys; work is cut into animation frames):
//   head view   — queries left, keys right, one line per (query, key, head) weighted by attention, heads as colours;
//                 hover a token to focus it, click to pin; a labelled heatmap of the chosen head below;
//   model view  — every layer × head as a labelled thumbnail; click one to open it in the head view;
//   neuron view — for a head and a query token: q, each key k_j, q ⊙ k_j and the scores scale·q·k_j with their
//                 softmax beside the recorded attention (capture-based, no patched model);
//   flow graph  — attention flow from the explained output down to the inputs, Sankey-like;
//   stacks      — encoder self-, decoder self- and cross-attention of encoder–decoders (a selector).
// The viewer is one self-contained function (no imports, no closure over this module) so that the static report can
// inline it as text: `viewerScript()`. State is mirrored on the root element as data-* attributes (tests read them).
// Browser-safe.

import type { AttentionViews } from "../explain/views.js";

/** Head colours (Tableau 10 + 2), one per head (cycled beyond 12). */
export const HEAD_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"];

export const VIEWER_CSS = `
.afv [hidden]{display:none!important}
.afv{border:1px solid #ddd;background:#fff;border-radius:6px;padding:8px;margin:12px 0;max-width:100%;box-sizing:border-box}
.afv .bar{display:flex;flex-wrap:wrap;gap:6px 10px;align-items:center;margin-bottom:6px}
.afv .tabs button{font:inherit;font-size:13px;padding:4px 10px;margin:0 2px 0 0;border:1px solid #bbb;background:#f4f4f4;border-radius:4px;cursor:pointer}
.afv .tabs button[aria-selected=true]{background:#3b528b;color:#fff;border-color:#3b528b}
.afv select{font:inherit;font-size:13px;max-width:100%}.afv label{font-size:13px;max-width:100%;display:inline-flex;align-items:center;gap:4px;min-width:0}
.afv label select{min-width:0;flex:1 1 auto}
.afv .heads{display:flex;flex-wrap:wrap;gap:4px}.afv .heads button{font:12px ui-monospace,monospace;border:2px solid;border-radius:3px;padding:1px 6px;cursor:pointer;background:#fff}
.afv .heads button[aria-pressed=true]{color:#fff}
.afv .note{color:#666;font-size:12px;margin:4px 0}.afv .warn{background:#fff4e5;border:1px solid #e0a040;padding:4px 8px;border-radius:4px;font-size:13px}
.afv .scroller{position:relative;overflow:auto;max-height:640px;border:1px solid #eee}
.afv .scroller canvas{position:sticky;top:0;left:0;display:block}
.afv .thumbs{display:grid;gap:6px;grid-template-columns:repeat(auto-fill,minmax(84px,1fr))}
.afv .thumbs figure{margin:0;cursor:pointer;text-align:center;font-size:11px;color:#444}
.afv .thumbs figure.sel canvas{outline:3px solid #e15759}
.afv .thumbs canvas{width:100%;aspect-ratio:1;image-rendering:pixelated;border:1px solid #ccc;display:block}
.afv .thumbs .row{grid-column:1/-1;font-size:12px;font-weight:600;margin-top:4px}
.afv .legend{display:flex;flex-wrap:wrap;align-items:center;gap:6px;font-size:12px;color:#444;margin:6px 0}
.afv .legend canvas{height:12px;width:160px;border:1px solid #ccc}
.afv .progress{font-size:12px;color:#555}
`;

/**
 * The viewer: draws `V` into `root`. Self-contained (inlined as text into reports): it may use only its arguments and
 * browser globals. Returns a small handle (used by the page to redraw on resize and by tests).
 */
export function attentionViewer(root: HTMLElement, V: AttentionViews, heads: string[]): { redraw(): void } {
  const dpr = Math.max(1, Math.min(3, window.devicePixelRatio || 1));
  const STOPS = [[20, 24, 56], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const ramp = (t: number): string => {
    t = Math.max(0, Math.min(1, t));
    const x = t * (STOPS.length - 1), i = Math.min(STOPS.length - 2, Math.floor(x)), f = x - i, a = STOPS[i], b = STOPS[i + 1];
    return `rgb(${Math.round(a[0] + (b[0] - a[0]) * f)},${Math.round(a[1] + (b[1] - a[1]) * f)},${Math.round(a[2] + (b[2] - a[2]) * f)})`;
  };
  // diverging: negative blue, positive red
  const div = (t: number): string => {
    t = Math.max(-1, Math.min(1, t));
    const c = t < 0 ? [33, 102, 172] : [178, 24, 43], s = Math.abs(t);
    return `rgb(${Math.round(255 + (c[0] - 255) * s)},${Math.round(255 + (c[1] - 255) * s)},${Math.round(255 + (c[2] - 255) * s)})`;
  };
  const vis = (t: string) => t.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥") || "∅";
  const dec = (s: string): Uint8Array => { const b = atob(s), a = new Uint8Array(b.length); for (let i = 0; i < b.length; i++) a[i] = b.charCodeAt(i); return a; };
  const el = <K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] => {
    const e = document.createElement(tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const headColour = (h: number) => heads[h % heads.length];
  const FONT = "12px ui-monospace,SFMono-Regular,Menlo,monospace";

  // ---- decoded groups (lazily)
  interface G { g: AttentionViews["groups"][number]; idx: Uint16Array | Uint32Array; val: Uint16Array; thumb: Uint8Array; q?: Float32Array; k?: Float32Array }
  const cache: (G | null)[] = V.groups.map(() => null);
  /** Decodes a group's base64 arrays in slices of ~256 K characters, one task each, then calls `done`. */
  const decoded: Record<string, Uint8Array> = {};
  const prepare = (n: number, done: () => void) => {
    if (cache[n]) { done(); return; }
    const g = V.groups[n], parts: [string, string][] = [["i", g.topIdx], ["v", g.topVal], ["t", g.thumb.data]];
    if (g.qk) parts.push(["q", g.qk.q], ["k", g.qk.k]);
    const SLICE = 262144;   // a multiple of 4: slices decode independently
    let p = 0, off = 0, out: Uint8Array | null = null, at = 0;
    const step = () => {
      const t0 = performance.now();
      while (p < parts.length && performance.now() - t0 < 8) {
        const [key, b64] = parts[p];
        if (!out) { const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0; out = new Uint8Array(b64.length / 4 * 3 - pad); at = 0; }
        const chunk = dec(b64.slice(off, off + SLICE));
        out.set(chunk, at); at += chunk.length; off += SLICE;
        if (off >= b64.length) { decoded[`${n}:${key}`] = out; out = null; off = 0; p++; }
      }
      if (p < parts.length) setTimeout(step, 0); else { group(n); done(); }
    };
    step();
  };
  const group = (n: number): G => {
    if (cache[n]) return cache[n]!;
    const g = V.groups[n], take = (k: string, s: string) => { const d = decoded[`${n}:${k}`] ?? dec(s); delete decoded[`${n}:${k}`]; return d; };
    const ib = take("i", g.topIdx), vb = take("v", g.topVal);
    const G: G = {
      g, idx: g.idxBytes === 2 ? new Uint16Array(ib.buffer, 0, ib.length / 2) : new Uint32Array(ib.buffer, 0, ib.length / 4),
      val: new Uint16Array(vb.buffer, 0, vb.length / 2), thumb: take("t", g.thumb.data),
    };
    if (g.qk) { const q = take("q", g.qk.q), k = take("k", g.qk.k); G.q = new Float32Array(q.buffer, 0, q.length / 4); G.k = new Float32Array(k.buffer, 0, k.length / 4); }
    return (cache[n] = G);
  };

  // ---- state
  const st = { view: "head", group: V.explained, layer: 0, heads: [] as boolean[], focus: -1, focusSide: "q" as "q" | "k", pinned: false, nHead: 0, query: 0, headScroll: 0 };
  const resetHeads = () => { const g = V.groups[st.group]; st.heads = Array.from({ length: g.heads }, () => true); st.nHead = 0; st.layer = Math.min(st.layer, g.layers - 1); st.focus = -1; st.pinned = false; st.query = Math.min(st.query, g.rowTokens.length - 1); st.headScroll = 0; };
  resetHeads();
  const mirror = () => {
    root.dataset.view = st.view; root.dataset.group = String(st.group); root.dataset.layer = String(st.layer);
    root.dataset.heads = st.heads.map((x, h) => (x ? h : -1)).filter((h) => h >= 0).join(",");
    root.dataset.focus = String(st.focus); root.dataset.focusSide = st.focusSide; root.dataset.pinned = st.pinned ? "1" : "0";
    root.dataset.neuronHead = String(st.nHead); root.dataset.query = String(st.query);
  };

  // ---- frame
  root.classList.add("afv");
  root.textContent = "";
  const bar = el("div", { class: "bar" });
  const tabs = el("div", { class: "tabs", role: "tablist" });
  const views: [string, string][] = [["head", "Head view"], ["model", "Model view"], ["neuron", "Neuron view"], ["flow", "Flow graph"]];
  const tabButtons: Record<string, HTMLButtonElement> = {};
  for (const [id, name] of views) {
    const b = el("button", { role: "tab", "data-view": id, "aria-selected": "false" }, name);
    b.addEventListener("click", () => { st.view = id; render(); });
    tabButtons[id] = b; tabs.append(b);
  }
  bar.append(tabs);
  const groupSel = el("select", { "aria-label": "attention stack" });
  V.groups.forEach((g, i) => groupSel.append(el("option", { value: String(i) }, `${g.title}${i === V.explained && V.groups.length > 1 ? " (explained)" : ""} · ${g.layers}×${g.heads}`)));
  groupSel.value = String(st.group);
  groupSel.addEventListener("change", () => { st.group = +groupSel.value; resetHeads(); render(); });
  const groupLabel = el("label", {}, "Stack ");
  groupLabel.append(groupSel);
  if (V.groups.length > 1) bar.append(groupLabel);
  const layerSel = el("select", { "aria-label": "layer" });
  const layerLabel = el("label", {}, "Layer ");
  layerLabel.append(layerSel);
  layerSel.addEventListener("change", () => { st.layer = +layerSel.value; render(); });
  bar.append(layerLabel);
  root.append(bar);
  const notes = el("div");
  if (V.truncation) notes.append(el("p", { class: "warn", role: "alert" }, `Input truncated: ${V.truncation.total} tokens, the model reads at most ${V.truncation.kept}; ${V.truncation.dropped} dropped from the ${V.truncation.from}. Only the kept positions are shown.`));
  else if (V.maxPositions) notes.append(el("p", { class: "note" }, `This model reads at most ${V.maxPositions} positions.`));
  for (const n of V.notes) notes.append(el("p", { class: "note" }, n));
  root.append(notes);
  const panel = el("div");
  root.append(panel);

  let frameJob = 0;
  /** Runs `steps` across animation frames, ~8 ms of work per frame (the main thread never blocks long). */
  const inFrames = (steps: (() => void)[], done?: () => void) => {
    const job = ++frameJob;
    let i = 0;
    const tick = () => {
      if (job !== frameJob) return;
      const t0 = performance.now();
      while (i < steps.length && performance.now() - t0 < 8) steps[i++]();
      if (i < steps.length) requestAnimationFrame(tick); else done?.();
    };
    tick();
  };

  const width = () => Math.max(280, Math.floor(panel.clientWidth || root.clientWidth || 320));
  const sized = (c: HTMLCanvasElement, w: number, h: number) => {
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); c.style.width = w + "px"; c.style.height = h + "px";
    const x = c.getContext("2d")!; x.setTransform(dpr, 0, 0, dpr, 0, 0); return x;
  };
  const legendRamp = (label: string, lo: string, hi: string, f: (t: number) => string) => {
    const d = el("div", { class: "legend" }), c = el("canvas");
    c.width = 160; c.height = 12;
    const x = c.getContext("2d")!;
    for (let i = 0; i < 160; i++) { x.fillStyle = f(i / 159); x.fillRect(i, 0, 1, 12); }
    d.append(el("span", {}, label), el("span", {}, lo), c, el("span", {}, hi));
    return d;
  };
  const headButtons = (onChange: () => void, single = false) => {
    const g = V.groups[st.group], d = el("div", { class: "heads legend" });
    d.append(el("span", {}, single ? "Head:" : "Heads (colours; click to toggle, double-click for one):"));
    const box = el("div", { class: "heads" });
    for (let h = 0; h < g.heads; h++) {
      const on = single ? st.nHead === h : st.heads[h];
      const b = el("button", { "data-head": String(h), "aria-pressed": String(on), style: `border-color:${headColour(h)};${on ? `background:${headColour(h)}` : `color:${headColour(h)}`}` }, String(h));
      b.addEventListener("click", () => { if (single) st.nHead = h; else st.heads[h] = !st.heads[h]; onChange(); });
      b.addEventListener("dblclick", () => { if (!single) { st.heads = st.heads.map((_, k) => k === h); onChange(); } });
      box.append(b);
    }
    d.append(box);
    return d;
  };

  // ---- head view
  const headView = () => {
    const G = group(st.group), g = G.g, Tq = g.rowTokens.length, Tk = g.colTokens.length, K = g.k, H = g.heads, l = st.layer;
    panel.append(headButtons(() => render()));
    const cov = Math.min(...g.coverage[l]);
    panel.append(el("p", { class: "note" }, `${g.exact ? "All" : `The top ${K} of ${Tk}`} keys of each query${g.exact ? "" : ` (they hold ≥ ${(100 * cov).toFixed(1)} % of each row's attention in this layer)`}; ` +
      "line opacity = attention weight. Hover a token to focus it, click to pin (click again to release). Left: queries, right: keys."));
    const sc = el("div", { class: "scroller", "data-role": "head-scroller" });
    const n = Math.max(Tq, Tk), ROW = n <= 24 ? 24 : 16, Hpx = Math.min(640, n * ROW + 8);
    root.dataset.rowHeight = String(ROW);
    const tw = Math.min(150, Math.floor(width() * 0.3)), W = Math.min(width(), 2 * tw + 420);
    sc.style.height = Hpx + "px";
    const canvas = el("canvas", { "data-role": "head-canvas" });
    const spacer = el("div", { style: `height:${Math.max(0, n * ROW + 8 - Hpx)}px` });
    sc.append(canvas, spacer);
    panel.append(sc);
    sc.scrollTop = st.headScroll;   // kept across redraws (resize, head toggles)
    const ctx = sized(canvas, W - 2, Hpx);
    sc.style.width = (W - 2) + "px";
    const xL = tw, xR = W - 2 - tw;
    const draw = () => {
      const t0 = performance.now();
      try { drawHead(); } finally { root.dataset.drawMs = (performance.now() - t0).toFixed(1); }
    };
    const drawHead = () => {
      const top = sc.scrollTop, first = Math.max(0, Math.floor(top / ROW) - 1), last = Math.min(n - 1, Math.ceil((top + Hpx) / ROW));
      ctx.clearRect(0, 0, W, Hpx);
      const y = (i: number) => 4 + i * ROW + ROW / 2 - top;
      // lines: focused token only, else every visible query row
      let lines = 0;
      const keyW = new Float32Array(Tk), rowW = new Float32Array(Tq);
      ctx.lineWidth = 1.5;
      // lines are batched into one path per (head, opacity step): a few dozen strokes however many lines
      const STEPS = 12, paths: Path2D[][] = st.heads.map(() => []);
      const line = (i: number, j: number, w: number, h: number) => {
        const b = Math.min(STEPS - 1, Math.floor(Math.min(1, w * 1.2) * STEPS));
        const p = paths[h][b] ??= new Path2D();
        p.moveTo(xL + 4, y(i)); p.lineTo(xR - 4, y(j)); lines++;
      };
      const stroke = () => paths.forEach((ps, h) => ps.forEach((p, b) => { if (p) { ctx.strokeStyle = headColour(h); ctx.globalAlpha = (b + 0.5) / STEPS; ctx.stroke(p); } }));
      const on = st.heads.map((x, h) => (x ? h : -1)).filter((h) => h >= 0);
      if (st.focus >= 0 && st.focusSide === "k") {
        // which queries look at key `focus`: scan the rows' kept keys
        for (let i = 0; i < Tq; i++) for (const h of on) {
          const o = ((l * H + h) * Tq + i) * K;
          for (let t = 0; t < K; t++) if (G.idx[o + t] === st.focus) { const w = G.val[o + t] / 65535; rowW[i] = Math.max(rowW[i], w); if (w > 0.004) line(i, st.focus, w, h); }
        }
      } else {
        const rows = st.focus >= 0 ? [st.focus] : [];
        if (st.focus < 0) for (let i = first; i <= Math.min(last, Tq - 1); i++) rows.push(i);
        for (const i of rows) for (const h of on) {
          const o = ((l * H + h) * Tq + i) * K;
          for (let t = 0; t < K; t++) { const w = G.val[o + t] / 65535; if (w < 0.004) break; if (st.focus >= 0) keyW[G.idx[o + t]] = Math.max(keyW[G.idx[o + t]], w); line(i, G.idx[o + t], w, h); }
        }
      }
      stroke();
      ctx.globalAlpha = 1;
      ctx.font = FONT; ctx.textBaseline = "middle";
      for (let i = first; i <= last; i++) {
        if (i < Tq) {
          const f = st.focus === i && st.focusSide === "q", w = rowW[i];
          if (f || w > 0) { ctx.fillStyle = f ? "#3b528b" : `rgba(59,82,139,${Math.min(1, w)})`; ctx.fillRect(2, y(i) - ROW / 2 + 1, tw - 4, ROW - 2); }
          ctx.fillStyle = f || w > 0.5 ? "#fff" : "#222"; ctx.textAlign = "right";
          ctx.fillText(clip(ctx, vis(g.rowTokens[i]), tw - 10), tw - 6, y(i));
        }
        if (i < Tk) {
          const f = st.focus === i && st.focusSide === "k", w = keyW[i];
          if (f || w > 0) { ctx.fillStyle = f ? "#3b528b" : `rgba(59,82,139,${Math.min(1, w)})`; ctx.fillRect(xR + 2, y(i) - ROW / 2 + 1, tw - 4, ROW - 2); }
          ctx.fillStyle = f || w > 0.5 ? "#fff" : "#222"; ctx.textAlign = "left";
          ctx.fillText(clip(ctx, vis(g.colTokens[i]), tw - 10), xR + 6, y(i));
        }
      }
      // partners scrolled out of view (long inputs): named in a box at the top or bottom edge of their column
      const offscreen = (w: Float32Array, labels: string[], x: number, align: CanvasTextAlign) => {
        const above: number[] = [], below: number[] = [];
        w.forEach((v, j) => { if (v > 0 && j < first + 1) above.push(j); else if (v > 0 && j > last - 1) below.push(j); });
        const box = (js: number[], yy: number, arrow: string) => {
          if (!js.length) return;
          js.sort((a, b) => w[b] - w[a]);
          const text = clip(ctx, `${arrow} ${js.length}: ${js.slice(0, 3).map((j) => `${vis(labels[j])} ${w[j].toFixed(2)}`).join(", ")}`, tw - 8);
          ctx.fillStyle = "#fff4e5"; ctx.fillRect(x - (align === "right" ? tw - 4 : 0), yy - ROW / 2, tw - 4, ROW);
          ctx.fillStyle = "#8a4b00"; ctx.textAlign = align; ctx.fillText(text, x + (align === "right" ? -4 : 4), yy);
        };
        box(above, ROW / 2, "↑"); box(below, Hpx - ROW / 2, "↓");
        return above.length + below.length;
      };
      let off = 0;
      if (st.focus >= 0 && st.focusSide === "q") off = offscreen(keyW, g.colTokens, xR + 2, "left");
      if (st.focus >= 0 && st.focusSide === "k") off = offscreen(rowW, g.rowTokens, tw - 2, "right");
      root.dataset.offscreen = String(off);
      root.dataset.lines = String(lines);
      root.dataset.visibleRows = `${first}-${last}`;
    };
    let pending = false;
    const redraw = () => { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } };
    sc.addEventListener("scroll", () => { st.headScroll = sc.scrollTop; redraw(); });
    const hit = (ev: MouseEvent): { side: "q" | "k"; i: number } | null => {
      const r = canvas.getBoundingClientRect(), x = ev.clientX - r.left, yy = ev.clientY - r.top + sc.scrollTop - 4, i = Math.floor(yy / ROW);
      if (x < tw && i >= 0 && i < Tq) return { side: "q", i };
      if (x > xR && i >= 0 && i < Tk) return { side: "k", i };
      return null;
    };
    canvas.addEventListener("mousemove", (ev) => {
      if (st.pinned) return;
      const h = hit(ev), f = h ? h.i : -1, s = h ? h.side : "q";
      if (f !== st.focus || s !== st.focusSide) { st.focus = f; st.focusSide = s; mirror(); redraw(); }
    });
    // keyboard: ↑/↓ move a pinned query focus (scrolling it into view), Escape releases it
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `head view of layer ${l}: ${Tq} queries, ${Tk} keys. Arrow keys move the focused query; Escape releases it.`);
    canvas.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") { st.pinned = false; st.focus = -1; }
      else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        const i = Math.max(0, Math.min(Tq - 1, (st.focusSide === "q" && st.focus >= 0 ? st.focus : -1) + (ev.key === "ArrowDown" ? 1 : -1) + (st.focus < 0 && ev.key === "ArrowUp" ? 1 : 0)));
        st.focus = i; st.focusSide = "q"; st.pinned = true; st.query = i;
        if (i * ROW < sc.scrollTop) sc.scrollTop = i * ROW; else if ((i + 2) * ROW > sc.scrollTop + Hpx) sc.scrollTop = (i + 2) * ROW - Hpx;
      } else return;
      ev.preventDefault(); mirror(); redraw(); heatFocus?.(st.focus);
    });
    canvas.addEventListener("mouseleave", () => { if (!st.pinned && st.focus >= 0) { st.focus = -1; mirror(); redraw(); } });
    canvas.addEventListener("click", (ev) => {
      const h = hit(ev);
      if (!h || (st.pinned && h.i === st.focus && h.side === st.focusSide)) { st.pinned = false; st.focus = -1; }
      else { st.pinned = true; st.focus = h.i; st.focusSide = h.side; if (h.side === "q") st.query = h.i; }
      mirror(); redraw(); heatFocus?.(st.focus);
    });
    draw();
    // the labelled heatmap of one head (the first selected), or of the mean of the selected heads: a task later
    const slot = el("div");
    panel.append(slot);
    const job = frameJob;
    setTimeout(() => { if (job === frameJob) slot.append(heatmap(G, on())); }, 0);
  };
  const on = () => st.heads.map((x, h) => (x ? h : -1)).filter((h) => h >= 0);
  const clip = (ctx: CanvasRenderingContext2D, s: string, w: number) => {
    if (ctx.measureText(s).width <= w) return s;
    while (s.length > 1 && ctx.measureText(s + "…").width > w) s = s.slice(0, -1);
    return s + "…";
  };

  /** Token-labelled heatmap (rows = queries, columns = keys) of the mean of heads `hs` in the current layer; virtualised. */
  /** Set by the heatmap: follows the head view's pinned query (scrolls to it, outlines its row). */
  let heatFocus: ((i: number) => void) | null = null;
  const heatmap = (G: G, hs: number[]) => {
    const g = G.g, Tq = g.rowTokens.length, Tk = g.colTokens.length, K = g.k, H = g.heads, l = st.layer;
    const box = el("div", { "data-role": "heatmap" });
    box.append(el("h4", { style: "margin:10px 0 4px;font-size:13px" }, `Layer ${l}, ${hs.length === 1 ? `head ${hs[0]}` : hs.length === H ? "mean of all heads" : `mean of heads ${hs.join(", ")}`}: rows = queries, columns = keys`));
    box.append(legendRamp("attention", "0", "the map's max", ramp));
    const C = Tk <= 40 ? 20 : 14, W = width();
    // labels are monospace: the longest label's length times one character's width (no per-label measuring)
    const mctx = document.createElement("canvas").getContext("2d")!;
    mctx.font = "11px ui-monospace,monospace";
    let chars = 0;
    for (const t of g.rowTokens) chars = Math.max(chars, t.length);
    for (const t of g.colTokens) chars = Math.max(chars, t.length);
    const lab = Math.max(30, Math.min(100, Math.ceil(chars * mctx.measureText("M").width) + 12));
    const sc = el("div", { class: "scroller" });
    const Hpx = Math.min(560, lab + Tq * C + 4), Wpx = Math.min(W - 2, lab + Tk * C + 4);
    sc.style.height = Hpx + "px"; sc.style.width = Wpx + "px";
    const canvas = el("canvas");
    sc.append(canvas, el("div", { style: `width:${lab + Tk * C + 4}px;height:${lab + Tq * C + 4}px;margin-top:${-Hpx}px` }));
    box.append(sc);
    const ctx = sized(canvas, Wpx, Hpx);
    let mx = 0;
    const cellVal = (i: number, t: number, h: number) => G.val[((l * H + h) * Tq + i) * K + t] / 65535;
    for (const h of hs) for (let i = 0; i < Tq; i++) mx = Math.max(mx, cellVal(i, 0, h) / hs.length);
    const row = new Float32Array(Tk);
    const draw = () => {
      const sx = sc.scrollLeft, sy = sc.scrollTop;
      ctx.clearRect(0, 0, Wpx, Hpx);
      const i0 = Math.max(0, Math.floor(sy / C)), i1 = Math.min(Tq - 1, Math.ceil((sy + Hpx) / C));
      const j0 = Math.max(0, Math.floor(sx / C)), j1 = Math.min(Tk - 1, Math.ceil((sx + Wpx) / C));
      ctx.fillStyle = ramp(0); ctx.fillRect(lab, lab, Math.min(Wpx - lab, Tk * C - sx), Math.min(Hpx - lab, Tq * C - sy));
      for (let i = i0; i <= i1; i++) {
        row.fill(0);
        for (const h of hs) { const o = ((l * H + h) * Tq + i) * K; for (let t = 0; t < K; t++) row[G.idx[o + t]] += G.val[o + t] / 65535 / hs.length; }
        for (let j = j0; j <= j1; j++) {
          const x = lab + j * C - sx, yy = lab + i * C - sy;
          if (x + C <= lab || yy + C <= lab) continue;
          ctx.fillStyle = ramp(mx > 0 ? row[j] / mx : 0); ctx.fillRect(x, yy, C - 1, C - 1);
          if (C >= 18 && row[j] >= 0.005) { ctx.fillStyle = row[j] / mx > 0.6 ? "#000" : "#fff"; ctx.font = "9px ui-monospace,monospace"; ctx.textAlign = "center"; ctx.textBaseline = "middle"; ctx.fillText(row[j].toFixed(2).slice(1), x + C / 2, yy + C / 2); }
        }
      }
      if (st.pinned && st.focusSide === "q" && st.focus >= i0 && st.focus <= i1) {
        ctx.strokeStyle = "#e15759"; ctx.lineWidth = 2; ctx.strokeRect(lab, lab + st.focus * C - sy, Math.min(Wpx - lab, Tk * C - sx), C - 1);
      }
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, lab, Hpx); ctx.fillRect(0, 0, Wpx, lab);
      ctx.fillStyle = "#222"; ctx.font = "11px ui-monospace,monospace"; ctx.textBaseline = "middle";
      ctx.textAlign = "right";
      for (let i = i0; i <= i1; i++) { const yy = lab + i * C - sy + C / 2; if (yy > lab) ctx.fillText(clip(ctx, vis(g.rowTokens[i]), lab - 8), lab - 4, yy); }
      ctx.save(); ctx.textAlign = "left";
      for (let j = j0; j <= j1; j++) {
        const x = lab + j * C - sx + C / 2; if (x <= lab) continue;
        ctx.save(); ctx.translate(x, lab - 4); ctx.rotate(-Math.PI / 2); ctx.fillText(clip(ctx, vis(g.colTokens[j]), lab - 8), 0, 0); ctx.restore();
      }
      ctx.restore();
    };
    // the canvas stays in view (sticky), the spacer gives the scroll range
    canvas.style.position = "sticky";
    let pending = false;
    const later = () => { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } };
    sc.addEventListener("scroll", later);
    heatFocus = (i) => { if (i >= 0 && (i * C < sc.scrollTop || (i + 1) * C > sc.scrollTop + Hpx - lab)) sc.scrollTop = Math.max(0, i * C - (Hpx - lab) / 2); later(); };
    draw();
    return box;
  };

  // ---- model view
  const modelView = () => {
    const G = group(st.group), g = G.g, tr = g.thumb.rows, tc = g.thumb.cols;
    panel.append(el("p", { class: "note" }, `Every layer × head of the ${g.title}: rows = queries, columns = keys${tr < g.rowTokens.length || tc < g.colTokens.length ? ` (${g.rowTokens.length}×${g.colTokens.length} shown as ${tr}×${tc}: each cell the max of its block)` : ""}; each thumbnail scaled to its own largest weight. Click one to open it in the head view.`));
    panel.append(legendRamp("attention", "0", "head's max", ramp));
    const grid = el("div", { class: "thumbs", "data-role": "thumbs" });
    // one row per layer when the heads fit (≥ 56 px each), else a divisor of the head count: no lonely thumbnails
    let cols = Math.max(1, Math.min(g.heads, Math.floor((width() - 10) / 62)));
    while (g.heads % cols) cols--;
    grid.style.gridTemplateColumns = `repeat(${cols},minmax(0,150px))`;
    panel.append(grid);
    const steps: (() => void)[] = [];
    for (let l = 0; l < g.layers; l++) {
      grid.append(el("div", { class: "row" }, `Layer ${l}${g.layerNames[l] ? ` · ${g.layerNames[l]}` : ""}`));
      for (let h = 0; h < g.heads; h++) {
        const f = el("figure", { "data-layer": String(l), "data-head": String(h), title: `layer ${l}, head ${h} (max ${g.thumb.max[l][h].toPrecision(3)})` });
        if (l === st.layer && on().length === 1 && on()[0] === h) f.classList.add("sel");
        const c = el("canvas");
        c.width = tc; c.height = tr;
        f.append(c, el("figcaption", {}, g.heads === 1 ? `L${l}` : `L${l} H${h}`));
        f.addEventListener("click", () => { st.layer = l; st.heads = st.heads.map((_, k) => k === h); st.nHead = h; st.view = "head"; render(); });
        grid.append(f);
        steps.push(() => {
          const x = c.getContext("2d")!, img = x.createImageData(tc, tr), o = (l * g.heads + h) * tr * tc;
          for (let p = 0; p < tr * tc; p++) {
            const t = G.thumb[o + p] / 255, s = Math.max(0, Math.min(1, t)) * 4, i = Math.min(3, Math.floor(s)), fr = s - i, a = STOPS[i], b = STOPS[i + 1];
            img.data[4 * p] = a[0] + (b[0] - a[0]) * fr; img.data[4 * p + 1] = a[1] + (b[1] - a[1]) * fr; img.data[4 * p + 2] = a[2] + (b[2] - a[2]) * fr; img.data[4 * p + 3] = 255;
          }
          x.putImageData(img, 0, 0);
        });
      }
    }
    inFrames(steps, () => { root.dataset.thumbs = String(steps.length); });
  };

  // ---- neuron view
  const neuronView = () => {
    const G = group(st.group), g = G.g, Tq = g.rowTokens.length, Tk = g.colTokens.length, H = g.heads, l = st.layer, h = st.nHead;
    if (!g.qk || !G.q || !G.k) { panel.append(el("p", { class: "warn" }, `No neuron view for this stack: ${g.qkNote ?? "no queries and keys recorded"}.`)); return; }
    panel.append(headButtons(() => render(), true));
    const qs = el("select", { "aria-label": "query token", "data-role": "query" });
    const step = Math.max(1, Math.ceil(Tq / 4096));
    for (let i = 0; i < Tq; i += step) qs.append(el("option", { value: String(i) }, `${i}: ${vis(g.rowTokens[i])}`));
    qs.value = String(st.query);
    qs.addEventListener("change", () => { st.query = +qs.value; render(); });
    const ql = el("label", {}, "Query token ");
    ql.append(qs);
    panel.append(ql);
    const D = g.qk.dim, i = st.query, q = G.q.subarray(((l * H + h) * Tq + i) * D, ((l * H + h) * Tq + i + 1) * D);
    const scores = new Float64Array(Tk);
    let smax = -Infinity;
    for (let j = 0; j < Tk; j++) {
      const k = G.k.subarray(((l * H + h) * Tk + j) * D, ((l * H + h) * Tk + j + 1) * D);
      let s = 0; for (let d = 0; d < D; d++) s += q[d] * k[d];
      scores[j] = s * g.qk.scale; if (scores[j] > smax) smax = scores[j];
    }
    // the recorded weights of this row (kept keys) beside the softmax of the plain scores
    const rec = new Float32Array(Tk), o = ((l * H + h) * Tq + i) * g.k;
    for (let t = 0; t < g.k; t++) rec[G.idx[o + t]] = G.val[o + t] / 65535;
    const masked = g.causal ? (j: number) => j > i + (Tk - Tq) : () => false;
    let z = 0; const soft = new Float64Array(Tk);
    for (let j = 0; j < Tk; j++) if (!masked(j)) { soft[j] = Math.exp(scores[j] - smax); z += soft[j]; }
    for (let j = 0; j < Tk; j++) soft[j] /= z;
    let amax = 0;
    for (let j = 0; j < Tk; j++) { const kk = G.k.subarray(((l * H + h) * Tk + j) * D, ((l * H + h) * Tk + j + 1) * D); for (let d = 0; d < D; d++) amax = Math.max(amax, Math.abs(q[d] * kk[d]), Math.abs(kk[d])); }
    for (let d = 0; d < D; d++) amax = Math.max(amax, Math.abs(q[d]));
    panel.append(el("p", { class: "note" }, `Layer ${l}, head ${h}, query ${i} "${vis(g.rowTokens[i])}": score_j = ${g.qk.scale.toPrecision(4)} · Σ_d q_d·k_jd; ` +
      `softmax over the scores${g.causal ? " of the visible keys (causal)" : ""} beside the recorded attention${g.qk.bias ? ` (the module also adds ${g.qk.bias}, so the two may differ)` : ""}. D = ${D}.`));
    panel.append(legendRamp("vector value", `−${amax.toPrecision(2)}`, `+${amax.toPrecision(2)}`, (t) => div(2 * t - 1)));
    // narrow screens: the numbers go on a line of their own under each key's vectors
    const W = width(), narrow = W < 640, lab = Math.min(110, Math.floor(W * 0.25)), num = narrow ? 0 : 190;
    const cell = Math.max(2, Math.min(14, Math.floor((W - lab - num - 30) / (2 * D + 1))));
    const band = Math.max(14, Math.min(18, cell + 4)), rowH = narrow ? band + 14 : band, n = Tk + 2, Hpx = Math.min(600, n * rowH + 24);
    const sc = el("div", { class: "scroller", "data-role": "neuron-scroller" });
    sc.style.height = Hpx + "px";
    const canvas = el("canvas", { "data-role": "neuron-canvas" });
    sc.append(canvas, el("div", { style: `height:${Math.max(0, n * rowH + 24 - Hpx)}px` }));
    panel.append(sc);
    const ctx = sized(canvas, W - 2, Hpx);
    const xk = lab + 4, xp = xk + D * cell + 10, xs = narrow ? xk : xp + D * cell + 10, ys = narrow ? band + 6 : rowH / 2;
    const y0top = (top: number) => 20 - top;
    const draw = () => {
      const top = sc.scrollTop;
      ctx.clearRect(0, 0, W, Hpx);
      ctx.font = "11px ui-monospace,monospace"; ctx.textBaseline = "middle"; ctx.fillStyle = "#333"; ctx.textAlign = "left";
      ctx.fillText("k_j", xk, 8); ctx.fillText("q ⊙ k_j", xp, 8);
      if (!narrow) ctx.fillText("score · softmax · recorded", xs, 8);
      else { ctx.textAlign = "right"; ctx.fillText("numbers: score · softmax · recorded", W - 8, y0top(top) + rowH + band / 2); ctx.textAlign = "left"; }
      const y0 = y0top(top);
      // the query vector on top
      ctx.textAlign = "right"; ctx.fillText(`q: ${clip(ctx, vis(g.rowTokens[i]), lab - 24)}`, lab, y0 + rowH / 2);
      for (let d = 0; d < D; d++) { ctx.fillStyle = div(q[d] / amax); ctx.fillRect(xk + d * cell, y0 + 1, cell - 1, band - 3); }
      const first = Math.max(0, Math.floor((top - 20) / rowH) - 2), last = Math.min(Tk - 1, Math.ceil((top + Hpx) / rowH));
      for (let j = first; j <= last; j++) {
        const yy = y0 + (j + 2) * rowH;
        const kk = G.k!.subarray(((l * H + h) * Tk + j) * D, ((l * H + h) * Tk + j + 1) * D);
        ctx.fillStyle = masked(j) ? "#aaa" : "#222"; ctx.textAlign = "right";
        ctx.fillText(clip(ctx, `${j} ${vis(g.colTokens[j])}`, lab - 4), lab, yy + band / 2);
        for (let d = 0; d < D; d++) {
          ctx.fillStyle = div(kk[d] / amax); ctx.fillRect(xk + d * cell, yy + 1, cell - 1, band - 3);
          ctx.fillStyle = div(q[d] * kk[d] / amax); ctx.fillRect(xp + d * cell, yy + 1, cell - 1, band - 3);
        }
        ctx.textAlign = "left"; ctx.fillStyle = "#222";
        ctx.fillText(masked(j) ? "masked" : `${scores[j].toFixed(2)} · ${soft[j].toFixed(3)} · ${rec[j].toFixed(3)}`, xs, yy + ys);
        ctx.fillStyle = "rgba(59,82,139,.35)"; ctx.fillRect(xs, yy + rowH - 3, Math.max(0, W - xs - 8) * rec[j], 2);
      }
    };
    let pending = false;
    sc.addEventListener("scroll", () => { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } });
    draw();
    // for tests: the largest |softmax − recorded| over the kept keys
    let gap = 0; for (let t = 0; t < g.k; t++) gap = Math.max(gap, Math.abs(soft[G.idx[o + t]] - G.val[o + t] / 65535));
    root.dataset.neuronGap = gap.toExponential(2);
  };

  // ---- flow graph
  const flowView = () => {
    const F = V.flow;
    if (!F) { panel.append(el("p", { class: "warn" }, "No flow graph: it is drawn for explanations with attention flow on at most 256 positions (see the notes above).")); return; }
    const T = F.tokens.length, L = F.layers, W = Math.min(width(), 260 + 220 * L), lab = Math.min(130, Math.floor(W * 0.27));
    panel.append(el("p", { class: "note" }, `Attention flow from ${F.source} (right) down to the input tokens (left), through every layer of the explained stack. ` +
      "Bar height: flow from the output to that node (Abnar & Zuidema: max-flow on the head-averaged graph with residual 0.5), per layer summing to 1. " +
      `Band width: a node's flow split along its attention to the layer below (top ${6} per node).${F.note ? " " + F.note + "." : ""}`));
    panel.append(legendRamp("flow", "0", "1", ramp));
    const rowH = T > 64 ? 12 : T > 24 ? 18 : 26, Hpx = T * rowH + 30;
    const canvas = el("canvas", { "data-role": "flow-canvas" });
    panel.append(canvas);
    const ctx = sized(canvas, W - 2, Hpx);
    const x0 = lab + 6, x1 = W - 2 - lab - 6, colX = (l: number) => x0 + (x1 - x0) * l / L, y = (i: number) => 22 + i * rowH + rowH / 2;
    ctx.font = "11px ui-monospace,monospace"; ctx.textBaseline = "middle"; ctx.fillStyle = "#555"; ctx.textAlign = "center";
    for (let l = 0; l <= L; l++) ctx.fillText(l === 0 ? "input" : l === L ? "output" : `L${l}`, colX(l), 8);
    let emax = 0; for (const e of F.edges) emax = Math.max(emax, e[3]);
    for (const [l, i, j, w] of F.edges) {
      const xa = colX(l + 1) - 3, xb = colX(l) + 3, ya = y(i), yb = y(j), mid = (xa + xb) / 2;
      ctx.strokeStyle = ramp(0.25 + 0.75 * w / emax); ctx.globalAlpha = 0.35 + 0.5 * w / emax;
      ctx.lineWidth = Math.max(0.5, (rowH - 2) * w / emax);
      ctx.beginPath(); ctx.moveTo(xa, ya); ctx.bezierCurveTo(mid, ya, mid, yb, xb, yb); ctx.stroke();
    }
    ctx.globalAlpha = 1;
    for (let l = 0; l <= L; l++) {
      const col = F.nodes[l], m = Math.max(...col);
      for (let i = 0; i < T; i++) {
        const v = col[i], hgt = Math.max(1, (rowH - 2) * (m > 0 ? v / m : 0));
        ctx.fillStyle = ramp(m > 0 ? v / m : 0); ctx.fillRect(colX(l) - 3, y(i) - hgt / 2, 6, hgt);
      }
    }
    ctx.fillStyle = "#222"; ctx.textAlign = "right";
    for (let i = 0; i < T; i++) ctx.fillText(`${clip(ctx, vis(F.tokens[i]), lab - 40)} ${F.nodes[0][i].toFixed(2)}`, lab, y(i));
    ctx.textAlign = "left";
    for (let i = 0; i < T; i++) if (F.nodes[L][i] > 0) ctx.fillText(`${clip(ctx, vis(F.tokens[i]), lab - 40)} ${F.nodes[L][i].toFixed(2)}`, x1 + 8, y(i));
    root.dataset.flowEdges = String(F.edges.length);
  };

  const render = () => {
    frameJob++;
    const g = V.groups[st.group];
    for (const id in tabButtons) tabButtons[id].setAttribute("aria-selected", String(id === st.view));
    layerSel.textContent = "";
    for (let l = 0; l < g.layers; l++) layerSel.append(el("option", { value: String(l) }, String(l)));
    layerSel.value = String(st.layer);
    layerLabel.hidden = st.view === "model" || st.view === "flow";
    groupLabel.hidden = st.view === "flow";
    panel.textContent = "";
    heatFocus = null;
    if (st.view !== "flow" && !cache[st.group]) {
      // a large stack is decoded over several tasks first (the main thread stays free)
      panel.append(el("p", { class: "progress" }, "decoding the attention…"));
      root.dataset.ready = "0";
      const job = frameJob;
      prepare(st.group, () => { if (job === frameJob) render(); });
      return;
    }
    if (st.view === "head") headView();
    else if (st.view === "model") modelView();
    else if (st.view === "neuron") neuronView();
    else flowView();
    mirror();
    root.dataset.ready = "1";
  };
  // the first drawing in a task of its own (the data was parsed in this one): no long task at load
  setTimeout(render, 0);
  let lastW = width();
  window.addEventListener("resize", () => { const w = width(); if (w !== lastW) { lastW = w; render(); } });
  return { redraw: render };
}

/** The viewer as a script for a self-contained page: reads the JSON in #`dataId` and draws into #`rootId`. */
export function viewerScript(rootId: string, dataId: string): string {
  return `(function(){var root=document.getElementById(${JSON.stringify(rootId)}),data=document.getElementById(${JSON.stringify(dataId)});` +
    `if(!root||!data)return;try{(${attentionViewer.toString()})(root,JSON.parse(data.textContent),${JSON.stringify(HEAD_COLOURS)});}` +
    `catch(e){root.textContent="The viewer failed: "+e;root.dataset.error=String(e);}})();`;
}
