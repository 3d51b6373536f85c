"use strict";
/**
 * npm run package: the installable .ccx (a zip of the plugin files) in dist/.
 *
 * Versions: the manifest's MAJOR is the bridge's PROTOCOL_VERSION (bridge/__init__.py);
 * MINOR.PATCH count the panel's own releases. A 1.x panel talks to any bridge that
 * speaks protocol 1, whatever the bridge's own version (0.1.0 today). The build
 * refuses to package a manifest, a client and a bridge that disagree.
 */

const fs = require("node:fs");
const path = require("node:path");
const { zip } = require("./zip.js");

const ROOT = path.resolve(__dirname, "..");
const SHIPPED = ["manifest.json", "index.html", "index.js", "styles.css", "src", "icons"];

function bridgeVersions(repo = path.resolve(ROOT, "..")) {
  const text = fs.readFileSync(path.join(repo, "bridge", "__init__.py"), "utf8");
  const protocol = /^PROTOCOL_VERSION\s*=\s*(\d+)/m.exec(text);
  const version = /^__version__\s*=\s*["']([^"']+)["']/m.exec(text);
  if (!protocol) throw new Error("PROTOCOL_VERSION not found in bridge/__init__.py");
  return { protocol: Number(protocol[1]), version: version ? version[1] : null };
}

function listFiles(rel) {
  const abs = path.join(ROOT, rel);
  if (fs.statSync(abs).isFile()) return [rel];
  return fs.readdirSync(abs).sort().flatMap((name) => listFiles(path.posix.join(rel, name)));
}

/** Every path the manifest names must be in the package (icons at each declared scale too). */
function manifestPaths(manifest) {
  const icons = [...(manifest.icons || []), ...(manifest.entrypoints || []).flatMap((e) => e.icons || [])];
  const out = [manifest.main];
  for (const icon of icons) {
    for (const scale of icon.scale || [1]) {
      out.push(scale === 1 ? icon.path : icon.path.replace(/(\.[a-z]+)$/, `@${scale}x$1`));
    }
  }
  return out;
}

function checkVersions(manifest, bridge) {
  const { PROTOCOL } = require("../src/client.js");
  const major = Number(String(manifest.version).split(".")[0]);
  if (!/^\d+\.\d+\.\d+$/.test(manifest.version)) throw new Error(`manifest version ${manifest.version} is not MAJOR.MINOR.PATCH`);
  if (major !== bridge.protocol) {
    throw new Error(`manifest version ${manifest.version}: its major must be the bridge protocol ${bridge.protocol}`);
  }
  if (PROTOCOL !== bridge.protocol) throw new Error(`src/client.js speaks protocol ${PROTOCOL}, the bridge ${bridge.protocol}`);
}

function buildPackage({ outDir = path.join(ROOT, "dist"), repo } = {}) {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "manifest.json"), "utf8"));
  const bridge = bridgeVersions(repo);
  checkVersions(manifest, bridge);
  const files = SHIPPED.flatMap(listFiles).filter((f) => !f.endsWith(".map"));
  for (const needed of manifestPaths(manifest)) {
    if (!files.includes(needed)) throw new Error(`manifest names ${needed}, which is not in the package`);
  }
  const entries = files.map((name) => ({ name, data: fs.readFileSync(path.join(ROOT, name)) }));
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `retouch-bridge-panel-${manifest.version}.ccx`);
  fs.writeFileSync(file, zip(entries));
  return { file, version: manifest.version, protocol: bridge.protocol, bridgeVersion: bridge.version, files };
}

if (require.main === module) {
  try {
    const r = buildPackage();
    console.log(`${path.relative(process.cwd(), r.file)}: panel ${r.version}, protocol ${r.protocol} (bridge ${r.bridgeVersion}), ${r.files.length} files`);
  } catch (e) {
    console.error(`package: ${e.message}`);
    process.exit(1);
  }
}

module.exports = { buildPackage, bridgeVersions, manifestPaths, checkVersions };
