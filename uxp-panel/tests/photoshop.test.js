"use strict";
/**
 * The adapter against the recording fake of the host (tests/fakes/photoshop.js).
 * The bridge side is replaced by the `execute` callback here; the whole path
 * through the real bridge is in flow.test.js.
 */
const test = require("node:test");
const assert = require("node:assert/strict");
const { createFakeHost, constants, fakeIccFor } = require("./fakes/photoshop.js");
const { createAdapter, GROUP_NAME } = require("../src/photoshop.js");
const { rect } = require("../src/geometry.js");

const PAD = { ratio: 0.5, min: 4, max: 100 };
const FILL = { name: "fill", mask: "required", resizes: false };

function pattern(Type, n, scale = 1) {
  const out = new Type(n);
  for (let i = 0; i < n; i++) out[i] = (((i * 31) % 255) + 1) * scale;
  return out;
}

/** A W x H document whose merged image is opaque RGB, with a soft selection in `sel`. */
function makeDocument(host, { width = 64, height = 48, depth = 8, sel = rect(20, 10, 12, 8), mode, untagged = false } = {}) {
  const Type = depth === 16 ? Uint16Array : Uint8Array;
  const composite = { rect: rect(0, 0, width, height), data: pattern(Type, width * height * 3, depth === 16 ? 257 : 1), channels: 3 };
  let selection = null;
  if (sel) {
    const data = new Uint8Array(width * height);
    for (let y = sel.y; y < sel.y + sel.height; y++) {
      for (let x = sel.x; x < sel.x + sel.width; x++) {
        // Soft: full inside, a feathered one-pixel rim.
        const rim = x === sel.x || y === sel.y || x === sel.x + sel.width - 1 || y === sel.y + sel.height - 1;
        data[y * width + x] = rim ? 128 : 255;
      }
    }
    selection = { data };
  }
  return host.addDocument({ title: "photo.psd", width, height, depth, composite, selection, mode, untagged });
}

function crop(data, from, to, channels) {
  const out = new data.constructor(to.width * to.height * channels);
  for (let y = 0; y < to.height; y++) {
    const s = ((to.y - from.y + y) * from.width + (to.x - from.x)) * channels;
    out.set(data.subarray(s, s + to.width * channels), y * to.width * channels);
  }
  return out;
}

/** What JobRun.run() resolves with, for one layer at `bounds` (in the region sent). */
function resultRun(bounds, { depth = 8, channels = 3, withMask = true, count = 1 } = {}) {
  const Type = depth === 16 ? Uint16Array : Uint8Array;
  const layers = [];
  for (let i = 0; i < count; i++) {
    const mask = withMask ? new Uint8Array(bounds.width * bounds.height).fill(200 + i) : null;
    layers.push({
      name: "image", run: i, seed: 42 + i, visible: i === 0, bounds,
      width: bounds.width, height: bounds.height, channels, depth,
      data: pattern(Type, bounds.width * bounds.height * channels, depth === 16 ? 250 + i : 1 + i),
      mask,
    });
  }
  return { layers, extent: null, metadata: {}, seeds: layers.map((l) => l.seed), jobIds: ["j-1"] };
}

