"use strict";
/**
 * Pure pixel-buffer conversions between Photoshop's imaging API and the bridge.
 *
 * Buffers are interleaved ("chunky"): W*H*C samples, row by row. 8-bit is a
 * Uint8Array, 16-bit a Uint16Array, 32-bit a Float32Array. The bridge wants
 * 16-bit as 0..65535 (little-endian on the wire); Photoshop's own 16-bit range
 * is 0..32768 unless getData/createImageDataFromBuffer are told `fullRange`.
 */

const PS16_MAX = 32768;
const FULL16_MAX = 65535;

function bytesPerSample(depth) {
  switch (depth) {
    case 8: return 1;
    case 16: return 2;
    case 32: return 4;
    default: throw new RangeError(`unsupported bit depth ${depth}`);
  }
}

function allocate(depth, length) {
  switch (depth) {
    case 8: return new Uint8Array(length);
    case 16: return new Uint16Array(length);
    case 32: return new Float32Array(length);
    default: throw new RangeError(`unsupported bit depth ${depth}`);
  }
}

function depthOf(data) {
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return 8;
  if (data instanceof Uint16Array) return 16;
  if (data instanceof Float32Array) return 32;
  throw new TypeError("pixels must be a Uint8Array, Uint16Array or Float32Array");
}

/** The largest sample value: what "opaque" or "fully selected" means at this depth. */
function maxValue(depth, { fullRange = true } = {}) {
  if (depth === 8) return 255;
  if (depth === 16) return fullRange ? FULL16_MAX : PS16_MAX;
  if (depth === 32) return 1;
  throw new RangeError(`unsupported bit depth ${depth}`);
}

function checkLayout(data, width, height, channels) {
  const want = width * height * channels;
  if (data.length !== want) {
    throw new RangeError(`buffer has ${data.length} samples, ${width}x${height}x${channels} needs ${want}`);
  }
}

/** Photoshop's 16-bit range (0..32768) to the full 16-bit range (0..65535), rounding. */
function psToFull16(src) {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = Math.min(src[i], PS16_MAX);
    out[i] = Math.floor((v * FULL16_MAX + PS16_MAX / 2) / PS16_MAX);
  }
  return out;
}

/** Full 16-bit range back to Photoshop's 0..32768; psToFull16 then this is the identity. */
function fullToPs16(src) {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    out[i] = Math.floor((src[i] * PS16_MAX + (FULL16_MAX - 1) / 2) / FULL16_MAX);
  }
  return out;
}

/** 8 <-> 16 (full range) <-> 32 (0..1 float). Same depth returns the input untouched. */
function convertDepth(src, from, to) {
  if (from === to) return src;
  const out = allocate(to, src.length);
  const scale = maxValue(to) / maxValue(from);
  const integer = to !== 32;
  const top = maxValue(to);
  for (let i = 0; i < src.length; i++) {
    let v = src[i] * scale;
    if (integer) v = Math.min(top, Math.max(0, Math.round(v)));
    out[i] = v;
  }
  return out;
}

/** RGB -> RGBA (or Grey -> GreyA): a new opaque alpha channel. */
function addAlpha(src, width, height, channels, depth) {
  checkLayout(src, width, height, channels);
  const n = width * height;
  const out = allocate(depth, n * (channels + 1));
  const opaque = maxValue(depth);
  for (let p = 0; p < n; p++) {
    const s = p * channels;
    const d = p * (channels + 1);
    for (let c = 0; c < channels; c++) out[d + c] = src[s + c];
    out[d + channels] = opaque;
  }
  return out;
}

/** RGBA -> RGB: drops the last channel (no matting; callers that need it use a mask). */
function dropAlpha(src, width, height, channels) {
  checkLayout(src, width, height, channels);
  const n = width * height;
  const out = new src.constructor(n * (channels - 1));
  for (let p = 0; p < n; p++) {
    const s = p * channels;
    const d = p * (channels - 1);
    for (let c = 0; c < channels - 1; c++) out[d + c] = src[s + c];
  }
  return out;
}

/**
 * Copy the part of `src` (covering rect `from`) that lies inside `to` into a new
 * buffer covering `to`; samples of `to` outside `from` get `fill`.
 * Works for any channel count; this is both "pad" and "crop".
 */
function reframe(src, from, to, channels, fill = 0) {
  checkLayout(src, from.width, from.height, channels);
  const out = new src.constructor(to.width * to.height * channels);
  if (fill !== 0) out.fill(fill);
  const x0 = Math.max(from.x, to.x);
  const y0 = Math.max(from.y, to.y);
  const x1 = Math.min(from.x + from.width, to.x + to.width);
  const y1 = Math.min(from.y + from.height, to.y + to.height);
  if (x1 <= x0 || y1 <= y0) return out;
  const rowLen = (x1 - x0) * channels;
  for (let y = y0; y < y1; y++) {
    const s = ((y - from.y) * from.width + (x0 - from.x)) * channels;
    const d = ((y - to.y) * to.width + (x0 - to.x)) * channels;
    out.set(src.subarray(s, s + rowLen), d);
  }
  return out;
}

/**
 * imaging.getPixels trims its answer to where the layer has pixels: the returned
 * sourceBounds may be smaller than asked. Put the pixels back into the requested
 * rect so they line up with the selection mask. Missing area is transparent, so
 * an alpha channel is added when the data has none.
 *
 * Returns {data, channels, padded}.
 */
function padTrimmed(data, got, want, channels, depth) {
  const same = got.x === want.x && got.y === want.y
    && got.width === want.width && got.height === want.height;
  if (same) return { data, channels, padded: false };
  let src = data;
  let ch = channels;
  if (channels === 1 || channels === 3) {
    src = addAlpha(data, got.width, got.height, channels, depth);
    ch = channels + 1;
  }
  return { data: reframe(src, got, want, ch, 0), channels: ch, padded: true };
}

/**
 * A selection (getSelection's single channel) as an 8-bit soft mask 0..255.
 * 16-bit selections arrive as 0..65535 when read with fullRange, or 0..32768.
 */
function selectionTo8(data, depth, { fullRange = true } = {}) {
  if (depth === 8) return data instanceof Uint8Array ? data : Uint8Array.from(data);
  const top = depth === 16 ? (fullRange ? FULL16_MAX : PS16_MAX) : 1;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Math.min(top, Math.max(0, data[i]));
    out[i] = Math.round((v * 255) / top);
  }
  return out;
}

/** True when every sample of an 8-bit mask is 0 (an empty selection). */
function isBlank(mask) {
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) return false;
  return true;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The bytes of a typed array in little-endian order (what the bridge's raw format wants). */
function toLittleEndianBytes(data) {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  const n = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += n) {
    for (let k = 0; k < n; k++) out[i + k] = bytes[i + n - 1 - k];
  }
  return out;
}

/** Little-endian bytes from the wire to a typed array of `depth` (copied: fetch buffers may be unaligned). */
function fromLittleEndianBytes(bytes, depth) {
  const size = bytesPerSample(depth);
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${depth}-bit samples`);
  }
  const count = bytes.byteLength / size;
  const out = allocate(depth, count);
  if (size === 1) {
    out.set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (depth === 16) for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, true);
  else for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

module.exports = {
  PS16_MAX, FULL16_MAX, bytesPerSample, allocate, depthOf, maxValue, checkLayout,
  psToFull16, fullToPs16, convertDepth, addAlpha, dropAlpha, reframe, padTrimmed,
  selectionTo8, isBlank, toLittleEndianBytes, fromLittleEndianBytes,
};
