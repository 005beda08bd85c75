import { HlmCommand } from '../cli/base.js';
import { explicitFlags, pretrainFlags, pretrainOptions, pretrainProgress } from '../cli/pretrain-flags.js';
import { interactive } from '../cli/progress.js';
import { compareObjectives, comparisonTable, type Comparison } from '../train/compare.js';

export default class CompareObjectives extends HlmCommand {
  static override summary =
    'Train the same model with the vocabulary head (ce) and headless (cwt) on an equal budget, and compare.';
  static override description =
    'Runs `hlm pretrain` twice with identical settings, into <out>/ce and <out>/cwt, and reports training tokens/s, ' +
    "peak GPU memory allocated by hlm, final training loss and validation loss; for decoders also the CWT model's " +
    "cross-entropy with its tied input embeddings as the output head, on the same scale as the CE model's. Prints a " +
    'table, or JSON with --json.';
  static override examples = [
    '<%= config.bin %> compare-objectives --preset tiny --steps 200 --out runs/compare',
    '<%= config.bin %> compare-objectives --arch encoder --preset tiny --steps 200 --out runs/compare-enc --json',
  ];
  static override flags = pretrainFlags({ omit: ['objective', 'resume'], defaults: { out: 'runs/compare' } });

  async run(): Promise<Comparison> {
    const { flags: f, metadata } = await this.parse(CompareObjectives);
    const gpu = await this.openGpu(f.device as string);
    const tty = interactive(this.jsonEnabled());
    const result = await compareObjectives(
      gpu,
      { ...pretrainOptions(f, explicitFlags(metadata, f)), objective: 'ce', resume: false },
      (objective) => {
        if (tty) process.stderr.write(`${objective}:\n`);
        return pretrainProgress(tty);
      },
    );
    this.log(comparisonTable(result));
    return result;
  }
}
