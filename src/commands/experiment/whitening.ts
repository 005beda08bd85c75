import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../../cli/base.js';
import { floatFlag } from '../../cli/flags.js';
import { experimentSummary, type ExperimentCommandResult } from '../../cli/experiment.js';
import { runWhitening } from '../../experiment/whitening.js';

export default class ExperimentWhitening extends HlmCommand {
  static override summary =
    'The Zipfian-whitening comparison: raw, centred, uniform, Zipfian, ABTT and SIF on every STS set given.';
  static override description =
    'Reads word vectors and word frequencies, keeps the words present in both, and scores each method on every STS ' +
    'set found under the --sts directories (STS-B sts-test.csv, SICK_test_annotated.txt, SentEval STS.input.*.txt): ' +
    'Spearman ×100 of mean-vector cosines, and the symmetry scores Sym1 and Sym2 (under p and uniform) of each ' +
    "method's vectors. The numbers are those of `hlm whiten --method M --eval-sts DIR --sif --report` on the same " +
    'inputs. Writes <out>/result.json, report.md, report.html and plots/*.svg.';
  static override examples = [
    'scripts/train-word-vectors.sh --out runs/word-vectors && <%= config.bin %> experiment whitening --embeddings ' +
      'runs/word-vectors/sg.d100.vec --frequencies ../shared/data/wordfreq/enwiki_vocab_min200.txt --sts ' +
      '../shared/data/sts --out runs/experiment-whitening',
  ];
  static override flags = {
    embeddings: Flags.string({
      required: true,
      description: 'word vectors: word2vec text or binary, GloVe text, or .npy with a vocabulary file',
    }),
    vocab: Flags.string({ description: 'the vocabulary of an .npy --embeddings (default: <file without .npy>.vocab)' }),
    frequencies: Flags.string({ required: true, description: '"word count" lines' }),
    sts: Flags.string({
      required: true,
      multiple: true,
      description: 'directories searched (two levels) for STS sets; give several after one --sts or repeat it',
    }),
    'abtt-k': Flags.integer({ default: 3, min: 0, description: 'principal components ABTT removes' }),
    epsilon: floatFlag({ min: 0, description: 'added to the covariance eigenvalues before Λ^(−1/2); default none' }),
    out: Flags.string({ default: 'runs/experiment-whitening', description: 'experiment directory' }),
    device: deviceFlag,
  };

  async run(): Promise<ExperimentCommandResult> {
    const { flags } = await this.parse(ExperimentWhitening);
    const gpu = await this.openGpu(flags.device);
    const r = await runWhitening(gpu, {
      embeddings: flags.embeddings,
      vocab: flags.vocab,
      frequencies: flags.frequencies,
      sts: flags.sts,
      abttK: flags['abtt-k'],
      epsilon: flags.epsilon,
      out: flags.out,
    });
    const summary = experimentSummary(r);
    if (!this.jsonEnabled()) this.log(summary.text);
    return summary.result;
  }
}
