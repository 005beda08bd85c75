// `hlm plot`: the curves of any runs' metrics.jsonl overlaid in one chart, one labelled series a
// run, written as SVG or PNG.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, extname, relative, resolve } from 'node:path';
import { HlmError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { checkOutputFile } from '../util/output-check.js';
import { renderSvg, svgToPng, type LineChart } from './charts.js';
import {
  METRIC_X,
  METRIC_Y,
  metricCurve,
  readMetricsFile,
  resolveMetricsFile,
  runName,
  type MetricX,
  type MetricY,
} from './metrics.js';

export interface PlotOptions {
  /** metrics.jsonl files or run directories holding one. */
  runs: readonly string[];
  /** Where the chart goes: .svg or .png. */
  out: string;
  x: MetricX;
  y: MetricY;
  /** One label a run, in order (default: the run directory's name). */
  labels?: readonly string[];
  logY?: boolean;
  title?: string;
}

export interface PlotResult {
  out: string;
  format: 'svg' | 'png';
  x: MetricX;
  y: MetricY;
  series: { name: string; file: string; points: number }[];
}

const AXIS_TITLES: Record<MetricX | MetricY, string> = {
  step: 'step',
  tokens: 'tokens',
  time: 'wall time (s)',
  loss: 'training loss',
  val_loss: 'validation loss',
  val_ce: 'validation cross-entropy',
  grad_norm: 'gradient norm',
  lr: 'learning rate',
};

/** Run names, made unique by their paths where two runs share a directory name. */
function uniqueNames(files: readonly string[]): string[] {
  const names = files.map(runName);
  return names.map((n, i) =>
    names.indexOf(n) === names.lastIndexOf(n) ? n : relative(process.cwd(), files[i]).replace(/\/metrics\.jsonl$/, ''),
  );
}

/** Checks the options, reads every run, renders and writes the chart atomically. */
export async function plotMetrics(o: PlotOptions): Promise<PlotResult> {
  if (o.runs.length === 0) throw new HlmError('no runs to plot: give metrics.jsonl files or run directories');
  if (!(o.x in METRIC_X)) throw new HlmError(`--x ${o.x}: one of ${Object.keys(METRIC_X).join(', ')}`);
  if (!(METRIC_Y as readonly string[]).includes(o.y)) throw new HlmError(`--y ${o.y}: one of ${METRIC_Y.join(', ')}`);
  const ext = extname(o.out).toLowerCase();
  if (ext !== '.svg' && ext !== '.png') throw new HlmError(`--out ${o.out}: the file must end in .svg or .png`);
  const out = resolve(o.out);
  if (existsSync(out) && !statSync(out).isFile()) throw new HlmError(`--out ${o.out} exists and is not a file`);
  checkOutputFile(out, 'chart', { createsParents: true });
  if (o.labels && o.labels.length > 0 && o.labels.length !== o.runs.length)
    throw new HlmError(`--label given ${o.labels.length} times for ${o.runs.length} runs: give one label a run`);
  const files = o.runs.map(resolveMetricsFile);
  const names = o.labels && o.labels.length > 0 ? [...o.labels] : uniqueNames(files);
  const series = files.map((file, i) => {
    const points = metricCurve(readMetricsFile(file), o.x, o.y, file);
    if (o.logY) {
      const bad = points.find((p) => !(p.y > 0));
      if (bad) throw new HlmError(`${file}: --log-y, but "${o.y}" is ${bad.y} at ${o.x} ${bad.x}`);
    }
    return { name: names[i], run: String(i), points };
  });
  const chart: LineChart = {
    kind: 'line',
    ...(o.title ? { title: o.title } : {}),
    x: { title: AXIS_TITLES[o.x], ...(o.x === 'tokens' ? { format: '~s' } : {}) },
    y: { title: AXIS_TITLES[o.y], log: o.logY },
    legend: 'run',
    series,
  };
  const svg = await renderSvg(chart);
  mkdirSync(dirname(out), { recursive: true });
  writeFileAtomic(out, ext === '.svg' ? svg : svgToPng(svg), 'chart');
  return {
    out,
    format: ext === '.svg' ? 'svg' : 'png',
    x: o.x,
    y: o.y,
    series: series.map((s, i) => ({ name: s.name, file: files[i], points: s.points.length })),
  };
}
