"use strict";
/**
 * The whole path the panel takes, with only Photoshop faked: adapter reads the
 * (fake) document, JobRun sends it to the REAL bridge, the result comes back
 * as layers or a new document.
 */
const test = require("node:test");
const assert = require("node:assert/strict");
const { startBridge, unavailable } = require("./helpers/bridge.js");
const zlib = require("node:zlib");
const { createFakeHost, fakeIccFor } = require("./fakes/photoshop.js");
const { createAdapter, GROUP_NAME } = require("../src/photoshop.js");
const { BridgeClient } = require("../src/client.js");
const { JobRun, layerNames } = require("../src/jobs.js");
const { PANEL_OPS } = require("../src/state.js");

const skip = unavailable() || false;
let bridge = null;
let client = null;
let caps = null;

test.before(async () => {
  if (skip) return;
  bridge = await startBridge();
  client = new BridgeClient({ baseUrl: bridge.url, token: bridge.token });
  caps = Object.fromEntries((await client.capabilities()).operations.map((o) => [o.name, o]));
});
test.after(async () => { if (bridge) await bridge.stop(); });

function document16(host, { width = 120, height = 80, sel = { x: 50, y: 30, width: 20, height: 10 } } = {}) {
  const data = new Uint16Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 977) % 65536;
  let selection = null;
  if (sel) {
    const m = new Uint8Array(width * height);
    for (let y = sel.y; y < sel.y + sel.height; y++) for (let x = sel.x; x < sel.x + sel.width; x++) m[y * width + x] = 255;
    selection = { data: m };
  }
  return host.addDocument({ title: "shot.tif", width, height, depth: 16, composite: { rect: { x: 0, y: 0, width, height }, data, channels: 3 }, selection });
}

/** What main.js does for one button press, minus the DOM. */
function operate(ps, opName, { params = {}, variations = 1, seed = null, onJob, beforeWait } = {}) {
  const op = caps[opName] || { name: opName, mask: "optional", params: { properties: {} } };
  const def = PANEL_OPS.find((d) => d.name === opName) || { name: opName, history: opName };
  return ps.runOperation({
    title: def.history,
    op,
    padding: { ratio: 0.5, min: 8, max: 64 },
    execute: (input, ctl) => {
      const run = new JobRun(client, null, { op, params, image: input.image, mask: input.mask, icc: input.icc, variations, seed });
      ctl.onCancel(() => run.cancel());
      return run.run({
        onProgress: (f, m) => ctl.progress(f, m),
        onJob: (id) => { if (onJob) onJob(id); if (beforeWait) beforeWait(id); },
      });
    },
    names: (run, input) => layerNames(def, params, run, input),
  });
}

test("a 16-bit selection goes to the bridge and comes back as a masked layer, bit-exact", { skip }, async () => {
  const host = createFakeHost();
  const doc = document16(host);
  const ps = createAdapter(host.modules);
  const out = await operate(ps, "passthrough");
  // Region: the 20x10 selection plus 10 px (half its larger side) all round.
  const region = { x: 40, y: 20, width: 40, height: 30 };
  assert.deepEqual(out.layers[0].bounds, region);
  const group = doc.layers[0];
  assert.equal(group.name, GROUP_NAME);
  assert.equal(group.layers.length, 1);
  const layer = group.layers[0];
  assert.deepEqual(layer.pixels.rect, region);
  // Bit-exact through the wire at 16 bits (values above Photoshop's 32768 included).
  for (let y = 0; y < region.height; y++) {
    for (let x = 0; x < region.width; x++) {
      for (let c = 0; c < 3; c++) {
        const want = doc._composite.data[((region.y + y) * 120 + region.x + x) * 3 + c];
        assert.equal(layer.pixels.data[(y * region.width + x) * 3 + c], want);
      }
    }
  }
  // No mask from this op: the selection becomes the layer mask.
  assert.equal(layer.mask.data[(10 * 40 + 10)], 65535, "inside the selection");
  assert.equal(layer.mask.data[0], 0, "outside the selection");
  assert.equal(doc.historyStates.length, 2);
  assert.ok(host.progress.length >= 2);
});

