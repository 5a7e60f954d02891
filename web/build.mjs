// Builds the dashboard into api/static/ (committed, so running and testing need no node):
//   node build.mjs          write api/static/{index.html,app.js,app.css}
//   node build.mjs --check  exit 1 when the committed files differ from a fresh build
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const target = join(here, "..", "api", "static");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "pwm-dashboard-")) : target;
// The sources' digest goes into the bundle: tests/browser/test_dashboard_bundle.py recomputes it
// (no node needed) to catch sources changed without a rebuild.
const sources = [
  "build.mjs",
  "index.html",
  "package-lock.json",
  ...readdirSync(join(here, "src")).map((name) => `src/${name}`),
].sort();
const digest = createHash("sha256");
for (const name of sources) {
  digest.update(`${name}\0`);
  digest.update(readFileSync(join(here, name)));
  digest.update("\0");
}
const banner =
  "/* ProxyWhirl Metrics dashboard, built from web/ by `npm run build`: do not edit. " +
  `uPlot (MIT) by Leon Sorokin. sources-sha256: ${digest.digest("hex")} */`;

await build({
  entryPoints: { app: join(here, "src", "main.ts"), "app-css": join(here, "src", "app.css") },
  outdir: out,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "none",
  banner: { js: banner, css: banner },
  logLevel: "warning",
});
// esbuild names the CSS entry app-css.css; keep the public names short
renameSync(join(out, "app-css.css"), join(out, "app.css"));
copyFileSync(join(here, "index.html"), join(out, "index.html"));

if (check) {
  const stale = [];
  for (const name of ["index.html", "app.js", "app.css"]) {
    const fresh = readFileSync(join(out, name));
    let committed = Buffer.alloc(0);
    try { committed = readFileSync(join(target, name)); } catch { /* missing */ }
    if (!fresh.equals(committed)) stale.push(name);
  }
  if (stale.length) {
    console.error(`api/static is out of date (${stale.join(", ")}): run npm run build in web/`);
    process.exit(1);
  }
  console.log("api/static matches web/");
}
