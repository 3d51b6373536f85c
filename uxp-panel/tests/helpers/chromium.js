"use strict";
/** Headless Chromium (Debian's) driven from the command line: --dump-dom and --screenshot. */

const { execFile } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const CANDIDATES = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].filter(Boolean);

function chromiumPath() {
  return CANDIDATES.find((p) => fs.existsSync(p)) || null;
}

function run(args, { timeoutMs = 60000 } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "rb-chromium-"));
  const flags = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio", `--user-data-dir=${profile}`,
  ];
  return new Promise((resolve, reject) => {
    execFile(chromiumPath(), [...flags, ...args], { timeout: timeoutMs, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      fs.rmSync(profile, { recursive: true, force: true });
      if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** The page's DOM after its scripts ran for `budgetMs` of virtual time. */
async function dumpDom(url, { width = 320, height = 1000, budgetMs = 4000 } = {}) {
  const { stdout } = await run([`--window-size=${width},${height}`, `--virtual-time-budget=${budgetMs}`, "--dump-dom", url]);
  return stdout;
}

async function screenshot(url, file, { width = 320, height = 1000, budgetMs = 4000 } = {}) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await run([`--window-size=${width},${height}`, `--virtual-time-budget=${budgetMs}`, `--screenshot=${file}`, url]);
  return file;
}

/** The opening tag and text of the element with this id in dumped HTML (good enough for our own page). */
function element(html, id) {
  const re = new RegExp(`<([a-z-]+)([^>]*\\sid="${id}"[^>]*)>([\\s\\S]*?)</\\1>`);
  const m = re.exec(html);
  if (!m) return null;
  const attrs = m[2];
  return {
    tag: m[1],
    attrs,
    text: m[3].replace(/<[^>]+>/g, "").replace(/\s+/g, " ").trim(),
    hidden: /class="[^"]*\bhidden\b/.test(attrs),
    disabled: /\sdisabled(=""|\s|$)/.test(attrs) || /\sdisabled=""/.test(attrs),
    attr(name) { const a = new RegExp(`\\s${name}="([^"]*)"`).exec(attrs); return a ? a[1] : null; },
  };
}

module.exports = { chromiumPath, dumpDom, screenshot, element };
