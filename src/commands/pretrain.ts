import { HlmCommand } from '../cli/base.js';
import { explicitFlags, pretrainFlags, pretrainOptions, pretrainProgress } from '../cli/pretrain-flags.js';
import { interactive } from '../cli/progress.js';
import { pretrain, type PretrainResult } from '../train/pretrain.js';

export default class Pretrain extends HlmCommand {
  static override summary = 'Pretrain a GPT-2-style decoder or masked encoder on the GPU.';
  static override description =
    'Tokenises the corpus into llm.c token shards (cached), trains with the chosen objective, appends one JSON line ' +
    'per step to <out>/metrics.jsonl (a stream) and saves atomic checkpoints (Hugging Face GPT-2 names, ' +
    'model.safetensors): the latest in <out>/checkpoint, earlier ones in <out>/checkpoints/step-<N>/ (--keep). ' +
    'Saves come every --save-every-minutes (10), every --save-every steps, at the end, and on SIGINT/SIGTERM, which ' +
    'finish the current step, save and exit 130/143 (a second signal exits at once). One run per --out (run.lock); ' +
    'a new run into an --out holding one needs --resume or --overwrite; a save cut short by a kill is recovered at ' +
    'the next start. A NaN or Inf loss or gradient norm is caught on the GPU before the update, which is skipped; ' +
    'the run stops naming the last finite checkpoint. Off a terminal, progress is a log line every --log-every ' +
    'steps or 30 s. ' +
    'Without --data it trains on the bundled English Wikipedia excerpt. Validation loss uses WikiText-2 valid when ' +
    '../shared/data has it. ' +
    'With --init, --optimizer sgd, --order sequential, --grad-clip 0, --weight-decay 0, --schedule constant and ' +
    '--steps 1, ' +
    'the saved weights are exactly one plain gradient step (mean loss) from the initial ones.';
  static override examples = [
    '<%= config.bin %> pretrain --preset tiny --steps 300',
    '<%= config.bin %> pretrain --arch encoder --preset tiny --data ../shared/data/corpus/enwiki --out runs/enc',
    '<%= config.bin %> pretrain --preset small --device gpu --batch-size 16 --seq-len 512 --steps 2000 --out ' +
      'runs/small',
    '<%= config.bin %> pretrain --out runs/tiny --steps 300 --schedule-steps 600 && <%= config.bin %> pretrain ' +
      '--out runs/tiny --steps 600 --resume',
    '<%= config.bin %> pretrain --out runs/tiny --steps 300 --overwrite --keep 5 --save-every-minutes 2',
  ];
  static override flags = pretrainFlags();

  async run(): Promise<PretrainResult> {
    const { flags, metadata } = await this.parse(Pretrain);
    const options = pretrainOptions(flags, explicitFlags(metadata, flags));
    const gpu = await this.openGpu(flags.device as string);
    const result = await pretrain(gpu, options, pretrainProgress(interactive(this.jsonEnabled())));
    this.log(
      `trained ${result.steps} steps (${result.tokens} tokens) in ${result.elapsedSeconds.toFixed(1)} s, ` +
        `${Math.round(result.tokensPerSecond)} tokens/s on ${result.device}`,
    );
    const val = result.valLoss === null ? '' : `, validation loss ${result.valLoss.toFixed(4)}`;
    const tied =
      result.valCe !== null && options.objective === 'cwt'
        ? ` (tied-embedding cross-entropy ${result.valCe.toFixed(4)})`
        : '';
    this.log(`final training loss ${result.finalLoss.toFixed(4)}${val}${tied}`);
    this.log(`checkpoint: ${result.checkpoint}`);
    return result;
  }
}
