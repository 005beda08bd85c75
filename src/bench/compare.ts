// --compare: current throughput over a baseline's, per test (suite + name + test + params),
// and whether any fell by more than the threshold. The baseline is hlm.bench/1 JSON lines,
// from an earlier `hlm bench` or from bench/torch_bench.py.
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

export function compare(current: BenchRecord[], baseline: BenchRecord[], threshold: number): Comparison {
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
  const lines = [
    '| name | test | params | baseline | current | ratio | |',
    '| --- | --- | --- | ---: | ---: | ---: | --- |',
  ];
  for (const r of c.rows) {
    const verdict = r.regressed ? `REGRESSION (< ${(100 * (1 - c.threshold)).toFixed(0)}%)` : (r.note ?? '');
    lines.push(
      `| ${r.suite}/${r.name} | ${r.test} | ${r.params} | ${f(r.baseline)} | ${f(r.current)} ${r.unit ?? ''} | ` +
        `${r.ratio === null ? '—' : `${r.ratio.toFixed(3)}x`} | ${verdict} |`,
    );
  }
  lines.push(
    '',
    `${c.rows.length} compared, ${c.regressions} regressed by more than ${(100 * c.threshold).toFixed(0)}%, ` +
      `${c.unmatched} not in the baseline`,
  );
  return lines.join('\n') + '\n';
}
