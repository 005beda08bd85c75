import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { weightsFlag } from '../cli/flags.js';
import { evalLambada, type EvalLambadaResult } from '../eval/evaluate.js';
import { formatEta, interactive, progressOut } from '../cli/progress.js';
import { DEFAULT_BOOTSTRAP_ITERS, writeHarnessOutput, type HarnessFiles } from '../eval/harness.js';
import { HlmError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { checkOutputDir, checkOutputFile } from '../util/output-check.js';

export type EvalLambadaSummary = Omit<EvalLambadaResult, 'predictions'> & {
  predictionsFile?: string;
  /** The lm-eval files written with --output-path. */
  harnessFiles?: HarnessFiles;
};

export default class EvalLambada extends HlmCommand {
  static override summary =
    "LAMBADA accuracy and perplexity of a decoder checkpoint, following lm-evaluation-harness's lambada_openai.";
  static override description =
    'Context = each passage up to its last space, target = that space and the last word. Accuracy is the share of ' +
    "passages whose every target token is the model's argmax; perplexity is exp(−mean over passages of the target's " +
    'summed log-likelihood). CE checkpoints score with their vocabulary head (lm_head.weight when untied, else the ' +
    'tied ' +
    'embeddings); headless (CWT) checkpoints with the tied input embeddings. Data: JSONL ({"text": ...} a line; ' +
    '.jsonl/.json) or plain text (one passage a line).';
  static override examples = [
    '<%= config.bin %> eval-lambada --model runs/pretrain/checkpoint --data lambada_test.jsonl',
    '<%= config.bin %> eval-lambada --model ck --data lambada_development_plain_text.txt --limit 500 --json',
    '<%= config.bin %> eval-lambada --model ck --data lambada_test.jsonl --predictions preds.jsonl',
    '<%= config.bin %> eval-lambada --model ck --data lambada_test.jsonl --output-path results --log-samples',
    '<%= config.bin %> eval-lambada --model ck --data lambada_test.jsonl --weights q4',
  ];
  static override flags = {
    model: Flags.string({
      description: 'checkpoint directory (config.json, model.safetensors, tokenizer.json unless GPT-2 vocabulary)',
      required: true,
    }),
    data: Flags.string({
      description: 'LAMBADA file: JSONL ({"text": ...} a line) or plain text (one passage a line)',
      required: true,
    }),
    format: Flags.option({
      options: ['jsonl', 'text'] as const,
      description: 'data format (default: jsonl for .jsonl/.json files, else text)',
    })(),
    predictions: Flags.string({
      description: 'write one JSON line per passage here (index, target, predicted, logLikelihood, correct)',
    }),
    'output-path': Flags.string({
      description:
        "write lm-evaluation-harness's files here: <dir>/<model>/results_<date>.json (acc, perplexity and their " +
        'stderrs, configs, versions, n-samples)',
    }),
    'log-samples': Flags.boolean({
      description: "with --output-path, also samples_lambada_openai_<date>.jsonl: the harness's record per passage",
    }),
    'bootstrap-iters': Flags.integer({
      min: 0,
      default: DEFAULT_BOOTSTRAP_ITERS,
      description: "resamples for perplexity's bootstrap stderr, as the harness's --bootstrap_iters (0: no stderrs)",
    }),
    limit: Flags.integer({ min: 1, description: 'score only the first N passages' }),
    'batch-size': Flags.integer({
      min: 1,
      description: 'passages per forward pass (default: about 4096 tokens per pass)',
    }),
    'log-every': Flags.integer({
      min: 1,
      default: 20,
      description: 'report progress every N batches (and at least every 30 s)',
    }),
    weights: weightsFlag,
    device: deviceFlag,
  };

  async run(): Promise<EvalLambadaSummary> {
    const { flags } = await this.parse(EvalLambada);
    if (flags['log-samples'] && !flags['output-path'])
      throw new HlmError('--log-samples writes beside the results: give --output-path <dir> too');
    if (flags.predictions) checkOutputFile(flags.predictions, 'LAMBADA predictions');
    if (flags['output-path']) checkOutputDir(flags['output-path'], 'lm-eval results');
    const gpu = await this.openGpu(flags.device);
    const out = progressOut(interactive(this.jsonEnabled()));
    let batches = 0;
    let reported = performance.now();
    const result = await evalLambada(gpu, {
      model: flags.model,
      data: flags.data,
      format: flags.format,
      limit: flags.limit,
      batchSize: flags['batch-size'],
      onBatch: (done, total, seconds) => {
        batches++;
        if (batches % flags['log-every'] && done < total && performance.now() - reported < 30_000) return;
        reported = performance.now();
        const rate = done / seconds;
        out(
          `lambada: ${done}/${total} passages  ${rate.toFixed(1)} passages/s  ETA ${formatEta((total - done) / rate)}`,
          { done, total, passages_per_s: Number(rate.toFixed(2)), eta_s: Math.round((total - done) / rate) },
          done === total,
        );
      },
      weights: flags.weights,
    });
    const { predictions, ...summary } = result;
    if (flags.predictions) {
      const lines = predictions.map((p) =>
        JSON.stringify({
          index: p.index,
          target: p.target,
          predicted: p.predicted,
          predictedIds: p.predictedIds,
          targetIds: p.targetIds,
          logLikelihood: p.logLikelihood,
          correct: p.correct,
        }),
      );
      writeFileAtomic(flags.predictions, lines.join('\n') + '\n', 'LAMBADA predictions');
    }
    let harnessFiles: HarnessFiles | undefined;
    if (flags['output-path']) {
      harnessFiles = writeHarnessOutput(
        flags['output-path'],
        {
          model: flags.model,
          samples: predictions,
          total: result.total,
          limit: flags.limit,
          batchSize: result.batchSize,
          device: result.device,
          bootstrapIters: flags['bootstrap-iters'],
          start: result.start,
          end: result.end,
          hlm: {
            objective: result.objective,
            head: result.head,
            weights: result.weights,
            tokenizer: result.tokenizer,
            data: flags.data,
          },
        },
        flags['log-samples'],
      );
      this.log(`lm-eval results: ${harnessFiles.results}${harnessFiles.samples ? `, ${harnessFiles.samples}` : ''}`);
    }
    this.log(
      `lambada_openai on ${result.n} passages (${result.objective} checkpoint, head ${result.head}, ` +
        `${result.weights} weights): accuracy ` +
        `${(100 * result.accuracy).toFixed(2)}%, perplexity ${result.perplexity.toFixed(2)}`,
    );
    this.log(
      `${result.passagesPerSecond.toFixed(1)} passages/s (batch ${result.batchSize} x ${result.seqLen} tokens) on ` +
        `${result.device}`,
    );
    return {
      ...summary,
      ...(flags.predictions ? { predictionsFile: flags.predictions } : {}),
      ...(harnessFiles ? { harnessFiles } : {}),
    };
  }
}
