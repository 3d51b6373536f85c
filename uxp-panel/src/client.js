"use strict";
/**
 * Bridge client: HTTP + WebSocket, no host APIs. Runs in UXP (global fetch and
 * WebSocket) and in node (fetch; WebSocket passed in or enabled by flag).
 *
 * Binary parts go out as bytes in a hand-built multipart body (never base64);
 * pixels come back raw with their layout in X-* headers.
 */

const { toLittleEndianBytes, fromLittleEndianBytes, depthOf } = require("./buffers.js");
const { parseBounds, parseExtent } = require("./geometry.js");
const { utf8 } = require("./utf8.js");
const { newNonce, proofMatches, portOf } = require("./identity.js");

const PROTOCOL = 1;
const DEFAULT_URL = "http://127.0.0.1:7847";

/** An error from the bridge, or about reaching it. `code` is the bridge's stable code. */
class BridgeError extends Error {
  constructor({ status = 0, code = "internal_error", message = "", details = {}, retryAfter = null }) {
    super(message || code);
    this.name = "BridgeError";
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.retryAfter = retryAfter;
  }
}

// ---------------------------------------------------------------- text and multipart

function randomBoundary() {
  let s = "----RetouchBridge";
  for (let i = 0; i < 24; i++) s += "0123456789abcdefghijklmnopqrstuvwxyz"[Math.floor(Math.random() * 36)];
  return s;
}

/**
 * multipart/form-data as one Uint8Array.
 * parts: [{name, value: string | Uint8Array | TypedArray, filename?, contentType?}]
 */
function buildMultipart(parts, boundary = randomBoundary()) {
  const chunks = [];
  let size = 0;
  const push = (bytes) => { chunks.push(bytes); size += bytes.length; };
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename) head += `; filename="${part.filename}"`;
    head += "\r\n";
    let body;
    if (typeof part.value === "string") {
      if (part.contentType) head += `Content-Type: ${part.contentType}\r\n`;
      body = utf8(part.value);
    } else {
      head += `Content-Type: ${part.contentType || "application/octet-stream"}\r\n`;
      body = toLittleEndianBytes(part.value);
    }
    push(utf8(head + "\r\n"));
    push(body);
    push(utf8("\r\n"));
  }
  push(utf8(`--${boundary}--\r\n`));
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return { body: out, contentType: `multipart/form-data; boundary=${boundary}` };
}

// ---------------------------------------------------------------- typed events

const EVENT_TYPES = Object.freeze([
  "queued", "started", "progress", "preview", "done", "failed", "cancelled", "model-progress",
]);
const FINAL_STATES = Object.freeze(["done", "failed", "cancelled"]);

/** A raw event object to a typed one; null for anything this panel does not understand. */
function parseEvent(raw) {
  if (!raw || typeof raw !== "object" || !EVENT_TYPES.includes(raw.type)) return null;
  const ev = { type: raw.type, job: raw.job == null ? null : String(raw.job) };
  switch (raw.type) {
    case "progress":
      ev.progress = Math.min(1, Math.max(0, Number(raw.progress) || 0));
      ev.message = raw.message ? String(raw.message) : "";
      break;
    case "preview":
      ev.url = String(raw.url || "");
      break;
    case "done":
      ev.result = raw.result || null;
      break;
    case "failed":
      ev.error = raw.error || { code: "internal_error", message: "the job failed" };
      break;
    case "model-progress":
      ev.model = String(raw.model || "");
      ev.received = Number(raw.received) || 0;
      ev.total = raw.total == null ? null : Number(raw.total);
      ev.state = String(raw.state || "");
      break;
    default:
      break;
  }
  return ev;
}

/**
 * The bridge's event WebSocket. Listeners by type ("*" for all, "open", "close").
 * Browsers and UXP cannot set headers on a WebSocket, so the token rides in the query.
 */
