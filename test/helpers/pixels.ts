// Pixels of a PNG (a chart rasterized by resvg, a page screenshot by chromium), decoded by pngjs.
import { PNG } from 'pngjs';

export interface Image {
  width: number;
  height: number;
  data: Uint8Array; // RGBA
}

export function decodePng(bytes: Uint8Array): Image {
  const png = PNG.sync.read(Buffer.from(bytes));
  return { width: png.width, height: png.height, data: png.data };
}

function rgb(hex: string): [number, number, number] {
  const n = parseInt(hex.replace('#', ''), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Whether pixel (x, y) is `hex` within `tol` on each channel. */
export function isColour(img: Image, x: number, y: number, hex: string, tol = 6): boolean {
  const [r, g, b] = rgb(hex);
  const i = 4 * (y * img.width + x);
  const d = img.data;
  return Math.abs(d[i] - r) <= tol && Math.abs(d[i + 1] - g) <= tol && Math.abs(d[i + 2] - b) <= tol;
}

/** How many pixels of rows [y0, y1) are `hex`. */
export function countColour(img: Image, hex: string, y0 = 0, y1 = img.height, tol = 6): number {
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = 0; x < img.width; x++) if (isColour(img, x, y, hex, tol)) n++;
  return n;
}

/**
 * Horizontal bands of the image holding any of `colours`: runs of rows with such a pixel, joined
 * across gaps shorter than `gap` rows. On a page of stacked charts, one band a chart.
 */
export function colourBands(img: Image, colours: readonly string[], gap = 40): { y0: number; y1: number }[] {
  const bands: { y0: number; y1: number }[] = [];
  for (let y = 0; y < img.height; y++) {
    let hit = false;
    for (let x = 0; x < img.width && !hit; x++) hit = colours.some((c) => isColour(img, x, y, c));
    if (!hit) continue;
    const last = bands[bands.length - 1];
    if (last && y - last.y1 < gap) last.y1 = y + 1;
    else bands.push({ y0: y, y1: y + 1 });
  }
  return bands;
}
