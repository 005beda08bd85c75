// An experiment's report, derived from its result alone: report.md (tables of mean ± standard
// deviation over seeds, the budget planned and used, the tokens each variant trained on, the
// hardware; the plots linked), report.html (the same, self-contained: the SVGs inline, no script,
// nothing fetched) and every plot as plots/<name>.svg. Everything is rendered before anything is
// written, and each file is written atomically (a temporary file, then a rename).
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { renderSvg, type Bar, type Chart, type LineSeries } from './charts.js';
import {
  groupBy,
  meanStd,
  sectionOf,
  tokensPerVariant,
  type ExperimentResult,
  type MeanStd,
  type TrainingRun,
} from './experiment.js';
import { assertExperimentResult } from './result-schema.js';

export interface Table {
  caption?: string;
  columns: string[];
  rows: string[][];
  /** Columns whose cells are numbers (right-aligned); default: all but the first. */
  numeric?: boolean[];
}

export interface Figure {
  /** The file stem: plots/<name>.svg; letters, digits, '-' and '_' only. */
  name: string;
  caption: string;
  chart: Chart;
}

export interface Section {
  title: string;
  paragraphs?: string[];
  tables?: Table[];
  figures?: Figure[];
}

export interface ReportDoc {
  title: string;
  /** One line under the title. */
  subtitle?: string;
  sections: Section[];
}

export const PLOT_DIR = 'plots';

/** Decimals that give about four significant digits for `x` (0..6). */
function decimalsFor(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return 2;
  return Math.min(6, Math.max(0, 3 - Math.floor(Math.log10(Math.abs(x)))));
}

/** A number with about four significant digits; thousands separated above 10,000. */
export function formatNumber(x: number): string {
  if (Math.abs(x) >= 10_000) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(decimalsFor(x));
}

/** "mean ± std (n)" with the std to the mean's decimals; a single value is printed alone. */
export function formatMeanStd(s: MeanStd, scale = 1): string {
  const mean = s.mean * scale;
  if (s.n === 1) return formatNumber(mean);
  const d = Math.abs(mean) >= 10_000 ? 0 : decimalsFor(mean);
  const m = d === 0 ? Math.round(mean).toLocaleString('en-US') : mean.toFixed(d);
  return `${m} ± ${(s.std * scale).toFixed(d)} (${s.n})`;
}

function formatSeconds(s: number): string {
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}

const MIB = 2 ** 20;

/** A name usable as a file stem and an HTML id. */
export function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
}

function summarySection(r: ExperimentResult): Section {
  const { planned, used } = r.budget;
  const cell = (v: number | undefined, f: (x: number) => string) => (v === undefined ? '—' : f(v));
  const int = (x: number) => Math.round(x).toLocaleString('en-US');
  const budget: Table = {
    caption: r.budget.scope ? `Budget (${r.budget.scope})` : 'Budget',
    columns: ['', 'planned', 'used'],
    rows: [
      ['wall time', cell(planned.seconds, formatSeconds), cell(used.seconds, formatSeconds)],
      ['tokens', cell(planned.tokens, int), cell(used.tokens, int)],
      ['steps', cell(planned.steps, int), cell(used.steps, int)],
    ],
  };
  const tokens = tokensPerVariant(r);
  const runsOf = groupBy(r.runs, (x) => x.variant);
  const seen: Table = {
    caption: `Tokens seen per ${r.variantTitle} (all seeds)`,
    columns: [r.variantTitle, 'runs', 'tokens'],
    rows: Object.entries(tokens).map(([v, t]) => [v, String(runsOf.get(v)?.length ?? 0), int(t)]),
  };
  const { env, gpu } = r.hardware;
  const hardware: Table = {
    caption: 'Hardware',
    columns: ['', ''],
    numeric: [false, false],
    rows: [
      ['GPU', gpu ? `${gpu.device} (${gpu.vendor}, ${gpu.backend}${gpu.kind ? `, ${gpu.kind}` : ''})` : 'none used'],
      ['CPU', `${env.cpu} × ${env.cores}`],
      ['memory', `${(env.memory_bytes / 2 ** 30).toFixed(1)} GiB`],
      ['OS', `${env.os} ${env.arch}`],
      ['runtime', env.runtime],
      ['hlm', `${r.build.version}${r.build.commit ? ` (${r.build.commit})` : ''}`],
    ],
  };
  const load = (l: number[] | undefined) => (l?.length ? l[0].toFixed(2) : '—');
  const phases: Table = {
    caption: 'Phases (load: the 1-minute load average when the phase started and ended)',
    columns: ['phase', 'status', 'time', 'load', 'finished'],
    numeric: [false, false, true, true, false],
    rows: r.phases.map((p) => [
      p.name,
      p.status + (p.error ? `: ${p.error}` : ''),
      p.seconds === undefined ? '—' : formatSeconds(p.seconds),
      p.loadStart || p.loadEnd ? `${load(p.loadStart)} → ${load(p.loadEnd)}` : '—',
      p.finished ?? '—',
    ]),
  };
  const done = r.phases.filter((p) => p.status === 'done').length;
  return {
    title: 'Summary',
    paragraphs: [
      `${r.experiment}: ${done} of ${r.phases.length} phases done; started ${r.created}, last written ${r.updated}.`,
    ],
    tables: [budget, ...(r.runs.length ? [seen] : []), phases, hardware],
  };
}

