// @ts-check
/**
 * A PNG decoder for 16-bit greyscale, the format the server stores display images in. Browsers'
 * <img>/canvas reduce PNGs to 8 bits, which would make window/level useless, so the bytes are
 * parsed here: chunks → zlib stream (inflated by the platform's DecompressionStream) → scanline
 * unfiltering → big-endian samples to a Uint16Array.
 */

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/**
 * @typedef {{width: number, height: number, bitDepth: number, colorType: number, data: Uint16Array}} Png16
 */

/**
 * @param {Uint8Array} bytes
 * @returns {{width: number, height: number, bitDepth: number, colorType: number, interlace: number, idat: Uint8Array[]}}
 */
export function parseChunks(bytes) {
  for (let i = 0; i < 8; i++) if (bytes[i] !== SIGNATURE[i]) throw new Error("not a PNG file");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let bitDepth = 0;
  let colorType = -1;
  let interlace = 0;
  /** @type {Uint8Array[]} */
  const idat = [];
  while (pos + 8 <= bytes.length) {
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    const body = pos + 8;
    if (body + len > bytes.length) throw new Error(`truncated PNG chunk ${type}`);
    if (type === "IHDR") {
      width = dv.getUint32(body);
      height = dv.getUint32(body + 4);
      bitDepth = bytes[body + 8];
      colorType = bytes[body + 9];
      interlace = bytes[body + 12];
    } else if (type === "IDAT") {
      idat.push(bytes.subarray(body, body + len));
    } else if (type === "IEND") {
      break;
    }
    pos = body + len + 4; // skip the CRC
  }
  if (!width || !height) throw new Error("PNG without IHDR");
  return { width, height, bitDepth, colorType, interlace, idat };
}

/**
 * Inflates a zlib stream with the platform (browser or node ≥ 18).
 * @param {Uint8Array[]} parts
 * @returns {Promise<Uint8Array>}
 */
export async function inflate(parts) {
  const stream = new Blob(/** @type {BlobPart[]} */ (parts)).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Reverses PNG's per-scanline filters (PNG spec §9), returning the raw rows packed. The first
 * `bpp` bytes of each row and the first row (whose "previous row" is zeros) are handled outside
 * the hot loops, so those run without per-byte branches; writes to a Uint8Array wrap mod 256.
 * @param {Uint8Array} raw filter byte + row bytes, per row
 * @param {number} height
 * @param {number} rowBytes bytes per row without the filter byte
 * @param {number} bpp bytes per complete pixel (≥ 1)
 * @returns {Uint8Array} height × rowBytes
 */
export function unfilter(raw, height, rowBytes, bpp) {
  const out = new Uint8Array(height * rowBytes);
  const stride = rowBytes + 1;
  if (raw.length < height * stride) throw new Error("PNG data shorter than the image");
  const zero = new Uint8Array(rowBytes);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * stride];
    const src = y * stride + 1;
    const dst = y * rowBytes;
    // The previous output row, or a row of zeros above the first one.
    const prev = y > 0 ? out : zero;
    const up = y > 0 ? dst - rowBytes : 0;
    switch (filter) {
      case 0:
        out.set(raw.subarray(src, src + rowBytes), dst);
        break;
      case 1: // Sub
        for (let i = 0; i < bpp; i++) out[dst + i] = raw[src + i];
        for (let i = bpp; i < rowBytes; i++) out[dst + i] = raw[src + i] + out[dst + i - bpp];
        break;
      case 2: // Up
        for (let i = 0; i < rowBytes; i++) out[dst + i] = raw[src + i] + prev[up + i];
        break;
      case 3: // Average
        for (let i = 0; i < bpp; i++) out[dst + i] = raw[src + i] + (prev[up + i] >> 1);
        for (let i = bpp; i < rowBytes; i++) out[dst + i] = raw[src + i] + ((out[dst + i - bpp] + prev[up + i]) >> 1);
        break;
      case 4: // Paeth: predictor closest to a + b - c, ties to a, then b
        for (let i = 0; i < bpp; i++) out[dst + i] = raw[src + i] + prev[up + i];
        for (let i = bpp; i < rowBytes; i++) {
          const a = out[dst + i - bpp];
          const b = prev[up + i];
          const c = prev[up + i - bpp];
          let pa = b - c;
          let pb = a - c;
          let pc = pa + pb;
          pa = pa < 0 ? -pa : pa;
          pb = pb < 0 ? -pb : pb;
          pc = pc < 0 ? -pc : pc;
          out[dst + i] = raw[src + i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
        break;
      default:
        throw new Error(`bad PNG filter type ${filter} on row ${y}`);
    }
  }
  return out;
}

/**
 * Decodes a non-interlaced greyscale PNG (16-bit; 8-bit is widened so the viewer works on both)
 * to one Uint16 sample per pixel.
 * @param {Uint8Array} bytes the file
 * @returns {Promise<Png16>}
 */
export async function decodePng16(bytes) {
  const h = parseChunks(bytes);
  if (h.colorType !== 0) throw new Error(`only greyscale PNGs are supported (colour type ${h.colorType})`);
  if (h.bitDepth !== 16 && h.bitDepth !== 8) throw new Error(`unsupported bit depth ${h.bitDepth}`);
  if (h.interlace !== 0) throw new Error("interlaced PNGs are not supported");
  const bpp = h.bitDepth / 8;
  const rowBytes = h.width * bpp;
  const rows = unfilter(await inflate(h.idat), h.height, rowBytes, bpp);
  const n = h.width * h.height;
  const data = new Uint16Array(n);
  if (h.bitDepth === 16) {
    for (let i = 0, j = 0; i < n; i++, j += 2) data[i] = (rows[j] << 8) | rows[j + 1];
  } else {
    for (let i = 0; i < n; i++) data[i] = rows[i] * 257;
  }
  return { width: h.width, height: h.height, bitDepth: h.bitDepth, colorType: h.colorType, data };
}
