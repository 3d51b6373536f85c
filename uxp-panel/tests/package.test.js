"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const { buildPackage, bridgeVersions, checkVersions } = require("../scripts/package.js");
const { unzip } = require("../scripts/zip.js");
const { PROTOCOL } = require("../src/client.js");
const { ALLOWED_ORIGINS, originProblem } = require("../src/origins.js");

const ROOT = path.resolve(__dirname, "..");
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "manifest.json"), "utf8"));

test("manifest v5 for Photoshop with the imaging API, explicit bridge origins, no wildcard", () => {
  assert.equal(manifest.manifestVersion, 5);
  assert.equal(manifest.host.app, "PS");
  const [maj, min] = manifest.host.minVersion.split(".").map(Number);
  assert.ok(maj > 24 || (maj === 24 && min >= 4), "imaging (not imaging_beta) needs Photoshop 24.4+");
  assert.equal(manifest.host.data.apiVersion, 2, "executeAsModal needs apiVersion 2");
  const domains = manifest.requiredPermissions.network.domains;
  assert.ok(Array.isArray(domains));
  for (const want of ["http://127.0.0.1:7847", "ws://127.0.0.1:7847", "http://localhost:7847", "ws://localhost:7847"]) {
    assert.ok(domains.includes(want), want);
  }
  const walk = (v) => (Array.isArray(v) ? v.flatMap(walk) : v && typeof v === "object" ? Object.values(v).flatMap(walk) : [v]);
  const arrays = [];
  const collect = (v) => {
    if (Array.isArray(v)) { arrays.push(v); v.forEach(collect); } else if (v && typeof v === "object") Object.values(v).forEach(collect);
  };
  collect(manifest);
  assert.ok(!arrays.some((a) => a.includes("all")), '"all" inside an array would deny everything');
  assert.ok(walk(manifest.entrypoints).includes("panel"));
});

test("the panel checks bridge addresses against exactly the manifest's network origins", () => {
  const domains = manifest.requiredPermissions.network.domains;
  assert.deepEqual([...ALLOWED_ORIGINS].sort(), [...domains].sort());
  // Run recipe… shows the system's open dialog: UXP allows it only with "request".
  assert.equal(manifest.requiredPermissions.localFileSystem, "request");
  for (const origin of domains.filter((d) => d.startsWith("http://"))) assert.equal(originProblem(origin), null, origin);
  assert.equal(originProblem("http://127.0.0.1:7847/"), null);
  const p = originProblem("http://127.0.0.1:7848");
  assert.equal(p.code, "origin_not_allowed");
  assert.deepEqual({ port: p.details.port, ports: p.details.ports }, { port: 7848, ports: [7847] });
  assert.match(p.message, /port 7848 is not allowed by the panel's manifest, which allows only port 7847/);
  assert.match(originProblem("http://10.0.0.2:7847").message, /host "10\.0\.0\.2" is not allowed/);
  assert.match(originProblem("https://127.0.0.1:7847").message, /plain http/);
  assert.match(originProblem("not a url").message, /not an address the panel may use/);
  // A manifest that lists only http (no ws) for a port still blocks the event stream.
  assert.ok(originProblem("http://127.0.0.1:9000", ["http://127.0.0.1:9000"]));
  assert.equal(originProblem("http://127.0.0.1:9000", ["http://127.0.0.1:9000", "ws://127.0.0.1:9000"]), null);
});

test("the panel's version major is the bridge's protocol; a mismatch refuses to build", () => {
  const bridge = bridgeVersions();
  assert.equal(Number(manifest.version.split(".")[0]), bridge.protocol);
  assert.equal(PROTOCOL, bridge.protocol);
  assert.throws(() => checkVersions({ ...manifest, version: `${bridge.protocol + 1}.0.0` }, bridge), /major must be the bridge protocol/);
  assert.throws(() => checkVersions({ ...manifest, version: "1.0" }, bridge), /MAJOR.MINOR.PATCH/);
});

test("npm run package builds a valid, reproducible .ccx with exactly the plugin files", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "rb-ccx-"));
  try {
    const a = buildPackage({ outDir: out });
    assert.equal(path.basename(a.file), `retouch-bridge-panel-${manifest.version}.ccx`);
    const bytes = fs.readFileSync(a.file);
    const entries = unzip(bytes);
    const names = entries.map((e) => e.name);
    for (const need of ["manifest.json", "index.html", "index.js", "styles.css", "src/main.js", "src/photoshop.js",
      "src/client.js", "src/identity.js", "src/sha256.js", "src/utf8.js", "src/geometry.js", "src/buffers.js", "src/state.js", "src/jobs.js", "icons/panel.png", "icons/panel@2x.png",
      "icons/plugin.png", "icons/plugin@2x.png"]) {
      assert.ok(names.includes(need), need);
    }
    assert.ok(!names.some((n) => /^(tests|dev|scripts|node_modules|test-artifacts|dist)\//.test(n)), "no dev files shipped");
    for (const e of entries) assert.deepEqual(e.data, fs.readFileSync(path.join(ROOT, e.name)), e.name);
    // Same input, same bytes.
    const again = fs.readFileSync(buildPackage({ outDir: path.join(out, "again") }).file);
    assert.ok(again.equals(bytes));
    // A second, independent reader agrees (Info-ZIP, where installed).
    try {
      const report = execFileSync("unzip", ["-t", a.file], { encoding: "utf8" });
      assert.match(report, /No errors detected/);
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test("only src/photoshop.js touches the photoshop and uxp modules", () => {
  const dir = path.join(ROOT, "src");
  for (const f of fs.readdirSync(dir)) {
    const text = fs.readFileSync(path.join(dir, f), "utf8");
    const touches = /require\(\s*["'](photoshop|uxp)["']\s*\)/.test(text);
    assert.equal(touches, f === "photoshop.js", f);
  }
});