function lineFigure(
  name: string,
  caption: string,
  runs: readonly TrainingRun[],
  x: 'elapsed_s' | 'tokens',
  y: 'loss' | 'val_loss',
  variantTitle: string,
): Figure | null {
  const series: LineSeries[] = [];
  for (const run of runs) {
    const points = run.curve.flatMap((p) => (p[y] === undefined ? [] : [{ x: p[x], y: p[y] as number }]));
    if (points.length) series.push({ name: run.variant, run: run.id, points });
  }
  if (!series.length) return null;
  const logY = series.every((s) => s.points.every((p) => p.y > 0));
  return {
    name,
    caption,
    chart: {
      kind: 'line',
      x: x === 'tokens' ? { title: 'tokens', format: '~s' } : { title: 'wall time (s)' },
      y: { title: y === 'loss' ? 'training loss' : 'validation loss', log: logY },
      legend: variantTitle,
      series,
    },
  };
}

function trainingSection(r: ExperimentResult, phase: string, runs: TrainingRun[]): Section {
  const byVariant = groupBy(runs, (x) => x.variant);
  const stat = (list: TrainingRun[], f: (t: TrainingRun) => number | undefined, scale = 1) => {
    const values = list.map(f).filter((v): v is number => v !== undefined);
    return values.length ? formatMeanStd(meanStd(values), scale) : '—';
  };
  const table: Table = {
    caption: `Training runs: mean ± sample standard deviation over seeds (n)`,
    columns: [r.variantTitle, 'seeds', 'tokens', 'wall time (s)', 'tokens/s', 'peak GPU memory (MiB)', 'final loss'],
    rows: [...byVariant].map(([v, list]) => [
      v,
      list.map((x) => x.seed).join(', '),
      stat(list, (x) => x.tokens),
      stat(list, (x) => x.seconds),
      stat(list, (x) => x.tokensPerSecond),
      stat(list, (x) => x.peakMemoryBytes, 1 / MIB),
      stat(list, (x) => x.finalLoss),
    ]),
  };
  if (runs.some((x) => x.valLoss !== undefined)) {
    table.columns.push('validation loss');
    [...byVariant.values()].forEach((list, i) => table.rows[i].push(stat(list, (x) => x.valLoss)));
  }
  const s = slug(phase);
  const bars = (f: (t: TrainingRun) => number, group: string): Bar[] =>
    [...byVariant].map(([v, list]) => ({ group, series: v, ...meanStd(list.map(f)) }));
  const figures = [
    lineFigure(`${s}-loss-vs-time`, 'Training loss against wall time', runs, 'elapsed_s', 'loss', r.variantTitle),
    lineFigure(`${s}-loss-vs-tokens`, 'Training loss against tokens seen', runs, 'tokens', 'loss', r.variantTitle),
    lineFigure(`${s}-val-loss-vs-tokens`, 'Validation loss against tokens', runs, 'tokens', 'val_loss', r.variantTitle),
  ].filter((f): f is Figure => f !== null);
  figures.push(
    {
      name: `${s}-throughput`,
      caption: 'Training throughput (mean ± standard deviation over seeds)',
      chart: {
        kind: 'bar',
        y: { title: 'tokens/s' },
        groupTitle: '',
        seriesTitle: r.variantTitle,
        bars: bars((x) => x.tokensPerSecond, 'throughput'),
        width: 260,
      },
    },
    {
      name: `${s}-peak-memory`,
      caption: 'Peak GPU memory (mean ± standard deviation over seeds)',
      chart: {
        kind: 'bar',
        y: { title: 'MiB' },
        groupTitle: '',
        seriesTitle: r.variantTitle,
        bars: bars((x) => x.peakMemoryBytes / MIB, 'peak GPU memory'),
        width: 260,
      },
    },
  );
  return { title: `Training: ${phase}`, tables: [table], figures };
}

