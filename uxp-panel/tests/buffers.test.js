"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const b = require("../src/buffers.js");
const { rect } = require("../src/geometry.js");

/** A W*H*C buffer whose every sample says where it came from. */
function ramp(Type, width, height, channels, scale = 1) {
  const out = new Type(width * height * channels);
  for (let i = 0; i < out.length; i++) out[i] = ((i * 7919) % 251) * scale + 1;
  return out;
}

test("Photoshop 16-bit (0..32768) to full range (0..65535) and back is exact for every value", () => {
  const all = new Uint16Array(32769);
  for (let v = 0; v <= 32768; v++) all[v] = v;
  const full = b.psToFull16(all);
  assert.equal(full[0], 0);
  assert.equal(full[32768], 65535, "Photoshop's white is full-range white");
  assert.equal(full[16384], 32768, "mid grey lands mid range (rounded)");
  for (let v = 1; v <= 32768; v++) assert.ok(full[v] > full[v - 1], "strictly increasing: no two levels merge");
  assert.deepEqual(b.fullToPs16(full), all, "round trip is the identity");
  const every = new Uint16Array(65536);
  for (let v = 0; v < 65536; v++) every[v] = v;
  const ps = b.fullToPs16(every);
  assert.equal(ps[65535], 32768);
  for (let v = 0; v < 65536; v++) assert.ok(Math.abs(ps[v] - (v * 32768) / 65535) <= 0.5 + 1e-9);
});

test("depth conversion 8 <-> 16 is exact on the 257 grid and clamps", () => {
  const eight = Uint8Array.from([0, 1, 128, 254, 255]);
  const sixteen = b.convertDepth(eight, 8, 16);
  assert.ok(sixteen instanceof Uint16Array);
  assert.deepEqual([...sixteen], [0, 257, 32896, 65278, 65535]);
  assert.deepEqual(b.convertDepth(sixteen, 16, 8), eight);
  assert.deepEqual([...b.convertDepth(Uint16Array.from([128, 129, 384]), 16, 8)], [0, 1, 1]);
  const f = b.convertDepth(Uint8Array.from([0, 255]), 8, 32);
  assert.deepEqual([...f], [0, 1]);
  assert.deepEqual([...b.convertDepth(Float32Array.from([-0.5, 0.5, 2]), 32, 8)], [0, 128, 255]);
  assert.equal(b.convertDepth(eight, 8, 8), eight, "same depth is a no-op");
});

test("RGB <-> RGBA at 8 and 16 bits keeps colour samples and adds opaque alpha", () => {
  for (const [Type, depth, opaque] of [[Uint8Array, 8, 255], [Uint16Array, 16, 65535]]) {
    const rgb = ramp(Type, 3, 2, 3, depth === 16 ? 250 : 1);
    const rgba = b.addAlpha(rgb, 3, 2, 3, depth);
    assert.ok(rgba instanceof Type);
    assert.equal(rgba.length, 3 * 2 * 4);
    for (let p = 0; p < 6; p++) {
      assert.deepEqual([...rgba.subarray(p * 4, p * 4 + 3)], [...rgb.subarray(p * 3, p * 3 + 3)]);
      assert.equal(rgba[p * 4 + 3], opaque);
    }
    assert.deepEqual(b.dropAlpha(rgba, 3, 2, 4), rgb);
  }
  assert.throws(() => b.addAlpha(new Uint8Array(5), 1, 2, 3, 8), RangeError);
});

