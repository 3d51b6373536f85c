"use strict";
/**
 * Draws the plugin's icons (a blue rounded square with a white dot, like the
 * panel's header) as PNGs into icons/. Run once after changing the design:
 *   node scripts/make-icons.js
 */

const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** RGBA 8-bit pixels -> PNG bytes. */
function encodePng(width, height, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const rows = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    rows[y * (width * 4 + 1)] = 0; // filter: none
    rgba.copy(rows, y * (width * 4 + 1) + 1, y * width * 4, (y + 1) * width * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("IDAT", zlib.deflateSync(rows, { level: 9 })), chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** The logo at `size` px, 4x4 supersampled for smooth edges. */
function drawLogo(size, { light = false } = {}) {
  const out = Buffer.alloc(size * size * 4);
  const S = 4;
  const r = size * 0.22; // corner radius
  const dot = size * 0.2;
  const colour = light ? [80, 80, 80] : [55, 142, 240];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let cover = 0;
      let white = 0;
      for (let sy = 0; sy < S; sy++) {
        for (let sx = 0; sx < S; sx++) {
          const px = x + (sx + 0.5) / S;
          const py = y + (sy + 0.5) / S;
          const cx = Math.min(Math.max(px, r), size - r);
          const cy = Math.min(Math.max(py, r), size - r);
          if ((px - cx) ** 2 + (py - cy) ** 2 <= r * r) {
            cover++;
            if ((px - size / 2) ** 2 + (py - size / 2) ** 2 <= dot * dot) white++;
          }
        }
      }
      const a = cover / (S * S);
      const w = cover ? white / cover : 0;
      const i = (y * size + x) * 4;
      for (let c = 0; c < 3; c++) out[i + c] = Math.round(colour[c] * (1 - w) + 255 * w);
      out[i + 3] = Math.round(a * 255);
    }
  }
  return out;
}

function main() {
  const dir = path.join(__dirname, "..", "icons");
  fs.mkdirSync(dir, { recursive: true });
  const icons = [["panel", 23], ["plugin", 48]];
  for (const [name, size] of icons) {
    fs.writeFileSync(path.join(dir, `${name}.png`), encodePng(size, size, drawLogo(size)));
    fs.writeFileSync(path.join(dir, `${name}@2x.png`), encodePng(size * 2, size * 2, drawLogo(size * 2)));
  }
  console.log(`icons written to ${dir}`);
}

if (require.main === module) main();

module.exports = { encodePng, drawLogo };
