"use strict";
/**
 * "Download <model>" in the panel, end to end: the bridge (REAL) reads a mirror
 * registry (RB_MODEL_REGISTRY) whose entry points at a slow local file server
 * started here; an upscale with that model fails with model_missing, the user
 * presses the alert's button, the panel POSTs /v1/models/{id}/pull and the
 * bridge's model-progress events reach the panel's state until installed.
 */
const test = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const { startBridge, unavailable, pythonPath, BRIDGE_ROOT } = require("./helpers/bridge.js");
const { createFakeHost } = require("./fakes/photoshop.js");
const { mountPanel, originsWith, waitFor } = require("./helpers/panel.js");
const { ALLOWED_ORIGINS } = require("../src/origins.js");
const { BridgeClient } = require("../src/client.js");

const skip = unavailable() || false;
const MODEL = "realesr-animevideov3";
const PAYLOAD = Buffer.alloc(3 << 20, 0).map((_, i) => (i * 131) & 255); // 3 MiB, six slow chunks

/** Serves PAYLOAD at /model.pth in 512 KiB chunks, 150 ms apart (127.0.0.1 only). */
function slowServer() {
  const server = http.createServer(async (req, res) => {
    if (req.url !== "/model.pth") { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": String(PAYLOAD.length) });
    for (let at = 0; at < PAYLOAD.length; at += 512 << 10) {
      if (res.destroyed) return;
      res.write(PAYLOAD.subarray(at, at + (512 << 10)));
      await new Promise((r) => setTimeout(r, 150));
    }
    res.end();
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: `http://127.0.0.1:${server.address().port}/model.pth`,
    close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
  })));
}

/** The bridge's built-in registry with MODEL pointing at the mirror (written by the bridge's own code). */
function mirrorRegistry(file, url) {
  const sha = crypto.createHash("sha256").update(PAYLOAD).digest("hex");
  const script = [
    "import dataclasses, json, sys",
    "from bridge.models.registry import builtin_registry",
    "out = []",
    "for e in builtin_registry():",
    `    if e.id == ${JSON.stringify(MODEL)}:`,
    `        e = dataclasses.replace(e, url=${JSON.stringify(url)}, md5=None, sha256=${JSON.stringify(sha)}, size=${PAYLOAD.length})`,
    "    out.append(e.to_json())",
    "json.dump({'models': out}, open(sys.argv[1], 'w'))",
  ].join("\n");
  execFileSync(pythonPath(), ["-c", script, file], { cwd: BRIDGE_ROOT, env: { ...process.env, PYTHONPATH: BRIDGE_ROOT } });
}

let mirror = null;
let bridge = null;
let dir = null;

test.before(async () => {
  if (skip) return;
  mirror = await slowServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "rb-uxp-mirror-"));
  const registry = path.join(dir, "mirror.json");
  mirrorRegistry(registry, mirror.url);
  bridge = await startBridge({ env: { RB_MODEL_REGISTRY: registry } });
});
test.after(async () => {
  if (bridge) await bridge.stop();
  if (mirror) await mirror.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("a missing model: the alert's Download button pulls it and its progress reaches the panel", { skip }, async () => {
  const host = createFakeHost();
  const W = 40;
  const H = 30;
  host.addDocument({
    title: "small.psd", width: W, height: H, depth: 8,
    composite: { rect: { x: 0, y: 0, width: W, height: H }, data: new Uint8Array(W * H * 3).fill(90), channels: 3 },
  });
  // Every request the panel makes, as the bridge receives it.
  const requests = [];
  const recording = (url, init) => { requests.push(`${init.method} ${new URL(url).pathname}`); return fetch(url, init); };
  const { panel, $ } = await mountPanel({
    host, url: bridge.url, token: bridge.token, allowedOrigins: originsWith(bridge.url, ALLOWED_ORIGINS),
    makeClient: (opts) => new BridgeClient({ ...opts, fetch: recording }),
  });
  try {
    assert.equal(panel.state.phase, "idle", JSON.stringify(panel.state.error));
    // Upscale with the model the mirror has and this bridge does not.
    $("model").value = MODEL;
    $("scale").value = "4";
    $("run-upscale").click();
    await waitFor("the model_missing alert", () => panel.state.phase === "error");
    assert.equal(panel.state.error.code, "model_missing", JSON.stringify(panel.state.error));
    assert.ok(!$("alert").isHidden);
    assert.equal($("alert-action").textContent, `Download ${MODEL}`);
    assert.ok(!requests.some((r) => r.endsWith("/pull")), "nothing downloads before the user asks");

    $("alert-action").click();
    await waitFor("the pull request", () => requests.includes(`POST /v1/models/${MODEL}/pull`));
    // model-progress events (over the WebSocket) move the panel's own state.
    const midway = await waitFor("a part of the download", () => {
      const p = panel.state.pulls[MODEL];
      return p && p.state === "downloading" && p.received > 0 && p.received < PAYLOAD.length && p;
    });
    assert.equal(midway.total, PAYLOAD.length);
    assert.match($("pulls").textContent, new RegExp(`${MODEL}: downloading \\d+ (kB|MB) / 3 MB`));
    assert.equal(panel.state.notice, `Downloading ${MODEL}…`);
    // Watch it move on until the bridge says installed.
    const received = new Set([midway.received]);
    await waitFor("the model to be installed", () => {
      const p = panel.state.pulls[MODEL];
      if (p.state === "downloading") received.add(p.received);
      return p.state === "installed";
    }, { timeoutMs: 30000 });
    assert.ok(received.size >= 2, `progress moved: ${[...received].join(", ")}`);
    assert.equal($("pulls").textContent, "", "an installed model leaves the download list");
    const models = await new BridgeClient({ baseUrl: bridge.url, token: bridge.token }).models();
    assert.equal(models.models.find((m) => m.id === MODEL).state, "installed");
  } finally {
    panel.stop();
  }
});
