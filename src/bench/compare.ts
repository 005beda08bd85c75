// --compare: current throughput over a baseline's, per test (suite + name + test + params),
// and whether any fell by more than the threshold. The baseline is hlm.bench/1 JSON lines,
// from an earlier `hlm bench` or from bench/torch_bench.py. Either side may be several runs of the
// same tests (comma-separated files): each test is then taken from the run with its median throughput,
// since on a shared machine one run's figure moves with the moment (PyTorch's 512³ matmul went from 106
// to 186 GFLOP/s a minute apart on the 2-core VM) and runs taken in turns see the same moments.
import { readFileSync } from 'node:fs';
import { HlmError } from '../errors.js';
import { benchSchema, validate } from './schema.js';
import { paramsText } from './report.js';
import { testKey, type BenchRecord } from './record.js';

/** Records of a JSON-lines file, each validated; a bad line is an error naming the file and line. */
export function readRecords(file: string): BenchRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new HlmError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const records: BenchRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new HlmError(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const errors = validate(benchSchema(), value);
    if (errors.length)
      throw new HlmError(
        `${file}:${i + 1}: not an hlm.bench/1 record: ` +
          `${errors.slice(0, 3).join('; ')}${errors.length > 3 ? ` (and ${errors.length - 3} more)` : ''}`,
      );
    records.push(value as BenchRecord);
  });
  if (!records.length) throw new HlmError(`${file}: no records`);
  return records;
}

/** Comma-separated JSON-lines files, one run each. */
export function readRuns(list: string): BenchRecord[][] {
  const files = list.split(',').map((f) => f.trim());
  if (files.some((f) => !f)) throw new HlmError(`an empty file name in the list "${list}"`);
  return files.map(readRecords);
}

/** How one test's throughput spread over several runs (those where it ran without an error). */
export interface Spread {
  runs: number;
  min: number;
  max: number;
}

/**
 * One record per test over several runs: the record of the run with the median throughput (of an even
 * count, the lower middle one, so that each figure is one that was measured). A test that failed in any
 * run keeps its first failed record, so that a comparison cannot hide the failure. Tests come in the order
 * they first appear; `spread` holds each test's range where more than one run measured it.
 */
export function medianRuns(runs: BenchRecord[][]): { records: BenchRecord[]; spread: Map<string, Spread> } {
  const byTest = new Map<string, BenchRecord[]>();
  for (const run of runs)
    for (const r of run) {
      const key = testKey(r);
      byTest.set(key, [...(byTest.get(key) ?? []), r]);
    }
  const records: BenchRecord[] = [];
  const spread = new Map<string, Spread>();
  for (const [key, rs] of byTest) {
    const failed = rs.find((r) => r.status !== 'ok' || !r.throughput);
    if (failed) {
      records.push(failed);
      continue;
    }
    const sorted = [...rs].sort((a, b) => a.throughput!.value - b.throughput!.value);
    records.push(sorted[(sorted.length - 1) >> 1]);
    if (rs.length > 1)
      spread.set(key, { runs: rs.length, min: sorted[0].throughput!.value, max: sorted.at(-1)!.throughput!.value });
  }
  return { records, spread };
}

/** "10%" or "0.1" → 0.1; 100% never fails (to list ratios against another tool). */
export function parseThreshold(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(text);
  const v = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(v >= 0 && v <= 1))
    throw new HlmError(
      `--threshold: expected a percentage from 0% to 100% such as 10% (or a fraction up to 1), got "${text}"`,
    );
  return v;
}

export interface ComparisonRow {
  suite: string;
  name: string;
  test: string;
  params: string;
  unit: string | null;
  baseline: number | null;
  current: number | null;
  /** current / baseline throughput; null when either is missing. */
  ratio: number | null;
  /** The throughput's range over the runs, where the side had more than one. */
  baselineSpread?: Spread;
  currentSpread?: Spread;
  regressed: boolean;
  note?: string;
}

export interface Comparison {
  threshold: number;
  rows: ComparisonRow[];
  regressions: number;
  /** Current tests the baseline lacks. */
  unmatched: number;
}

export function compare(
  current: BenchRecord[],
  baseline: BenchRecord[],
  threshold: number,
  spread: { current?: Map<string, Spread>; baseline?: Map<string, Spread> } = {},
): Comparison {
  const base = new Map(baseline.map((r) => [testKey(r), r]));
  const rows: ComparisonRow[] = [];
  let unmatched = 0;
  for (const r of current) {
    const b = base.get(testKey(r));
    if (!b) {
      unmatched++;
      continue;
    }
    const row: ComparisonRow = {
      suite: r.suite,
      name: r.name,
      test: r.test,
      params: paramsText(r.params),
      unit: r.throughput?.unit ?? b.throughput?.unit ?? null,
      baseline: b.throughput?.value ?? null,
      current: r.throughput?.value ?? null,
      ratio: null,
      regressed: false,
    };
    const baselineSpread = spread.baseline?.get(testKey(r));
    const currentSpread = spread.current?.get(testKey(r));
    if (baselineSpread) row.baselineSpread = baselineSpread;
    if (currentSpread) row.currentSpread = currentSpread;
    if (r.status !== 'ok' || !r.throughput)
      Object.assign(row, { regressed: b.status === 'ok', note: `error now: ${r.error ?? 'no throughput'}` });
    else if (b.status !== 'ok' || !b.throughput) row.note = 'no baseline throughput';
    else if (b.throughput.unit !== r.throughput.unit)
      row.note = `units differ (${b.throughput.unit} vs ${r.throughput.unit})`;
    else {
      row.ratio = b.throughput.value > 0 ? r.throughput.value / b.throughput.value : null;
      row.regressed = row.ratio !== null && row.ratio < 1 - threshold;
    }
    rows.push(row);
  }
  return { threshold, rows, regressions: rows.filter((r) => r.regressed).length, unmatched };
}

export function comparisonTable(c: Comparison): string {
  const f = (v: number | null) => (v === null ? '—' : v.toFixed(v >= 100 ? 0 : 2));
  // A median over runs shows the runs' range beside it.
  const g = (v: number | null, s?: Spread) => (s ? `${f(v)} (${f(s.min)}–${f(s.max)})` : f(v));
  const lines = [
    '| name | test | params | baseline | current | ratio | |',
    '| --- | --- | --- | ---: | ---: | ---: | --- |',
  ];
  for (const r of c.rows) {
    const verdict = r.regressed ? `REGRESSION (< ${(100 * (1 - c.threshold)).toFixed(0)}%)` : (r.note ?? '');
    lines.push(
      `| ${r.suite}/${r.name} | ${r.test} | ${r.params} | ${g(r.baseline, r.baselineSpread)} | ` +
        `${g(r.current, r.currentSpread)} ${r.unit ?? ''} | ` +
        `${r.ratio === null ? '—' : `${r.ratio.toFixed(3)}x`} | ${verdict} |`,
    );
  }
  lines.push(
    '',
    `${c.rows.length} compared, ${c.regressions} regressed by more than ${(100 * c.threshold).toFixed(0)}%, ` +
      `${c.unmatched} not in the baseline`,
  );
  const runs = (side: 'baseline' | 'current') =>
    Math.max(1, ...c.rows.map((r) => (side === 'baseline' ? r.baselineSpread : r.currentSpread)?.runs ?? 1));
  const [nb, nc] = [runs('baseline'), runs('current')];
  if (nb > 1 || nc > 1)
    lines.push(
      `figures are medians over runs (current ${nc}, baseline ${nb}), each the run with the median throughput, ` +
        'its range in brackets',
    );
  return lines.join('\n') + '\n';
}
