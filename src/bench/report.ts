// Output formats of `hlm bench`: JSON lines (the record stream), a JSON array, CSV, and a
// Markdown table like llama-bench's (one row per test).
import type { BenchRecord, Params } from './record.js';

export const FORMATS = ['jsonl', 'json', 'csv', 'md'] as const;
export type Format = (typeof FORMATS)[number];

export function paramsText(p: Params): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

function num(v: number, digits = 3): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e5 || a < 1e-3 ? v.toExponential(2) : String(Number(v.toPrecision(digits)));
}

export function throughputText(r: BenchRecord): string {
  if (r.status !== 'ok' || !r.throughput) return '—';
  const rme = r.latency_ms ? ` ± ${r.latency_ms.rme.toFixed(1)}%` : '';
  return `${r.throughput.value.toFixed(r.throughput.value >= 100 ? 0 : 2)}${rme} ${r.throughput.unit}`;
}

function errorText(r: BenchRecord): string {
  if (r.status === 'error') return `error: ${r.error ?? 'unknown'}`;
  if (!r.check) return '—';
  const v =
    r.check.value === null
      ? 'NaN'
      : r.check.metric === 'loss'
        ? `loss ${num(r.check.value, 4)}`
        : num(r.check.value, 2);
  return `${v}${r.check.ok ? '' : ' FAIL'}${r.check.shape && r.check.shape !== 'same' ? ` (at ${r.check.shape})` : ''}`;
}

const md = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** llama-bench style: a header naming the device and build, then one row per test. */
export function markdown(records: BenchRecord[]): string {
  const first = records[0];
  const lines: string[] = [];
  if (first) {
    const g = first.gpu;
    const b = first.build;
    lines.push(
      `${b.tool} ${b.version}${b.commit ? ` (${b.commit})` : ''} on ${g.backend}: ` +
        `${g.device}${g.vendor ? ` (${g.vendor}${g.architecture ? ` ${g.architecture}` : ''})` : ''}, ` +
        `${first.env.runtime}`,
      '',
    );
  }
  lines.push(
    '| name | test | params | throughput | p50 ms | % peak | error |',
    '| --- | --- | --- | ---: | ---: | ---: | --- |',
  );
  for (const r of records) {
    const p50 = r.latency_ms ? num(r.latency_ms.p50) : '—';
    const peak = r.throughput?.peak_fraction != null ? `${(100 * r.throughput.peak_fraction).toFixed(1)}%` : '—';
    const cells = [`${r.suite}/${r.name}`, r.test, paramsText(r.params), throughputText(r), p50, peak, errorText(r)];
    lines.push(`| ${cells.map(md).join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

const CSV_COLUMNS = [
  'suite',
  'name',
  'test',
  'status',
  'params',
  'unit',
  'throughput',
  'rme_pct',
  'mean_ms',
  'p50_ms',
  'min_ms',
  'max_ms',
  'n',
  'gpu_ms',
  'peak_fraction',
  'flops',
  'bytes',
  'tokens',
  'check_value',
  'check_ok',
  'gpu_peak_bytes',
  'rss_peak_bytes',
  'dispatches',
  'joules',
  'device',
  'error',
] as const;

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csv(records: BenchRecord[]): string {
  const rows = records.map((r) => {
    const row: Record<(typeof CSV_COLUMNS)[number], unknown> = {
      suite: r.suite,
      name: r.name,
      test: r.test,
      status: r.status,
      params: paramsText(r.params),
      unit: r.throughput?.unit,
      throughput: r.throughput?.value,
      rme_pct: r.latency_ms?.rme,
      mean_ms: r.latency_ms?.mean,
      p50_ms: r.latency_ms?.p50,
      min_ms: r.latency_ms?.min,
      max_ms: r.latency_ms?.max,
      n: r.latency_ms?.n,
      gpu_ms: r.gpu_ms?.mean,
      peak_fraction: r.throughput?.peak_fraction,
      flops: r.work.flops,
      bytes: r.work.bytes,
      tokens: r.work.tokens,
      check_value: r.check?.value,
      check_ok: r.check?.ok,
      gpu_peak_bytes: r.memory.gpu_peak_bytes,
      rss_peak_bytes: r.memory.rss_peak_bytes,
      dispatches: r.dispatches,
      joules: r.energy.joules,
      device: r.gpu.device,
      error: r.error,
    };
    return CSV_COLUMNS.map((c) => csvCell(row[c])).join(',');
  });
  return [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
}

/** The whole report in one format (jsonl: one record a line, as streamed). */
export function render(records: BenchRecord[], format: Format): string {
  if (format === 'csv') return csv(records);
  if (format === 'md') return markdown(records);
  return renderJson(records, format);
}

/** jsonl (an item a line) or json (an indented array). */
function renderJson(items: unknown[], format: 'jsonl' | 'json'): string {
  return format === 'jsonl'
    ? items.map((r) => JSON.stringify(r) + '\n').join('')
    : JSON.stringify(items, null, 2) + '\n';
}

export interface ListedCase {
  suite: string;
  name: string;
  test: string;
  params: Params;
}

/** --list: the tests a run would measure. */
export function renderList(cases: ListedCase[], format: Format): string {
  if (format === 'jsonl' || format === 'json') return renderJson(cases, format);
  const rows = cases.map((c) => [c.suite, c.name, c.test, paramsText(c.params)]);
  const lines =
    format === 'csv'
      ? ['suite,name,test,params', ...rows.map((r) => r.map(csvCell).join(','))]
      : [
          '| suite | name | test | params |',
          '| --- | --- | --- | --- |',
          ...rows.map((r) => `| ${r.map(md).join(' | ')} |`),
        ];
  return lines.join('\n') + '\n';
}