test("a fill on a selection ends as one masked layer in the group, at the right bounds, in one history step", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  const ps = createAdapter(host.modules);
  const historyBefore = doc.historyStates.length;
  const sel = rect(20, 10, 12, 8);
  const region = rect(14, 4, 24, 20); // 6 px of context (half the larger side) all round
  let seen = null;
  let run = null;
  const outcome = await ps.runOperation({
    title: 'AI Fill "blue sky"',
    op: FILL,
    padding: PAD,
    names: () => ['AI Fill "blue sky" seed 42'],
    execute: async (input, ctl) => {
      seen = input;
      ctl.progress(0.5, "denoising");
      // The bridge answers the selection's bounds, relative to the region it was sent.
      run = resultRun(rect(sel.x - region.x, sel.y - region.y, sel.width, sel.height));
      return run;
    },
  });

  // Only the selection plus context went to the bridge, never the whole document.
  assert.deepEqual(seen.region, region);
  assert.deepEqual(host.callsTo("imaging.getPixels")[0].args.sourceBounds, { left: 14, top: 4, right: 38, bottom: 24 });
  assert.equal(host.callsTo("imaging.getPixels")[0].args.componentSize, 8);
  assert.deepEqual(seen.image.data, crop(doc._composite.data, doc._composite.rect, region, 3));
  assert.equal(seen.image.channels, 3);
  assert.equal(seen.mask.width, 24);
  assert.deepEqual(seen.mask.data, crop(doc._selection.data, rect(0, 0, 64, 48), region, 1), "the soft selection, not a hard one");
  assert.ok(seen.mask.data.includes(128));

  // One new group at the top with one new layer in it.
  assert.equal(doc.layers.length, 1);
  const group = doc.layers[0];
  assert.equal(group.name, GROUP_NAME);
  assert.equal(group.kind, constants.LayerKind.GROUP);
  assert.equal(group.layers.length, 1);
  const layer = group.layers[0];
  assert.equal(layer.name, 'AI Fill "blue sky" seed 42');
  assert.equal(layer.visible, true);
  assert.deepEqual(layer.pixels.rect, sel, "placed at the selection's exact bounds in the document");
  assert.deepEqual(layer.pixels.data, run.layers[0].data);
  assert.deepEqual(layer.mask.rect, sel);
  assert.deepEqual(layer.mask.data, run.layers[0].mask);
  assert.deepEqual(outcome.layers.map((l) => l.bounds), [sel]);

  // One undo step, named after the operation.
  assert.equal(doc.historyStates.length, historyBefore + 1);
  assert.equal(doc.historyStates.at(-1).name, 'AI Fill "blue sky"');
  assert.equal(host.callsTo("core.executeAsModal").length, 1);
  assert.equal(host.callsTo("hostControl.suspendHistory").length, 1);
  assert.deepEqual(host.callsTo("hostControl.resumeHistory").map((c) => c.args.commit), [true]);
  assert.ok(host.progress.some((p) => p.value === 0.5 && /denoising/.test(p.commandName)));
  assert.ok(host.imageDatas.every((d) => d.disposed), "every imageData is disposed");
});

test("the group is created once; a second result goes on top inside it", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  const ps = createAdapter(host.modules);
  const once = (name) => ps.runOperation({
    title: name, op: FILL, padding: PAD, names: () => [name],
    execute: async () => resultRun(rect(6, 6, 12, 8)),
  });
  await once("first");
  await once("second");
  assert.equal(doc.layers.length, 1);
  assert.deepEqual(doc.layers[0].layers.map((l) => l.name), ["second", "first"]);
  assert.equal(host.callsTo("document.createLayerGroup").length, 1);
  assert.equal(doc.historyStates.length, 3);
});

test("variations become sibling layers with only the first visible, first on top", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  const ps = createAdapter(host.modules);
  await ps.runOperation({
    title: "AI Fill", op: FILL, padding: PAD,
    names: (run) => run.layers.map((l) => `AI Fill seed ${l.seed}`),
    execute: async () => resultRun(rect(6, 6, 12, 8), { count: 3 }),
  });
  const group = doc.layers[0];
  assert.deepEqual(group.layers.map((l) => l.name), ["AI Fill seed 42", "AI Fill seed 43", "AI Fill seed 44"]);
  assert.deepEqual(group.layers.map((l) => l.visible), [true, false, false]);
  assert.deepEqual(group.layers.map((l) => l.mask.data[0]), [200, 201, 202]);
  assert.equal(doc.historyStates.length, 2, "three layers, still one undo step");
});

