// The `--task all` table: one row per task with its GLUE metrics (×100, mean ± std over seeds),
// the majority-class baseline beside it, and the GLUE average.
import { TASKS } from './data.js';
import type { GlueTaskResult } from './run.js';

const pct = (x: number) => (100 * x).toFixed(1);

export function glueTable(results: readonly GlueTaskResult[], average: number | null): string {
  const rows = [['task', 'metric', 'dev (mean ± std)', 'majority', 'best epochs', 'seeds', 'time (s)']];
  for (const r of results) {
    if (!r.summary) continue;
    const metrics = TASKS[r.task].metrics;
    rows.push([
      r.title,
      metrics.join('/'),
      metrics.map((m) => `${pct(r.summary!.metrics[m]!.mean)} ± ${pct(r.summary!.metrics[m]!.std)}`).join(' / '),
      r.majority ? metrics.map((m) => pct(r.majority!.metrics[m]!)).join(' / ') : '',
      r.seeds.map((s) => s.bestEpoch).join(','),
      String(r.seeds.length),
      r.seconds.toFixed(0),
    ]);
  }
  rows.push(['GLUE average', '', average === null ? '' : pct(average), '', '', '', '']);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => `| ${row.map((v, c) => v.padEnd(widths[c])).join(' | ')} |`;
  return [line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}
