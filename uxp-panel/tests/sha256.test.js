"use strict";
/** Our SHA-256 / HMAC-SHA256 and the identity proof, against RFC and FIPS vectors and node's crypto. */
const test = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { sha256, hmacSha256, toHex } = require("../src/sha256.js");
const { newNonce, proofFor, proofMatches, portOf, strongRandom } = require("../src/identity.js");

const bytes = (s) => Uint8Array.from(Buffer.from(s, "latin1"));
const repeat = (b, n) => new Uint8Array(n).fill(b);

test("SHA-256: FIPS 180 examples", () => {
  assert.equal(toHex(sha256(bytes(""))), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(toHex(sha256(bytes("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(toHex(sha256(bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  assert.equal(toHex(sha256(repeat(0x61, 1000000))), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
});

// RFC 4231, section 4: HMAC-SHA-256 test cases 1 to 7.
const RFC4231 = [
  { key: repeat(0x0b, 20), data: bytes("Hi There"),
    mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
  { key: bytes("Jefe"), data: bytes("what do ya want for nothing?"),
    mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
  { key: repeat(0xaa, 20), data: repeat(0xdd, 50),
    mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
  { key: Uint8Array.from({ length: 25 }, (_, i) => i + 1), data: repeat(0xcd, 50),
    mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
  { key: repeat(0x0c, 20), data: bytes("Test With Truncation"), mac: "a3b6167473100ee06e0c796c2955552b", truncated: true },
  { key: repeat(0xaa, 131), data: bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
    mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
  { key: repeat(0xaa, 131),
    data: bytes("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
    mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
];

test("HMAC-SHA256: RFC 4231 test cases 1-7", () => {
  RFC4231.forEach(({ key, data, mac, truncated }, i) => {
    const got = toHex(hmacSha256(key, data));
    assert.equal(truncated ? got.slice(0, 32) : got, mac, `test case ${i + 1}`);
  });
});

test("SHA-256 and HMAC agree with node's crypto at every length around the block edges", () => {
  for (let n = 0; n <= 200; n++) {
    const data = crypto.randomBytes(n);
    assert.equal(toHex(sha256(data)), crypto.createHash("sha256").update(data).digest("hex"), `length ${n}`);
    const key = crypto.randomBytes((n * 7) % 150);
    assert.equal(toHex(hmacSha256(key, data)), crypto.createHmac("sha256", key).update(data).digest("hex"),
      `key ${key.length}, data ${n}`);
  }
});

test("the identity proof is HMAC(token, context + port + ':' + nonce) over UTF-8, also for non-ASCII tokens", () => {
  for (const [token, port] of [["dQw4w9WgXcQ-abc_123", 7847], ["pässwörd ☁ 🙂", 1], ["x".repeat(100), 65535]]) {
    const nonce = newNonce();
    const want = crypto.createHmac("sha256", Buffer.from(token, "utf8"))
      .update(`retouch-bridge-identity-v2:${port}:${nonce}`, "utf8").digest("hex");
    assert.equal(proofFor(token, port, nonce), want);
    // The port as a URL gives it: a string, leading zeros and all.
    assert.equal(proofFor(token, `00${port}`.slice(-5), nonce), want);
    assert.ok(proofMatches(token, String(port), nonce, want));
  }
});

test("a proof matches only exactly: no prefix, no case change, no other nonce, token or port", () => {
  const nonce = newNonce();
  const good = proofFor("tok", 7847, nonce);
  for (const bad of [undefined, null, 7, "", good.slice(0, -1), `${good}0`, good.toUpperCase(),
    proofFor("tok2", 7847, nonce), proofFor("tok", 7847, `${nonce}x`), proofFor("tok", 7848, nonce),
    proofFor("tok", 784, `7:${nonce}`), `${good.slice(0, -1)}${good.at(-1) === "0" ? "1" : "0"}`]) {
    assert.equal(proofMatches("tok", 7847, nonce, bad), false, String(bad));
  }
  // No port to check against (an URL we cannot read): nothing matches, nothing throws.
  for (const port of ["?", "", 0, 65536, "7847x", null]) {
    assert.equal(proofMatches("tok", port, nonce, good), false, String(port));
    assert.throws(() => proofFor("tok", port, nonce), RangeError);
  }
});

test("nonces: 32 characters the bridge accepts, never repeated; the fallback too", () => {
  assert.ok(strongRandom(), "node and Chromium have crypto.getRandomValues");
  for (const source of [globalThis.crypto, null]) {
    const seen = new Set();
    for (let i = 0; i < 500; i++) {
      const n = newNonce(source);
      assert.match(n, /^[A-Za-z0-9_-]{32}$/);
      seen.add(n);
    }
    assert.equal(seen.size, 500, source ? "getRandomValues" : "fallback");
  }
});

test("the port checked and named in messages is the one the bridge URL connects to", () => {
  assert.equal(portOf("http://127.0.0.1:7847"), "7847");
  assert.equal(portOf("http://[::1]:9000/x"), "9000");
  assert.equal(portOf("http://[::1]"), "80");
  assert.equal(portOf("http://localhost"), "80");
  assert.equal(portOf("https://localhost/"), "443");
  assert.equal(portOf("http://localhost:"), "80");
  assert.equal(portOf("http://user:8000@localhost:7847"), "7847");
  assert.equal(portOf("http://user:8000@localhost"), "80");
  for (const url of ["http://127.0.0.1:7847", "http://[::1]:9000/x", "http://localhost", "https://a.b/",
    "http://user:8000@localhost:7847"]) {
    assert.equal(portOf(url), String(new URL(url).port || (url.startsWith("https") ? 443 : 80)), url);
  }
});
