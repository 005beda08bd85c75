import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { PRESET_NAMES } from '../model/config.js';
import { SCHEDULES } from '../train/schedule.js';
import { pretrain, type PretrainResult } from '../train/pretrain.js';

export default class Pretrain extends HlmCommand {
  static override summary = 'Pretrain a GPT-2-style decoder or masked encoder on the GPU.';
  static override description =
    'Tokenises the corpus into llm.c token shards (cached), trains with the chosen objective, writes one JSON line per step to ' +
    '<out>/metrics.jsonl and an atomic checkpoint (Hugging Face GPT-2 names, model.safetensors) to <out>/checkpoint. ' +
    'Without --data it trains on the bundled English Wikipedia excerpt. Validation loss uses WikiText-2 valid when ../shared/data has it. ' +
    'With --init, --optimizer sgd, --order sequential, --grad-clip 0, --weight-decay 0, --schedule constant and --steps 1, ' +
    'the saved weights are exactly one plain gradient step (mean loss) from the initial ones.';
  static override examples = [
    '<%= config.bin %> pretrain --preset tiny --steps 300',
    '<%= config.bin %> pretrain --arch encoder --preset tiny --data ../shared/data/corpus/enwiki --out runs/enc',
    '<%= config.bin %> pretrain --preset small --device gpu --batch-size 16 --seq-len 512 --steps 2000 --out runs/small',
    '<%= config.bin %> pretrain --out runs/tiny --steps 300 --schedule-steps 600 && <%= config.bin %> pretrain --out runs/tiny --steps 600 --resume',
  ];
  static override flags = {
    arch: Flags.option({ options: ['decoder', 'encoder'] as const, default: 'decoder' as const, description: 'causal decoder (next token) or bidirectional masked encoder' })(),
    objective: Flags.option({ options: ['ce', 'cwt'] as const, default: 'ce' as const, description: 'ce: softmax over the vocabulary (tied head); cwt: headless contrastive weight tying' })(),
    preset: Flags.option({ options: PRESET_NAMES, default: 'tiny' as const, description: 'model size' })(),
    set: Flags.string({ multiple: true, default: [], description: 'model config override key=value (e.g. n_layer=4)' }),
    data: Flags.string({ multiple: true, default: [], description: 'text files, directories (WikiExtractor, JSONL, plain text) or .bin token shards' }),
    out: Flags.string({ description: 'run directory: metrics.jsonl and checkpoint/', default: 'runs/pretrain' }),
    init: Flags.string({ description: 'start from this checkpoint directory' }),
    resume: Flags.boolean({ description: 'continue <out>/checkpoint (weights, optimizer, data position) up to --steps', default: false }),
    steps: Flags.integer({ default: 300, min: 1 }),
    'schedule-steps': Flags.integer({ min: 1, description: 'length of the LR schedule (default: --steps); give the final total when training in parts with --resume' }),
    'batch-size': Flags.integer({ default: 8, min: 1 }),
    'seq-len': Flags.integer({ default: 64, min: 1 }),
    lr: Flags.string({ default: '1e-3', description: 'peak learning rate' }),
    optimizer: Flags.option({ options: ['adamw', 'sgd'] as const, default: 'adamw' as const })(),
    'weight-decay': Flags.string({ default: '0.1', description: 'decoupled (AdamW) or L2 (SGD) decay of matrices and embeddings' }),
    warmup: Flags.integer({ default: 20, min: 0, description: 'linear warm-up steps' }),
    schedule: Flags.option({ options: SCHEDULES, default: 'cosine' as const, description: 'after warm-up: cosine (to lr/10), linear (to 0) or constant' })(),
    'grad-clip': Flags.string({ default: '1', description: 'global gradient-norm clip (0 = off)' }),
    order: Flags.option({ options: ['shuffled', 'sequential'] as const, default: 'shuffled' as const })(),
    seed: Flags.integer({ default: 1 }),
    'eval-every': Flags.integer({ default: 100, min: 0, description: 'validation loss every N steps (0 = never)' }),
    'eval-data': Flags.string({ description: 'held-out text for validation (default: WikiText-2 valid when present)' }),
    'eval-batches': Flags.integer({ default: 8, min: 1 }),
    'save-every': Flags.integer({ default: 0, min: 0, description: 'checkpoint every N steps (0 = at the end only)' }),
    'log-every': Flags.integer({ default: 10, min: 1, description: 'read the loss back and write metrics every N steps' }),
    'cwt-temperature': Flags.string({ default: '1', description: 'CWT only: scores are o·e / temperature' }),
    device: deviceFlag,
  };

  async run(): Promise<PretrainResult> {
    const { flags } = await this.parse(Pretrain);
    const num = (name: string, v: string) => {
      const x = Number(v);
      if (!Number.isFinite(x) || x < 0) this.error(`--${name} must be a non-negative number, got ${v}`, { exit: 1 });
      return x;
    };
    const gpu = await this.openGpu(flags.device);
    const tty = process.stderr.isTTY && !this.jsonEnabled();
    const result = await pretrain(gpu, {
      arch: flags.arch, objective: flags.objective, preset: flags.preset, set: flags.set, data: flags.data, out: flags.out,
      init: flags.init, resume: flags.resume, steps: flags.steps, scheduleSteps: flags['schedule-steps'], batchSize: flags['batch-size'], seqLen: flags['seq-len'],
      lr: num('lr', flags.lr), optimizer: flags.optimizer, weightDecay: num('weight-decay', flags['weight-decay']), warmup: flags.warmup,
      schedule: flags.schedule, gradClip: num('grad-clip', flags['grad-clip']), order: flags.order, seed: flags.seed,
      evalEvery: flags['eval-every'], evalData: flags['eval-data'], evalBatches: flags['eval-batches'], saveEvery: flags['save-every'], logEvery: flags['log-every'], cwtTemperature: num('cwt-temperature', flags['cwt-temperature']),
    }, tty ? (p) => {
      const eta = p.etaSeconds >= 60 ? `${Math.floor(p.etaSeconds / 60)}m${Math.round(p.etaSeconds % 60)}s` : `${Math.round(p.etaSeconds)}s`;
      process.stderr.write(`\rstep ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  ${Math.round(p.tokensPerSecond)} tok/s  ETA ${eta}   ${p.step === p.steps ? '\n' : ''}`);
    } : undefined);
    this.log(`trained ${result.steps} steps (${result.tokens} tokens) in ${result.elapsedSeconds.toFixed(1)} s, ${Math.round(result.tokensPerSecond)} tokens/s on ${result.device}`);
    this.log(`final training loss ${result.finalLoss.toFixed(4)}${result.valLoss === null ? '' : `, validation loss ${result.valLoss.toFixed(4)}`}${result.valCe !== null && flags.objective === 'cwt' ? ` (tied-embedding cross-entropy ${result.valCe.toFixed(4)})` : ''}`);
    this.log(`checkpoint: ${result.checkpoint}`);
    return result;
  }
}