test("a failure half-way rolls the document back: no group, no layer, no history state", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  const ps = createAdapter(host.modules);
  host.failNext("imaging.putLayerMask", new Error("out of scratch space"));
  await assert.rejects(ps.runOperation({
    title: "AI Fill", op: FILL, padding: PAD, names: () => ["AI Fill"],
    execute: async () => resultRun(rect(6, 6, 12, 8)),
  }), /out of scratch space/);
  assert.equal(host.callsTo("imaging.putPixels").length, 1, "it did get as far as writing pixels");
  assert.deepEqual(doc.layers, [], "the group and layer are gone");
  assert.equal(doc.historyStates.length, 1);
  assert.deepEqual(host.callsTo("hostControl.resumeHistory").map((c) => c.args.commit), [false]);
});

test("Cancel in Photoshop's progress dialog reaches the bridge job and leaves nothing behind", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  const ps = createAdapter(host.modules);
  let deleted = false;
  await assert.rejects(ps.runOperation({
    title: "AI Fill", op: FILL, padding: PAD, names: () => ["x"],
    execute: (input, ctl) => new Promise((resolve, reject) => {
      ctl.onCancel(() => { deleted = true; reject(Object.assign(new Error("the job was cancelled"), { code: "cancelled" })); });
      setTimeout(() => host.cancelModal(), 5);
    }),
  }), (e) => e.code === "cancelled");
  assert.ok(deleted, "the onCancel hook ran (the panel wires it to DELETE /v1/jobs/{id})");
  assert.deepEqual(doc.layers, []);
  assert.equal(doc.historyStates.length, 1);
});

test("an operation that needs a selection says so before touching anything", async () => {
  const host = createFakeHost();
  makeDocument(host, { sel: null });
  const ps = createAdapter(host.modules);
  await assert.rejects(ps.runOperation({
    title: "AI Fill", op: FILL, padding: PAD, names: () => ["x"], execute: async () => assert.fail("must not run"),
  }), (e) => e.code === "selection_required");
  assert.equal(host.callsTo("imaging.getPixels").length, 0);
  assert.equal(host.callsTo("hostControl.suspendHistory").length, 0);
});

test("without a selection the whole merged image is sent and the result has no selection mask", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host, { sel: null, width: 20, height: 10 });
  const ps = createAdapter(host.modules);
  let seen = null;
  await ps.runOperation({
    title: "Restore faces", op: { name: "restore-faces", mask: "optional" }, padding: PAD, names: () => ["Restore faces"],
    execute: async (input) => { seen = input; return resultRun(rect(0, 0, 20, 10), { withMask: false }); },
  });
  assert.deepEqual(seen.region, rect(0, 0, 20, 10));
  assert.equal(seen.mask, null);
  const layer = doc.layers[0].layers[0];
  assert.equal(layer.mask, null);
  assert.deepEqual(layer.pixels.rect, rect(0, 0, 20, 10));
});

test("an op without its own mask result keeps the edit inside the selection via the layer mask", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  const ps = createAdapter(host.modules);
  let seen = null;
  await ps.runOperation({
    title: "Restore faces", op: { name: "restore-faces", mask: "none" }, padding: PAD, names: () => ["Restore faces"],
    execute: async (input) => { seen = input; return resultRun(rect(0, 0, 24, 20), { withMask: false }); },
  });
  assert.equal(seen.mask, null, "an op that takes no mask is not sent one");
  const layer = doc.layers[0].layers[0];
  assert.deepEqual(layer.pixels.rect, rect(14, 4, 24, 20));
  assert.deepEqual(layer.mask.data, crop(doc._selection.data, rect(0, 0, 64, 48), rect(14, 4, 24, 20), 1));
});

