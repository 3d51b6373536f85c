"use strict";
/**
 * Port squatting: the client checks the server's identity proof before the token or
 * pixels leave, against the REAL bridge and against impostors that record what they get.
 */
const test = require("node:test");
const assert = require("node:assert/strict");
const { startBridge, unavailable } = require("./helpers/bridge.js");
const { startImpostor, MODES } = require("./helpers/impostor.js");
const { startRelay } = require("./helpers/relay.js");
const { BridgeClient } = require("../src/client.js");
const { proofFor, newNonce } = require("../src/identity.js");

const skip = unavailable() || false;
const hasWebSocket = typeof WebSocket === "function";
let bridge = null;

test.before(async () => { if (!skip) bridge = await startBridge(); });
test.after(async () => { if (bridge) await bridge.stop(); });

function image() {
  return { data: new Uint8Array(4 * 4 * 3).fill(200), width: 4, height: 4, channels: 3 };
}

/** The impostor saw only identity challenges: no token anywhere, no pixels, no WebSocket. */
function assertOnlyChallenged(impostor, token) {
  assert.ok(impostor.received.length > 0, "the impostor was challenged");
  for (const r of impostor.received) {
    assert.equal(r.method, "GET");
    assert.match(r.url, /^\/v1\/health\?challenge=[A-Za-z0-9_-]{32}$/);
    assert.equal(r.headers.authorization, undefined);
    assert.equal(r.body.length, 0);
  }
  assert.equal(impostor.upgrades.length, 0, "no event stream was opened");
  assert.ok(!impostor.everything().includes(token), "the token never reached the impostor");
}

test("the real bridge's proof is the one our own HMAC computes, for every nonce length it takes", { skip }, async () => {
  for (const nonce of ["a".repeat(16), "Zz-_".repeat(32), newNonce()]) {
    const res = await fetch(`${bridge.url}/v1/health?challenge=${nonce}`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.proof, proofFor(bridge.token, bridge.port, nonce), nonce);
    assert.notEqual(body.proof, proofFor(`${bridge.token}x`, bridge.port, nonce));
    assert.notEqual(body.proof, proofFor(bridge.token, bridge.port + 1, nonce));
  }
  const client = new BridgeClient({ baseUrl: bridge.url, token: bridge.token });
  const health = await client.verifyIdentity();
  assert.equal(health.status, "ok");
  assert.equal(health.protocol, 1);
});

test("the identity check comes before the first request with the token, once per connection", { skip }, async () => {
  const seen = [];
  const recording = (url, init) => { seen.push(`${init.method} ${new URL(url).pathname}${new URL(url).search.replace(/=.*/, "=")} ${init.headers.Authorization ? "auth" : "-"}`); return fetch(url, init); };
  const client = new BridgeClient({ baseUrl: bridge.url, token: bridge.token, fetch: recording });
  await client.capabilities();
  await client.jobs();
  const job = await client.submitJob({ op: "passthrough", image: image() });
  await client.waitForJob(job.id, { pollMs: 50 });
  assert.deepEqual(seen.slice(0, 5), [
    "GET /v1/health?challenge= -", "GET /v1/capabilities auth", "GET /v1/jobs auth",
    // An upload of pixels is preceded by a fresh check.
    "GET /v1/health?challenge= -", "POST /v1/jobs auth",
  ]);
  assert.ok(seen.slice(5).every((s) => s.startsWith("GET /v1/jobs/") && s.endsWith("auth")), seen.join("\n"));
});

for (const mode of MODES) {
  test(`an impostor (${mode}) gets no token, no pixels and no event stream`, { skip }, async () => {
    const impostor = await startImpostor({ mode });
    try {
      const client = new BridgeClient({ baseUrl: impostor.url, token: bridge.token });
      const isImpostor = (e) => e.code === "impostor" && e.details.port === String(impostor.port);
      await assert.rejects(client.capabilities(), isImpostor);
      await assert.rejects(client.submitJob({ op: "passthrough", image: image() }), isImpostor);
      await assert.rejects(client.job("j-1"), isImpostor);
      await assert.rejects(client.cancel("j-1"), isImpostor);
      if (hasWebSocket) await assert.rejects(client.events(), isImpostor);
      assertOnlyChallenged(impostor, bridge.token);
    } finally {
      await impostor.close();
    }
  });
}

test("a relay to the REAL bridge on another port (same token) gets no token, no pixels and no event stream", { skip }, async () => {
  const relay = await startRelay(bridge.port);
  try {
    // The relay really reaches the bridge: its answer is the bridge's proof, for the bridge's port.
    const nonce = newNonce();
    const body = await (await fetch(`${relay.url}/v1/health?challenge=${nonce}`)).json();
    assert.equal(body.proof, proofFor(bridge.token, bridge.port, nonce));
    const before = relay.requests().length;

    const client = new BridgeClient({ baseUrl: relay.url, token: bridge.token });
    const isImpostor = (e) => e.code === "impostor" && e.details.port === String(relay.port);
    await assert.rejects(client.capabilities(), isImpostor);
    await assert.rejects(client.submitJob({ op: "passthrough", image: image() }), isImpostor);
    await assert.rejects(client.job("j-1"), isImpostor);
    if (hasWebSocket) await assert.rejects(client.events(), isImpostor);
    const asked = relay.requests().slice(before);
    assert.ok(asked.length >= 3, asked.join("\n"));
    for (const line of asked) assert.match(line, /^GET \/v1\/health\?challenge=[A-Za-z0-9_-]{32} HTTP\/1\.1$/);
    assert.ok(!relay.received().includes(bridge.token), "the token never reached the relay");
    assert.ok(!/authorization/i.test(relay.received()));
    // The same client settings straight at the bridge's own port pass: only the port differs.
    await new BridgeClient({ baseUrl: bridge.url, token: bridge.token }).capabilities();
  } finally {
    await relay.close();
  }
});

test("without a token nothing is sent but the challenge-free health", { skip }, async () => {
  const impostor = await startImpostor({ mode: "no-proof" });
  try {
    const client = new BridgeClient({ baseUrl: impostor.url, token: "" });
    await assert.rejects(client.submitJob({ op: "passthrough", image: image() }), (e) => e.code === "unauthorized");
    assert.equal(impostor.received.length, 0);
  } finally {
    await impostor.close();
  }
});

test("when the bridge goes away and something else takes its port, it is challenged again", {
  skip: skip || (!hasWebSocket && "no WebSocket: run with --experimental-websocket (npm test does)"),
}, async () => {
  const second = await startBridge();
  const uploader = new BridgeClient({ baseUrl: second.url, token: second.token });
  const watcher = new BridgeClient({ baseUrl: second.url, token: second.token });
  await uploader.capabilities();
  const stream = await watcher.events();
  const closed = new Promise((resolve) => stream.on("close", resolve));
  await second.stop();
  await closed;
  const impostor = await startImpostor({ mode: "no-proof", port: second.port });
  try {
    // Pixels always wait for a fresh check; after its stream closed, so does everything.
    await assert.rejects(uploader.submitJob({ op: "passthrough", image: image() }), (e) => e.code === "impostor");
    await assert.rejects(watcher.job("j-1"), (e) => e.code === "impostor");
    assertOnlyChallenged(impostor, second.token);
  } finally {
    await impostor.close();
  }
});