test("reframe crops and pads any channel count at the right offsets", () => {
  const w = 5, h = 4, c = 2;
  const src = ramp(Uint16Array, w, h, c, 100);
  const from = rect(10, 20, w, h);
  // Crop: the inner 3x2 block.
  const inner = rect(11, 21, 3, 2);
  const cropped = b.reframe(src, from, inner, c);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 3; x++) {
      for (let k = 0; k < c; k++) {
        assert.equal(cropped[(y * 3 + x) * c + k], src[((y + 1) * w + (x + 1)) * c + k]);
      }
    }
  }
  // Pad: a larger rect; the original sits at (2, 1) and the rest is the fill.
  const outer = rect(8, 19, 9, 7);
  const padded = b.reframe(src, from, outer, c, 7);
  for (let y = 0; y < 7; y++) {
    for (let x = 0; x < 9; x++) {
      const inside = x >= 2 && x < 2 + w && y >= 1 && y < 1 + h;
      for (let k = 0; k < c; k++) {
        const want = inside ? src[((y - 1) * w + (x - 2)) * c + k] : 7;
        assert.equal(padded[(y * 9 + x) * c + k], want, `(${x},${y},${k})`);
      }
    }
  }
  // Disjoint: all fill.
  assert.ok(b.reframe(src, from, rect(0, 0, 2, 2), c).every((v) => v === 0));
});

test("trimmed getPixels answers are padded back to the requested rect, transparent outside", () => {
  // Asked for 6x5 at (100, 50); Photoshop answered only the 3x2 at (102, 52) where the layer has pixels.
  const want = rect(100, 50, 6, 5);
  const got = rect(102, 52, 3, 2);
  for (const [Type, depth, opaque] of [[Uint8Array, 8, 255], [Uint16Array, 16, 65535]]) {
    const rgb = ramp(Type, 3, 2, 3, depth === 16 ? 200 : 1);
    const out = b.padTrimmed(rgb, got, want, 3, depth);
    assert.equal(out.padded, true);
    assert.equal(out.channels, 4, "RGB gains alpha so the padding can be transparent");
    assert.ok(out.data instanceof Type);
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 6; x++) {
        const p = (y * 6 + x) * 4;
        const inside = x >= 2 && x < 5 && y >= 2 && y < 4;
        if (inside) {
          const s = ((y - 2) * 3 + (x - 2)) * 3;
          assert.deepEqual([...out.data.subarray(p, p + 3)], [...rgb.subarray(s, s + 3)]);
          assert.equal(out.data[p + 3], opaque);
        } else {
          assert.deepEqual([...out.data.subarray(p, p + 4)], [0, 0, 0, 0]);
        }
      }
    }
    // RGBA stays 4 channels; an untrimmed answer is returned as is.
    const rgba = ramp(Type, 3, 2, 4);
    assert.equal(b.padTrimmed(rgba, got, want, 4, depth).channels, 4);
    const same = b.padTrimmed(rgba, got, got, 4, depth);
    assert.equal(same.data, rgba);
    assert.equal(same.padded, false);
  }
});

test("selection masks become 8-bit soft masks from 8-bit, full-range and Photoshop-range 16-bit", () => {
  assert.deepEqual([...b.selectionTo8(Uint8Array.from([0, 128, 255]), 8)], [0, 128, 255]);
  assert.deepEqual([...b.selectionTo8(Uint16Array.from([0, 32896, 65535]), 16)], [0, 128, 255]);
  assert.deepEqual([...b.selectionTo8(Uint16Array.from([0, 16384, 32768]), 16, { fullRange: false })], [0, 128, 255]);
  assert.ok(b.isBlank(new Uint8Array(10)));
  assert.ok(!b.isBlank(Uint8Array.from([0, 0, 1])));
});

test("raw wire format is little-endian and survives the round trip at every depth", () => {
  const u16 = Uint16Array.from([0x0102, 0xfffe, 0]);
  const bytes = b.toLittleEndianBytes(u16);
  assert.deepEqual([...bytes], [0x02, 0x01, 0xfe, 0xff, 0, 0]);
  assert.deepEqual(b.fromLittleEndianBytes(bytes, 16), u16);
  const f32 = Float32Array.from([0.25, -1, 1.5]);
  assert.deepEqual(b.fromLittleEndianBytes(b.toLittleEndianBytes(f32), 32), f32);
  // Unaligned input (a fetch body slice) still decodes.
  const shifted = new Uint8Array(7);
  shifted.set(bytes, 1);
  assert.deepEqual(b.fromLittleEndianBytes(shifted.subarray(1), 16), u16);
  assert.throws(() => b.fromLittleEndianBytes(new Uint8Array(3), 16), RangeError);
});
