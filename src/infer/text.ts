// `hlm generate` as a function: checkpoint + prompt text in, text out, streamed piece by piece
// through a callback as tokens come, plus the timings the inference benchmarks name (time to
// first token, prefill and decode tokens/s).
import type { Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { tokenizerForCheckpoint, type Tokenizer } from '../data/tokenizer.js';
import type { ModelConfig } from '../model/config.js';
import { outputWeight } from '../model/params.js';
import type { WeightFormat } from '../model/quantize.js';
import { log } from '../log.js';
import { loadCheckpoint, readCheckpointConfig } from '../model/checkpoint.js';
import { Generator, generate, type StopReason } from './generator.js';

export interface GenerateTextOptions {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  seed: number;
  /** false: recompute the whole sequence each token (no KV cache). */
  cache?: boolean;
  /** How the weights are stored on the GPU (default f32). */
  weights?: WeightFormat;
}

export interface GenerateTextResult {
  prompt: string;
  text: string;
  promptTokens: number[];
  tokens: number[];
  stop: StopReason;
  temperature: number;
  topK: number;
  seed: number;
  cache: boolean;
  weights: WeightFormat;
  objective: string;
  head: string;
  tokenizer: string;
  /** Seconds from the start of the prefill to the first generated token. */
  timeToFirstToken: number;
  prefillTokensPerSecond: number;
  /** Tokens after the first, per second of decoding (null with fewer than two tokens). */
  decodeTokensPerSecond: number | null;
  device: string;
}

/**
 * Turns token ids into text as they come. Byte-level tokens can split a character, so text
 * that ends in an incomplete character (U+FFFD) waits for the next token.
 */
export class TextStream {
  private ids: number[] = [];
  private shown = '';
  constructor(private readonly tokenizer: Tokenizer) {}

  /** The new text after this token ('' while a character is incomplete). */
  async push(id: number): Promise<string> {
    this.ids.push(id);
    const text = await this.tokenizer.decode(this.ids);
    if (text.endsWith('\uFFFD')) return '';
    return this.take(text);
  }

  /** Whatever is still held back. */
  async flush(): Promise<string> {
    return this.take(await this.tokenizer.decode(this.ids));
  }

  get text(): string {
    return this.shown;
  }

  private take(text: string): string {
    const piece = text.startsWith(this.shown)
      ? text.slice(this.shown.length)
      : text.slice(Math.min(this.shown.length, text.length));
    this.shown = text;
    return piece;
  }
}

export interface PreparedGeneration {
  config: ModelConfig;
  params: Float32Array;
  tokenizer: Tokenizer;
  prompt: number[];
  eos: number;
}

/** Everything that can be refused before a GPU is opened: the checkpoint, its tokenizer, the prompt's length. */
export async function prepareGeneration(o: Pick<GenerateTextOptions, 'model' | 'prompt'>): Promise<PreparedGeneration> {
  const { config: declared } = await readCheckpointConfig(o.model);
  if (!declared.causal)
    throw new HlmError(`${o.model} is an encoder checkpoint (causal: false): it cannot generate text; use a decoder`);
  const ck = await loadCheckpoint(o.model, { optimizer: false });
  const { config } = ck;
  const tokenizer = await tokenizerForCheckpoint(ck.dir, config.vocab_size);
  const eos = config.eos_token_id ?? tokenizer.eotId;
  let prompt = await tokenizer.encode(o.prompt);
  // GPT-2 starts documents after an end-of-text token: an empty prompt is that token alone.
  if (prompt.length === 0) prompt = [eos];
  if (prompt.length > config.n_positions)
    throw new HlmError(
      `the prompt is ${prompt.length} tokens long; this model's context (n_positions) is ${config.n_positions}`,
    );
  return { config, params: ck.params, tokenizer, prompt, eos };
}

export async function generateText(
  gpu: Gpu,
  o: GenerateTextOptions,
  onText: (piece: string) => void = () => {},
  prepared?: PreparedGeneration,
): Promise<GenerateTextResult> {
  const { config, params, tokenizer, prompt, eos } = prepared ?? (await prepareGeneration(o));
  const gen = await Generator.create(gpu, config, params, { cache: o.cache ?? true, weights: o.weights });
  try {
    const stream = new TextStream(tokenizer);
    const tokens: number[] = [];
    const t0 = performance.now();
    let tFirst = 0;
    let prefillSeconds = 0;
    const it = generate(gen, prompt, {
      maxTokens: o.maxTokens,
      temperature: o.temperature,
      topK: o.topK,
      seed: o.seed,
      eosId: eos,
      vocab: tokenizer.vocabSize,
    });
    let r = await it.next();
    prefillSeconds = (performance.now() - t0) / 1000; // includes choosing the first token
    for (; !r.done; r = await it.next()) {
      if (tokens.length === 0) tFirst = performance.now();
      tokens.push(r.value);
      const piece = await stream.push(r.value);
      if (piece) onText(piece);
    }
    const tEnd = performance.now();
    const rest = await stream.flush();
    if (rest) onText(rest);
    const stop = r.value;
    if (stop === 'context')
      log.warn(`stopped after ${tokens.length} tokens: the context of ${gen.maxContext} tokens is full`);
    return {
      prompt: o.prompt,
      text: stream.text,
      promptTokens: prompt,
      tokens,
      stop,
      temperature: o.temperature,
      topK: o.topK,
      seed: o.seed,
      cache: gen.cache,
      weights: gen.weights,
      objective: config.objective,
      head: outputWeight(config),
      tokenizer: tokenizer.name,
      timeToFirstToken: tokens.length ? (tFirst - t0) / 1000 : prefillSeconds,
      prefillTokensPerSecond: prompt.length / prefillSeconds,
      decodeTokensPerSecond: tokens.length > 1 ? ((tokens.length - 1) * 1000) / (tEnd - tFirst) : null,
      device: gpu.name,
    };
  } finally {
    gen.destroy();
  }
}
