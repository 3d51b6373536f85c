"use strict";
/**
 * "Run recipe…" in the whole panel (main.js on index.html in node), against the
 * REAL bridge: the open dialog (the host fake's getFileForOpening) gives a TOML
 * or JSON file, the panel sends it with the selection's pixels to
 * POST /v1/recipes/run, and the result comes back as a layer in one undo step.
 */
const test = require("node:test");
const assert = require("node:assert/strict");
const { startBridge, unavailable } = require("./helpers/bridge.js");
const { createFakeHost } = require("./fakes/photoshop.js");
const { mountPanel, originsWith, waitFor } = require("./helpers/panel.js");
const { ALLOWED_ORIGINS } = require("../src/origins.js");
const { GROUP_NAME } = require("../src/photoshop.js");
const { BridgeClient } = require("../src/client.js");

const skip = unavailable() || false;
let bridge = null;
let api = null;

test.before(async () => {
  if (skip) return;
  bridge = await startBridge();
  api = new BridgeClient({ baseUrl: bridge.url, token: bridge.token });
});
test.after(async () => { if (bridge) await bridge.stop(); });

const W = 400;
const H = 300;
const SEL = { x: 150, y: 120, width: 40, height: 20 };
// The selection plus the panel's context padding (half its larger side, at least 64 px).
const REGION = { x: SEL.x - 64, y: SEL.y - 64, width: SEL.width + 128, height: SEL.height + 128 };

