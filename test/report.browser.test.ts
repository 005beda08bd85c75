// report.html opened in a real headless browser (Debian's chromium; .ci/run installs it): from a
// screenshot's pixels, every plot of the report renders, each as one band of the page holding
// both objectives' colours; the same page without its SVGs shows neither colour.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PALETTE } from '../src/report/charts.js';
import { writeReport } from '../src/report/report.js';
import { syntheticResult } from './helpers/experiment.js';
import { colourBands, countColour, decodePng, type Image } from './helpers/pixels.js';

const CHROMIUM = process.env.HLM_CHROMIUM ?? '/usr/bin/chromium';
const WIDTH = 1200;
const HEIGHT = 6000;

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'hlm-browser-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A screenshot of `html` (a file) at WIDTH × HEIGHT, from a fresh profile, with no network. */
function screenshot(html: string, name: string): Image {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) or set HLM_CHROMIUM`);
  const png = join(scratch, `${name}.png`);
  const r = spawnSync(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--force-color-profile=srgb',
      '--hide-scrollbars',
      `--user-data-dir=${mkdtempSync(join(scratch, 'profile-'))}`,
      `--screenshot=${png}`,
      `--window-size=${WIDTH},${HEIGHT}`,
      pathToFileURL(html).href,
    ],
    { encoding: 'utf8', timeout: 90_000 },
  );
  if (r.status !== 0 || !existsSync(png))
    throw new Error(`chromium exited ${r.status ?? r.signal}: ${r.stderr.split('\n').slice(-5).join('\n')}`);
  return decodePng(readFileSync(png));
}

test('every plot of report.html renders in chromium, with both objectives in it', async () => {
  const w = await writeReport(join(scratch, 'report'), syntheticResult());
  const colours = [PALETTE[0], PALETTE[1]]; // ce, cwt
  const img = screenshot(w.html, 'report');
  expect([img.width, img.height]).toEqual([WIDTH, HEIGHT]);
  const bands = colourBands(img, colours);
  const summary = bands.map((b) => `${b.y0}-${b.y1}: ${colours.map((c) => countColour(img, c, b.y0, b.y1))}`);
  expect(bands.length).toBe(w.plots.length);
  for (const b of bands) {
    for (const c of colours) {
      const n = countColour(img, c, b.y0, b.y1);
      if (!(n >= 150)) throw new Error(`${c} has ${n} pixels in rows ${b.y0}-${b.y1}; bands: ${summary.join('; ')}`);
    }
    if (!(b.y1 - b.y0 >= 150)) throw new Error(`a plot only ${b.y1 - b.y0} pixels high; bands: ${summary.join('; ')}`);
  }
  // the page ends before the screenshot does: nothing was cut off
  const lastRows = countColour(img, '#ffffff', HEIGHT - 50, HEIGHT, 0);
  expect(lastRows).toBe(WIDTH * 50);

  // control: the same page without its SVGs has none of the series colours
  const bare = join(scratch, 'bare.html');
  writeFileSync(bare, readFileSync(w.html, 'utf8').replace(/<svg [\s\S]*?<\/svg>/g, ''));
  const none = screenshot(bare, 'bare');
  for (const c of colours) expect(countColour(none, c)).toBe(0);
});
