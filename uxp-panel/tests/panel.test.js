"use strict";
/**
 * The panel as a whole (src/main.js on index.html, tests/helpers/dom.js for the
 * DOM, the host fake for Photoshop): what the user sees when the bridge address
 * is one Photoshop would block.
 */
const test = require("node:test");
const assert = require("node:assert/strict");
const net = require("node:net");
const { createFakeHost } = require("./fakes/photoshop.js");
const { mountPanel, waitFor } = require("./helpers/panel.js");

/** A TCP listener that only counts who connects (it answers nothing). */
function listener() {
  const seen = [];
  const server = net.createServer((s) => { seen.push(s.remoteAddress); s.destroy(); });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    port: server.address().port, seen, close: () => new Promise((r) => server.close(r)),
  })));
}

test("a bridge address on a port the manifest does not allow: the panel says which and why, and tries nothing", async () => {
  const other = await listener();
  const host = createFakeHost();
  const made = [];
  const { panel, $ } = await mountPanel({
    host, url: `http://127.0.0.1:${other.port}`, token: "a-token",
    makeClient: (opts) => { made.push(opts); throw new Error("no client should be made"); },
  });
  try {
    const err = panel.state.error;
    assert.equal(err.code, "origin_not_allowed");
    assert.equal($("alert-title").textContent, `Port ${other.port} is blocked by Photoshop`);
    const message = $("alert-message").textContent;
    assert.match(message, new RegExp(`port ${other.port} is not allowed by the panel's manifest, which allows only port 7847`));
    assert.match(message, /retouch-bridge serve --port 7847/);
    assert.match(message, new RegExp(`http://127\\.0\\.0\\.1:${other.port}.*ws://127\\.0\\.0\\.1:${other.port}.*requiredPermissions\\.network\\.domains`));
    assert.ok(!$("alert").isHidden);
    assert.doesNotMatch(message, /not running/);
    assert.equal($("status").getAttribute("data-tone"), "off");
    assert.equal(made.length, 0, "no client was made");
    assert.equal(other.seen.length, 0, "nothing connected to that port");
    // The action opens the address field.
    assert.equal($("alert-action").textContent, "Change address");
    $("alert-action").click();
    await waitFor("the pairing form", () => !$("pairing").isHidden);
  } finally {
    panel.stop();
    await other.close();
  }
});

test("a host the manifest does not list is named as such", async () => {
  const host = createFakeHost();
  const { panel, $ } = await mountPanel({ host, url: "http://192.168.1.20:7847", token: "t", makeClient: () => assert.fail("no client") });
  try {
    assert.equal($("alert-title").textContent, "Bridge address not allowed");
    assert.match($("alert-message").textContent, /host "192\.168\.1\.20" is not allowed by the panel's manifest, which allows only 127\.0\.0\.1 and localhost/);
  } finally {
    panel.stop();
  }
});
