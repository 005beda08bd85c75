// Charts as vega-lite specifications, rendered headless to SVG by vega's own SVG renderer (no
// browser, no canvas: vega estimates text widths) and to PNG by resvg (a Rust SVG renderer shipped
// as an npm optional dependency for each platform, so nothing is downloaded or compiled at install
// time). Colours come from one fixed palette, assigned to series names in the order given, so the
// same objective or method has the same colour in every chart of a report.
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Tableau 10, vega's default categorical scheme, spelled out so that tests can look for the colours. */
export const PALETTE = [
  '#4c78a8',
  '#f58518',
  '#e45756',
  '#72b7b2',
  '#54a24b',
  '#eeca3b',
  '#b279a2',
  '#ff9da6',
  '#9d755d',
  '#bab0ac',
] as const;

export interface Axis {
  title: string;
  /** A log scale (every value must be positive). */
  log?: boolean;
  /** A d3-format string for the tick labels, e.g. '~s' for 40k. */
  format?: string;
}

export interface Point {
  x: number;
  y: number;
}

/** One labelled curve; several runs under one name (seeds) are drawn as separate lines in one colour. */
export interface LineSeries {
  /** The legend label (an objective, a method, a run). */
  name: string;
  /** Which line within the series the points belong to (a seed); defaults to one line for the series. */
  run?: string;
  points: Point[];
}

export interface LineChart {
  kind: 'line';
  title?: string;
  x: Axis;
  y: Axis;
  series: LineSeries[];
  /** Legend title (default: none). */
  legend?: string;
  width?: number;
  height?: number;
}

/** One bar: a mean over seeds and its standard deviation (drawn as an error bar when given). */
export interface Bar {
  /** The category on the x axis (a task, a data set, a measurement). */
  group: string;
  /** The colour within the category (an objective, a method). */
  series: string;
  mean: number;
  std?: number;
  /** How many values the mean is over (seeds). */
  n?: number;
}

export interface BarChart {
  kind: 'bar';
  title?: string;
  y: Axis;
  /** Title of the category axis. */
  groupTitle: string;
  /** Legend title. */
  seriesTitle: string;
  bars: Bar[];
  width?: number;
  height?: number;
}

export type Chart = LineChart | BarChart;

/** Series names in first-seen order; they take PALETTE's colours in that order (cycling past ten). */
export function seriesColours(names: readonly string[]): { domain: string[]; range: string[] } {
  const domain = [...new Set(names)];
  return { domain, range: domain.map((_, i) => PALETTE[i % PALETTE.length]) };
}

const CONFIG = {
  font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif',
  background: 'white',
  view: { stroke: '#ddd' },
} as const;

function checkFinite(what: string, values: readonly number[], log: boolean | undefined): void {
  for (const v of values) {
    if (!Number.isFinite(v)) throw new RangeError(`${what}: ${v} is not a finite number`);
    if (log && !(v > 0)) throw new RangeError(`${what}: ${v} cannot go on a log scale`);
  }
}

/** What every chart's specification starts with: size, title, fonts, the inline data. */
function frame(c: { title?: string; width?: number; height?: number }, values: object[]) {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    ...(c.title ? { title: c.title } : {}),
    width: c.width ?? 520,
    height: c.height ?? 300,
    config: CONFIG,
    data: { values },
  };
}

function lineSpec(c: LineChart): TopLevelSpec {
  if (c.series.length === 0) throw new RangeError(`line chart ${c.title ?? ''}: no series`);
  const values: { series: string; run: string; x: number; y: number; i: number }[] = [];
  for (const s of c.series) {
    if (s.points.length === 0) throw new RangeError(`line chart ${c.title ?? ''}: series ${s.name} has no points`);
    checkFinite(
      `series ${s.name} x`,
      s.points.map((p) => p.x),
      c.x.log,
    );
    checkFinite(
      `series ${s.name} y`,
      s.points.map((p) => p.y),
      c.y.log,
    );
    s.points.forEach((p, i) => values.push({ series: s.name, run: s.run ?? s.name, x: p.x, y: p.y, i }));
  }
  // a log scale spans the data, not the enclosing powers of ten
  const scale = (a: Axis) => (a.log ? { type: 'log' as const, nice: false } : { zero: false });
  const axis = (a: Axis) => (a.format ? { format: a.format } : {});
  return {
    ...frame(c, values),
    mark: { type: 'line', strokeWidth: 2, clip: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: c.x.title, scale: scale(c.x), axis: axis(c.x) },
      y: { field: 'y', type: 'quantitative', title: c.y.title, scale: scale(c.y), axis: axis(c.y) },
      color: {
        field: 'series',
        type: 'nominal',
        title: c.legend ?? null,
        scale: seriesColours(c.series.map((s) => s.name)),
      },
      detail: { field: 'run', type: 'nominal' },
      order: { field: 'i', type: 'quantitative' },
    },
  };
}

function barSpec(c: BarChart): TopLevelSpec {
  if (c.bars.length === 0) throw new RangeError(`bar chart ${c.title ?? ''}: no bars`);
  const values = c.bars.map((b) => {
    checkFinite(`bar ${b.group}/${b.series}`, [b.mean, ...(b.std === undefined ? [] : [b.std])], c.y.log);
    const std = b.std ?? 0;
    return { ...b, std, lo: b.mean - std, hi: b.mean + std, n: b.n ?? 1 };
  });
  const x = { field: 'group', type: 'nominal' as const, title: c.groupTitle, sort: null, axis: { labelAngle: 0 } };
  const xOffset = { field: 'series', type: 'nominal' as const, sort: null };
  return {
    ...frame(c, values),
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x,
          xOffset,
          y: {
            field: 'mean',
            type: 'quantitative',
            title: c.y.title,
            ...(c.y.log ? { scale: { type: 'log' } } : {}),
            ...(c.y.format ? { axis: { format: c.y.format } } : {}),
          },
          color: {
            field: 'series',
            type: 'nominal',
            title: c.seriesTitle,
            scale: seriesColours(c.bars.map((b) => b.series)),
          },
        },
      },
      {
        // error bars only where there is a spread to show
        transform: [{ filter: 'datum.std > 0' }],
        mark: { type: 'errorbar', ticks: true, color: '#222' },
        encoding: {
          x,
          xOffset,
          y: { field: 'lo', type: 'quantitative', title: c.y.title },
          y2: { field: 'hi' },
        },
      },
    ],
  };
}

/** The vega-lite specification of a chart (also what report.html could hand to vega-embed). */
export function chartSpec(chart: Chart): TopLevelSpec {
  return chart.kind === 'line' ? lineSpec(chart) : barSpec(chart);
}

/** Renders any vega-lite specification to an SVG document, headless. Inline data only: nothing is fetched. */
export async function renderSpecSvg(spec: TopLevelSpec): Promise<string> {
  const runtime = vega.parse(compile(spec).spec);
  const loader = vega.loader();
  loader.load = () => Promise.reject(new Error('charts render inline data only; nothing is loaded'));
  const view = new vega.View(runtime, { renderer: 'none', loader });
  // clip-path ids count from 1 in every document: same chart, same bytes (vega exports this; its typings omit it)
  (vega as unknown as { resetSVGDefIds(): void }).resetSVGDefIds();
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A chart as an SVG document. */
export async function renderSvg(chart: Chart): Promise<string> {
  return renderSpecSvg(chartSpec(chart));
}

/** An SVG document as PNG, `scale` times its size, on white, with the system's fonts. */
export function svgToPng(svg: string, scale = 2): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
