"use strict";
/**
 * ICC profile bytes from a JPEG file. UXP gives a document's profile only by
 * name; to send the bridge the profile itself, the adapter saves a 1x1 JPEG
 * in that profile and this pulls the embedded profile back out.
 *
 * JPEG keeps ICC profiles in APP2 segments tagged "ICC_PROFILE\0", each with a
 * sequence number and a count, because one segment holds at most ~64 kB.
 */

const TAG = [73, 67, 67, 95, 80, 82, 79, 70, 73, 76, 69, 0]; // "ICC_PROFILE\0"

function isTag(bytes, at) {
  for (let i = 0; i < TAG.length; i++) if (bytes[at + i] !== TAG[i]) return false;
  return true;
}

/** The ICC profile embedded in a JPEG (Uint8Array), or null when it has none. */
function iccFromJpeg(bytes) {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new Error("not a JPEG file");
  const chunks = [];
  let count = 0;
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) throw new Error(`bad JPEG marker at ${p}`);
    const marker = bytes[p + 1];
    if (marker === 0xff) { p++; continue; } // fill byte
    if (marker === 0xd9 || marker === 0xda) break; // end of image / start of scan: no more headers
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { p += 2; continue; }
    const length = (bytes[p + 2] << 8) | bytes[p + 3];
    if (length < 2 || p + 2 + length > bytes.length) throw new Error("truncated JPEG segment");
    const body = p + 4;
    if (marker === 0xe2 && length >= 16 && isTag(bytes, body)) {
      const seq = bytes[body + 12];
      count = bytes[body + 13];
      chunks.push({ seq, data: bytes.subarray(body + 14, p + 2 + length) });
    }
    p += 2 + length;
  }
  if (!chunks.length) return null;
  chunks.sort((a, b) => a.seq - b.seq);
  if (chunks.length !== count || chunks.some((c, i) => c.seq !== i + 1)) {
    throw new Error(`incomplete ICC profile: ${chunks.length} of ${count} parts`);
  }
  const size = chunks.reduce((n, c) => n + c.data.length, 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { out.set(c.data, at); at += c.data.length; }
  return out;
}

/** The profile's declared size and signature check ('acsp' at byte 36). */
function looksLikeIcc(bytes) {
  if (!bytes || bytes.length < 128) return false;
  const size = ((bytes[0] << 24) >>> 0) + (bytes[1] << 16) + (bytes[2] << 8) + bytes[3];
  return size === bytes.length && bytes[36] === 0x61 && bytes[37] === 0x63 && bytes[38] === 0x73 && bytes[39] === 0x70;
}

module.exports = { iccFromJpeg, looksLikeIcc };