test("16-bit: read full range from a trimmed layer, padded transparent; results written full range", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host, { depth: 16, sel: rect(20, 10, 12, 8) });
  // The active layer only has pixels in a 10x6 patch that straddles the region's edge.
  const layerRect = rect(8, 2, 10, 6);
  // Build the active layer through the host, inside a modal scope like Photoshop requires.
  let active;
  await host.modules.photoshop.core.executeAsModal(async () => {
    active = await doc.createPixelLayer({ name: "Retouch" });
  }, { commandName: "setup" });
  active.pixels = { rect: layerRect, data: pattern(Uint16Array, 10 * 6 * 4, 250), channels: 4, depth: 16 };
  const ps = createAdapter(host.modules);
  let seen = null;
  await ps.runOperation({
    title: "AI Fill", op: FILL, source: "layer", padding: PAD, names: () => ["AI Fill"],
    execute: async (input) => { seen = input; return resultRun(rect(6, 6, 12, 8), { depth: 16, channels: 4 }); },
  });
  assert.equal(host.callsTo("imaging.getPixels")[0].args.layerID, active.id);
  assert.equal(host.callsTo("imaging.getPixels")[0].args.componentSize, 16);
  assert.ok(seen.image.data instanceof Uint16Array);
  assert.equal(seen.image.channels, 4);
  const region = rect(14, 4, 24, 20);
  assert.deepEqual(seen.region, region);
  // Inside the layer's patch: the layer's own full-range samples. Outside: transparent.
  const at = (x, y) => [...seen.image.data.subarray(((y - region.y) * region.width + (x - region.x)) * 4, ((y - region.y) * region.width + (x - region.x)) * 4 + 4)];
  const src = (x, y) => [...active.pixels.data.subarray(((y - 2) * 10 + (x - 8)) * 4, ((y - 2) * 10 + (x - 8)) * 4 + 4)];
  assert.deepEqual(at(14, 4), src(14, 4));
  assert.deepEqual(at(17, 7), src(17, 7));
  assert.ok(Math.max(...seen.image.data) > 32768, "full range, not Photoshop's 0..32768");
  assert.deepEqual(at(18, 4), [0, 0, 0, 0]);
  assert.deepEqual(at(30, 20), [0, 0, 0, 0]);
  // Written back: 16-bit, flagged full range, bit-exact.
  const put = host.callsTo("imaging.createImageDataFromBuffer").find((c) => c.args.components === 4);
  assert.equal(put.args.type, "Uint16Array");
  assert.equal(put.args.fullRange, true);
  const placed = doc.layers[0].layers[0];
  assert.deepEqual(placed.pixels.data, resultRun(rect(6, 6, 12, 8), { depth: 16, channels: 4 }).layers[0].data);
  assert.equal(placed.mask.depth, 16, "the mask matches the document's depth");
});

test("an upscale opens a new document of the result's size and leaves the source untouched", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host, { sel: null, width: 20, height: 10 });
  const ps = createAdapter(host.modules);
  const out = await ps.runOperation({
    title: "Upscale", op: { name: "upscale", mask: "none", resizes: true }, padding: PAD, names: () => ["photo ×2"],
    execute: async () => {
      const run = resultRun(rect(0, 0, 40, 20), { withMask: false });
      run.extent = { width: 40, height: 20 };
      return run;
    },
  });
  assert.equal(out.kind, "document");
  const created = host.modules.photoshop.app.activeDocument;
  assert.notEqual(created.id, doc.id);
  assert.equal(created.width, 40);
  assert.equal(created.height, 20);
  assert.equal(created.layers[0].name, "photo ×2");
  assert.deepEqual(created.layers[0].pixels.rect, rect(0, 0, 40, 20));
  assert.equal(doc.layers.length, 0);
  assert.equal(doc.historyStates.length, 1);
  assert.equal(host.callsTo("hostControl.suspendHistory").length, 0);
  // Registered for auto-close while it was being made (so were the profile probe's), then kept.
  const registered = host.callsTo("hostControl.registerAutoCloseDocument").map((c) => c.args.id);
  const unregistered = host.callsTo("hostControl.unregisterAutoCloseDocument").map((c) => c.args.id);
  assert.ok(registered.includes(created.id));
  assert.deepEqual(unregistered.sort(), registered.sort());
  assert.deepEqual(host.modules.photoshop.app.documents.map((d) => d.id), [doc.id, created.id], "the profile probe is gone");
});

