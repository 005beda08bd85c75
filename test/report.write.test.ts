// An experiment's report from a synthetic result: result.json valid and read back equal, report.md
// with mean ± std computed independently, every plot a well-formed SVG with one series per
// objective (or method), report.html self-contained; invalid results refused before any writing.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { curveFromMetrics, meanStd } from '../src/report/experiment.js';
import { formatMeanStd, inlineSvg, writeReport } from '../src/report/report.js';
import { readExperimentResult, validateExperimentResult } from '../src/report/result-schema.js';
import { METHODS, OBJECTIVES, STS_SETS, syntheticResult, syntheticWhitening } from './helpers/experiment.js';
import { marks, parseSvg, seriesColours } from './helpers/svg.js';

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'hlm-report-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

test('mean ± sample standard deviation', () => {
  const s = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
  expect(s.mean).toBe(5);
  expect(s.std).toBeCloseTo(Math.sqrt(32 / 7), 12);
  expect(meanStd([3])).toEqual({ mean: 3, std: 0, n: 1 });
  expect(formatMeanStd(meanStd([81.4, 82.1, 80.7]))).toBe('81.40 ± 0.70 (3)');
  expect(formatMeanStd(meanStd([0.5]))).toBe('0.5000');
});

describe('a headless experiment: two objectives, three seeds', () => {
  const result = syntheticResult();
  let out: string;
  let written: Awaited<ReturnType<typeof writeReport>>;
  beforeAll(async () => {
    out = join(scratch, 'headless');
    written = await writeReport(out, result);
  });

  test('writes result.json, report.md, report.html and one SVG a plot, nothing else', () => {
    expect(readdirSync(out).sort()).toEqual(['plots', 'report.html', 'report.md', 'result.json']);
    expect(readdirSync(join(out, 'plots')).sort()).toEqual(
      [
        'glue-scores',
        'pretrain-loss-vs-time',
        'pretrain-loss-vs-tokens',
        'pretrain-peak-memory',
        'pretrain-throughput',
        'pretrain-val-loss-vs-tokens',
      ].map((n) => `${n}.svg`),
    );
    expect(readExperimentResult(written.result)).toEqual(result);
  });

  test('every plot parses and draws one series per objective, in the same colour everywhere', () => {
    const colours = new Map<string, string>();
    for (const p of written.plots) {
      const svg = readFileSync(p.file, 'utf8');
      parseSvg(svg);
      const line = p.name.includes('-vs-');
      const drawn = line ? marks(svg, 'line mark') : marks(svg, 'bar');
      const bySeries = seriesColours(drawn, 'objective', line ? 'stroke' : 'fill');
      expect([...bySeries.keys()]).toEqual(OBJECTIVES);
      expect(p.series).toEqual(OBJECTIVES);
      for (const [name, c] of bySeries) {
        expect(colours.get(name) ?? c).toBe(c);
        colours.set(name, c);
      }
      // line charts: one line per run (seed); bar charts: one bar per objective and task
      if (line) expect(drawn.length).toBe(result.runs.length);
      else expect(drawn.length).toBe(p.name === 'glue-scores' ? 4 * OBJECTIVES.length : OBJECTIVES.length);
    }
    expect(new Set(colours.values()).size).toBe(OBJECTIVES.length);
  });

  test('the GLUE bars carry error bars, the means and spreads of the seeds', () => {
    const svg = readFileSync(join(out, 'plots', 'glue-scores.svg'), 'utf8');
    expect(marks(svg, 'errorbar').length).toBe(4 * OBJECTIVES.length);
    const cola = marks(svg, 'bar').find((b) => b.label.task === 'CoLA mcc' && b.label.objective === 'cwt');
    const values = result.scores.filter((s) => s.task === 'CoLA' && s.variant === 'cwt').map((s) => s.value);
    expect(Number(cola?.label.score)).toBeCloseTo(values.reduce((a, b) => a + b) / values.length, 6);
  });

  test('report.md: budget, tokens per objective, hardware, and tables of mean ± std over seeds', () => {
    const md = readFileSync(written.markdown, 'utf8');
    expect(md).toMatch(/^# Headless language modelling: CE against CWT \(synthetic\)\n/);
    expect(md).toMatch(/\| wall time \| 60\.0 min \| 50\.0 min \|/);
    const perObjective = result.runs.filter((r) => r.variant === 'cwt').reduce((a, r) => a + r.tokens, 0);
    expect(md).toContain(`| cwt | 3 | ${perObjective.toLocaleString('en-US')} |`);
    expect(md).toMatch(/\| GPU \| llvmpipe \(mesa, opengl, software\) \|/);
    expect(md).toMatch(/\| CPU \| Test CPU × 2 \|/);
    // independently: CoLA mcc for ce over seeds 1..3 is 20 + 0.7·seed → 21.40 ± 0.70
    expect(md).toContain('| CoLA | mcc | 21.40 ± 0.70 (3) | 24.40 ± 0.70 (3) |');
    const tps = result.runs.filter((r) => r.variant === 'ce').map((r) => r.tokensPerSecond);
    expect(md).toContain(`| ${formatMeanStd(meanStd(tps))} |`);
    for (const p of written.plots) expect(md).toContain(`(plots/${p.name}.svg)`);
  });

  test('report.html is self-contained: every plot inline, no script, nothing fetched, unique ids', () => {
    const html = readFileSync(written.html, 'utf8');
    expect((html.match(/<svg /g) ?? []).length).toBe(written.plots.length);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|src=|https?:\/\/(?!www\.w3\.org)/i);
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    for (const m of html.matchAll(/url\(#([^)]+)\)/g)) expect(ids).toContain(m[1]);
    expect(html).toContain('<td class="num">21.40 ± 0.70 (3)</td>');
  });

  test('a second report replaces the first and removes plots it no longer has', async () => {
    const fewer = syntheticResult();
    fewer.scores = [];
    fewer.phases = fewer.phases.filter((p) => p.name !== 'glue');
    await writeReport(out, fewer);
    expect(readdirSync(join(out, 'plots'))).not.toContain('glue-scores.svg');
    expect(readFileSync(join(out, 'report.md'), 'utf8')).not.toContain('Scores: glue');
    expect(readdirSync(out).sort()).toEqual(['plots', 'report.html', 'report.md', 'result.json']);
  });
});

test('a whitening experiment: one series per method, one group per STS set', async () => {
  const out = join(scratch, 'whitening');
  const w = await writeReport(out, syntheticWhitening());
  expect(w.plots.map((p) => p.name)).toEqual(['whitening-scores']);
  const svg = readFileSync(w.plots[0].file, 'utf8');
  const bars = marks(svg, 'bar');
  expect([...seriesColours(bars, 'method', 'fill').keys()]).toEqual(METHODS);
  expect([...new Set(bars.map((b) => b.label.task))]).toEqual(STS_SETS);
  expect(bars.length).toBe(METHODS.length * STS_SETS.length);
  expect(readFileSync(w.markdown, 'utf8')).toContain('| task | metric | none | center | uniform | zipfian |');
});

describe('results that break hlm.experiment/1 are refused before anything is written', () => {
  const cases: [string, (r: ReturnType<typeof syntheticResult>) => void, RegExp][] = [
    [
      'a NaN loss (null in JSON)',
      (r) => (r.runs[0].finalLoss = NaN),
      /\$\.runs\[0\]\.finalLoss: expected number, got NaN/,
    ],
    [
      'an unknown field',
      (r) => Object.assign(r.scores[0], { extra: 1 }),
      /\$\.scores\[0\]: unexpected property "extra"/,
    ],
    ['a missing field', (r) => delete (r as Partial<typeof r>).hardware, /missing required "hardware"/],
    [
      'a bad phase status',
      (r) => (r.phases[0].status = 'maybe' as never),
      /\$\.phases\[0\]\.status: "maybe" is not one/,
    ],
    ['a score of no phase', (r) => (r.scores[0].phase = 'nowhere'), /\$\.scores\[0\]\.phase: "nowhere" is not a phase/],
    ['a repeated run id', (r) => (r.runs[1].id = r.runs[0].id), /\$\.runs\[1\]\.id: "ce-seed1" repeats/],
  ];
  test.each(cases)('%s', async (_what, mutate, message) => {
    const r = syntheticResult(5);
    mutate(r);
    expect(validateExperimentResult(r).join('; ')).toMatch(message);
    const out = join(scratch, 'refused');
    await expect(writeReport(out, r)).rejects.toThrow(HlmError);
    expect(existsSync(out)).toBe(false);
  });
});

test('a curve from metrics.jsonl: step rows, validation loss at its step, wall time summed over a resume', () => {
  const dir = join(scratch, 'run');
  mkdirSync(dir);
  const rows = [
    { step: 1, loss: 9, lr: 1e-3, grad_norm: 2, tokens: 100, elapsed_s: 1 },
    { step: 2, loss: 8, lr: 1e-3, grad_norm: 2, tokens: 200, elapsed_s: 2 },
    { step: 2, val_loss: 8.5, tokens: 200, elapsed_s: 2.5 },
    // resumed: elapsed_s starts again
    { step: 3, loss: 7, lr: 1e-3, grad_norm: 1, tokens: 300, elapsed_s: 0.5 },
  ];
  writeFileSync(join(dir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  expect(curveFromMetrics(join(dir, 'metrics.jsonl'))).toEqual([
    { step: 1, tokens: 100, elapsed_s: 1, loss: 9 },
    { step: 2, tokens: 200, elapsed_s: 2, loss: 8, val_loss: 8.5 },
    { step: 3, tokens: 300, elapsed_s: 3, loss: 7 },
  ]);
});

test('inline SVGs get their ids prefixed so that several can share a page', () => {
  const svg = '<svg><g clip-path="url(#clip1)"/><defs><clipPath id="clip1"/></defs><use href="#clip1"/></svg>';
  expect(inlineSvg(svg, 'fig')).toBe(
    '<svg><g clip-path="url(#fig-clip1)"/><defs><clipPath id="fig-clip1"/></defs><use href="#fig-clip1"/></svg>',
  );
});
