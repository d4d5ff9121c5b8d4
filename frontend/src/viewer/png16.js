// @ts-check
/**
 * A PNG decoder for 16-bit greyscale, the format the server stores display images in. Browsers'
 * <img>/canvas reduce PNGs to 8 bits, which would make window/level useless, so the bytes are
 * parsed here: chunks → zlib stream (inflated by the platform's DecompressionStream) → scanline
 * unfiltering → big-endian samples to a Uint16Array.
 *
 * The decoder works on a byte stream as it arrives (`decodePng16Stream`), so a download and its
 * decoding overlap: when the last byte is in, only the last rows are left to unfilter.
 */

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/**
 * @typedef {{width: number, height: number, bitDepth: number, colorType: number, data: Uint16Array}} Png16
 * @typedef {{width: number, height: number, bitDepth: number, colorType: number, interlace: number}} PngHeader
 */

/**
 * @param {Uint8Array} bytes
 * @returns {PngHeader & {idat: Uint8Array[]}}
 */
export function parseChunks(bytes) {
  for (let i = 0; i < 8; i++) if (bytes[i] !== SIGNATURE[i]) throw new Error("not a PNG file");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  /** @type {PngHeader|null} */
  let header = null;
  /** @type {Uint8Array[]} */
  const idat = [];
  while (pos + 8 <= bytes.length) {
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    const body = pos + 8;
    if (body + len > bytes.length) throw new Error(`truncated PNG chunk ${type}`);
    if (type === "IHDR") header = readHeader(bytes.subarray(body, body + len));
    else if (type === "IDAT") idat.push(bytes.subarray(body, body + len));
    else if (type === "IEND") break;
    pos = body + len + 4; // skip the CRC
  }
  if (!header) throw new Error("PNG without IHDR");
  return { ...header, idat };
}

/**
 * @param {Uint8Array} body the IHDR chunk's data (13 bytes)
 * @returns {PngHeader}
 */
function readHeader(body) {
  if (body.length < 13) throw new Error("PNG IHDR too short");
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const width = dv.getUint32(0);
  const height = dv.getUint32(4);
  if (!width || !height) throw new Error("PNG without IHDR");
  return { width, height, bitDepth: body[8], colorType: body[9], interlace: body[12] };
}

/**
 * What this decoder can read: non-interlaced greyscale, 16-bit (8-bit is widened so the viewer
 * works on both).
 * @param {PngHeader} h
 */