class EventStream {
  constructor(url, WebSocketImpl) {
    if (!WebSocketImpl) throw new BridgeError({ code: "no_websocket", message: "no WebSocket implementation" });
    this._listeners = new Map();
    this._subscribed = null;
    this.closed = false;
    this.ws = new WebSocketImpl(url);
    this.ready = new Promise((resolve, reject) => {
      this.ws.onopen = () => {
        if (this._subscribed) this._send({ type: "subscribe", jobs: this._subscribed });
        this._emit("open", { type: "open" });
        resolve(this);
      };
      this.ws.onerror = () => reject(new BridgeError({
        code: "bridge_unreachable", message: "could not open the bridge's event stream",
      }));
    });
    this.ready.catch(() => {});
    this.ws.onclose = (e) => {
      this.closed = true;
      this._emit("close", { type: "close", code: e && e.code });
    };
    this.ws.onmessage = (msg) => {
      let raw;
      try { raw = JSON.parse(typeof msg.data === "string" ? msg.data : String(msg.data)); } catch { return; }
      const ev = parseEvent(raw);
      if (ev) this._emit(ev.type, ev);
    };
  }

  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this._listeners.get(type).delete(fn);
  }

  /** Receive only these jobs' events (null: all). */
  subscribe(jobs) {
    this._subscribed = jobs ? [...jobs] : null;
    if (this.ws.readyState === 1) this._send({ type: "subscribe", jobs: this._subscribed });
  }

  close() {
    this.closed = true;
    try { this.ws.close(); } catch { /* already closed */ }
  }

  _send(obj) {
    try { this.ws.send(JSON.stringify(obj)); } catch { /* closed under us; polling covers it */ }
  }

  _emit(type, ev) {
    for (const key of [type, "*"]) {
      const set = this._listeners.get(key);
      if (set) for (const fn of [...set]) fn(ev);
    }
  }
}

