import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../../cli/base.js';
import { floatFlag } from '../../cli/flags.js';
import { experimentSummary, type ExperimentCommandResult } from '../../cli/experiment.js';
import { HlmError } from '../../errors.js';
import { PRESET_NAMES } from '../../model/config.js';
import { ARCHS, DEFAULT_SAVE_EVERY, runHeadless } from '../../experiment/headless.js';
import { XNLI_MODES, type XnliMode } from '../../glue/xnli.js';

function list(text: string | undefined): string[] | undefined {
  return text === undefined
    ? undefined
    : text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

export default class ExperimentHeadless extends HlmCommand {
  static override summary =
    'The headless-LM comparison: pretrain with CE and CWT on an equal budget, then fine-tune and evaluate both.';
  static override description =
    'Pretrains the same model with the vocabulary head (ce) and headless (cwt) on the same data in the same order, ' +
    'for an equal wall-clock --budget (20m, 1h) or an equal number of tokens (5M). An encoder is then fine-tuned on ' +
    'GLUE tasks over --seeds (or on XNLI with --tasks xnli: fine-tuning on English and evaluating every language, ' +
    "and fine-tuning on each language; see finetune-glue's --task xnli); a decoder's CWT model also gets a causal " +
    'head fine-tuning for --head-ft of the budget, and the three decoders are scored on LAMBADA and validation ' +
    'cross-entropy. Writes <out>/result.json (every number, every seed), report.md, report.html and plots/*.svg. ' +
    'Each phase is recorded when it ends: rerunning the same command with the same --out skips finished phases and ' +
    `continues an interrupted pretraining from its last checkpoint (saved every ${DEFAULT_SAVE_EVERY} steps unless ` +
    '--set save_every=N).';
  static override examples = [
    '<%= config.bin %> experiment headless --arch encoder --data ../shared/data/corpus/enwiki --budget 20m ' +
      '--tasks rte,mrpc,stsb,cola --seeds 1,2,3 --out runs/exp-encoder',
    '<%= config.bin %> experiment headless --arch decoder --data ../shared/data/corpus/enwiki --budget 20m ' +
      '--out runs/exp-decoder',
    '<%= config.bin %> experiment headless --arch encoder --budget 2M --set n_layer=1 --tasks rte --seeds 1 --json',
  ];
  static override flags = {
    arch: Flags.option({ options: ARCHS, required: true, description: 'encoder (GLUE, XNLI) or decoder (LAMBADA)' })(),
    preset: Flags.option({ options: PRESET_NAMES, default: 'tiny' as const, description: 'model size' })(),
    set: Flags.string({
      multiple: true,
      default: [],
      description: 'pretraining override key=value, model or training (n_layer=1, lr=3e-3, save_every=20, seed=2)',
    }),
    data: Flags.string({
      multiple: true,
      default: [],
      description: 'pretraining text: files, directories (WikiExtractor, JSONL, plain text) or .bin token shards',
    }),
    tokenizer: Flags.string({ description: 'gpt2 (default), or a tokenizer.json or its directory' }),
    'eval-data': Flags.string({
      description: 'held-out text for validation loss (default: WikiText-2 valid when present)',
    }),
    budget: Flags.string({
      required: true,
      description: 'per objective: a duration (90s, 20m, 1h30m) or a token count (5M, 500k, 120000)',
    }),
    tasks: Flags.string({
      description:
        'encoder: comma-separated GLUE tasks (default rte,mrpc,stsb,cola), or xnli; decoder: lambada (the default)',
    }),
    seeds: Flags.string({ description: 'fine-tuning seeds, comma-separated (encoders; default 1,2,3)' }),
    'head-ft': floatFlag({
      min: 0,
      max: 1,
      default: 0.1,
      description: "decoder: the CWT model's causal head fine-tuning, as a fraction of the budget (0: none)",
    }),
    epochs: Flags.integer({ min: 1, description: 'fine-tuning epochs (default by width: 3 up to d=512, else 10)' }),
    lr: floatFlag({
      exclusiveMin: 0,
      description: 'fine-tuning learning rate (default by width: 3e-4 up to d=128, 1e-4 up to 512, else 1e-5)',
    }),
    'batch-size': Flags.integer({ min: 1, description: 'fine-tuning batch size (default 32)' }),
    'glue-data': Flags.string({ description: 'glue_data directory (default ../shared/data/glue)' }),
    'lambada-data': Flags.string({
      description: 'LAMBADA file (default ../shared/data/lambada/lambada_test_sample200.jsonl)',
    }),
    'xnli-data': Flags.string({
      description: 'XNLI dev-<lang>.tsv directory (default ../shared/data/multilingual/xnli)',
    }),
    languages: Flags.string({ description: 'xnli: comma-separated languages (default: every one in --xnli-data)' }),
    'xnli-protocol': Flags.option({
      options: [...XNLI_MODES, 'both'] as const,
      default: 'both' as const,
      description: 'xnli: english (fine-tune on English, evaluate all), target (each language), or both',
    })(),
    out: Flags.string({ description: 'experiment directory (default runs/experiment-<arch>)' }),
    device: deviceFlag,
  };

  async run(): Promise<ExperimentCommandResult> {
    const { flags } = await this.parse(ExperimentHeadless);
    const seeds = list(flags.seeds)?.map((s) => {
      const n = Number(s);
      if (!(Number.isSafeInteger(n) && n >= 0)) throw new HlmError(`--seeds: "${s}" is not a seed (an integer ≥ 0)`);
      return n;
    });
    const protocol = flags['xnli-protocol'];
    const gpu = await this.openGpu(flags.device);
    const r = await runHeadless(gpu, {
      arch: flags.arch,
      preset: flags.preset,
      set: flags.set,
      data: flags.data,
      tokenizer: flags.tokenizer,
      evalData: flags['eval-data'],
      budget: flags.budget,
      tasks: list(flags.tasks),
      seeds,
      headFt: flags['head-ft'],
      epochs: flags.epochs,
      lr: flags.lr,
      batchSize: flags['batch-size'],
      glueData: flags['glue-data'],
      lambadaData: flags['lambada-data'],
      xnliData: flags['xnli-data'],
      languages: list(flags.languages),
      xnliProtocol: protocol === 'both' ? [...XNLI_MODES] : [protocol as XnliMode],
      out: flags.out ?? `runs/experiment-${flags.arch}`,
    });
    const summary = experimentSummary(r);
    if (!this.jsonEnabled()) this.log(summary.text);
    return summary.result;
  }
}