test("variations without a native parameter: one job each, siblings, the first visible", { skip }, async () => {
  const host = createFakeHost();
  const doc = document16(host);
  const ps = createAdapter(host.modules);
  const jobs = [];
  await operate(ps, "passthrough", { variations: 2, onJob: (id) => jobs.push(id) });
  assert.equal(jobs.length, 2);
  assert.deepEqual(doc.layers[0].layers.map((l) => l.visible), [true, false]);
  assert.equal(doc.historyStates.length, 2);
});

test("an upscale opens a new document with the bridge's pixels at twice the size", { skip }, async () => {
  const host = createFakeHost();
  const doc = document16(host, { width: 30, height: 20, sel: null });
  const ps = createAdapter(host.modules);
  const out = await operate(ps, "upscale", { params: { scale: 2, model: "lanczos" } });
  assert.equal(out.kind, "document");
  assert.deepEqual({ w: out.width, h: out.height }, { w: 60, h: 40 });
  const created = host.modules.photoshop.app.activeDocument;
  assert.equal(created.layers[0].name, "shot ×2");
  assert.equal(created.layers[0].pixels.data.length, 60 * 40 * 3);
  assert.equal(created.layers[0].pixels.depth, 16);
  assert.equal(doc.layers.length, 0, "the source document is untouched");
});

test("a refused job (bad parameter) leaves the document as it was", { skip }, async () => {
  const host = createFakeHost();
  const doc = document16(host);
  const ps = createAdapter(host.modules);
  await assert.rejects(operate(ps, "passthrough", { params: { delay_s: -1 } }), (e) => e.code === "invalid_params");
  assert.deepEqual(doc.layers, []);
  assert.equal(doc.historyStates.length, 1);
});

test("Cancel in Photoshop deletes the bridge job and rolls back", { skip }, async () => {
  const host = createFakeHost();
  const doc = document16(host);
  const ps = createAdapter(host.modules);
  let jobId = null;
  const pending = operate(ps, "passthrough", {
    params: { delay_s: 20 },
    onJob: (id) => { jobId = id; setTimeout(() => host.cancelModal(), 300); },
  });
  await assert.rejects(pending, (e) => e.code === "cancelled");
  assert.equal((await client.job(jobId)).state, "cancelled", "the bridge stopped the work");
  assert.deepEqual(doc.layers, []);
  assert.equal(doc.historyStates.length, 1);
});

/** The ICC profile inside a PNG's iCCP chunk. */
function pngIcc(buf) {
  let p = 8;
  while (p < buf.length) {
    const len = buf.readUInt32BE(p);
    const type = buf.toString("latin1", p + 4, p + 8);
    if (type === "iCCP") {
      const data = buf.subarray(p + 8, p + 8 + len);
      const nul = data.indexOf(0);
      return zlib.inflateSync(data.subarray(nul + 2));
    }
    p += 12 + len;
  }
  return null;
}

test("the document's ICC profile travels with the pixels and comes back in an encoded result", { skip }, async () => {
  const host = createFakeHost();
  const doc = document16(host);
  doc.colorProfileName = "ProPhoto RGB";
  const ps = createAdapter(host.modules);
  let jobId = null;
  await operate(ps, "passthrough", { onJob: (id) => { jobId = id; } });
  const res = await fetch(`${bridge.url}/v1/jobs/${jobId}/result?format=png`, { headers: { Authorization: `Bearer ${bridge.token}` } });
  assert.equal(res.status, 200);
  const icc = pngIcc(Buffer.from(await res.arrayBuffer()));
  assert.ok(icc, "the PNG carries a profile");
  assert.deepEqual(new Uint8Array(icc), fakeIccFor("ProPhoto RGB"));
});
