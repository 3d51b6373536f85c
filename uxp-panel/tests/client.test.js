"use strict";
/** The bridge client against the real bridge server, started here on a free port. */
const test = require("node:test");
const assert = require("node:assert/strict");
const { startBridge, unavailable, freePort } = require("./helpers/bridge.js");
const { BridgeClient, BridgeError, buildMultipart, parseEvent } = require("../src/client.js");

const skip = unavailable() || false;
let bridge = null;
let client = null;

function rgbImage(width, height, channels = 3, depth = 8) {
  const Type = depth === 16 ? Uint16Array : Uint8Array;
  const data = new Type(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = depth === 16 ? (i * 2749) % 65536 : (i * 37) % 256;
  return { data, width, height, channels };
}

test.before(async () => {
  if (skip) return;
  bridge = await startBridge();
  client = new BridgeClient({ baseUrl: bridge.url, token: bridge.token });
});
test.after(async () => { if (bridge) await bridge.stop(); });

test("multipart bodies are built by hand as bytes, binary parts untouched", () => {
  const px = Uint8Array.from([0, 13, 10, 45, 45, 255]); // CR LF and "--" inside binary data
  const { body, contentType } = buildMultipart([
    { name: "op", value: "fill" },
    { name: "params", value: JSON.stringify({ prompt: "blauer Himmel — ☁" }) },
    { name: "image", value: px, filename: "image.raw" },
  ], "BOUNDARY");
  assert.equal(contentType, "multipart/form-data; boundary=BOUNDARY");
  const text = Buffer.from(body).toString("latin1");
  assert.ok(text.startsWith('--BOUNDARY\r\nContent-Disposition: form-data; name="op"\r\n\r\nfill\r\n'));
  assert.ok(Buffer.from(body).includes(Buffer.from('{"prompt":"blauer Himmel — ☁"}', "utf8")), "UTF-8 text");
  const head = Buffer.from("Content-Type: application/octet-stream\r\n\r\n");
  const at = Buffer.from(body).indexOf(head) + head.length;
  assert.deepEqual([...body.subarray(at, at + 6)], [...px], "raw bytes, not base64");
  assert.ok(text.endsWith("\r\n--BOUNDARY--\r\n"));
});

test("events are typed; unknown messages are dropped", () => {
  assert.deepEqual(parseEvent({ type: "progress", job: "j1", progress: 1.7, message: "x" }), { type: "progress", job: "j1", progress: 1, message: "x" });
  assert.equal(parseEvent({ type: "hello" }), null);
  assert.equal(parseEvent("nope"), null);
  assert.equal(parseEvent({ type: "model-progress", model: "m", received: 5, total: 10, state: "downloading" }).total, 10);
});

test("health needs no token; capabilities list the operations with their schemas", { skip }, async () => {
  const anonymous = new BridgeClient({ baseUrl: bridge.url, token: "" });
  const health = await anonymous.health();
  assert.equal(health.status, "ok");
  assert.equal(health.protocol, 1);
  const caps = await client.capabilities();
  const names = caps.operations.map((o) => o.name);
  assert.ok(names.includes("passthrough") && names.includes("upscale"), names.join(","));
  const up = caps.operations.find((o) => o.name === "upscale");
  assert.equal(up.resizes, true);
  assert.ok("scale" in up.params.properties);
});

test("a raw 8-bit job with a mask round-trips bit-exact with its layout headers", { skip }, async () => {
  const image = rgbImage(37, 23);
  const mask = { data: new Uint8Array(37 * 23).fill(255), width: 37, height: 23 };
  const job = await client.submitJob({ op: "passthrough", image, mask });
  assert.match(job.id, /\S/);
  const status = await client.waitForJob(job.id);
  assert.equal(status.state, "done");
  assert.deepEqual(status.result.extent, [37, 23]);
  const px = await client.result(job.id, { layer: status.result.layers[0].name });
  assert.deepEqual({ w: px.width, h: px.height, c: px.channels, d: px.depth }, { w: 37, h: 23, c: 3, d: 8 });
  assert.deepEqual(px.bounds, { x: 0, y: 0, width: 37, height: 23 });
  assert.deepEqual(px.extent, { width: 37, height: 23 });
  assert.deepEqual(px.data, image.data);
  const primary = await client.result(job.id);
  assert.deepEqual(primary.data, image.data);
});

test("16-bit RGBA keeps every full-range value", { skip }, async () => {
  const image = rgbImage(16, 9, 4, 16);
  const job = await client.submitJob({ op: "passthrough", image });
  await client.waitForJob(job.id);
  const px = await client.result(job.id);
  assert.equal(px.depth, 16);
  assert.equal(px.channels, 4);
  assert.ok(px.data instanceof Uint16Array);
  assert.deepEqual(px.data, image.data);
  assert.ok(Math.max(...px.data) > 60000);
});

test("an upscale result has the scaled extent", { skip }, async () => {
  const job = await client.submitJob({ op: "upscale", params: { scale: 2 }, image: rgbImage(20, 11) });
  const status = await client.waitForJob(job.id);
  assert.deepEqual(status.result.extent, [40, 22]);
  const px = await client.result(job.id);
  assert.deepEqual({ w: px.width, h: px.height }, { w: 40, h: 22 });
  assert.deepEqual(px.extent, { width: 40, height: 22 });
});

test("progress arrives over the WebSocket, then done", { skip: skip || (typeof WebSocket !== "function" && "no WebSocket: run with --experimental-websocket (npm test does)") }, async () => {
  const events = await client.events();
  try {
    const seen = [];
    events.on("*", (ev) => seen.push(ev));
    const job = await client.submitJob({ op: "passthrough", params: { delay_s: 0.8 }, image: rgbImage(8, 8) });
    events.subscribe([job.id]);
    const progress = [];
    const status = await client.waitForJob(job.id, { events, onProgress: (p) => progress.push(p), pollMs: 5000 });
    assert.equal(status.state, "done");
    const mine = seen.filter((e) => e.job === job.id);
    const types = mine.map((e) => e.type);
    assert.ok(types.includes("done"), types.join(","));
    const steps = mine.filter((e) => e.type === "progress").map((e) => e.progress);
    assert.ok(steps.length >= 3, `progress events: ${steps.join(",")}`);
    for (let i = 1; i < steps.length; i++) assert.ok(steps[i] >= steps[i - 1], "progress never goes back");
    assert.ok(progress.length >= 3);
    assert.equal(progress.at(-1), 1);
    assert.ok(types.indexOf("done") > types.lastIndexOf("progress") || types.filter((t) => t === "progress").length === 0);
  } finally {
    events.close();
  }
});

test("cancel: DELETE stops a running job, which ends cancelled", { skip }, async () => {
  const started = Date.now();
  const job = await client.submitJob({ op: "passthrough", params: { delay_s: 20 }, image: rgbImage(8, 8) });
  // Wait until it is really running.
  for (let i = 0; i < 100; i++) {
    const s = await client.job(job.id);
    if (s.state === "running" && s.progress > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await client.cancel(job.id);
  await assert.rejects(client.waitForJob(job.id, { pollMs: 100 }), (e) => e instanceof BridgeError && e.code === "cancelled");
  assert.equal((await client.job(job.id)).state, "cancelled");
  assert.ok(Date.now() - started < 10000, "cancelled long before its 20 s");
});

test("errors: wrong token refused unsent, unknown op 404, bad parameter 400, no mask 404, bridge down", { skip }, async () => {
  // A wrong token fails the identity check before it is ever sent (see identity.test.js).
  const wrong = new BridgeClient({ baseUrl: bridge.url, token: "not-the-token" });
  await assert.rejects(wrong.capabilities(), (e) => e.code === "impostor" && /does not match/.test(e.message));
  await assert.rejects(client.submitJob({ op: "no-such-op", image: rgbImage(4, 4) }),
    (e) => e.status === 404 && e.code === "unknown_operation");
  await assert.rejects(client.submitJob({ op: "upscale", params: { scale: 100 }, image: rgbImage(4, 4) }),
    (e) => e.status === 400 && e.code === "invalid_params" && e.details.param === "scale");
  await assert.rejects(client.submitJob({ op: "upscale", params: { bogus: 1 }, image: rgbImage(4, 4) }),
    (e) => e.code === "invalid_params" && /bogus/.test(e.message));
  const job = await client.submitJob({ op: "passthrough", image: rgbImage(4, 4) });
  const status = await client.waitForJob(job.id);
  await assert.rejects(client.mask(job.id, status.result.layers[0].name), (e) => e.status === 404);
  await assert.rejects(client.job("no-such-job"), (e) => e.status === 404);
  const down = new BridgeClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, token: "x" });
  await assert.rejects(down.health(), (e) => e.code === "bridge_unreachable");
});