function scoresSection(r: ExperimentResult, phase: string, scores: ExperimentResult['scores']): Section {
  const variants = [...new Set(scores.map((x) => x.variant))];
  const metricsOf = groupBy(scores, (x) => x.task);
  const label = (task: string, metric: string) =>
    new Set(metricsOf.get(task)?.map((x) => x.metric)).size > 1 || new Set(scores.map((x) => x.metric)).size > 1
      ? `${task} ${metric}`
      : task;
  const rows = groupBy(scores, (x) => `${x.task}\u0000${x.metric}`);
  const table: Table = {
    caption: `${phase}: mean ± sample standard deviation over seeds (n)`,
    columns: ['task', 'metric', ...variants],
    numeric: [false, false, ...variants.map(() => true)],
    rows: [...rows.values()].map((list) => {
      const byVariant = groupBy(list, (x) => x.variant);
      return [
        list[0].task,
        list[0].metric,
        ...variants.map((v) => {
          const values = byVariant.get(v)?.map((x) => x.value);
          return values ? formatMeanStd(meanStd(values)) : '—';
        }),
      ];
    }),
  };
  const bars: Bar[] = [...rows.values()].flatMap((list) =>
    [...groupBy(list, (x) => x.variant)].map(([v, vs]) => ({
      group: label(list[0].task, list[0].metric),
      series: v,
      ...meanStd(vs.map((x) => x.value)),
    })),
  );
  const figure: Figure = {
    name: `${slug(phase)}-scores`,
    caption: `${phase}: scores per ${r.variantTitle} and task, mean ± standard deviation over seeds`,
    chart: {
      kind: 'bar',
      y: { title: 'score' },
      groupTitle: 'task',
      seriesTitle: r.variantTitle,
      bars,
      width: Math.max(300, 60 * bars.length),
    },
  };
  return { title: `Scores: ${phase}`, tables: [table], figures: [figure] };
}

/** The standard report of an experiment result: summary, training per section with runs, scores per section. */
export function experimentReport(r: ExperimentResult): ReportDoc {
  const sections = [summarySection(r)];
  for (const [section, runs] of groupBy(r.runs, sectionOf)) sections.push(trainingSection(r, section, runs));
  for (const [section, scores] of groupBy(r.scores, sectionOf)) sections.push(scoresSection(r, section, scores));
  if (r.notes.length) sections.push({ title: 'Notes', paragraphs: r.notes });
  return { title: r.title, subtitle: `hlm experiment ${r.experiment}`, sections };
}

