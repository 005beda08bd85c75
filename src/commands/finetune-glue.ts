import { Flags, type Interfaces } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { floatFlag } from '../cli/flags.js';
import { precisionFlags, precisionOptions } from '../cli/pretrain-flags.js';
import { HlmError } from '../errors.js';
import { GLUE_TASKS, TASKS, parseGlueTask, findGlueTask, type GlueTask } from '../glue/data.js';
import { glueAverage } from '../glue/metrics.js';
import { POOLINGS } from '../model/classifier.js';
import { checkGlueOutputs, runGlueTask, type GlueProgress, type GlueTaskResult } from '../glue/run.js';
import { glueTable } from '../glue/table.js';
import { SAVE_DTYPES, readCheckpointConfig } from '../model/checkpoint.js';
import { formatEta, interactive, progressOut } from '../cli/progress.js';
import { XNLI_MODES, XNLI_PROTOCOL, runXnli, xnliTable, type XnliMode, type XnliResult } from '../glue/xnli.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { checkOutputFile } from '../util/output-check.js';

export interface FinetuneGlueResult {
  tasks: GlueTaskResult[];
  skipped: { task: GlueTask; reason: string }[];
  /** Mean over the fine-tuned tasks of each task's score (mean of its metrics, mean over seeds), as a fraction. */
  average: number | null;
  predictionsFile?: string;
  /** --task xnli. */
  xnli?: XnliResult;
}

function number(name: string, text: string, ok: (x: number) => boolean): number {
  const x = Number(text);
  if (!(text.trim() !== '' && ok(x))) throw new HlmError(`--${name}: invalid value "${text}"`);
  return x;
}

/** Fine-tuning progress: step, loss, examples/s and ETA; a line per epoch with its dev metrics. */
function glueProgress(tty: boolean): (p: GlueProgress) => void {
  const out = progressOut(tty);
  return (p) => {
    const where = `${p.title} seed ${p.seed} epoch ${p.epoch}/${p.epochs}`;
    const fields = { seed: p.seed, epoch: p.epoch, step: p.step, steps: p.steps, loss: p.loss };
    if (p.ended)
      out(
        `${where}: train loss ${p.loss.toFixed(4)}, dev ${p.ended.dev} (${p.ended.seconds.toFixed(1)} s)`,
        { ...fields, dev_score: p.ended.score },
        true,
      );
    else
      out(
        `${where}: step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  ${p.examplesPerSecond.toFixed(1)} ` +
          `examples/s  ETA ${formatEta(p.etaSeconds)}`,
        { ...fields, examples_per_s: Number(p.examplesPerSecond.toFixed(2)), eta_s: Math.round(p.etaSeconds) },
      );
  };
}

