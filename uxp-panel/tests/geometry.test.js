"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const g = require("../src/geometry.js");

test("Photoshop bounds convert both ways, in both of their spellings", () => {
  const r = g.fromPs({ left: 10, top: 20, right: 110, bottom: 70 });
  assert.deepEqual(r, { x: 10, y: 20, width: 100, height: 50 });
  assert.deepEqual(g.fromPs({ left: 10, top: 20, width: 100, height: 50 }), r);
  assert.deepEqual(g.toPs(r), { left: 10, top: 20, right: 110, bottom: 70 });
  assert.equal(g.fromPs(null), null);
});

test("intersect, union, contains and clamp follow half-open rectangles", () => {
  const a = g.rect(0, 0, 10, 10);
  const b = g.rect(5, 5, 10, 10);
  assert.deepEqual(g.intersect(a, b), g.rect(5, 5, 5, 5));
  assert.deepEqual(g.union(a, b), g.rect(0, 0, 15, 15));
  assert.ok(g.isEmpty(g.intersect(a, g.rect(10, 0, 5, 5))), "touching edges do not overlap");
  assert.ok(g.contains(g.union(a, b), b));
  assert.ok(!g.contains(a, b));
  assert.deepEqual(g.clampToExtent(g.rect(-5, -5, 20, 8), { width: 12, height: 100 }), g.rect(0, 0, 12, 3));
  assert.throws(() => g.rect(0, 0, -1, 1), RangeError);
});

test("context padding grows with the selection and stays within min and max", () => {
  assert.equal(g.contextPadding(g.rect(0, 0, 10, 10)), 64, "a tiny selection still gets 64 px of context");
  assert.equal(g.contextPadding(g.rect(0, 0, 300, 200)), 150, "half the larger side");
  assert.equal(g.contextPadding(g.rect(0, 0, 5000, 100)), 1024, "capped");
  assert.equal(g.contextPadding(g.rect(0, 0, 301, 1), { ratio: 0.5, min: 0, max: 1e9 }), 151, "rounded up");
});

test("selection crop with padding is clamped to the document", () => {
  const doc = { width: 4000, height: 3000 };
  // A 300x200 selection in the middle: 150 px all round.
  assert.deepEqual(g.selectionRegion(g.rect(1000, 1000, 300, 200), doc), g.rect(850, 850, 600, 500));
  // Near the top-left corner: padding is cut at 0.
  assert.deepEqual(g.selectionRegion(g.rect(20, 30, 300, 200), doc), g.rect(0, 0, 470, 380));
  // Near the bottom-right corner: cut at the document's edge.
  assert.deepEqual(g.selectionRegion(g.rect(3900, 2950, 100, 50), doc), g.rect(3836, 2886, 164, 114));
  // A selection that covers everything sends exactly the document, never more.
  assert.deepEqual(g.selectionRegion(g.rect(0, 0, 4000, 3000), doc), g.rect(0, 0, 4000, 3000));
  assert.throws(() => g.selectionRegion(g.rect(5000, 5000, 10, 10), doc, { min: 0 }), RangeError);
});

test("scaling matches the bridge: Python's half-to-even rounding, corners rounded outward", () => {
  assert.equal(g.roundHalfEven(2.5), 2);
  assert.equal(g.roundHalfEven(3.5), 4);
  assert.equal(g.roundHalfEven(2.4999), 2);
  assert.deepEqual(g.scaledExtent({ width: 101, height: 75 }, 1.5), { width: 152, height: 112 });
  assert.deepEqual(g.scaledExtent({ width: 640, height: 480 }, 2), { width: 1280, height: 960 });
  assert.deepEqual(g.scaleRect(g.rect(1, 1, 3, 3), 1.5), g.rect(1, 1, 5, 5));
});

test("mask bounds find the selected samples, or null for an empty mask", () => {
  const w = 8, h = 6;
  const m = new Uint8Array(w * h);
  assert.equal(g.maskBounds(m, w, h), null);
  m[2 * w + 3] = 1;
  m[4 * w + 6] = 200;
  assert.deepEqual(g.maskBounds(m, w, h), g.rect(3, 2, 4, 3));
  assert.deepEqual(g.maskBounds(m, w, h, 100), g.rect(6, 4, 1, 1));
});

test("X-Bounds and X-Extent headers parse strictly", () => {
  assert.deepEqual(g.parseBounds("12, 34,56,78"), g.rect(12, 34, 56, 78));
  assert.deepEqual(g.parseExtent("640,480"), { width: 640, height: 480 });
  assert.throws(() => g.parseBounds("1,2,3"));
  assert.throws(() => g.parseBounds("1,2,3,x"));
  assert.throws(() => g.parseExtent("-1,2"));
});
