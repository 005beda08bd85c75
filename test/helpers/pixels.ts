// Pixels of a PNG (a chart rasterized by resvg, a page screenshot by chromium). The decoder is a
// few lines over node:zlib: a pure-JS one (pngjs) took seconds for a 1200×6000 screenshot under
// jest, whose sandbox makes every global lookup in a hot loop slow; these loops use none.
import { inflateSync } from 'node:zlib';

export interface Image {
  width: number;
  height: number;
  data: Uint8Array; // RGBA
}

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what chromium and resvg write) to RGBA. */
export function decodePng(bytes: Uint8Array): Image {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < 8; i++) if (buf[i] !== SIGNATURE[i]) throw new Error('not a PNG');
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < buf.length;) {
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colour, , , interlace] = data.subarray(8, 13);
      if (depth !== 8 || (colour !== 2 && colour !== 6) || interlace !== 0)
        throw new Error(`PNG bit depth ${depth}, colour type ${colour}, interlace ${interlace}: not supported here`);
      channels = colour === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1))
    throw new Error(`PNG data is ${raw.length} bytes, not ${height}×${stride + 1}`);
  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    const up = dst - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? rows[dst + x - channels] : 0;
      const b = y > 0 ? rows[up + x] : 0;
      const c = x >= channels && y > 0 ? rows[up + x - channels] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = p > a ? p - a : a - p;
        const pb = p > b ? p - b : b - p;
        const pc = p > c ? p - c : c - p;
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`PNG row ${y}: filter ${filter}`);
      rows[dst + x] = (raw[src + x] + pred) & 255;
    }
  }
  if (channels === 4) return { width, height, data: rows };
  const data = new Uint8Array(width * height * 4);
  for (let i = 0, j = 0; i < rows.length; i += 3, j += 4) {
    data[j] = rows[i];
    data[j + 1] = rows[i + 1];
    data[j + 2] = rows[i + 2];
    data[j + 3] = 255;
  }
  return { width, height, data };
}

function rgb(hex: string): [number, number, number] {
  const n = parseInt(hex.replace('#', ''), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** A test for one colour within `tol` on each channel, at a byte offset into RGBA data. */
function matcher(hex: string, tol: number): (d: Uint8Array, i: number) => boolean {
  const [r, g, b] = rgb(hex);
  // no Math.abs: under jest every global lookup goes through the sandbox, hundreds of times slower
  return (d, i) => {
    const dr = d[i] - r;
    const dg = d[i + 1] - g;
    const db = d[i + 2] - b;
    return dr <= tol && -dr <= tol && dg <= tol && -dg <= tol && db <= tol && -db <= tol;
  };
}

/** How many pixels of rows [y0, y1) are `hex`. */
export function countColour(img: Image, hex: string, y0 = 0, y1 = img.height, tol = 6): number {
  const is = matcher(hex, tol);
  let n = 0;
  for (let i = 4 * y0 * img.width; i < 4 * y1 * img.width; i += 4) if (is(img.data, i)) n++;
  return n;
}

/**
 * Horizontal bands of the image holding any of `colours`: runs of rows with such a pixel, joined
 * across gaps shorter than `gap` rows. On a page of stacked charts, one band a chart.
 */
export function colourBands(img: Image, colours: readonly string[], gap = 40, tol = 6): { y0: number; y1: number }[] {
  const tests = colours.map((c) => matcher(c, tol));
  const bands: { y0: number; y1: number }[] = [];
  for (let y = 0; y < img.height; y++) {
    let hit = false;
    for (let i = 4 * y * img.width; i < 4 * (y + 1) * img.width && !hit; i += 4)
      for (let k = 0; k < tests.length && !hit; k++) hit = tests[k](img.data, i);
    if (!hit) continue;
    const last = bands[bands.length - 1];
    if (last && y - last.y1 < gap) last.y1 = y + 1;
    else bands.push({ y0: y, y1: y + 1 });
  }
  return bands;
}
