// Autoregressive decoding of a GPT-2 decoder on the GPU, with a KV cache.
//
// Library API (what `hlm generate` and the inference benchmarks call):
//   const gen = await Generator.create(gpu, config, params | model, { maxContext?, cache? });
//     (a model: share its parameter buffer instead of uploading params)
//   await gen.prefill(promptTokens);   // starts a sequence: runs the prompt, fills the KV cache
//   await gen.step(token);             // appends one token: one position through the cache
//   await gen.logits();                // Float32Array [vocab_size]: the next token's logits
//   await gen.argmax();                // the greedy next token, argmax taken on the GPU (one u32 read back)
//   gen.length, gen.maxContext, gen.tokens(); gen.reset(); gen.destroy();
//   for await (const t of generate(gen, prompt, { maxTokens, temperature, topK, topP, seed, stopAtEos })) ...
//     (the generator's return value says why it stopped: 'max-tokens' | 'eos' | 'context');
//   generateTokens(...) yields { token, logits } instead, the logits read back with withLogits.
// prefill and step resolve once the GPU has finished, so timing them measures the work.
//
// How it works. Parameters live once on the GPU, in a Gpt2 built as one decode step (B = T = 1,
// kvCache: its blocks are src/model/block.ts's, attention reading a [maxContext, 2d] KV cache per
// layer: row t = position t's keys, then values, the last two thirds of its c_attn row). prefill
// runs a Gpt2 of B=1 × T (T = the prompt length rounded up to a power of two, capped at
// maxContext; causal, so the padding after the prompt changes nothing before it) sharing those
// parameters, then gathers every layer's k and v rows out of its c_attn output into that
// layer's cache. A decode step is the decode model's forward, built once and replayed after
// setStep writes the token and position: wpe[pos] → embedding → per layer ln_1, c_attn, k|v
// into cache row pos, attention of q over rows 0..pos (attention_decode.wgsl), c_proj,
// residual, ln_2, MLP, residual → ln_f; then logits = h·Eᵀ → argmax. The one-row products use
// 4-row matmul tiles or blocks (the default tiles would compute 63 padding rows).
// The output head is the model's output projection (outputWeight in src/model/params.ts):
// `lm_head.weight` when the checkpoint has an untied one, else the tied input embeddings, so a
// headless (CWT) checkpoint decodes through its input embeddings.
// With `cache: false` every prefill and step recomputes the whole sequence (the slow
// reference path the cache is checked against).
// With `weights: 'f16' | 'int8' | 'q4'` the parameters are quantized once, when the generator is created
// (src/model/quantize.ts): every product and the embedding read the packed weights.
import type { Command, Dispatch, Gpu } from '../gpu/device.js';
import type { GpuScope } from '../gpu/scope.js';
import { HlmError } from '../errors.js';
import { argmaxRows } from '../kernels/argmax.js';
import { matmul } from '../kernels/matmul.js';
import { isQuantized, matmulQ, type WeightFormat } from '../kernels/matmul-q.js';
import { gatherRows } from '../kernels/rows.js';
import { ROW_TILES } from '../model/block.js';
import type { ModelConfig } from '../model/config.js';
import { Gpt2 } from '../model/gpt2.js';
import { Rng, checkSeed } from '../model/random.js';
import { checkSampling, sampleToken } from './sampling.js';

const F32 = 4;

/** Smallest prefill model; shorter prompts are padded up to it. */
const MIN_PREFILL = 8;

export interface GeneratorOptions {
  /** Longest sequence (prompt + generated tokens) it holds; default and at most n_positions. */
  maxContext?: number;
  /** true (default): decode through a KV cache; false: recompute the whole sequence every step. */
  cache?: boolean;
  /** How the weights are stored on the GPU (default f32). */
  weights?: WeightFormat;
}

/** The prefill model of one length, and the gathers that copy its k and v rows into the cache. */
interface Prefill {
  model: Gpt2;
  gathers: Dispatch[];
  scope: GpuScope;
}