// ---------------------------------------------------------------- client

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class BridgeClient {
  constructor({ baseUrl = DEFAULT_URL, token = "", fetch: fetchImpl, WebSocket: wsImpl } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
    this._fetch = fetchImpl || globalThis.fetch.bind(globalThis);
    this._WebSocket = wsImpl || globalThis.WebSocket;
    this._identity = null; // the pending or settled identity check of this connection
  }

  get wsUrl() {
    return `${this.baseUrl.replace(/^http/, "ws")}/v1/events?token=${encodeURIComponent(this.token)}`;
  }

  /** One HTTP exchange, any status. A network failure also forgets the identity check. */
  async _send(method, path, { body, headers = {} } = {}) {
    try {
      return await this._fetch(this.baseUrl + path, { method, headers, body });
    } catch (e) {
      // Whatever answers next on this port may not be the bridge that answered before.
      this.forgetIdentity();
      throw new BridgeError({
        code: "bridge_unreachable",
        message: `cannot reach the bridge at ${this.baseUrl} (${e && e.message ? e.message : e})`,
      });
    }
  }

  /**
   * Every request but health carries the token, so it waits for the identity check;
   * `fresh` asks for a new check first (before uploading pixels: the bridge may have
   * quit since the last one, and something else taken its port).
   */
  async _request(method, path, { body, headers = {}, auth = true, fresh = false } = {}) {
    const h = { ...headers };
    if (auth) {
      if (fresh) this.forgetIdentity();
      await this.verifyIdentity();
      h.Authorization = `Bearer ${this.token}`;
    }
    const res = await this._send(method, path, { body, headers: h });
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  /**
   * Is the server on the port the bridge that holds our token? Asks GET
   * /v1/health?challenge=<fresh nonce> (no token) and checks the HMAC proof. Resolves
   * with the health answer; rejects with code "impostor" (nothing else is sent to that
   * server), "unauthorized" without a token, or the bridge's own bad_host/bad_origin.
   * Done once per connection, again before every upload of pixels, after a network
   * failure and after the event stream closes.
   */
  verifyIdentity() {
    if (!this._identity) {
      const check = this._challenge();
      this._identity = check;
      check.catch(() => { if (this._identity === check) this._identity = null; });
    }
    return this._identity;
  }

  /** The next authenticated request checks the server's identity again. */
  forgetIdentity() { this._identity = null; }

  async _challenge() {
    if (!this.token) {
      throw new BridgeError({ code: "unauthorized", message: "no pairing token: paste the token first" });
    }
    const nonce = newNonce();
    const res = await this._send("GET", `/v1/health?challenge=${nonce}`);
    if (!res.ok) {
      const err = await errorFrom(res);
      // The bridge's Host/Origin refusals come before any route: say what to change.
      if (err.code === "bad_host" || err.code === "bad_origin") throw err;
      throw this._impostor(`it answered HTTP ${res.status} to the identity challenge`);
    }
    let health = null;
    try { health = await res.json(); } catch { /* not JSON: not the bridge */ }
    const proof = health && typeof health === "object" ? health.proof : undefined;
    if (proof === undefined) throw this._impostor("it gave no identity proof");
    // The port we connect to, from our own URL: a relay to a bridge elsewhere fails here.
    if (!proofMatches(this.token, portOf(this.baseUrl), nonce, proof)) {
      throw this._impostor("its identity proof does not match this token and port");
    }
    return health;
  }

  _impostor(reason) {
    return new BridgeError({
      code: "impostor",
      message: `the server at ${this.baseUrl} is not the Retouch Bridge that holds this token: ${reason}`,
      details: { port: portOf(this.baseUrl), url: this.baseUrl, reason },
    });
  }

  async _json(method, path, opts) {
    const res = await this._request(method, path, opts);
    return res.json();
  }

  /** {status, version, protocol}; needs no token. */
  health() { return this._json("GET", "/v1/health", { auth: false }); }

  capabilities() { return this._json("GET", "/v1/capabilities"); }

  models() { return this._json("GET", "/v1/models"); }

  pullModel(id) { return this._json("POST", `/v1/models/${encodeURIComponent(id)}/pull`); }

  jobs() { return this._json("GET", "/v1/jobs"); }

  job(id) { return this._json("GET", `/v1/jobs/${encodeURIComponent(id)}`); }

  async cancel(id) {
    const res = await this._request("DELETE", `/v1/jobs/${encodeURIComponent(id)}`);
    return res.status === 204 ? null : res.json().catch(() => null);
  }

  /**
   * Submit a job. image: {data, width, height, channels} (depth from the array type);
   * mask: {data: Uint8Array|Uint16Array, width, height} or null; icc: Uint8Array or null.
   */
  submitJob({ op, params = {}, image, mask = null, icc = null, priority = "interactive" }) {
    const parts = [
      { name: "op", value: op },
      { name: "params", value: JSON.stringify(params || {}) },
      ...jobParts({ image, mask, icc, priority }),
    ];
    const { body, contentType } = buildMultipart(parts);
    // An exact ArrayBuffer: the body type every UXP version's fetch accepts.
    return this._json("POST", "/v1/jobs", { body: body.buffer, headers: { "Content-Type": contentType }, fresh: true });
  }

  /**
   * Run a recipe (TOML or JSON text) on one image: POST /v1/recipes/run. The
   * bridge checks the recipe before queueing; a bad one is refused at once
   * (404/400/409 with details.step and details.op). Resolves {id, state, recipe}.
   */
  runRecipe({ recipe, image, icc = null, priority = "interactive" }) {
    const parts = [{ name: "recipe", value: String(recipe) }, ...jobParts({ image, mask: null, icc, priority })];
    const { body, contentType } = buildMultipart(parts);
    return this._json("POST", "/v1/recipes/run", { body: body.buffer, headers: { "Content-Type": contentType }, fresh: true });
  }

  /** A result layer's pixels, raw: {data, width, height, channels, depth, bounds, extent, hasMask}. */
  async result(id, { layer = null, full = false } = {}) {
    const path = `/v1/jobs/${encodeURIComponent(id)}/result${layer ? `/${encodeURIComponent(layer)}` : ""}`;
    const res = await this._request("GET", `${path}?format=raw${full ? "&full=1" : ""}`);
    return pixelsFrom(res, await res.arrayBuffer());
  }

  /** A result layer's mask, 8-bit grey: {data: Uint8Array, width, height, bounds}. */
  async mask(id, layer) {
    const res = await this._request(
      "GET", `/v1/jobs/${encodeURIComponent(id)}/result/${encodeURIComponent(layer)}/mask?format=raw`);
    const px = pixelsFrom(res, await res.arrayBuffer());
    if (px.channels !== 1 || px.depth !== 8) {
      throw new BridgeError({ code: "invalid_input", message: `mask is ${px.channels}ch ${px.depth}-bit, want 1ch 8-bit` });
    }
    return px;
  }

  /** Open the event stream (its URL carries the token); resolves once it is open. */
  async events({ jobs = null } = {}) {
    await this.verifyIdentity();
    const stream = new EventStream(this.wsUrl, this._WebSocket);
    // A stream that ends may mean the bridge went away and something else took the port.
    stream.on("close", () => this.forgetIdentity());
    if (jobs) stream.subscribe(jobs);
    await stream.ready;
    return stream;
  }

  /**
   * Wait for a job to end. Events drive progress; a slow poll covers events lost
   * before subscribing or a dropped socket. Resolves with the final status of a
   * done job; throws a BridgeError for failed (its error) or cancelled ("cancelled").
   */
  async waitForJob(id, { events = null, onProgress = null, pollMs = 1000 } = {}) {
    let finished = null;
    let wake = null;
    const unsub = [];
    if (events) {
      unsub.push(events.on("*", (ev) => {
        if (ev.job !== id) return;
        if (ev.type === "progress" && onProgress) onProgress(ev.progress, ev.message);
        if (ev.type === "started" && onProgress) onProgress(0, "started");
        if (FINAL_STATES.includes(ev.type) && wake) wake();
      }));
    }
    try {
      for (;;) {
        const status = await this.job(id);
        if (FINAL_STATES.includes(status.state)) { finished = status; break; }
        if (onProgress && !events && typeof status.progress === "number") onProgress(status.progress, status.message || "");
        await new Promise((resolve) => {
          wake = resolve;
          setTimeout(resolve, pollMs);
        });
        wake = null;
      }
    } finally {
      for (const u of unsub) u();
    }
    if (finished.state === "done") {
      if (onProgress) onProgress(1, "done");
      return finished;
    }
    if (finished.state === "cancelled") {
      throw new BridgeError({ code: "cancelled", message: "the job was cancelled" });
    }
    const err = finished.error || {};
    throw new BridgeError({
      status: 0, code: err.code || "internal_error", message: err.message || "the job failed",
      details: err.details || {},
    });
  }
}

/** The parts a job and a recipe run share: the pixels, their priority, mask and profile. */
function jobParts({ image, mask, icc, priority }) {
  const depth = depthOf(image.data);
  const parts = [
    { name: "raw", value: JSON.stringify({ width: image.width, height: image.height, channels: image.channels, depth }) },
    { name: "image", value: image.data, filename: "image.raw" },
    { name: "priority", value: priority },
  ];
  if (mask) {
    parts.push({ name: "mask_raw", value: JSON.stringify({ width: mask.width, height: mask.height, depth: depthOf(mask.data) }) });
    parts.push({ name: "mask", value: mask.data, filename: "mask.raw" });
  }
  if (icc && icc.length) parts.push({ name: "icc", value: icc, filename: "profile.icc", contentType: "application/vnd.iccprofile" });
  return parts;
}

function header(res, name, required = true) {
  const v = res.headers.get(name);
  if (v == null && required) throw new BridgeError({ code: "invalid_input", message: `the bridge's answer lacks ${name}` });
  return v;
}

function pixelsFrom(res, buffer) {
  const width = Number(header(res, "X-Width"));
  const height = Number(header(res, "X-Height"));
  const channels = Number(header(res, "X-Channels"));
  const depth = Number(header(res, "X-Depth"));
  const bounds = parseBounds(header(res, "X-Bounds"));
  const ext = header(res, "X-Extent", false);
  const data = fromLittleEndianBytes(new Uint8Array(buffer), depth);
  if (data.length !== width * height * channels) {
    throw new BridgeError({ code: "invalid_input", message: `got ${data.length} samples for ${width}x${height}x${channels}` });
  }
  return {
    data, width, height, channels, depth, bounds,
    extent: ext ? parseExtent(ext) : { width: bounds.x + bounds.width, height: bounds.y + bounds.height },
    hasMask: header(res, "X-Has-Mask", false) === "1",
    jobId: header(res, "X-Job-Id", false),
  };
}

async function errorFrom(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  const e = (body && body.error) || {};
  const retry = res.headers.get("Retry-After");
  return new BridgeError({
    status: res.status,
    code: e.code || (res.status === 401 ? "unauthorized" : res.status === 404 ? "not_found" : "internal_error"),
    message: e.message || `HTTP ${res.status}`,
    details: e.details || {},
    retryAfter: retry == null ? null : Number(retry),
  });
}

module.exports = {
  PROTOCOL, DEFAULT_URL, BridgeError, BridgeClient, EventStream, EVENT_TYPES, FINAL_STATES,
  buildMultipart, parseEvent, utf8, sleep,
};
