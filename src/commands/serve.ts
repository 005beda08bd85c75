import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { intFlag } from '../cli/flags.js';
import { HlmError } from '../errors.js';
import { log } from '../log.js';
import { startServing } from '../serve/serve.js';

export interface ServeResult {
  model: string;
  url: string;
  requests: number;
  errors: number;
  /** Scoring passes, the prompts they scored, and generation requests. */
  batches: number;
  rows: number;
  generations: number;
  seconds: number;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export default class Serve extends HlmCommand {
  static override summary = 'Serve a decoder checkpoint over an OpenAI-compatible completions API (for lm-eval).';
  static override description =
    'POST /v1/completions (prompt as text or token ids, max_tokens, temperature, top_p, top_k, seed, stop, echo, ' +
    'logprobs, stream), GET /v1/models, GET /health. With echo and max_tokens 0 or 1, logprobs covers every prompt ' +
    "token: what lm-evaluation-harness's local-completions model asks for its log-likelihood tasks. Concurrent " +
    'log-likelihood requests are scored together on the GPU, up to --max-batch prompts a pass; text generation runs ' +
    'one request at a time. The model id clients send is the --model path as given. Binds to 127.0.0.1 unless ' +
    '--host says otherwise. SIGTERM or SIGINT stops accepting requests, finishes those in flight, then exits.';
  static override examples = [
    '<%= config.bin %> serve --model runs/pretrain/checkpoint',
    '<%= config.bin %> serve --model ck --port 8080 --max-batch 16 --api-key secret',
    '<%= config.bin %> serve --model ck --host 0.0.0.0 --api-key "$KEY"',
  ];
  static override flags = {
    model: Flags.string({
      description: 'checkpoint directory of a decoder (config.json, model.safetensors, tokenizer.json)',
      required: true,
    }),
    host: Flags.string({ description: 'address to listen on', default: '127.0.0.1' }),
    port: intFlag({ min: 0, max: 65535, default: 8000, description: 'port to listen on (0: any free port)' }),
    'api-key': Flags.string({
      description: 'require "Authorization: Bearer KEY" on /v1/ (default: $HLM_API_KEY; none: no check)',
      env: 'HLM_API_KEY',
    }),
    'max-batch': intFlag({ min: 1, default: 8, description: 'most prompts scored in one forward pass' }),
    device: deviceFlag,
  };

  async run(): Promise<ServeResult> {
    const { flags } = await this.parse(Serve);
    if (flags['api-key'] === '') throw new HlmError('--api-key is empty');
    const gpu = await this.openGpu(flags.device);
    const t0 = performance.now();
    const s = await startServing(gpu, {
      model: flags.model,
      host: flags.host,
      port: flags.port,
      apiKey: flags['api-key'],
      maxBatch: flags['max-batch'],
    });
    const { host, port } = s.server.address();
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (!LOOPBACK.has(flags.host) && !flags['api-key'])
      log.warn(`listening on ${flags.host} without --api-key: anyone who can reach this port can use the model`);
    this.log(`hlm serve: ${flags.model} on ${url}/v1 (max batch ${flags['max-batch']})`);
    const signal = await new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    log.info(`${signal}: finishing the requests in flight`);
    await s.close();
    const stats = s.engine?.stats ?? { batches: 0, rows: 0, generations: 0 };
    return {
      model: flags.model,
      url,
      ...s.server.stats,
      ...stats,
      seconds: (performance.now() - t0) / 1000,
    };
  }
}
