// `hlm plot`: runs' metrics.jsonl overlaid, one labelled series a run, as SVG or PNG; --json says
// what was plotted; user mistakes are one `hlm:` line naming the file (and line), nothing written.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { PALETTE } from '../src/report/charts.js';
import { plotMetrics, type PlotOptions, type PlotResult } from '../src/report/plot.js';
import { hlm } from './helpers/cli.js';
import { countColour, decodePng } from './helpers/pixels.js';
import { marks, seriesColours } from './helpers/svg.js';

let scratch: string;
let ce: string;
let cwt: string;

/** A run directory with `steps` step rows and an evaluation row every 5 steps. */
function writeRun(name: string, steps: number, rate: number, resumeAt?: number): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  for (let step = 1; step <= steps; step++) {
    const elapsed = resumeAt !== undefined && step >= resumeAt ? (step - resumeAt + 1) * 0.5 : step * 0.5;
    const loss = 3 + 7 * Math.exp(-step / rate);
    lines.push(JSON.stringify({ step, loss, lr: 1e-3, grad_norm: 1.5, tokens: step * 512, elapsed_s: elapsed }));
    if (step % 5 === 0)
      lines.push(JSON.stringify({ step, val_loss: loss + 0.3, tokens: step * 512, elapsed_s: elapsed + 0.1 }));
  }
  writeFileSync(join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  return dir;
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'hlm-plot-'));
  ce = writeRun('ce', 40, 12);
  cwt = writeRun('cwt', 30, 8);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

test('hlm plot <run dirs> --out x.svg --json: one series per run, named after its directory', () => {
  const out = join(scratch, 'loss.svg');
  const r = hlm(['plot', ce, join(cwt, 'metrics.jsonl'), '--out', out, '--json']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const res = JSON.parse(r.stdout) as PlotResult;
  expect(res).toEqual({
    out,
    format: 'svg',
    x: 'step',
    y: 'loss',
    series: [
      { name: 'ce', file: join(ce, 'metrics.jsonl'), points: 40 },
      { name: 'cwt', file: join(cwt, 'metrics.jsonl'), points: 30 },
    ],
  });
  const svg = readFileSync(out, 'utf8');
  const lines = marks(svg, 'line mark');
  expect(lines.length).toBe(2);
  expect([...seriesColours(lines, 'run', 'stroke')]).toEqual([
    ['ce', PALETTE[0]],
    ['cwt', PALETTE[1]],
  ]);
  expect(lines.map((l) => l.label.step)).toEqual(['1', '1']); // each line's label names its first point
});

test('--x tokens --y val_loss --label … --out x.png: the evaluation rows, rasterized', async () => {
  const out = join(scratch, 'val.png');
  const r = await plotMetrics({ runs: [ce, cwt], out, x: 'tokens', y: 'val_loss', labels: ['CE', 'CWT'] });
  expect(r.series.map((s) => [s.name, s.points])).toEqual([
    ['CE', 8],
    ['CWT', 6],
  ]);
  const img = decodePng(readFileSync(out));
  for (const c of [PALETTE[0], PALETTE[1]]) if (!(countColour(img, c) > 300)) throw new Error(`${c} missing`);
});

test('--x time sums wall time over a resumed run, so the curve never goes back', async () => {
  const resumed = writeRun('resumed', 20, 10, 11);
  const out = join(scratch, 'time.svg');
  await plotMetrics({ runs: [resumed], out, x: 'time', y: 'loss', logY: true });
  const xs = marks(readFileSync(out, 'utf8'), 'line mark').map((m) => m.label);
  expect(xs.length).toBe(1);
  // 10 steps at 0.5 s, then a new process: its 0.5 s come after 5.1 s (the last row, an evaluation at step 10)
  const { metricCurve, readMetricsFile } = await import('../src/report/metrics.js');
  const file = join(resumed, 'metrics.jsonl');
  const times = metricCurve(readMetricsFile(file), 'time', 'loss', file).map((p) => p.x);
  expect(times.slice(8, 12)).toEqual([4.5, 5, 5.6, 6.1]);
  for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1]);
});

test('two runs with the same directory name are told apart by their paths', async () => {
  const a = writeRun(join('a', 'run'), 5, 3);
  const b = writeRun(join('b', 'run'), 5, 3);
  const r = await plotMetrics({ runs: [a, b], out: join(scratch, 'same.svg'), x: 'step', y: 'lr' });
  const names = r.series.map((s) => s.name);
  expect(names[0]).not.toBe(names[1]);
  expect(names[0]).toMatch(/a\/run$/);
  expect(names[1]).toMatch(/b\/run$/);
});

describe('mistakes are one HlmError naming the file, and nothing is written', () => {
  const refuse = async (o: Partial<PlotOptions>, message: RegExp) => {
    const out = o.out ?? join(scratch, 'never.svg');
    const err = await plotMetrics({ runs: [ce], x: 'step', y: 'loss', ...o, out }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HlmError);
    expect((err as Error).message).toMatch(message);
    expect(existsSync(out)).toBe(false);
  };

  test('a missing file, a directory without metrics.jsonl', async () => {
    await refuse({ runs: [join(scratch, 'nope')] }, /nope: no such file or directory/);
    mkdirSync(join(scratch, 'empty-run'));
    await refuse({ runs: [join(scratch, 'empty-run')] }, /empty-run: a directory without metrics\.jsonl/);
  });

  test('a malformed line, named by file and line', async () => {
    const dir = join(scratch, 'broken');
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1,"loss":2}\n\n{"step":2,"loss":\n');
    await refuse({ runs: [ce, dir] }, /broken\/metrics\.jsonl:3: not JSON/);
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1,"loss":2}\n[1,2]\n');
    await refuse({ runs: [dir] }, /broken\/metrics\.jsonl:2: not a JSON object/);
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1,"loss":"high"}\n');
    await refuse({ runs: [dir] }, /broken\/metrics\.jsonl:1: "loss" is "high", not a number/);
  });

  test('a y field no row has, a log scale over values that are not positive', async () => {
    const dir = join(scratch, 'no-val');
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1,"loss":2,"lr":0,"tokens":8,"elapsed_s":1}\n');
    await refuse(
      { runs: [ce, dir], y: 'val_loss' },
      /no-val\/metrics\.jsonl: no row has "val_loss" \(its rows have step, loss/,
    );
    await refuse({ runs: [dir], y: 'lr', logY: true }, /--log-y, but "lr" is 0 at step 1/);
  });

  test('an --out that is neither .svg nor .png, --label counts that do not match', async () => {
    await refuse({ out: join(scratch, 'chart.pdf') }, /--out .*chart\.pdf: the file must end in \.svg or \.png/);
    await refuse({ runs: [ce, cwt], labels: ['one'] }, /--label given 1 times for 2 runs/);
  });

  test('through the CLI: exit 1, one hlm: line on stderr', () => {
    const missing = join(scratch, 'no-such-run');
    const r = hlm(['plot', ce, missing, '--out', join(scratch, 'cli.svg')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`hlm: ${missing}: no such file or directory\n`);
    expect(existsSync(join(scratch, 'cli.svg'))).toBe(false);
  });
});