export class Generator {
  private seq: number[] = [];
  private prefillModel?: Prefill;
  /** logits = hf·Eᵀ of the decode model's last hidden state, then their argmax: after a prefill or a step. */
  private head: Dispatch[] = [];
  /** With the cache: the decode model's forward, then the head. */
  private decodeStep: Command[] = [];
  private readonly logitsBuf: GPUBuffer;
  private readonly amax: GPUBuffer;

  private constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly maxContext: number,
    readonly cache: boolean,
    private readonly scope: GpuScope,
    /** Owns the parameters; with the cache, also the decode step. Its hf is the head's input. */
    private readonly owner: Gpt2,
  ) {
    this.logitsBuf = scope.buffer('next-token logits', config.vocab_size * F32);
    this.amax = scope.buffer('next-token argmax', 4);
  }

  /**
   * A generator for a decoder. `weights`: the flat parameters in paramLayout(config) order (as loadCheckpoint gives
   * them), uploaded; or a model whose parameter buffer the generator shares (e.g. a server's scorers').
   */
  static async create(
    gpu: Gpu,
    config: ModelConfig,
    weights: Float32Array | Gpt2,
    opts: GeneratorOptions = {},
  ): Promise<Generator> {
    if (!config.causal)
      throw new HlmError(
        'generation needs a decoder: this checkpoint is an encoder (causal: false), which cannot predict next tokens',
      );
    const P = config.n_positions;
    const max = opts.maxContext ?? P;
    if (!(Number.isInteger(max) && max >= 1 && max <= P))
      throw new HlmError(`maxContext must be an integer in 1..${P} (the model's n_positions), got ${max}`);
    const cache = opts.cache ?? true;
    const scope = gpu.scope('generator');
    try {
      const shared = weights instanceof Gpt2 ? weights : undefined;
      const owner = await Gpt2.create(gpu, config, {
        B: 1,
        T: 1,
        train: false,
        kvCache: cache ? max : undefined,
        shareWith: shared,
        scope,
        weights: opts.weights,
      });
      if (!shared) owner.writeParams(weights as Float32Array);
      const g = new Generator(gpu, config, max, cache, scope, owner);
      await g.buildHead();
      return g;
    } catch (e) {
      scope.release();
      throw e;
    }
  }

  /** Tokens in the sequence so far (prompt and appended). */
  get length(): number {
    return this.seq.length;
  }

  tokens(): number[] {
    return [...this.seq];
  }

  /** How the weights are stored on the GPU. */
  get weights(): WeightFormat {
    return this.owner.weights;
  }

  private async buildHead(): Promise<void> {
    const { gpu, config, scope } = this;
    const product = { M: 1, N: config.vocab_size, K: config.n_embd, a: { buffer: this.owner.hf } };
    const c = { buffer: this.logitsBuf };
    const w = this.owner.outputWeight();
    this.head = [
      ...scope.keep(
        isQuantized(w)
          ? [await matmulQ(gpu, { ...product, w, c, label: 'decode logits' })]
          : await matmul(gpu, {
              ...product,
              transB: true,
              tile: ROW_TILES[gpu.adapter.kind],
              b: w,
              c,
              label: 'decode logits',
            }),
      ),
      scope.keep(
        await argmaxRows(gpu, {
          rows: 1,
          n: config.vocab_size,
          x: { buffer: this.logitsBuf },
          out: { buffer: this.amax },
          label: 'decode argmax',
        }),
      ),
    ];
    if (this.cache) this.decodeStep = [...this.owner.forward, ...this.head];
  }

  /**
   * The prefill model for n tokens: T = n rounded up to a power of two (at least MIN_PREFILL), capped at maxContext.
   */
  private async prefillFor(n: number): Promise<Gpt2> {
    let T = MIN_PREFILL;
    while (T < n) T *= 2;
    T = Math.min(T, this.maxContext);
    if (this.prefillModel?.model.T === T) return this.prefillModel.model;
    this.prefillModel?.scope.release();
    this.prefillModel = undefined;
    const { gpu, config } = this;
    const scope = this.scope.scope(`prefill ${T}`);
    try {
      const model = await Gpt2.create(gpu, config, { B: 1, T, train: false, shareWith: this.owner, scope });
      const gathers: Dispatch[] = [];
      if (this.cache) {
        // The model's qkv [T, 3d] as rows of width d: position t's k is row 3t+1, its v row 3t+2;
        // gathered in that order they are the cache's [T, 2d] layout.
        const index = Uint32Array.from({ length: 2 * T }, (_, i) => 3 * (i >> 1) + 1 + (i & 1));
        const idx = scope.upload('prefill kv index', index);
        for (let l = 0; l < config.n_layer; l++) {
          gathers.push(
            scope.keep(
              await gatherRows(gpu, {
                n: 2 * T,
                d: config.n_embd,
                src: { buffer: model.qkv(l) },
                index: { buffer: idx },
                dst: { buffer: this.owner.kvCache(l) },
                label: `prefill h${l} kv`,
              }),
            ),
          );
        }
      }
      this.prefillModel = { model, gathers, scope };
      return model;
    } catch (e) {
      scope.release();
      throw e;
    }
  }

  private checkTokens(tokens: readonly number[]): void {
    const V = this.config.vocab_size;
    for (const t of tokens)
      if (!(Number.isInteger(t) && t >= 0 && t < V))
        throw new HlmError(`token ${t} is outside the model's vocabulary (0..${V - 1})`);
  }

  /** Run the whole sequence `seq` through a batched forward; the last position's hidden state goes to the head. */
  private async forwardAll(seq: number[], fillCache: boolean): Promise<void> {
    const m = await this.prefillFor(seq.length);
    const padded = new Uint32Array(m.T);
    padded.set(seq);
    m.setTokens(padded);
    const d = this.config.n_embd;
    const last: Command = {
      copy: { from: m.hf, fromOffset: (seq.length - 1) * d * F32, to: this.owner.hf, toOffset: 0, size: d * F32 },
    };
    const gathers = fillCache ? this.prefillModel!.gathers : [];
    await this.gpu.run([...m.forward, ...gathers, last, ...this.head], 'prefill');
  }

  /** Start a sequence with these tokens (1..maxContext of them); the next token's logits are then ready. */
  async prefill(tokens: readonly number[]): Promise<void> {
    if (tokens.length < 1) throw new HlmError('prefill needs at least one token');
    if (tokens.length > this.maxContext)
      throw new HlmError(`a prompt of ${tokens.length} tokens does not fit the context of ${this.maxContext}`);
    this.checkTokens(tokens);
    this.seq = [];
    await this.forwardAll([...tokens], this.cache);
    this.seq = [...tokens];
  }

  /** Append one token to the sequence; the logits of the token after it are then ready. */
  async step(token: number): Promise<void> {
    if (this.seq.length === 0) throw new HlmError('step before prefill: start a sequence with prefill(prompt)');
    const pos = this.seq.length;
    if (pos >= this.maxContext) throw new HlmError(`the context is full (${this.maxContext} tokens)`);
    this.checkTokens([token]);
    if (!this.cache) {
      await this.forwardAll([...this.seq, token], false);
      this.seq.push(token);
      return;
    }
    this.owner.setStep(token, pos);
    this.gpu.submit(this.decodeStep, 'decode step');
    await this.gpu.done();
    this.seq.push(token);
  }

  private ready(): void {
    if (this.seq.length === 0) throw new HlmError('no logits yet: start a sequence with prefill(prompt)');
  }

  /** The next token's logits over the whole vocabulary. */
  async logits(): Promise<Float32Array> {
    this.ready();
    return this.gpu.readF32(this.logitsBuf, 0, this.config.vocab_size);
  }

  /** The greedy next token (first index of the largest logit), computed on the GPU. */
  async argmax(): Promise<number> {
    this.ready();
    return (await this.gpu.read(this.amax, Uint32Array, 0, 1))[0];
  }

  /**
   * Keep only the first n tokens of the sequence (n ≥ 1): the next step continues from there,
   * overwriting the cache rows past n. Lets a benchmark decode again and again from one prefill.
   */
  rewind(n: number): void {
    if (!(Number.isInteger(n) && n >= 1 && n <= this.seq.length))
      throw new HlmError(`rewind: ${n} is not in 1..${this.seq.length}`);
    this.seq.length = n;
  }

  /** Forget the sequence (the cache is simply overwritten by the next prefill). */
  reset(): void {
    this.seq = [];
  }

  /** Free the models, the cache and the head. */
  destroy(): void {
    this.scope.release();
  }
}

