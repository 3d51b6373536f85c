"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { initialState, reduce, viewModel, describeError } = require("../src/state.js");
const { layerNames, pickParams } = require("../src/jobs.js");

const CAPS = {
  protocol: 1, version: "0.1.0", device: { type: "cpu", name: "CPU" },
  operations: [
    { name: "passthrough", mask: "optional", resizes: false, params: { properties: { delay_s: {} } } },
    { name: "upscale", mask: "none", resizes: true, params: { properties: { scale: {}, model: { enum: ["lanczos"] } } } },
  ],
};
const HEALTH = { status: "ok", version: "0.1.0", protocol: 1 };

const run = (events, from = initialState()) => events.reduce(reduce, from);

test("connect -> idle with the bridge's operations; buttons follow capabilities", () => {
  const s = run([{ type: "connect" }, { type: "connected", health: HEALTH, capabilities: CAPS }]);
  assert.equal(s.phase, "idle");
  const vm = viewModel(s);
  assert.equal(vm.status.tone, "ok");
  assert.match(vm.status.text, /0\.1\.0/);
  assert.equal(vm.ops.upscale.enabled, true);
  assert.equal(vm.ops.fill.enabled, false, "no fill on this bridge");
  assert.equal(vm.ops.fill.visible, true);
  assert.match(vm.ops.fill.hint, /not available/i);
  assert.equal(vm.ops["skin-retouch"].visible, false, "skin retouch only appears when the bridge has it");
  const withSkin = run([{ type: "connected", health: HEALTH, capabilities: { ...CAPS, operations: [...CAPS.operations, { name: "skin-retouch", mask: "optional", params: {} }] } }]);
  assert.equal(viewModel(withSkin).ops["skin-retouch"].visible, true);
  assert.equal(viewModel(withSkin).ops["skin-retouch"].enabled, true);
});

test("a job runs busy -> idle, with progress and cancel", () => {
  let s = run([{ type: "connected", health: HEALTH, capabilities: CAPS }, { type: "job-start", op: "upscale", title: "Upscale" }]);
  assert.equal(s.phase, "busy");
  assert.equal(viewModel(s).ops.upscale.enabled, false, "nothing else starts while busy");
  assert.equal(reduce(s, { type: "job-start", op: "upscale", title: "again" }), s, "a second start is ignored");
  s = run([{ type: "job-submitted", jobId: "j-1" }, { type: "job-progress", progress: 0.42, message: "tile 3/7" }], s);
  assert.deepEqual(
    { p: viewModel(s).progress.percent, m: viewModel(s).progress.message, c: viewModel(s).progress.canCancel },
    { p: 42, m: "tile 3/7", c: true });
  s = reduce(s, { type: "job-cancel-requested" });
  assert.equal(viewModel(s).progress.canCancel, false);
  s = reduce(s, { type: "job-failed", error: { code: "cancelled" } });
  assert.equal(s.phase, "idle");
  assert.match(s.notice, /Cancelled/);
  s = run([{ type: "job-start", op: "upscale", title: "Upscale" }, { type: "job-done", summary: "Opened photo ×2" }], s);
  assert.equal(s.phase, "idle");
  assert.equal(s.notice, "Opened photo ×2");
});

test("errors say what to do, and offer the right button", () => {
  const down = describeError({ code: "bridge_unreachable" });
  assert.match(down.title, /not running/);
  assert.equal(down.action.kind, "retry");
  const token = describeError({ code: "unauthorized" });
  assert.match(token.message, /retouch-bridge token/);
  assert.equal(token.action.kind, "pair");
  const model = describeError({ code: "model_missing", message: "x", details: { model: "big-lama", hint: "retouch-bridge models pull big-lama" } });
  assert.match(model.title, /big-lama/);
  assert.equal(model.message, "retouch-bridge models pull big-lama");
  assert.deepEqual(model.action, { kind: "pull-model", label: "Download big-lama", model: "big-lama" });
  const param = describeError({ code: "invalid_params", message: "parameter 'scale' must be at most 16", details: { param: "scale" } });
  assert.match(param.message, /"scale"/);
  // A blocked address: the way out, with the manifest step only when host and port are known.
  const serve = "m. Set the address to `http://127.0.0.1:7847` and start the bridge there (`retouch-bridge serve --port 7847`)";
  const blocked = describeError({ code: "origin_not_allowed", message: "m", details: { ports: [7847] } });
  assert.equal(blocked.message, `${serve}.`);
  const port = describeError({ code: "origin_not_allowed", message: "m",
    details: { port: 7848, host: "127.0.0.1", hosts: ["127.0.0.1"], ports: [7847] } });
  assert.equal(port.title, "Port 7848 is blocked by Photoshop");
  assert.equal(port.message, `${serve}, or add \`http://127.0.0.1:7848\` and \`ws://127.0.0.1:7848\` to `
    + "`requiredPermissions.network.domains` in the panel's manifest.json and reload the panel.");
});

