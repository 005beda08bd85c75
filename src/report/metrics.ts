// Reading hlm's metrics.jsonl back as curves. `hlm pretrain` appends one JSON object a line: step
// rows {step, loss, lr, grad_norm, tokens, elapsed_s} and evaluation rows {step, val_loss, [val_ce],
// tokens, elapsed_s}. elapsed_s restarts from zero when a run is resumed, so wall time is summed
// over the run's processes.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { HlmError } from '../errors.js';
import type { Point } from './charts.js';

/** What --x can be, and the field behind it. */
export const METRIC_X = { step: 'step', tokens: 'tokens', time: 'elapsed_s' } as const;
export type MetricX = keyof typeof METRIC_X;

/** What --y can be: fields of the step rows and of the evaluation rows. */
export const METRIC_Y = ['loss', 'val_loss', 'val_ce', 'grad_norm', 'lr'] as const;
export type MetricY = (typeof METRIC_Y)[number];

const PLOTTED = new Set<string>([...Object.values(METRIC_X), ...METRIC_Y]);

/** One row of metrics.jsonl: its numeric fields and the line it came from (1-based). */
export interface MetricsRow {
  line: number;
  values: Record<string, number>;
}

/** A metrics.jsonl path, or a run directory holding one. */
export function resolveMetricsFile(path: string): string {
  if (!existsSync(path)) throw new HlmError(`${path}: no such file or directory`);
  if (statSync(path).isDirectory()) {
    const file = join(path, 'metrics.jsonl');
    if (!existsSync(file)) throw new HlmError(`${path}: a directory without metrics.jsonl (give a run directory)`);
    return file;
  }
  return path;
}

/** The run's name: its directory for <run>/metrics.jsonl, else the file's name without extension. */
export function runName(file: string): string {
  return basename(file) === 'metrics.jsonl' ? basename(dirname(file)) : basename(file, extname(file));
}

/** Every row of a metrics.jsonl; a line that is not a JSON object of numbers is an HlmError naming file:line. */
export function readMetricsFile(file: string): MetricsRow[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new HlmError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const rows: MetricsRow[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch (err) {
      throw new HlmError(`${file}:${line}: not JSON (${(err as Error).message})`);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
      throw new HlmError(`${file}:${line}: not a JSON object`);
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(doc)) {
      if (typeof v === 'number') values[k] = v;
      else if (PLOTTED.has(k)) throw new HlmError(`${file}:${line}: "${k}" is ${JSON.stringify(v)}, not a number`);
    }
    rows.push({ line, values });
  });
  return rows;
}

/**
 * The (x, y) points of the rows that have y, in file order. x = time sums elapsed_s over the
 * processes of a resumed run (a row whose elapsed_s is below the previous row's starts a new one).
 */
export function metricCurve(rows: readonly MetricsRow[], x: MetricX, y: MetricY, file: string): Point[] {
  const xField = METRIC_X[x];
  const points: Point[] = [];
  let offset = 0;
  let last = -Infinity;
  for (const { line, values } of rows) {
    let xv = values[xField];
    if (x === 'time' && xv !== undefined) {
      if (xv < last) offset += last;
      last = xv;
      xv += offset;
    }
    const yv = values[y];
    if (yv === undefined) continue;
    if (xv === undefined) throw new HlmError(`${file}:${line}: a row with "${y}" has no "${xField}" for --x ${x}`);
    points.push({ x: xv, y: yv });
  }
  if (points.length === 0) {
    const fields = [...new Set(rows.flatMap((r) => Object.keys(r.values)))];
    throw new HlmError(
      `${file}: no row has "${y}"` + (fields.length ? ` (its rows have ${fields.join(', ')})` : ' (no rows)'),
    );
  }
  return points;
}