export type StopReason = 'max-tokens' | 'eos' | 'context';

export interface GenerateOptions {
  /** Most tokens to generate. */
  maxTokens: number;
  /** 0 = greedy (argmax on the GPU). Default 1. */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 = all. Default 0. */
  topK?: number;
  /** Sample within the smallest set of likeliest tokens whose probability reaches p (nucleus); 1 = all. Default 1. */
  topP?: number;
  /** Seed of the sampling draws. Default 0. */
  seed?: number;
  /** Stop (without yielding it) at the end-of-text token. Default true. */
  stopAtEos?: boolean;
  /** The end-of-text id; default config.eos_token_id (none: never stops on it). */
  eosId?: number | null;
  /** Generate only ids below this (a tokenizer smaller than the model's padded vocabulary). */
  vocab?: number;
  /** Read each step's logits back and yield them with the token (for log-probabilities). */
  withLogits?: boolean;
}

export interface GeneratedToken {
  token: number;
  /** The logits the token was chosen from: with withLogits (and whenever it was sampled on the host). */
  logits?: Float32Array;
}

/**
 * Prefill the prompt, then yield up to maxTokens new tokens, each appended through the cache
 * before the next is chosen. Returns why it stopped: maxTokens reached, the end-of-text token,
 * or the context full (maxContext tokens in the sequence).
 */
