"use strict";
/**
 * Pure rectangle helpers in document pixel coordinates.
 *
 * A rect is {x, y, width, height}, half-open like the bridge's Bounds:
 * it covers columns x .. x+width-1 and rows y .. y+height-1. Photoshop's
 * imaging API speaks {left, top, right, bottom}; fromPs/toPs convert.
 */

function rect(x, y, width, height) {
  if (width < 0 || height < 0) throw new RangeError(`negative size ${width}x${height}`);
  return { x, y, width, height };
}

function fromCorners(x0, y0, x1, y1) {
  return rect(x0, y0, Math.max(0, x1 - x0), Math.max(0, y1 - y0));
}

/** Photoshop bounds ({left, top, right, bottom} or {left, top, width, height}) to a rect. */
function fromPs(b) {
  if (b == null) return null;
  const left = Number(b.left);
  const top = Number(b.top);
  if (b.right !== undefined && b.bottom !== undefined) {
    return fromCorners(left, top, Number(b.right), Number(b.bottom));
  }
  return rect(left, top, Number(b.width), Number(b.height));
}

/** A rect as Photoshop bounds; getSelection and getLayerMask want all four sides. */
function toPs(r) {
  return { left: r.x, top: r.y, right: r.x + r.width, bottom: r.y + r.height };
}

function isEmpty(r) {
  return !r || r.width === 0 || r.height === 0;
}

function intersect(a, b) {
  return fromCorners(
    Math.max(a.x, b.x), Math.max(a.y, b.y),
    Math.min(a.x + a.width, b.x + b.width), Math.min(a.y + a.height, b.y + b.height),
  );
}

function union(a, b) {
  if (isEmpty(a)) return b;
  if (isEmpty(b)) return a;
  return fromCorners(
    Math.min(a.x, b.x), Math.min(a.y, b.y),
    Math.max(a.x + a.width, b.x + b.width), Math.max(a.y + a.height, b.y + b.height),
  );
}

function contains(outer, inner) {
  return inner.x >= outer.x && inner.y >= outer.y
    && inner.x + inner.width <= outer.x + outer.width
    && inner.y + inner.height <= outer.y + outer.height;
}

function equals(a, b) {
  return a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height;
}

function translate(r, dx, dy) {
  return rect(r.x + dx, r.y + dy, r.width, r.height);
}

function pad(r, amount) {
  return fromCorners(r.x - amount, r.y - amount, r.x + r.width + amount, r.y + r.height + amount);
}

function clampToExtent(r, extent) {
  return intersect(r, rect(0, 0, extent.width, extent.height));
}

/**
 * Context padding around a selection, in proportion to its larger side.
 * AI Fill needs surroundings to blend in; a tiny selection still gets `min`
 * pixels, a huge one at most `max`, so we never ship the whole document
 * just because the selection is big.
 */
function contextPadding(sel, { ratio = 0.5, min = 64, max = 1024 } = {}) {
  const want = Math.ceil(Math.max(sel.width, sel.height) * ratio);
  return Math.min(max, Math.max(min, want));
}

/** The region sent to the bridge for a selection: its bounds plus context, inside the document. */
function selectionRegion(sel, docExtent, opts) {
  const region = clampToExtent(pad(sel, contextPadding(sel, opts)), docExtent);
  if (isEmpty(region)) throw new RangeError("the selection lies outside the document");
  return region;
}

/** Python's round() (half to even), so sizes computed here match the bridge's Extent.scaled. */
function roundHalfEven(v) {
  const f = Math.floor(v);
  const diff = v - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function scaledExtent(extent, factor) {
  return { width: roundHalfEven(extent.width * factor), height: roundHalfEven(extent.height * factor) };
}

/** Scale both corners, rounding outward (the bridge's Bounds.scaled). */
function scaleRect(r, factor) {
  return fromCorners(
    Math.floor(r.x * factor), Math.floor(r.y * factor),
    Math.ceil((r.x + r.width) * factor), Math.ceil((r.y + r.height) * factor),
  );
}

/** Bounding rect of the samples above `threshold` in a single-channel W*H mask, or null. */
function maskBounds(mask, width, height, threshold = 0) {
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (mask[row + x] > threshold) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  return x1 < 0 ? null : fromCorners(x0, y0, x1 + 1, y1 + 1);
}

/** "x,y,width,height" (the bridge's X-Bounds header) to a rect. */
function parseBounds(text) {
  const parts = String(text).split(",").map((s) => Number(s.trim()));
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n))) {
    throw new Error(`bad bounds header: ${JSON.stringify(text)}`);
  }
  return rect(parts[0], parts[1], parts[2], parts[3]);
}

/** "width,height" (the bridge's X-Extent header) to an extent. */
function parseExtent(text) {
  const parts = String(text).split(",").map((s) => Number(s.trim()));
  if (parts.length !== 2 || parts.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new Error(`bad extent header: ${JSON.stringify(text)}`);
  }
  return { width: parts[0], height: parts[1] };
}

module.exports = {
  rect, fromCorners, fromPs, toPs, isEmpty, intersect, union, contains, equals, translate,
  pad, clampToExtent, contextPadding, selectionRegion, roundHalfEven, scaledExtent, scaleRect,
  maskBounds, parseBounds, parseExtent,
};
