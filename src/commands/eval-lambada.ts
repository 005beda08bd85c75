import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { evalLambada, type EvalLambadaResult } from '../eval/evaluate.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export type EvalLambadaSummary = Omit<EvalLambadaResult, 'predictions'> & { predictionsFile?: string };

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
    limit: Flags.integer({ min: 1, description: 'score only the first N passages' }),
    'batch-size': Flags.integer({
      min: 1,
      description: 'passages per forward pass (default: about 4096 tokens per pass)',
    }),
    device: deviceFlag,
  };

  async run(): Promise<EvalLambadaSummary> {
    const { flags } = await this.parse(EvalLambada);
    const gpu = await this.openGpu(flags.device);
    const result = await evalLambada(gpu, {
      model: flags.model,
      data: flags.data,
      format: flags.format,
      limit: flags.limit,
      batchSize: flags['batch-size'],
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
    this.log(
      `lambada_openai on ${result.n} passages (${result.objective} checkpoint, head ${result.head}): accuracy ` +
        `${(100 * result.accuracy).toFixed(2)}%, perplexity ${result.perplexity.toFixed(2)}`,
    );
    this.log(
      `${result.passagesPerSecond.toFixed(1)} passages/s (batch ${result.batchSize} x ${result.seqLen} tokens) on ` +
        `${result.device}`,
    );
    return flags.predictions ? { ...summary, predictionsFile: flags.predictions } : summary;
  }
}