function checkSupported(h) {
  if (h.colorType !== 0) throw new Error(`only greyscale PNGs are supported (colour type ${h.colorType})`);
  if (h.bitDepth !== 16 && h.bitDepth !== 8) throw new Error(`unsupported bit depth ${h.bitDepth}`);
  if (h.interlace !== 0) throw new Error("interlaced PNGs are not supported");
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
 * Reverses one scanline's filter (PNG spec §9). The first `bpp` bytes of the row are handled
 * outside the hot loops, so those run without per-byte branches; writes to a Uint8Array wrap
 * mod 256. `prev` is the previous unfiltered row (zeros above the first row).
 * @param {number} filter the row's filter type byte
 * @param {Uint8Array} src filtered bytes
 * @param {number} s where the row's bytes start in `src` (after the filter byte)
 * @param {Uint8Array} prev previous unfiltered row, `rowBytes` long
 * @param {Uint8Array} out receives the unfiltered row, `rowBytes` long
 * @param {number} rowBytes
 * @param {number} bpp bytes per complete pixel (≥ 1)
 * @param {number} y row number, for the error message
 */
export function unfilterRow(filter, src, s, prev, out, rowBytes, bpp, y) {
  switch (filter) {
    case 0:
      out.set(src.subarray(s, s + rowBytes));
      break;
    case 1: // Sub
      for (let i = 0; i < bpp; i++) out[i] = src[s + i];
      for (let i = bpp; i < rowBytes; i++) out[i] = src[s + i] + out[i - bpp];
      break;
    case 2: // Up
      for (let i = 0; i < rowBytes; i++) out[i] = src[s + i] + prev[i];
      break;
    case 3: // Average
      for (let i = 0; i < bpp; i++) out[i] = src[s + i] + (prev[i] >> 1);
      for (let i = bpp; i < rowBytes; i++) out[i] = src[s + i] + ((out[i - bpp] + prev[i]) >> 1);
      break;
    case 4: // Paeth: predictor closest to a + b - c, ties to a, then b
      for (let i = 0; i < bpp; i++) out[i] = src[s + i] + prev[i];
      for (let i = bpp; i < rowBytes; i++) {
        const a = out[i - bpp];
        const b = prev[i];
        const c = prev[i - bpp];
        let pa = b - c;
        let pb = a - c;
        let pc = pa + pb;
        pa = pa < 0 ? -pa : pa;
        pb = pb < 0 ? -pb : pb;
        pc = pc < 0 ? -pc : pc;
        out[i] = src[s + i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      break;
    default:
      throw new Error(`bad PNG filter type ${filter} on row ${y}`);
  }
}

/**
 * Reverses the filters of a whole image, returning the raw rows packed.
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
  let prev = new Uint8Array(rowBytes);
  for (let y = 0; y < height; y++) {
    const row = out.subarray(y * rowBytes, (y + 1) * rowBytes);
    unfilterRow(raw[y * stride], raw, y * stride + 1, prev, row, rowBytes, bpp, y);
    prev = row;
  }
  return out;
}

/**
 * Splits a PNG byte stream, whatever its chunking, into the zlib stream of its IDAT chunks.
 * `onHeader` sees the IHDR (which precedes every IDAT) and may throw to refuse the image.
 * The stream errors on bytes that are not a PNG and on a file cut inside a chunk; what follows
 * IEND is ignored.
 * @param {(h: PngHeader) => void} onHeader
 * @returns {TransformStream<Uint8Array, Uint8Array>}
 */
export function idatStream(onHeader) {
  // signature → head (length + type) → data → crc → head … → end (after IEND's data)
  let state = "signature";
  let need = 8; // bytes still to come in this state
  const head = new Uint8Array(8);
  let type = "";
  /** @type {Uint8Array|null} */
  let ihdr = null; // the IHDR's data, gathered across pieces
  let seenHeader = false;

  /** Moves to the next state once the current one has all its bytes. */
  const advance = () => {
    if (state === "signature" || state === "crc") {
      state = "head";
      need = 8;
    } else if (state === "head") {
      type = String.fromCharCode(head[4], head[5], head[6], head[7]);
      if (type === "IDAT" && !seenHeader) throw new Error("PNG without IHDR");
      need = new DataView(head.buffer).getUint32(0);
      ihdr = type === "IHDR" ? new Uint8Array(need) : null;
      state = "data";
      if (need === 0) advance();
    } else if (state === "data") {
      if (ihdr) {
        onHeader(readHeader(ihdr));
        seenHeader = true;
        ihdr = null;
      }
      state = type === "IEND" ? "end" : "crc";
      need = 4;
    }
  };

  return new TransformStream({
    transform(piece, out) {
      for (let p = 0; p < piece.length && state !== "end"; ) {
        const take = Math.min(need, piece.length - p);
        const part = piece.subarray(p, p + take);
        if (state === "signature") {
          for (let i = 0; i < take; i++) if (part[i] !== SIGNATURE[8 - need + i]) throw new Error("not a PNG file");
        } else if (state === "head") head.set(part, 8 - need);
        else if (state === "data" && type === "IDAT") out.enqueue(part);
        else if (state === "data" && ihdr) ihdr.set(part, ihdr.length - need);
        p += take;
        need -= take;
        if (need === 0) advance();
      }
    },
    flush() {
      if (state === "signature") throw new Error("not a PNG file");
      // A file may end without IEND, but not inside a chunk.
      if (state !== "end" && !(state === "head" && need === 8)) throw new Error(`truncated PNG chunk ${type}`);
      if (!seenHeader) throw new Error("PNG without IHDR");
    },
  });
}

/**
 * Turns inflated scanlines into samples as they arrive, whatever the pieces' sizes.
 */
class Rows {
  /** @param {PngHeader} h */
  constructor(h) {
    this.width = h.width;
    this.height = h.height;
    this.bpp = h.bitDepth / 8;
    this.rowBytes = h.width * this.bpp;
    this.stride = this.rowBytes + 1;
    this.data = new Uint16Array(h.width * h.height);
    this.prev = new Uint8Array(this.rowBytes); // zeros: the row above the first
    this.cur = new Uint8Array(this.rowBytes);
    this.partial = new Uint8Array(this.stride); // a row split across pieces
    this.have = 0;
    this.y = 0;
  }

  /** @param {Uint8Array} piece */
  push(piece) {
    const { stride } = this;
    let p = 0;
    if (this.have > 0) {
      const take = Math.min(stride - this.have, piece.length);
      this.partial.set(piece.subarray(0, take), this.have);
      this.have += take;
      p = take;
      if (this.have < stride) return;
      this.row(this.partial, 0);
      this.have = 0;
    }
    for (; p + stride <= piece.length && this.y < this.height; p += stride) this.row(piece, p);
    if (p < piece.length && this.y < this.height) {
      this.partial.set(piece.subarray(p), 0);
      this.have = piece.length - p;
    }
  }

  /**
   * @param {Uint8Array} src
   * @param {number} at the row's filter byte
   */
  row(src, at) {
    if (this.y >= this.height) return; // trailing bytes after the last row are ignored
    const { cur, prev, width, data } = this;
    unfilterRow(src[at], src, at + 1, prev, cur, this.rowBytes, this.bpp, this.y);
    const o = this.y * width;
    if (this.bpp === 2) for (let x = 0, j = 0; x < width; x++, j += 2) data[o + x] = (cur[j] << 8) | cur[j + 1];
    else for (let x = 0; x < width; x++) data[o + x] = cur[x] * 257;
    this.prev = cur;
    this.cur = prev;
    this.y++;
  }
}

/**
 * Decodes a PNG as its bytes arrive (a download's body), so inflating and unfiltering run while
 * the rest is still coming.
 * @param {ReadableStream<Uint8Array>} source
 * @returns {Promise<Png16>}
 */
export async function decodePng16Stream(source) {
  /** @type {PngHeader|null} */
  let header = null;
  const inflated = source
    .pipeThrough(
      idatStream((h) => {
        checkSupported(h);
        header = h;
      }),
    )
    .pipeThrough(/** @type {TransformStream<Uint8Array, Uint8Array>} */ (/** @type {unknown} */ (new DecompressionStream("deflate"))));
  const reader = inflated.getReader();
  /** @type {Rows|null} */
  let rows = null;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!rows) {
        if (!header) throw new Error("PNG without IHDR");
        rows = new Rows(header);
      }
      rows.push(value);
    }
  } catch (err) {
    await reader.cancel(err).catch(() => {}); // stop the download too
    throw err;
  }
  const h = /** @type {PngHeader|null} */ (header);
  if (!h) throw new Error("PNG without IHDR");
  if (!rows || rows.y < h.height) throw new Error("PNG data shorter than the image");
  return { width: h.width, height: h.height, bitDepth: h.bitDepth, colorType: h.colorType, data: rows.data };
}

/**
 * Decodes a whole PNG file held in memory (the same decoder, fed in one piece).
 * @param {Uint8Array} bytes the file
 * @returns {Promise<Png16>}
 */
export function decodePng16(bytes) {
  return decodePng16Stream(
    new ReadableStream({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    }),
  );
}