export async function* generateTokens(
  gen: Generator,
  prompt: readonly number[],
  o: GenerateOptions,
): AsyncGenerator<GeneratedToken, StopReason> {
  const temperature = o.temperature ?? 1;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  const seed = checkSeed(o.seed ?? 0);
  const sampling = { temperature, topK, topP, vocab: o.vocab };
  checkSampling(sampling);
  if (!(Number.isInteger(o.maxTokens) && o.maxTokens >= 0))
    throw new HlmError(`maxTokens must be an integer ≥ 0, got ${o.maxTokens}`);
  const eos = o.stopAtEos === false ? null : o.eosId === undefined ? gen.config.eos_token_id : o.eosId;
  // The GPU argmax covers the whole vocabulary; a restricted one is taken on the host.
  const gpuGreedy =
    !o.withLogits && (temperature === 0 || topK === 1) && (o.vocab === undefined || o.vocab >= gen.config.vocab_size);
  const rng = new Rng(seed, 'generate');
  await gen.prefill(prompt);
  for (let i = 0; i < o.maxTokens; i++) {
    let next: GeneratedToken;
    if (gpuGreedy) next = { token: await gen.argmax() };
    else {
      const logits = await gen.logits();
      next = { token: sampleToken(logits, sampling, rng), logits };
    }
    if (next.token === eos) return 'eos';
    yield next;
    if (i + 1 === o.maxTokens) break;
    if (gen.length >= gen.maxContext) return 'context';
    await gen.step(next.token);
  }
  return 'max-tokens';
}

/** generateTokens, yielding the token ids alone. */
export async function* generate(
  gen: Generator,
  prompt: readonly number[],
  o: GenerateOptions,
): AsyncGenerator<number, StopReason> {
  const it = generateTokens(gen, prompt, { ...o, withLogits: false });
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
    yield r.value.token;
  }
}