function markdownTable(t: Table): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const numeric = t.numeric ?? t.columns.map((_, i) => i > 0);
  const lines = [
    `| ${t.columns.map(esc).join(' | ')} |`,
    `|${numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ];
  return (t.caption ? `${t.caption}\n\n` : '') + lines.join('\n');
}

/** report.md: the tables, and the plots as links to plots/<name>.svg. */
export function renderMarkdown(doc: ReportDoc): string {
  const parts = [`# ${doc.title}`];
  if (doc.subtitle) parts.push(doc.subtitle);
  for (const s of doc.sections) {
    parts.push(`## ${s.title}`);
    for (const p of s.paragraphs ?? []) parts.push(p);
    for (const t of s.tables ?? []) parts.push(markdownTable(t));
    for (const f of s.figures ?? []) parts.push(`![${f.caption}](${PLOT_DIR}/${f.name}.svg)`);
  }
  return parts.join('\n\n') + '\n';
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** An SVG made safe to inline beside others: its ids (vega's clip paths) prefixed with the figure's name. */
export function inlineSvg(svg: string, prefix: string): string {
  return svg
    .replace(/^<\?xml[^>]*>\s*/, '')
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

const STYLE = `
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; margin: 2em auto; max-width: 1100px;
  padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } .subtitle { color: #666; margin-top: 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; } caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; } th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; } figcaption { color: #444; margin-top: 0.3em; }
figure svg { max-width: 100%; height: auto; }
`;

/** report.html, self-contained: `svgs` maps each figure's name to its SVG document. */
export function renderHtml(doc: ReportDoc, svgs: ReadonlyMap<string, string>): string {
  const out = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escapeHtml(doc.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<h1>${escapeHtml(doc.title)}</h1>`,
  ];
  if (doc.subtitle) out.push(`<p class="subtitle">${escapeHtml(doc.subtitle)}</p>`);
  for (const s of doc.sections) {
    out.push(`<section id="${slug(s.title)}">`, `<h2>${escapeHtml(s.title)}</h2>`);
    for (const p of s.paragraphs ?? []) out.push(`<p>${escapeHtml(p)}</p>`);
    for (const t of s.tables ?? []) {
      const numeric = t.numeric ?? t.columns.map((_, i) => i > 0);
      out.push('<table>');
      if (t.caption) out.push(`<caption>${escapeHtml(t.caption)}</caption>`);
      out.push(`<tr>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>`);
      for (const r of t.rows)
        out.push(
          `<tr>${r.map((c, i) => `<td${numeric[i] ? ' class="num"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`,
        );
      out.push('</table>');
    }
    for (const f of s.figures ?? []) {
      const svg = svgs.get(f.name);
      if (svg === undefined) throw new Error(`figure ${f.name} was not rendered`);
      out.push(
        `<figure id="fig-${f.name}">`,
        inlineSvg(svg, f.name),
        `<figcaption>${escapeHtml(f.caption)}</figcaption>`,
        '</figure>',
      );
    }
    out.push('</section>');
  }
  out.push('</body>', '</html>');
  return out.join('\n') + '\n';
}

/** Renders every figure of a report to SVG; names must be unique file stems. */
export async function renderFigures(doc: ReportDoc): Promise<Map<string, string>> {
  const svgs = new Map<string, string>();
  for (const s of doc.sections)
    for (const f of s.figures ?? []) {
      if (!/^[A-Za-z0-9_-]+$/.test(f.name)) throw new Error(`figure name ${JSON.stringify(f.name)} is not a file stem`);
      if (svgs.has(f.name)) throw new Error(`figure name ${f.name} repeats`);
      svgs.set(f.name, await renderSvg(f.chart));
    }
  return svgs;
}

export interface WrittenReport {
  /** What was rendered. */
  doc: ReportDoc;
  out: string;
  result: string;
  markdown: string;
  html: string;
  /** Each plot's file and the series it draws. */
  plots: { name: string; file: string; series: string[] }[];
}

/** Checks a result against hlm.experiment/1 and writes it as <out>/result.json, atomically. */
export function writeResult(out: string, result: ExperimentResult): string {
  assertExperimentResult(result, 'the experiment result');
  const dir = resolve(out);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'result.json');
  writeFileAtomic(file, JSON.stringify(result, null, 1) + '\n', 'experiment result');
  return file;
}

/**
 * Writes <out>/result.json, plots/<name>.svg, report.md and report.html. `extraSections` (an
 * experiment's own tables and figures) follow the standard ones. Plots of an earlier report that
 * this one no longer has are removed.
 */
export async function writeReport(
  out: string,
  result: ExperimentResult,
  options: { extraSections?: Section[] } = {},
): Promise<WrittenReport> {
  assertExperimentResult(result, 'the experiment result');
  const doc = experimentReport(result);
  doc.sections.push(...(options.extraSections ?? []));
  const svgs = await renderFigures(doc);
  const markdown = renderMarkdown(doc);
  const html = renderHtml(doc, svgs);
  const dir = resolve(out);
  const resultFile = writeResult(dir, result);
  const plotDir = join(dir, PLOT_DIR);
  mkdirSync(plotDir, { recursive: true });
  const plots: WrittenReport['plots'] = [];
  for (const s of doc.sections)
    for (const f of s.figures ?? []) {
      const file = join(plotDir, `${f.name}.svg`);
      writeFileAtomic(file, svgs.get(f.name) as string, 'plot');
      const names = f.chart.kind === 'line' ? f.chart.series.map((x) => x.name) : f.chart.bars.map((b) => b.series);
      plots.push({ name: f.name, file, series: [...new Set(names)] });
    }
  if (existsSync(plotDir))
    for (const name of readdirSync(plotDir))
      if (name.endsWith('.svg') && !svgs.has(name.slice(0, -4))) rmSync(join(plotDir, name), { force: true });
  const mdFile = join(dir, 'report.md');
  const htmlFile = join(dir, 'report.html');
  writeFileAtomic(mdFile, markdown, 'report');
  writeFileAtomic(htmlFile, html, 'report');
  return { doc, out: dir, result: resultFile, markdown: mdFile, html: htmlFile, plots };
}
