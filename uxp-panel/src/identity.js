"use strict";
/**
 * Is the server on the port the bridge we paired with, or something that took the
 * port first? The client sends a fresh random nonce to GET /v1/health?challenge=
 * (no token); the bridge answers proof = hex HMAC-SHA256(key = token,
 * msg = "retouch-bridge-identity-v2:" + port + ":" + nonce), port being the one its own
 * socket listens on. Only a server holding our token can answer, and only for the port
 * we connected to: a program on our port that relays the challenge to a bridge on
 * another port passes on a proof for that other port, which we refuse.
 * Pure: no host APIs, no network (client.js does the asking).
 */

const { hmacSha256, toHex } = require("./sha256.js");
const { utf8 } = require("./utf8.js");

const CONTEXT = "retouch-bridge-identity-v2:";
// 64 characters, so each random byte's low 6 bits pick one evenly.
const NONCE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const NONCE_LENGTH = 32; // 192 bits with a real random source; the bridge takes 16..128

/** The platform's cryptographic random source, or null (not every UXP version has one). */
function strongRandom(cryptoImpl = globalThis.crypto) {
  return cryptoImpl && typeof cryptoImpl.getRandomValues === "function" ? cryptoImpl : null;
}

/**
 * A fresh nonce. With crypto.getRandomValues (Chromium, node, UXP where present) it is
 * unpredictable. FALLBACK, weaker: Math.random mixed with the clock. An impostor that
 * could predict it could have asked a real bridge with the same token for the answer
 * beforehand; predicting Math.random from outside the host process is not practical,
 * but it is not a cryptographic guarantee.
 */
function newNonce(cryptoImpl = globalThis.crypto) {
  const bytes = new Uint8Array(NONCE_LENGTH);
  const strong = strongRandom(cryptoImpl);
  if (strong) {
    strong.getRandomValues(bytes);
  } else {
    const clock = Date.now();
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = Math.floor(Math.random() * 256) ^ (Math.floor(clock / 2 ** ((i % 6) * 8)) & 0xff);
    }
  }
  let nonce = "";
  for (const b of bytes) nonce += NONCE_ALPHABET[b & 63];
  return nonce;
}

/** The port as the bridge signs it: plain decimal, no leading zeros. Throws for a non-port. */
function portText(port) {
  const n = typeof port === "string" && /^\d{1,5}$/.test(port) ? Number(port) : port;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new RangeError(`not a TCP port: ${port}`);
  return String(n);
}

/** What a bridge on `port` holding `token` answers to `nonce`: 64 lower-case hex digits. */
function proofFor(token, port, nonce) {
  return toHex(hmacSha256(utf8(String(token)), utf8(`${CONTEXT}${portText(port)}:${nonce}`)));
}

/** Constant-time: every character is compared, whatever the first difference. */
function proofMatches(token, port, nonce, offered) {
  if (typeof offered !== "string") return false;
  let expected;
  try { expected = proofFor(token, port, nonce); } catch { return false; } // no port, no match
  let diff = expected.length ^ offered.length;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ (offered.charCodeAt(i) | 0);
  return diff === 0;
}

/**
 * The port a base URL connects to ("http://127.0.0.1:7847" -> "7847"; the scheme's default
 * when it names none): the one the proof must name, and the one messages show.
 */
function portOf(baseUrl) {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)/i.exec(String(baseUrl));
  if (!m) return "?";
  const hostPort = m[2].slice(m[2].lastIndexOf("@") + 1); // past any user:password@
  const port = /^(?:\[[^\]]*\]|[^:]*):(\d+)$/.exec(hostPort);
  if (port) return port[1];
  return m[1].toLowerCase() === "https" ? "443" : "80";
}

module.exports = { CONTEXT, NONCE_LENGTH, newNonce, proofFor, proofMatches, portOf, strongRandom };
