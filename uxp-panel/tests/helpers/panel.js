"use strict";
/**
 * The whole panel (src/main.js on the real index.html) in node: the DOM from
 * tests/helpers/dom.js, the host from tests/fakes/photoshop.js, the bridge real.
 */

const { loadPanelDocument, memoryStorage } = require("./dom.js");
const { createAdapter, TOKEN_KEY } = require("../../src/photoshop.js");
const { createPanel } = require("../../src/main.js");

/**
 * Mount and start the panel. url: the bridge address saved in its settings;
 * allowedOrigins: what the "manifest" allows (default: the panel's own list).
 */
async function mountPanel({ host, url = null, token = "", allowedOrigins, makeClient } = {}) {
  const document = loadPanelDocument();
  globalThis.document = document;
  globalThis.localStorage = memoryStorage();
  if (url) globalThis.localStorage.setItem("retouch-bridge.url", url);
  if (token) await host.modules.uxp.storage.secureStorage.setItem(TOKEN_KEY, token);
  const options = { adapter: createAdapter(host.modules) };
  if (allowedOrigins !== undefined) options.allowedOrigins = allowedOrigins;
  if (makeClient) options.makeClient = makeClient;
  const panel = createPanel(options);
  try {
    await panel.start();
  } catch (e) {
    panel.stop(); // its retry timer would keep the test process alive
    throw e;
  }
  return { panel, document, $: (id) => document.getElementById(id), storage: globalThis.localStorage };
}

/** The manifest's origins plus the bridge's own (as if its port were added to the manifest). */
function originsWith(url, base) {
  return [...base, url, url.replace(/^http/, "ws")];
}

async function waitFor(what, fn, { timeoutMs = 15000, everyMs = 20 } = {}) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

module.exports = { mountPanel, originsWith, waitFor };
