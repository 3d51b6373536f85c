"use strict";
/**
 * The panel's UI in headless Chromium, from the dev page (dev/serve.js), against
 * the real bridge through the dev server's proxy. Screenshots are kept in
 * test-artifacts/ for people to look at.
 */
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { startBridge, unavailable, freePort } = require("./helpers/bridge.js");
const { chromiumPath, dumpDom, screenshot, element } = require("./helpers/chromium.js");
const { createDevServer } = require("../dev/serve.js");
const { startImpostor } = require("./helpers/impostor.js");

const ARTIFACTS = path.resolve(__dirname, "..", "test-artifacts");
const skipBridge = unavailable() || false;
const skipChromium = chromiumPath() ? false : "no chromium installed";
const skip = skipChromium || skipBridge;

// Started by the first test that needs it, so the bridge-down test runs without one.
let starting = null;
const theBridge = () => (starting = starting || startBridge());
test.after(async () => { if (starting) await (await starting).stop(); });

async function withDevPage(opts, fn) {
  const dev = createDevServer(opts);
  const url = await dev.listen(0);
  try {
    return await fn(`${url}/dev.html`);
  } finally {
    await dev.close();
  }
}

function isPng(file) {
  const b = fs.readFileSync(file);
  return b.length > 5000 && b.subarray(1, 4).toString() === "PNG";
}

test("connected: status, controls enabled by the bridge's capabilities; screenshot kept", { skip }, async () => {
  const bridge = await theBridge();
  await withDevPage({ bridge: bridge.url, token: bridge.token }, async (url) => {
    const html = await dumpDom(url);
    const status = element(html, "status");
    assert.equal(status.attr("data-tone"), "ok", status.attrs);
    assert.match(element(html, "status-text").text, /Connected · 0\.1\.0/);
    assert.ok(element(html, "pairing").hidden, "already paired");
    assert.ok(element(html, "alert").hidden, element(html, "alert").text);
    // Every main control is there.
    for (const id of ["source", "prompt", "negative", "strength", "seed", "variations", "run-fill", "run-remove",
      "run-restore-faces", "run-remove-background", "scale", "model", "run-upscale", "progress-bar", "cancel"]) {
      assert.ok(element(html, id), `#${id} is missing`);
    }
    assert.equal(element(html, "run-fill").tag, "sp-button");
    assert.equal(element(html, "strength").tag, "sp-slider");
    assert.equal(element(html, "source").tag, "sp-picker");
    assert.equal(element(html, "progress-bar").tag, "sp-progressbar");
    // What the bridge offers is enabled: this bridge has every operation, skin retouch included.
    for (const id of ["run-upscale", "run-fill", "run-remove", "run-restore-faces", "run-remove-background"]) {
      assert.ok(!element(html, id).disabled, `${id} should be enabled: ${element(html, id).attrs}`);
    }
    assert.ok(!element(html, "run-skin-retouch").hidden, "the bridge has skin-retouch, so the panel shows it");
    // The model picker was filled from the upscale schema.
    assert.match(element(html, "model-menu").text, /Lanczos/);
    // The target line describes the (fake) document and its selection.
    assert.match(element(html, "target-line").text, /portrait\.psd · 1600×1067 · 8-bit · selection \d+×\d+/);
    const file = await screenshot(url, path.join(ARTIFACTS, "panel.png"));
    assert.ok(isPng(file));
  });
});

test("pressing Upscale runs the job on the bridge and opens the result as a new document", { skip }, async () => {
  const bridge = await theBridge();
  const demo = { width: 240, height: 160, selection: false, title: "small.psd", click: "run-upscale" };
  await withDevPage({ bridge: bridge.url, token: bridge.token, demo }, async (url) => {
    const html = await dumpDom(url, { budgetMs: 8000 });
    const notice = element(html, "notice");
    assert.ok(!notice.hidden, `no result notice; alert: ${element(html, "alert").text}`);
    assert.equal(notice.text, 'Opened "small ×2" (480×320)');
    assert.ok(element(html, "progress").hidden, "the progress card is gone when done");
    assert.equal(element(html, "status").attr("data-tone"), "ok");
  });
});

test("bridge not running: the panel says so and offers Retry", { skip: skipChromium }, async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  await withDevPage({ bridge: closed, token: "x" }, async (url) => {
    const html = await dumpDom(url);
    assert.equal(element(html, "status").attr("data-tone"), "off");
    const alert = element(html, "alert");
    assert.ok(!alert.hidden);
    assert.match(alert.text, /Retouch Bridge is not running/);
    assert.match(alert.text, /retouch-bridge serve/);
    assert.ok(element(html, "reconnect") && !element(html, "reconnect").hidden, "a Retry in the header too");
    assert.equal(element(html, "alert-action").text, "Retry");
    assert.ok(element(html, "run-upscale").disabled);
    assert.ok(isPng(await screenshot(url, path.join(ARTIFACTS, "panel-bridge-down.png"))));
  });
});

// The panel cannot tell a wrong token from an impostor (neither proves the token), so
// both get one message that names both, with the token form open.
const NOT_VERIFIED = /Something else is answering on port \d+ — not Retouch Bridge, or a bridge with another token\. Check the token or quit the other program\./;

test("wrong token: the pairing form opens with what to do", { skip }, async () => {
  const bridge = await theBridge();
  await withDevPage({ bridge: bridge.url, token: "wrong-token" }, async (url) => {
    const html = await dumpDom(url);
    assert.ok(!element(html, "pairing").hidden);
    assert.match(element(html, "alert").text, NOT_VERIFIED);
    assert.equal(element(html, "token").tag, "sp-textfield");
    assert.ok(isPng(await screenshot(url, path.join(ARTIFACTS, "panel-pairing.png"))));
  });
});

test("an impostor on the port: a clear error, and it never sees the token", { skip: skipChromium }, async () => {
  const impostor = await startImpostor({ mode: "no-proof" });
  const token = "the-real-token-0123456789abcdef";
  try {
    await withDevPage({ bridge: impostor.url, token }, async (url) => {
      const html = await dumpDom(url);
      assert.equal(element(html, "status").attr("data-tone"), "off");
      assert.equal(element(html, "status-text").text, "Not verified");
      const alert = element(html, "alert");
      assert.ok(!alert.hidden);
      assert.match(alert.text, /Not Retouch Bridge on port \d+/);
      assert.match(alert.text, NOT_VERIFIED);
      assert.equal(element(html, "alert-action").text, "Check again");
      assert.ok(!element(html, "pairing").hidden, "the token form is there to check the token");
      assert.ok(element(html, "run-upscale").disabled);
      assert.ok(isPng(await screenshot(url, path.join(ARTIFACTS, "panel-impostor.png"))));
    });
    assert.ok(impostor.received.some((r) => r.url.startsWith("/v1/health?challenge=")), "it was challenged");
    assert.ok(!impostor.everything().includes(token), "the token never reached it");
    assert.ok(impostor.received.every((r) => r.method === "GET" && r.url.startsWith("/v1/health")));
    assert.equal(impostor.upgrades.length, 0);
  } finally {
    await impostor.close();
  }
});
