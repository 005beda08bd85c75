// Charts rendered headless by vega: well-formed SVG with one series a name, in the palette's
// colours; bars with error bars only where there is a spread; values a scale cannot show are
// refused; PNGs from resvg show the series' colours.
import { PALETTE, renderSvg, svgToPng, type BarChart, type LineChart } from '../src/report/charts.js';
import { marks, parseSvg, seriesColours } from './helpers/svg.js';
import { countColour, decodePng } from './helpers/pixels.js';

function lines(names: string[], runsEach = 1, n = 30): LineChart {
  return {
    kind: 'line',
    title: 'loss',
    x: { title: 'step' },
    y: { title: 'loss', log: true },
    legend: 'objective',
    series: names.flatMap((name, k) =>
      Array.from({ length: runsEach }, (_, r) => ({
        name,
        run: `${name}-${r}`,
        points: Array.from({ length: n }, (_, i) => ({ x: i + 1, y: 3 + (k + 1) * Math.exp(-i / 10) + 0.01 * r })),
      })),
    ),
  };
}

test('a line chart: one line a run, one colour a series, colours in the order the series come', async () => {
  const svg = await renderSvg(lines(['ce', 'cwt', 'sgd'], 2));
  expect(svg.startsWith('<svg')).toBe(true);
  parseSvg(svg);
  const paths = marks(svg, 'line mark');
  expect(paths.length).toBe(6);
  expect(new Set(paths.map((p) => p.label.run))).toEqual(new Set(['ce-0', 'ce-1', 'cwt-0', 'cwt-1', 'sgd-0', 'sgd-1']));
  expect([...seriesColours(paths, 'objective', 'stroke')]).toEqual([
    ['ce', PALETTE[0]],
    ['cwt', PALETTE[1]],
    ['sgd', PALETTE[2]],
  ]);
  // the legend lists each series once
  expect(svg).toMatch(/aria-label="Symbol legend titled 'objective' for stroke color with 3 values: ce, cwt, sgd"/);
  // same input, same bytes
  expect(await renderSvg(lines(['ce', 'cwt', 'sgd'], 2))).toBe(svg);
});

test('a bar chart: one bar per group and series, error bars only where the spread is positive', async () => {
  const chart: BarChart = {
    kind: 'bar',
    y: { title: 'score' },
    groupTitle: 'task',
    seriesTitle: 'method',
    bars: [
      { group: 'STS-B', series: 'zipfian', mean: 70, std: 2, n: 3 },
      { group: 'STS-B', series: 'uniform', mean: 65, std: 1, n: 3 },
      { group: 'SICK-R', series: 'zipfian', mean: 60, std: 0, n: 3 },
      { group: 'SICK-R', series: 'uniform', mean: 58, n: 1 },
    ],
  };
  const svg = await renderSvg(chart);
  const bars = marks(svg, 'bar');
  expect(bars.map((b) => [b.label.task, b.label.method, b.label.score])).toEqual([
    ['STS-B', 'zipfian', '70'],
    ['STS-B', 'uniform', '65'],
    ['SICK-R', 'zipfian', '60'],
    ['SICK-R', 'uniform', '58'],
  ]);
  expect([...seriesColours(bars, 'method', 'fill')]).toEqual([
    ['zipfian', PALETTE[0]],
    ['uniform', PALETTE[1]],
  ]);
  const errs = marks(svg, 'errorbar');
  expect(errs.length).toBe(2);
  expect(errs.map((e) => e.label.task)).toEqual(['STS-B', 'STS-B']);
});

test('values a chart cannot show are refused', async () => {
  const bad = lines(['ce']);
  bad.series[0].points[3].y = 0;
  await expect(renderSvg(bad)).rejects.toThrow(/series ce y: 0 cannot go on a log scale/);
  const nan = lines(['ce']);
  nan.series[0].points[1].x = NaN;
  await expect(renderSvg(nan)).rejects.toThrow(/series ce x: NaN is not a finite number/);
  await expect(renderSvg({ ...lines([]), series: [] })).rejects.toThrow(/no series/);
  await expect(
    renderSvg({ kind: 'bar', y: { title: 's' }, groupTitle: 't', seriesTitle: 'm', bars: [] }),
  ).rejects.toThrow(/no bars/);
});

test('PNG: the chart rasterized at twice its size, the series in their colours', async () => {
  const svg = await renderSvg(lines(['ce', 'cwt'], 1));
  const width = Number(/width="(\d+)"/.exec(svg)?.[1]);
  const img = decodePng(svgToPng(svg));
  expect(img.width).toBe(2 * width);
  for (const c of [PALETTE[0], PALETTE[1]]) {
    const n = countColour(img, c);
    if (!(n > 500)) throw new Error(`${c}: ${n} pixels`);
  }
  expect(countColour(img, PALETTE[2])).toBe(0);
});