function photo(host) {
  const data = new Uint8Array(W * H * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 251;
  const m = new Uint8Array(W * H);
  for (let y = SEL.y; y < SEL.y + SEL.height; y++) for (let x = SEL.x; x < SEL.x + SEL.width; x++) m[y * W + x] = 255;
  return host.addDocument({
    title: "shot.psd", width: W, height: H, depth: 8, profile: "Adobe RGB (1998)",
    composite: { rect: { x: 0, y: 0, width: W, height: H }, data, channels: 3 }, selection: { data: m },
  });
}

async function panelOn(host) {
  const mounted = await mountPanel({
    host, url: bridge.url, token: bridge.token, allowedOrigins: originsWith(bridge.url, ALLOWED_ORIGINS),
  });
  assert.equal(mounted.panel.state.phase, "idle", JSON.stringify(mounted.panel.state.error));
  return mounted;
}

/** Press "Run recipe…" and wait until the panel is done (idle or showing an error). */
async function pressRunRecipe({ panel, $ }) {
  assert.ok(!$("run-recipe").hasAttribute("disabled"));
  $("run-recipe").click();
  await waitFor("the recipe to start", () => panel.state.phase !== "idle" || panel.state.notice);
  await waitFor("the recipe to end", () => panel.state.phase === "idle" || panel.state.phase === "error");
}

test("a TOML recipe runs on the selection's pixels and comes back as one masked layer in one undo step", { skip }, async () => {
  const host = createFakeHost();
  const doc = photo(host);
  host.choosePick({ name: "keep.toml", nativePath: "/Users/me/recipes/keep.toml", text: 'name = "keep as is"\n\n[[steps]]\nop = "passthrough"\n' });
  const mounted = await panelOn(host);
  const { panel, $, storage } = mounted;
  try {
    // Watch the panel's own state for the job id.
    const jobs = [];
    const timer = setInterval(() => {
      const j = panel.state.job;
      if (j && j.jobId && !jobs.includes(j.jobId)) jobs.push(j.jobId);
    }, 5);
    await pressRunRecipe(mounted);
    clearInterval(timer);
    assert.equal(panel.state.phase, "idle", JSON.stringify(panel.state.error));
    assert.equal(panel.state.notice, `Added 1 layer to "${GROUP_NAME}"`);
    assert.deepEqual(host.callsTo("localFileSystem.getFileForOpening").map((c) => c.args), [{ types: ["toml", "json"] }]);

    // The bridge ran it as a recipe job.
    assert.equal(jobs.length, 1);
    const status = await api.job(jobs[0]);
    assert.equal(status.op, "recipe");
    assert.equal(status.state, "done");
    assert.equal(status.result.metadata.recipe, "keep as is");
    assert.deepEqual(status.result.extent, [REGION.width, REGION.height], "selection bounds plus context, not the document");
    // The document's profile went along: the bridge's encoded result carries it.
    const png = await fetch(`${bridge.url}/v1/jobs/${jobs[0]}/result?format=png`, { headers: { Authorization: `Bearer ${bridge.token}` } });
    const bytes = Buffer.from(await png.arrayBuffer());
    assert.ok(bytes.includes(Buffer.from("iCCP")), "the result PNG has an ICC profile");

    // One new layer in the group, at the region, bit-exact, the selection as its mask; one history step.
    const group = doc.layers[0];
    assert.equal(group.name, GROUP_NAME);
    assert.equal(group.layers.length, 1);
    const layer = group.layers[0];
    assert.equal(layer.name, 'Recipe "keep as is"');
    assert.deepEqual(layer.pixels.rect, REGION);
    for (let y = 0; y < REGION.height; y++) {
      for (let x = 0; x < REGION.width; x++) {
        for (let c = 0; c < 3; c++) {
          assert.equal(layer.pixels.data[(y * REGION.width + x) * 3 + c], doc._composite.data[((REGION.y + y) * W + REGION.x + x) * 3 + c]);
        }
      }
    }
    assert.equal(layer.mask.data[(SEL.y - REGION.y + 2) * REGION.width + (SEL.x - REGION.x + 2)], 255);
    assert.equal(layer.mask.data[0], 0);
    assert.equal(doc.historyStates.length, 2);
    assert.equal(doc.historyStates.at(-1).name, 'Recipe "keep"');
    assert.ok(host.progress.length >= 2, "Photoshop's progress bar moved");

    // The last recipe is remembered in the panel's settings and shown.
    assert.equal(storage.getItem("retouch-bridge.last-recipe"), "/Users/me/recipes/keep.toml");
    assert.equal($("recipe-last").textContent, "Last recipe: /Users/me/recipes/keep.toml");
  } finally {
    panel.stop();
  }
});

test("a recipe step with a bad parameter is refused naming the step; the document is untouched", { skip }, async () => {
  const host = createFakeHost();
  const doc = photo(host);
  const recipe = JSON.stringify({ name: "too big", steps: [{ op: "passthrough" }, { op: "upscale", scale: 100 }] });
  host.choosePick({ name: "big.json", nativePath: "C:\\recipes\\big.json", text: recipe });
  const mounted = await panelOn(host);
  try {
    await pressRunRecipe(mounted);
    const { panel, $ } = mounted;
    assert.equal(panel.state.phase, "error");
    assert.equal(panel.state.error.code, "invalid_params");
    assert.equal($("alert-title").textContent, "Recipe step 2 (upscale) is not valid");
    assert.match($("alert-message").textContent, /step 2 \(upscale\).*scale/);
    assert.deepEqual(doc.layers, []);
    assert.equal(doc.historyStates.length, 1);
  } finally {
    mounted.panel.stop();
  }
});

test("an unknown operation in a recipe is named with its step", { skip }, async () => {
  const host = createFakeHost();
  const doc = photo(host);
  host.choosePick({ name: "typo.toml", nativePath: "/r/typo.toml", text: '[[steps]]\nop = "passthrough"\n[[steps]]\nop = "sharpen-all-the-things"\n' });
  const mounted = await panelOn(host);
  try {
    await pressRunRecipe(mounted);
    assert.equal(mounted.panel.state.error.code, "unknown_operation");
    assert.equal(mounted.$("alert-title").textContent, 'Recipe step 2: unknown operation "sharpen-all-the-things"');
    assert.deepEqual(doc.layers, []);
  } finally {
    mounted.panel.stop();
  }
});

test("Cancel during a recipe cancels the bridge job and leaves the document as it was", { skip }, async () => {
  const host = createFakeHost();
  const doc = photo(host);
  host.choosePick({ name: "slow.toml", nativePath: "/r/slow.toml", text: '[[steps]]\nop = "passthrough"\ndelay_s = 20\n' });
  const mounted = await panelOn(host);
  const { panel, $ } = mounted;
  try {
    $("run-recipe").click();
    const jobId = await waitFor("the job to be submitted", () => panel.state.job && panel.state.job.jobId);
    await waitFor("the recipe to run", async () => (await api.job(jobId)).state === "running");
    const started = Date.now();
    $("cancel").click();
    await waitFor("the panel to settle", () => panel.state.phase === "idle");
    assert.ok(Date.now() - started < 10000);
    assert.equal(panel.state.notice, "Cancelled — nothing was changed");
    assert.equal((await api.job(jobId)).state, "cancelled");
    assert.deepEqual(doc.layers, []);
    assert.equal(doc.historyStates.length, 1);
  } finally {
    panel.stop();
  }
});

test("a recipe that changes the size opens its result as a new document", { skip }, async () => {
  const host = createFakeHost();
  const doc = photo(host);
  host.choosePick({ name: "double.toml", nativePath: "/r/double.toml", text: '[[steps]]\nop = "upscale"\nscale = 2\nmodel = "lanczos"\n' });
  const mounted = await panelOn(host);
  try {
    await pressRunRecipe(mounted);
    assert.equal(mounted.panel.state.phase, "idle", JSON.stringify(mounted.panel.state.error));
    const created = host.modules.photoshop.app.activeDocument;
    assert.notEqual(created.id, doc.id);
    assert.deepEqual([created.width, created.height], [REGION.width * 2, REGION.height * 2]);
    assert.equal(created.colorProfileName, "Adobe RGB (1998)");
    assert.deepEqual(doc.layers, [], "the source document is untouched");
    assert.equal(doc.historyStates.length, 1);
  } finally {
    mounted.panel.stop();
  }
});

test("closing the open dialog runs nothing", { skip }, async () => {
  const host = createFakeHost();
  photo(host);
  host.choosePick(null);
  const mounted = await panelOn(host);
  try {
    mounted.$("run-recipe").click();
    await waitFor("the dialog", () => host.callsTo("localFileSystem.getFileForOpening").length === 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(mounted.panel.state.phase, "idle");
    assert.equal(host.callsTo("core.executeAsModal").length, 0);
    assert.equal(mounted.storage.getItem("retouch-bridge.last-recipe"), null);
  } finally {
    mounted.panel.stop();
  }
});