test("wrong token -> pairing; bridge down -> disconnected; model missing -> error with download", () => {
  const idle = run([{ type: "connected", health: HEALTH, capabilities: CAPS }]);
  assert.equal(reduce(initialState(), { type: "unauthorized" }).phase, "pairing");
  assert.equal(viewModel(reduce(initialState(), { type: "need-token" })).showPairing, true);
  const busy = reduce(idle, { type: "job-start", op: "upscale", title: "Upscale" });
  assert.equal(reduce(busy, { type: "job-failed", error: { code: "unauthorized" } }).phase, "pairing");
  assert.equal(reduce(busy, { type: "job-failed", error: { code: "bridge_unreachable" } }).phase, "disconnected");
  const failed = reduce(busy, { type: "job-failed", error: { code: "model_missing", details: { model: "m" } } });
  assert.equal(failed.phase, "error");
  assert.equal(viewModel(failed).error.action.kind, "pull-model");
  const pulling = reduce(failed, { type: "pull-started", model: "m" });
  assert.equal(pulling.phase, "idle");
  const progressed = reduce(pulling, { type: "model-progress", model: "m", received: 5e6, total: 1e7, state: "downloading" });
  assert.equal(viewModel(progressed).pulls[0].fraction, 0.5);
  assert.equal(reduce(failed, { type: "dismiss" }).phase, "idle");
});

test("an impostor on the port: an error state that names the port, the token form, nothing enabled", () => {
  const error = { code: "impostor", message: "no proof", details: { port: "7847" } };
  const s = run([{ type: "connect" }, { type: "impostor", error }]);
  assert.equal(s.phase, "pairing");
  const vm = viewModel(s);
  assert.equal(vm.showPairing, true, "a wrong token looks the same, so the token form is offered");
  assert.deepEqual({ tone: vm.status.tone, text: vm.status.text }, { tone: "off", text: "Not verified" });
  assert.equal(vm.error.title, "Not Retouch Bridge on port 7847");
  assert.equal(vm.error.message, "Something else is answering on port 7847 — not Retouch Bridge, or a bridge with another token. Check the token or quit the other program.");
  assert.equal(vm.error.action.kind, "retry");
  assert.ok(Object.values(vm.ops).every((o) => !o.enabled));
  // Found out mid-job (a fresh check before uploading): the job ends, the bridge is forgotten.
  const busy = run([{ type: "connected", health: HEALTH, capabilities: CAPS }, { type: "job-start", op: "upscale", title: "Upscale" }]);
  const failed = reduce(busy, { type: "job-failed", error });
  assert.deepEqual({ phase: failed.phase, bridge: failed.bridge, job: failed.job }, { phase: "pairing", bridge: null, job: null });
  assert.equal(viewModel(failed).status.text, "Not verified");
  // Connected again with the right token: the error is gone.
  assert.equal(viewModel(reduce(failed, { type: "connected", health: HEALTH, capabilities: CAPS })).error, null);
});

test("a bridge on another protocol version is refused with which side to update", () => {
  const s = reduce(initialState(), { type: "connected", health: { ...HEALTH, protocol: 2 }, capabilities: CAPS });
  assert.equal(s.phase, "disconnected");
  assert.match(s.error.message, /protocol 2.*needs 1.*Update the panel/);
});

test("layer names carry the op, prompt and seed; variations each their own seed", () => {
  const def = { name: "fill", history: "AI Fill" };
  const r = { metadata: {}, layers: [{ name: "image", run: 0, seed: 42 }, { name: "image", run: 1, seed: 43 }] };
  assert.deepEqual(layerNames(def, { prompt: "  blue   sky " }, r), ['AI Fill "blue sky" seed 42', 'AI Fill "blue sky" seed 43']);
  assert.deepEqual(layerNames(def, {}, { metadata: {}, layers: [{ name: "image", run: 0, seed: 7 }] }), ["AI Fill seed 7"]);
  const skin = { name: "skin-retouch", history: "Skin retouch" };
  assert.deepEqual(
    layerNames(skin, {}, { metadata: {}, layers: [{ name: "retouched", run: 0, seed: null }, { name: "low", run: 0, seed: null }] }),
    ["Skin retouch · retouched", "Skin retouch · low"]);
  const up = { name: "upscale", history: "Upscale" };
  assert.deepEqual(layerNames(up, { scale: 2 }, { metadata: { scale: 2 }, layers: [{ name: "image", run: 0 }] }, { documentName: "photo.psd" }), ["photo ×2"]);
  assert.match(layerNames(def, { prompt: "x".repeat(100) }, r)[0], /x{39}…" seed 42/);
});

test("only the parameters an operation declares are sent", () => {
  const op = { params: { properties: { prompt: {}, seed: {} } } };
  assert.deepEqual(pickParams(op, { prompt: "sky", seed: 3, strength: 0.5, negative_prompt: "" }), { prompt: "sky", seed: 3 });
});