test("a failed upscale closes the half-made document", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host, { sel: null, width: 20, height: 10 });
  const ps = createAdapter(host.modules);
  host.failNext("imaging.putPixels", new Error("disk full"));
  await assert.rejects(ps.runOperation({
    title: "Upscale", op: { name: "upscale", mask: "none", resizes: true }, padding: PAD, names: () => ["x"],
    execute: async () => resultRun(rect(0, 0, 40, 20), { withMask: false }),
  }), /disk full/);
  assert.deepEqual(host.modules.photoshop.app.documents.map((d) => d.id), [doc.id]);
});

test("CMYK documents are refused with what to do", async () => {
  const host = createFakeHost();
  makeDocument(host, { mode: constants.DocumentMode.CMYK });
  const ps = createAdapter(host.modules);
  await assert.rejects(ps.runOperation({
    title: "x", op: FILL, padding: PAD, names: () => ["x"], execute: async () => assert.fail(),
  }), (e) => e.code === "unsupported_mode" && /RGB/.test(e.message));
});

test("the pairing token lives in UXP secure storage", async () => {
  const host = createFakeHost();
  const ps = createAdapter(host.modules);
  assert.equal(await ps.tokenStore.get(), "");
  await ps.tokenStore.set("  abc-123 \n");
  assert.equal(await ps.tokenStore.get(), "abc-123");
  assert.equal(host.callsTo("secureStorage.setItem").length, 1);
  await ps.tokenStore.clear();
  assert.equal(await ps.tokenStore.get(), "");
});

test("the document summary reports the selection for the panel's target line", async () => {
  const host = createFakeHost();
  makeDocument(host, { depth: 16 });
  const ps = createAdapter(host.modules);
  const s = await ps.documentSummary();
  assert.equal(s.name, "photo.psd");
  assert.equal(s.depth, 16);
  assert.deepEqual(s.selection, rect(20, 10, 12, 8));
});

test("a layer source with no pixels under the selection says what to pick instead", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  await host.modules.photoshop.core.executeAsModal(async () => {
    const l = await doc.createPixelLayer({ name: "Far away" });
    l.pixels = { rect: rect(60, 44, 4, 4), data: new Uint8Array(4 * 4 * 4), channels: 4, depth: 8 };
  }, { commandName: "setup" });
  const ps = createAdapter(host.modules);
  await assert.rejects(ps.runOperation({
    title: "x", op: FILL, source: "layer", padding: PAD, names: () => ["x"], execute: async () => assert.fail(),
  }), (e) => e.code === "no_pixels" && /Far away.*Merged visible/.test(e.message));
});

test("the document's ICC profile goes along, read once per profile, and the document stays active", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  doc.colorProfileName = "Adobe RGB (1998)";
  const ps = createAdapter(host.modules);
  const seen = [];
  const once = () => ps.runOperation({
    title: "AI Fill", op: FILL, padding: PAD, names: () => ["x"],
    execute: async (input) => { seen.push(input.icc); return resultRun(rect(6, 6, 12, 8)); },
  });
  await once();
  await once();
  assert.deepEqual(seen[0], fakeIccFor("Adobe RGB (1998)"));
  assert.deepEqual(seen[1], seen[0]);
  const probes = host.callsTo("app.createDocument");
  assert.equal(probes.length, 1, "cached after the first time");
  assert.deepEqual({ w: probes[0].args.width, h: probes[0].args.height, p: probes[0].args.profile }, { w: 1, h: 1, p: "Adobe RGB (1998)" });
  assert.equal(host.callsTo("document.saveAs.jpg")[0].args.embedColorProfile, true);
  assert.deepEqual(host.modules.photoshop.app.documents.map((d) => d.id), [doc.id], "the probe document is closed");
  assert.equal(host.modules.photoshop.app.activeDocument.id, doc.id);
  assert.equal(doc.layers[0].layers.length, 2);
});

