import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { floatFlag } from '../cli/flags.js';
import { HlmError } from '../errors.js';
import { GLUE_TASKS, TASKS, parseGlueTask, findGlueTask, type GlueTask } from '../glue/data.js';
import { glueAverage } from '../glue/metrics.js';
import { POOLINGS } from '../model/classifier.js';
import { fmtScore, runGlueTask, type GlueTaskResult } from '../glue/run.js';
import { glueTable } from '../glue/table.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export interface FinetuneGlueResult {
  tasks: GlueTaskResult[];
  skipped: { task: GlueTask; reason: string }[];
  /** Mean over the fine-tuned tasks of each task's score (mean of its metrics, mean over seeds), as a fraction. */
  average: number | null;
  predictionsFile?: string;
}

function number(name: string, text: string, ok: (x: number) => boolean): number {
  const x = Number(text);
  if (!(text.trim() !== '' && ok(x))) throw new HlmError(`--${name}: invalid value "${text}"`);
  return x;
}

export default class FinetuneGlue extends HlmCommand {
  static override summary = 'Fine-tune a checkpoint on GLUE tasks and report the official dev metrics.';
  static override description =
    'A linear head (score.weight, score.bias) on a pooled hidden state — encoder: mean of the real positions (or ' +
    'the first), ' +
    'decoder: the last real position — trained with the whole network: AdamW, linear warm-up over --warmup-ratio of ' +
    'the steps, ' +
    'then a constant rate. Dev metrics after every epoch; the best epoch of each seed counts, reported as mean ± ' +
    'std over the seeds. ' +
    'Writes <out>/<task>/result.json and the best model as <out>/<task>/checkpoint (usable with --predict).';
  static override examples = [
    '<%= config.bin %> finetune-glue --model runs/pretrain/checkpoint --task sst2 --data ../shared/data/glue ' +
      '--epochs 1',
    '<%= config.bin %> finetune-glue --model ck --task all --data glue_data --seeds 1,2,3 --json',
    '<%= config.bin %> finetune-glue --model runs/glue/sst2/checkpoint --task sst2 --data glue_data --predict ' +
      'glue_data/SST-2/test.tsv > sst2.txt',
  ];
  static override flags = {
    model: Flags.string({
      description: 'checkpoint directory (pretrained, or fine-tuned for this task)',
      required: true,
    }),
    task: Flags.string({ description: `${GLUE_TASKS.join('|')}|all`, required: true }),
    data: Flags.string({ description: 'glue_data directory (<TASK>/train.tsv, dev.tsv, ...)', required: true }),
    epochs: Flags.integer({ default: 10, min: 1 }),
    lr: floatFlag({ exclusiveMin: 0, default: 1e-5, description: 'AdamW learning rate (after warm-up)' }),
    'batch-size': Flags.integer({ default: 32, min: 1 }),
    'max-seq-len': Flags.integer({
      min: 3,
      description: 'tokens per input, separators included (default: min(128, n_positions))',
    }),
    seeds: Flags.string({
      default: '1,2,3',
      description: 'comma-separated seeds (head initialisation and data order)',
    }),
    pooling: Flags.option({ options: POOLINGS, description: 'default: mean for an encoder, last for a decoder' })(),
    'class-balanced': Flags.boolean({
      default: false,
      description: 'weight the cross-entropy by n / (classes · n_class)',
    }),
    'warmup-ratio': floatFlag({ min: 0, max: 1, default: 0.1 }),
    'weight-decay': floatFlag({ min: 0, default: 0 }),
    'grad-clip': floatFlag({ min: 0, default: 1, description: 'global gradient-norm clip (0 = off)' }),
    out: Flags.string({ default: 'runs/glue' }),
    predict: Flags.string({
      description:
        'TSV to label with the best model (GLUE test.tsv layout or train/dev layout): one label or score a line',
    }),
    predictions: Flags.string({ description: 'write --predict output here instead of stdout' }),
    device: deviceFlag,
  };

  async run(): Promise<FinetuneGlueResult> {
    const { flags } = await this.parse(FinetuneGlue);
    const all = flags.task.toLowerCase() === 'all';
    const tasks: GlueTask[] = all ? [...GLUE_TASKS] : [parseGlueTask(flags.task)];
    if (all && flags.predict) throw new HlmError('--predict needs one task, not all');
    const seeds = flags.seeds.split(',').map((s) => number('seeds', s, (x) => Number.isSafeInteger(x) && x >= 0));
    if (new Set(seeds).size !== seeds.length) throw new HlmError(`--seeds: ${flags.seeds} repeats a seed`);
    const common = {
      model: flags.model,
      data: flags.data,
      epochs: flags.epochs,
      seeds,
      out: flags.out,
      pooling: flags.pooling,
      lr: flags.lr,
      batchSize: flags['batch-size'],
      maxSeqLen: flags['max-seq-len'],
      classBalanced: flags['class-balanced'],
      warmupRatio: flags['warmup-ratio'],
      weightDecay: flags['weight-decay'],
      gradClip: flags['grad-clip'],
      predict: flags.predict,
    };
    const skipped: FinetuneGlueResult['skipped'] = [];
    const runnable = tasks.filter((task) => {
      if (!all) return true;
      try {
        findGlueTask(flags.data, task, ['train', ...TASKS[task].evalSplits]);
        return true;
      } catch (e) {
        if (!(e instanceof HlmError)) throw e;
        skipped.push({ task, reason: e.message });
        return false;
      }
    });
    if (all && runnable.length === 0)
      throw new HlmError(
        `no GLUE task in ${flags.data} has its train and dev files: ${skipped.map((s) => s.reason).join('; ')}`,
      );
    const gpu = await this.openGpu(flags.device);
    const results: GlueTaskResult[] = [];
    for (const task of runnable) {
      const r = await runGlueTask(gpu, { ...common, task });
      results.push(r);
      if (r.summary) {
        const metrics = Object.fromEntries(Object.entries(r.summary.metrics).map(([k, v]) => [k, v!.mean]));
        const mean = fmtScore({ task, metrics, score: r.summary.score.mean });
        this.logToStderr(
          `${r.title}: ${mean} over ${seeds.length} seed(s) (majority class: ${fmtScore(r.majority!)}); ` +
            `${r.seconds.toFixed(0)} s`,
        );
      }
    }
    const scored = results.filter((r) => r.summary);
    const average = scored.length
      ? glueAverage(scored.map((r) => ({ task: r.task, metrics: {}, score: r.summary!.score.mean })))
      : null;
    if (all) {
      for (const s of skipped) this.logToStderr(`skipped ${TASKS[s.task].title}: ${s.reason}`);
      if (!this.jsonEnabled()) this.log(glueTable(results, average));
    }
    const out: FinetuneGlueResult = { tasks: results, skipped, average };
    const preds = results[0]?.predictions;
    if (preds) {
      if (flags.predictions) {
        writeFileAtomic(flags.predictions, preds.join('\n') + '\n', 'GLUE predictions');
        out.predictionsFile = flags.predictions;
        results[0].predictions = undefined;
      } else if (!this.jsonEnabled()) {
        process.stdout.write(preds.join('\n') + '\n');
        results[0].predictions = undefined;
      }
    }
    return out;
  }
}
