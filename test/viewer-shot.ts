// Manual: node dist/test/viewer-shot.js FILE.html WIDTH OUT.png [JS to run before the shot]
import { openCdpPage } from "./browser-cdp.js";
import { startWebServer } from "../src/node/web-server.js";
import { dirname, basename } from "node:path";
const [file, width, out, js] = process.argv.slice(2);
const { url, close } = await startWebServer({ mounts: { "/": dirname(file) } });
const p = await openCdpPage(url + basename(file), Number(width));
try {
  await p.waitFor("document.querySelector('.afv') && document.querySelector('.afv').dataset.ready==='1'", 30000);
  if (js) console.log(JSON.stringify(await p.eval(js)));
  await new Promise((r) => setTimeout(r, 300));
  await p.screenshot(out);
  console.log(JSON.stringify(await p.eval("({lt: window.__longtasks, ds: Object.assign({}, document.querySelector('.afv').dataset), sw: document.documentElement.scrollWidth, iw: innerWidth})")));
} catch (e) { console.error(String(e), p.log().slice(-3000)); }
finally { p.close(); close(); }