test("an untagged document sends no profile and makes no probe document", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host, { untagged: true });
  assert.equal(doc.colorProfileName, "None", "what Photoshop reports for an untagged document");
  const ps = createAdapter(host.modules);
  let icc;
  let profile;
  await ps.runOperation({
    title: "AI Fill", op: FILL, padding: PAD, names: () => ["x"],
    execute: async (input) => { icc = input.icc; profile = input.profile; return resultRun(rect(6, 6, 12, 8)); },
  });
  assert.equal(icc, null);
  assert.equal(profile, "");
  assert.equal(host.callsTo("app.createDocument").length, 0);
  // The pixels written back carry no profile at all, not a profile named "None".
  const pixels = host.callsTo("imaging.createImageDataFromBuffer").filter((c) => c.args.colorSpace === "RGB");
  assert.equal(pixels.length, 1);
  assert.ok(!("colorProfile" in pixels[0].args), JSON.stringify(pixels[0].args));
  assert.equal(host.callsTo("imaging.putPixels").length, 1);
  assert.equal(doc.layers[0].layers.length, 1);
  assert.equal((await ps.documentSummary()).profile, "");
});

test("an untagged document's upscale opens a new document without a profile name", async () => {
  const host = createFakeHost();
  makeDocument(host, { sel: null, width: 20, height: 10, untagged: true });
  const ps = createAdapter(host.modules);
  const out = await ps.runOperation({
    title: "Upscale", op: { name: "upscale", mask: "none", resizes: true }, padding: PAD, names: () => ["photo ×2"],
    execute: async () => {
      const run = resultRun(rect(0, 0, 40, 20), { withMask: false });
      run.extent = { width: 40, height: 20 };
      return run;
    },
  });
  assert.equal(out.kind, "document");
  assert.equal(host.callsTo("app.createDocument")[0].args.profile, undefined);
});

test("the fake is honest: Photoshop's DOM hands out a new wrapper per access, same id", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  const { app, core } = host.modules.photoshop;
  await core.executeAsModal(async () => { await doc.createPixelLayer({ name: "a" }); }, { commandName: "setup" });
  assert.notEqual(app.activeDocument, app.activeDocument);
  assert.equal(app.activeDocument.id, app.activeDocument.id);
  assert.notEqual(doc.layers[0], doc.layers[0]);
  assert.equal(doc.layers[0].id, doc.layers[0].id);
  assert.ok(!doc.layers.includes(doc.layers[0]));
  await assert.rejects(core.executeAsModal(() => doc.layers[0].move(doc.layers[0], constants.ElementPlacement.PLACEBEFORE)),
    /relative to itself/);
  await assert.rejects(host.modules.photoshop.imaging.createImageDataFromBuffer(new Uint8Array(3),
    { width: 1, height: 1, components: 3, colorSpace: "RGB", colorProfile: "None" }), /invalid color profile "None"/);
});

test("the group goes to the top of the stack, above the layer that was active, without moving relative to itself", async () => {
  const host = createFakeHost();
  const doc = makeDocument(host);
  const { core } = host.modules.photoshop;
  let bottom;
  await core.executeAsModal(async () => {
    bottom = await doc.createPixelLayer({ name: "Background copy" });
    await doc.createPixelLayer({ name: "Top" });
  }, { commandName: "setup" });
  // The user works on the lower layer: Photoshop makes a new group just above the active layer.
  doc._activeLayers = [doc.layerById(bottom.id)];
  const historyBefore = doc.historyStates.length;
  const ps = createAdapter(host.modules);
  await ps.runOperation({
    title: "AI Fill", op: FILL, padding: PAD, names: () => ["AI Fill"],
    execute: async () => resultRun(rect(6, 6, 12, 8)),
  });
  assert.deepEqual(doc.layers.map((l) => l.name), [GROUP_NAME, "Top", "Background copy"]);
  assert.equal(doc.layers[0].layers[0].name, "AI Fill");
  const group = doc.layers[0];
  const groupMoves = host.callsTo("layer.move").filter((c) => c.args.id === group.id);
  assert.deepEqual(groupMoves.map((c) => c.args.placement), [constants.ElementPlacement.PLACEBEFORE]);
  assert.ok(groupMoves.every((c) => c.args.relative !== c.args.id));
  assert.equal(doc.historyStates.length, historyBefore + 1, "one step for the fill, the move included");
});
