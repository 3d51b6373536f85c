"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { iccFromJpeg, looksLikeIcc } = require("../src/icc.js");
const { unavailable, pythonPath } = require("./helpers/bridge.js");

/** A minimal ICC-like blob: right size field and 'acsp' signature. */
function fakeIcc(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13) % 256;
  b[0] = (n >>> 24) & 255; b[1] = (n >>> 16) & 255; b[2] = (n >>> 8) & 255; b[3] = n & 255;
  b.set([0x61, 0x63, 0x73, 0x70], 36);
  return b;
}

function segment(marker, body) {
  const len = body.length + 2;
  return Buffer.concat([Buffer.from([0xff, marker, len >> 8, len & 255]), Buffer.from(body)]);
}

function app2(seq, count, data) {
  return segment(0xe2, Buffer.concat([Buffer.from("ICC_PROFILE\0", "latin1"), Buffer.from([seq, count]), Buffer.from(data)]));
}

test("an ICC profile split over APP2 segments (out of order) is joined back", () => {
  const icc = fakeIcc(150000);
  const parts = [icc.subarray(0, 65000), icc.subarray(65000, 130000), icc.subarray(130000)];
  const jpeg = Buffer.concat([
    Buffer.from([0xff, 0xd8]), segment(0xe0, Buffer.from("JFIF\0\x01\x02", "latin1")),
    app2(2, 3, parts[1]), app2(1, 3, parts[0]), segment(0xe1, Buffer.from("Exif\0\0", "latin1")), app2(3, 3, parts[2]),
    Buffer.from([0xff, 0xda, 0, 2, 0xff, 0xd9]),
  ]);
  const got = iccFromJpeg(new Uint8Array(jpeg));
  assert.deepEqual(got, icc);
  assert.ok(looksLikeIcc(got));
});

test("no profile, a missing part, or not a JPEG", () => {
  const plain = Buffer.concat([Buffer.from([0xff, 0xd8]), segment(0xe0, Buffer.from("JFIF\0", "latin1")), Buffer.from([0xff, 0xd9])]);
  assert.equal(iccFromJpeg(new Uint8Array(plain)), null);
  const partial = Buffer.concat([Buffer.from([0xff, 0xd8]), app2(1, 2, fakeIcc(200)), Buffer.from([0xff, 0xd9])]);
  assert.throws(() => iccFromJpeg(new Uint8Array(partial)), /1 of 2/);
  assert.throws(() => iccFromJpeg(new Uint8Array([0x89, 0x50, 0x4e, 0x47])), /not a JPEG/);
  assert.ok(!looksLikeIcc(new Uint8Array(10)));
});

test("a JPEG written by a real encoder (Pillow) gives back its profile byte for byte", { skip: unavailable() || false }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rb-icc-"));
  try {
    const icc = fakeIcc(70001); // over one segment: Pillow splits it
    fs.writeFileSync(path.join(dir, "p.icc"), icc);
    const script = [
      "import sys; from PIL import Image",
      "icc = open(sys.argv[1], 'rb').read()",
      "Image.new('RGB', (1, 1), (200, 10, 10)).save(sys.argv[2], 'JPEG', icc_profile=icc, quality=90)",
    ].join("\n");
    execFileSync(pythonPath(), ["-c", script, path.join(dir, "p.icc"), path.join(dir, "x.jpg")]);
    assert.deepEqual(iccFromJpeg(new Uint8Array(fs.readFileSync(path.join(dir, "x.jpg")))), icc);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