function parseSeeds(text: string): number[] {
  const seeds = text.split(',').map((s) => number('seeds', s, (x) => Number.isSafeInteger(x) && x >= 0));
  if (new Set(seeds).size !== seeds.length) throw new HlmError(`--seeds: ${text} repeats a seed`);
  return seeds;
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
    'Writes <out>/<task>/result.json and the best model as <out>/<task>/checkpoint (usable with --predict); both ' +
    'locations are checked before training starts. Progress goes to stderr every --log-every steps (or 30 s) and ' +
    'after each epoch; the result goes to stdout: a table, or JSON with --json.' +
    `--task xnli: ${XNLI_PROTOCOL} Writes <out>/xnli/result.json.`;
  static override examples = [
    '<%= config.bin %> finetune-glue --model runs/pretrain/checkpoint --task sst2 --data ../shared/data/glue ' +
      '--epochs 1',
    '<%= config.bin %> finetune-glue --model ck --task all --data glue_data --seeds 1,2,3 --json',
    '<%= config.bin %> finetune-glue --model runs/glue/sst2/checkpoint --task sst2 --data glue_data --predict ' +
      'glue_data/SST-2/test.tsv > sst2.txt',
    '<%= config.bin %> finetune-glue --model runs/ml/checkpoint --task xnli --data ../shared/data/multilingual/xnli ' +
      '--xnli-protocol english --epochs 3 --lr 3e-4 --seeds 1',
  ];
  static override flags = {
    model: Flags.string({
      description: 'checkpoint directory (pretrained, or fine-tuned for this task)',
      required: true,
    }),
    task: Flags.string({ description: `${GLUE_TASKS.join('|')}|all|xnli`, required: true }),
    data: Flags.string({
      description:
        'glue_data directory (<TASK>/train.tsv, dev.tsv, ...); not needed to --predict with a checkpoint already ' +
        'fine-tuned for the task',
    }),
    'xnli-protocol': Flags.option({
      options: [...XNLI_MODES, 'both'] as const,
      default: 'both' as const,
      description: 'xnli: english (fine-tune on English, evaluate every language), target (each language), or both',
    })(),
    languages: Flags.string({ description: 'xnli: comma-separated languages (default: every dev-<lang>.tsv)' }),
    epochs: Flags.integer({ default: 10, min: 1 }),
    lr: floatFlag({ exclusiveMin: 0, default: 1e-5, description: 'AdamW learning rate (after warm-up)' }),
    'batch-size': Flags.integer({ default: 32, min: 1, description: 'rows of a micro-batch' }),
    'grad-accum': Flags.integer({
      default: 1,
      min: 1,
      description:
        'micro-batches per optimizer step: a step takes batch-size × grad-accum rows, their gradients summed with ' +
        'each row weighing the same (or its class weight) before one clip and AdamW update',
    }),
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
    predictions: Flags.string({ description: 'write --predict output here instead of stdout (written whole)' }),
    'save-dtype': Flags.option({
      options: SAVE_DTYPES,
      default: 'f32' as const,
      description:
        "the saved model's model.safetensors: f32 (exact) or f16 (half the bytes, for inference and --predict)",
    })(),
    'log-every': Flags.integer({
      min: 1,
      default: 100,
      description: 'report progress every N steps (and at least every 30 s)',
    }),
    ...precisionFlags(),
    device: deviceFlag,
  };

  async run(): Promise<FinetuneGlueResult> {
    const { flags } = await this.parse(FinetuneGlue);
    if (flags.task.toLowerCase() === 'xnli') return this.xnli(flags);
    const all = flags.task.toLowerCase() === 'all';
    const tasks: GlueTask[] = all ? [...GLUE_TASKS] : [parseGlueTask(flags.task)];
    if (all && flags.predict) throw new HlmError('--predict needs one task, not all');
    // Everything this run will write is checked now, before any work.
    const tuned = (await readCheckpointConfig(flags.model)).config.num_labels > 0;
    const predictOnly = Boolean(flags.predict) && tuned;
    if (!predictOnly && flags.data === undefined)
      throw new HlmError(
        '--data (the glue_data directory) is needed to fine-tune; only --predict with an already fine-tuned ' +
          'checkpoint goes without',
      );
    if (flags.predictions) checkOutputFile(flags.predictions, 'GLUE predictions');
    const seeds = parseSeeds(flags.seeds);
    const common = {
      model: flags.model,
      data: flags.data,
      epochs: flags.epochs,
      seeds,
      out: flags.out,
      pooling: flags.pooling,
      lr: flags.lr,
      batchSize: flags['batch-size'],
      gradAccum: flags['grad-accum'],
      ...precisionOptions(flags),
      maxSeqLen: flags['max-seq-len'],
      classBalanced: flags['class-balanced'],
      warmupRatio: flags['warmup-ratio'],
      weightDecay: flags['weight-decay'],
      gradClip: flags['grad-clip'],
      predict: flags.predict,
      logEvery: flags['log-every'],
      saveDtype: flags['save-dtype'],
      progress: glueProgress(interactive(this.jsonEnabled())),
    };
    const skipped: FinetuneGlueResult['skipped'] = [];
    const runnable = tasks.filter((task) => {
      if (!all) return true;
      try {
        findGlueTask(flags.data!, task, ['train', ...TASKS[task].evalSplits]);
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
    if (!predictOnly) for (const task of runnable) await checkGlueOutputs(flags.out, task);
    const gpu = await this.openGpu(flags.device);
    const results: GlueTaskResult[] = [];
    for (const task of runnable) results.push(await runGlueTask(gpu, { ...common, task }));
    const scored = results.filter((r) => r.summary);
    const average = scored.length
      ? glueAverage(scored.map((r) => ({ task: r.task, metrics: {}, score: r.summary!.score.mean })))
      : null;
    for (const s of skipped) this.logToStderr(`skipped ${TASKS[s.task].title}: ${s.reason}`);
    const out: FinetuneGlueResult = { tasks: results, skipped, average };
    const preds = results[0]?.predictions;
    // The result table goes to stdout, unless the predictions go there.
    if (scored.length && !this.jsonEnabled()) {
      const table = glueTable(results, average);
      if (preds && !flags.predictions) this.logToStderr(table);
      else this.log(table);
    }
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

  private async xnli(flags: Interfaces.InferredFlags<typeof FinetuneGlue.flags>): Promise<FinetuneGlueResult> {
    if (flags.predict) throw new HlmError('--predict is for GLUE tasks, not xnli');
    if (flags['save-dtype'] !== 'f32') throw new HlmError('--save-dtype is for GLUE tasks: --task xnli saves no model');
    if (flags.data === undefined)
      throw new HlmError('--task xnli needs --data: the folder of XNLI dev-<lang>.tsv files');
    const protocol = flags['xnli-protocol'];
    const modes: XnliMode[] = protocol === 'both' ? [...XNLI_MODES] : [protocol];
    const gpu = await this.openGpu(flags.device);
    const xnli = await runXnli(gpu, {
      model: flags.model,
      data: flags.data,
      languages: flags.languages?.split(',').map((l) => l.trim()),
      modes,
      epochs: flags.epochs,
      lr: flags.lr,
      batchSize: flags['batch-size'],
      maxSeqLen: flags['max-seq-len'],
      seeds: parseSeeds(flags.seeds),
      pooling: flags.pooling,
      warmupRatio: flags['warmup-ratio'],
      weightDecay: flags['weight-decay'],
      gradClip: flags['grad-clip'],
      ...precisionOptions(flags),
      out: flags.out,
    });
    if (!this.jsonEnabled()) this.log(xnliTable(xnli));
    return { tasks: [], skipped: [], average: null, xnli };
  }
}
