import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { floatFlag, weightsFlag } from '../cli/flags.js';
import { HlmError } from '../errors.js';
import { log } from '../log.js';
import { generateText, prepareGeneration, type GenerateTextResult } from '../infer/text.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export default class Generate extends HlmCommand {
  static override summary =
    'Continue a prompt with a decoder checkpoint, streaming the text to stdout as it is generated.';
  static override description =
    'Autoregressive decoding on the GPU with a KV cache. The prompt comes from --prompt or, without it, from stdin; ' +
    'an empty prompt starts after the end-of-text token. Only the continuation is printed (stdout), logs go to ' +
    'stderr. ' +
    'Generation stops after --max-tokens, at the end-of-text token, or when the context (n_positions) is full. ' +
    '--temperature 0 is greedy; otherwise tokens are drawn from softmax(logits / temperature) over the --top-k most ' +
    'likely, with --seed making the draw repeatable. CE checkpoints decode through their vocabulary head, headless ' +
    '(CWT) ' +
    'ones through their tied input embeddings; encoders are refused.';
  static override examples = [
    '<%= config.bin %> generate --model runs/pretrain/checkpoint --prompt "The history of"',
    'echo "Once upon a time" | <%= config.bin %> generate --model ck --max-tokens 50 --temperature 0.8 --top-k 40 ' +
      '--seed 7',
    '<%= config.bin %> generate --model ck --prompt "Paris is" --temperature 0 --json',
    '<%= config.bin %> generate --model ck --prompt "Paris is" --weights int8',
  ];
  static override flags = {
    model: Flags.string({
      description:
        'checkpoint directory of a decoder (config.json, model.safetensors, tokenizer.json unless GPT-2 vocabulary)',
      required: true,
    }),
    prompt: Flags.string({ description: 'text to continue (default: read from stdin)' }),
    'max-tokens': Flags.integer({ min: 0, default: 64, description: 'most tokens to generate' }),
    temperature: floatFlag({ min: 0, default: 1, description: 'softmax temperature; 0 = greedy (argmax)' }),
    'top-k': Flags.integer({
      min: 0,
      default: 50,
      description: 'sample among the k most likely tokens; 0 = the whole vocabulary',
    }),
    seed: Flags.integer({ min: 0, default: 0, description: 'seed of the sampling draws' }),
    'kv-cache': Flags.boolean({
      default: true,
      allowNo: true,
      description:
        'decode through a KV cache (--no-kv-cache recomputes the whole sequence per token: slow, for checking)',
    }),
    weights: weightsFlag,
    device: deviceFlag,
  };

  async run(): Promise<GenerateTextResult> {
    const { flags } = await this.parse(Generate);
    let prompt = flags.prompt;
    if (prompt === undefined) {
      if (process.stdin.isTTY) throw new HlmError('no prompt: give --prompt "text" or pipe text into stdin');
      prompt = await readStdin();
    }
    const options = {
      model: flags.model,
      prompt,
      maxTokens: flags['max-tokens'],
      temperature: flags.temperature,
      topK: flags['top-k'],
      seed: flags.seed,
      cache: flags['kv-cache'],
      weights: flags.weights,
    };
    const prepared = await prepareGeneration(options);
    const gpu = await this.openGpu(flags.device);
    const stream = !this.jsonEnabled();
    const result = await generateText(
      gpu,
      options,
      (piece) => {
        if (stream) process.stdout.write(piece);
      },
      prepared,
    );
    if (stream) process.stdout.write('\n');
    const decode =
      result.decodeTokensPerSecond === null ? '' : `, decode ${result.decodeTokensPerSecond.toFixed(1)} tokens/s`;
    log.info(
      `${result.tokens.length} tokens (stop: ${result.stop}); prompt ${result.promptTokens.length} tokens, first ` +
        `token after ${(1000 * result.timeToFirstToken).toFixed(0)} ms${decode}`,
    );
    return result;
  }
}
