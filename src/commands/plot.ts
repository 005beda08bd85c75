import { Args, Flags } from '@oclif/core';
import { HlmCommand } from '../cli/base.js';
import { METRIC_X, METRIC_Y, type MetricX, type MetricY } from '../report/metrics.js';
import { plotMetrics, type PlotResult } from '../report/plot.js';

export default class Plot extends HlmCommand {
  static override summary = "Overlay runs' training curves from metrics.jsonl in one chart (SVG or PNG).";
  static override description =
    'Reads the metrics.jsonl that hlm pretrain writes (or a run directory holding one) for every run given and ' +
    'draws one labelled line a run: y against step, tokens seen, or wall time (summed over the processes of a ' +
    'resumed run). Series are named after the run directories unless --label names them (one --label a run; runs ' +
    'given the same label share a colour, e.g. the seeds of one objective). Charts are vega-lite, rendered ' +
    'headless; --out ending in .png is rasterized at twice the size.';
  static override examples = [
    '<%= config.bin %> plot runs/ce runs/cwt --out loss.svg',
    '<%= config.bin %> plot runs/ce/metrics.jsonl runs/cwt/metrics.jsonl --x tokens --y val_loss --out val.png',
    '<%= config.bin %> plot runs/a runs/b --label "lr 1e-3" --label "lr 6e-4" --x time --log-y --out lr.svg --json',
  ];
  static override strict = false;
  static override args = {
    runs: Args.string({ required: true, description: 'metrics.jsonl files or run directories (one or more)' }),
  };
  static override flags = {
    out: Flags.string({ required: true, description: 'the chart: a file ending in .svg or .png' }),
    x: Flags.option({ options: Object.keys(METRIC_X) as MetricX[], default: 'step' as const })({
      description: 'x axis: step, tokens seen, or wall time in seconds',
    }),
    y: Flags.option({ options: [...METRIC_Y], default: 'loss' as const })({
      description: 'y axis: a field of the rows (val_* are the evaluation rows)',
    }),
    label: Flags.string({ multiple: true, description: 'a series name, once per run in order' }),
    'log-y': Flags.boolean({ default: false, description: 'log scale on y' }),
    title: Flags.string({ description: 'chart title' }),
  };

  async run(): Promise<PlotResult> {
    const { argv, flags } = await this.parse(Plot);
    const r = await plotMetrics({
      runs: argv as string[],
      out: flags.out,
      x: flags.x as MetricX,
      y: flags.y as MetricY,
      labels: flags.label,
      logY: flags['log-y'],
      title: flags.title,
    });
    this.log(`wrote ${r.out}: ${r.y} against ${r.x}`);
    for (const s of r.series) this.log(`  ${s.name}: ${s.points} points from ${s.file}`);
    return r;
  }
}
