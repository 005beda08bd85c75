// Autoregressive decoding of a GPT-2 decoder on the GPU, with a KV cache.
//
// Library API (what `hlm generate` and the inference benchmarks call):
//   const gen = await Generator.create(gpu, config, params, { maxContext?, cache? });
//   await gen.prefill(promptTokens);   // starts a sequence: runs the prompt, fills the KV cache
//   await gen.step(token);             // appends one token: one position through the cache
//   await gen.logits();                // Float32Array [vocab_size]: the next token's logits
//   await gen.argmax();                // the greedy next token, argmax taken on the GPU (one u32 read back)
//   gen.length, gen.maxContext, gen.tokens(); gen.reset(); gen.destroy();
//   for await (const t of generate(gen, prompt, { maxTokens, temperature, topK, seed, stopAtEos })) ...
//     (the generator's return value says why it stopped: 'max-tokens' | 'eos' | 'context')
// prefill and step resolve once the GPU has finished, so timing them measures the work.
//
// How it works. Parameters live once on the GPU, in a B=1, T=1 Gpt2 that owns them; prefill
// runs a Gpt2 of B=1 × T (T = the prompt length rounded up to a power of two, capped at
// maxContext; causal, so the padding after the prompt changes nothing before it) sharing
// those parameters, then gathers every layer's k and v rows out of its c_attn output into
// that layer's cache. The cache is [maxContext, 2d] per layer: row t = position t's keys, then
// values (the last two thirds of its c_attn row). A decode step, built once and replayed with
// the position written to a small u32 buffer before each submit:
//   copy wpe[pos] → embedding(token) → per layer: ln_1, c_attn (1 × 3d), copy k|v into the
//   cache at row pos, attention of q over cache rows 0..pos (attention_decode.wgsl), c_proj,
//   residual, ln_2, MLP, residual → ln_f → logits = h·Eᵀ → argmax.
// Every op but the single-query attention is the training forward's own kernel; the one-row
// products use a 4-row matmul tile (the default tiles would compute 63 padding rows).
// The output head is `lm_head.weight` when the checkpoint has an untied one, else the tied
// input embeddings: so a headless (CWT) checkpoint decodes through its input embeddings.
// With `cache: false` every prefill and step recomputes the whole sequence (the slow
// reference path the cache is checked against).
import type { Command, Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { add } from '../kernels/add.js';
import { argmaxRows } from '../kernels/argmax.js';
import { attentionDecode } from '../kernels/attention-decode.js';
import { embeddingForward } from '../kernels/embedding.js';
import { geluForward } from '../kernels/gelu.js';
import { layerNormForward } from '../kernels/layernorm.js';
import { matmul, type MatmulTile } from '../kernels/matmul.js';
import { gatherRows } from '../kernels/rows.js';
import type { TensorRef } from '../kernels/types.js';
import type { ModelConfig } from '../model/config.js';
import { Gpt2 } from '../model/gpt2.js';
import { Rng, checkSeed } from '../model/random.js';
import { checkSampling, sampleToken } from './sampling.js';

const F32 = 4;

/** One-row products (every decode matmul): 4-row tiles instead of 64 or 128. */
export const ROW_TILES: Record<'hardware' | 'software', MatmulTile> = {
  hardware: { BM: 4, BN: 128, BK: 16, TM: 4, TN: 4 },
  software: { BM: 4, BN: 64, BK: 8, TM: 4, TN: 8 },
};

/** Smallest prefill model; shorter prompts are padded up to it. */
const MIN_PREFILL = 8;

export interface GeneratorOptions {
  /** Longest sequence (prompt + generated tokens) it holds; default and at most n_positions. */
  maxContext?: number;
  /** true (default): decode through a KV cache; false: recompute the whole sequence every step. */
  cache?: boolean;
}

/** The model's output projection: an untied lm_head, else the input embeddings (CE and CWT alike). */
export function headTensor(config: ModelConfig): string {
  return config.tie_word_embeddings ? 'transformer.wte.weight' : 'lm_head.weight';
}

export class Generator {
  readonly maxContext: number;
  readonly cache: boolean;
  private seq: number[] = [];
  private prefillModel?: Gpt2;
  private prefillGathers: Dispatch[] = [];
  private readonly own: GPUBuffer[] = [];
  private readonly dispatches: Dispatch[] = [];
  // The decode step: embed, then per layer pre (ln_1, c_attn) · kv copy · post, then lnf and head.
  private embed!: Dispatch;
  private pre: Dispatch[][] = [];
  private post: Dispatch[][] = [];
  private lnf!: Dispatch;
  /** logits = hLast·Eᵀ, then their argmax: after a prefill or a step. */
  private head: Dispatch[] = [];
  private readonly kv: GPUBuffer[] = [];
  /** u32 [token, cache length] for the decode step. */
  private readonly state: GPUBuffer;
  private readonly posRow: GPUBuffer;
  private readonly qkv: GPUBuffer;
  /** Final hidden state of the last position [d]: the head's input. */
  private readonly hLast: GPUBuffer;
  private readonly logitsBuf: GPUBuffer;
  private readonly amax: GPUBuffer;

  private constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    private readonly owner: Gpt2,
    opts: GeneratorOptions,
  ) {
    const { n_positions: P, n_embd: d, vocab_size: V } = config;
    const max = opts.maxContext ?? P;
    if (!(Number.isInteger(max) && max >= 1 && max <= P))
      throw new HlmError(`maxContext must be an integer in 1..${P} (the model's n_positions), got ${max}`);
    this.maxContext = max;
    this.cache = opts.cache ?? true;
    this.state = this.buf('decode state', 4 * 4);
    this.posRow = this.buf('decode position embedding', d * F32);
    this.qkv = this.buf('decode qkv', 3 * d * F32);
    this.hLast = this.buf('last hidden state', d * F32);
    this.logitsBuf = this.buf('next-token logits', V * F32);
    this.amax = this.buf('next-token argmax', 4);
  }

  /** A generator for a decoder; `params` in paramLayout(config) order (as loadCheckpoint gives them). */
  static async create(
    gpu: Gpu,
    config: ModelConfig,
    params: Float32Array,
    opts: GeneratorOptions = {},
  ): Promise<Generator> {
    if (!config.causal)
      throw new HlmError(
        'generation needs a decoder: this checkpoint is an encoder (causal: false), which cannot predict next tokens',
      );
    const owner = await Gpt2.create(gpu, config, { B: 1, T: 1, train: false });
    let g: Generator | undefined;
    try {
      owner.writeParams(params);
      g = new Generator(gpu, config, owner, opts);
      await g.buildHead();
      if (g.cache) await g.buildDecode();
      return g;
    } catch (e) {
      if (g) g.destroy();
      else owner.destroy();
      throw e;
    }
  }

  private buf(label: string, bytes: number): GPUBuffer {
    const b = this.gpu.buffer(label, bytes);
    this.own.push(b);
    return b;
  }

  private keep<T extends Dispatch | Dispatch[]>(d: T): T {
    this.dispatches.push(...(Array.isArray(d) ? d : [d]));
    return d;
  }

  /** Tokens in the sequence so far (prompt and appended). */
  get length(): number {
    return this.seq.length;
  }

  tokens(): number[] {
    return [...this.seq];
  }

  private async buildHead(): Promise<void> {
    const { gpu, config } = this;
    const tile = ROW_TILES[gpu.adapter.kind];
    this.head = [
      ...this.keep(
        await matmul(gpu, {
          M: 1,
          N: config.vocab_size,
          K: config.n_embd,
          transB: true,
          tile,
          a: { buffer: this.hLast },
          b: this.owner.P(headTensor(config)),
          c: { buffer: this.logitsBuf },
          label: 'decode logits',
        }),
      ),
      this.keep(
        await argmaxRows(gpu, {
          rows: 1,
          n: config.vocab_size,
          x: { buffer: this.logitsBuf },
          out: { buffer: this.amax },
          label: 'decode argmax',
        }),
      ),
    ];
  }

  private async buildDecode(): Promise<void> {
    const { gpu, config, owner } = this;
    const { n_embd: d, n_layer: L, n_head: H, layer_norm_epsilon: eps } = config;
    const tile = ROW_TILES[gpu.adapter.kind];
    const at = (buffer: GPUBuffer, offset = 0): TensorRef => ({ buffer, offset });
    const x = this.buf('decode x', d * F32);
    const xm = this.buf('decode xm', d * F32);
    const ln = this.buf('decode ln', d * F32);
    const stats = this.buf('decode ln stats', 2 * F32);
    const y = this.buf('decode y', d * F32);
    const tmp = this.buf('decode proj out', d * F32);
    const fc = this.buf('decode fc', 4 * d * F32);
    const act = this.buf('decode gelu', 4 * d * F32);
    const scores = this.buf('decode attention scores', H * this.maxContext * F32);
    const PB = (l: number, name: string) => owner.P(`transformer.h.${l}.${name}`);
    const linear = async (
      xin: GPUBuffer,
      l: number,
      name: string,
      out: GPUBuffer,
      nIn: number,
      nOut: number,
    ): Promise<Dispatch[]> => [
      ...this.keep(
        await matmul(gpu, {
          M: 1,
          N: nOut,
          K: nIn,
          tile,
          a: at(xin),
          b: PB(l, `${name}.weight`),
          c: at(out),
          label: `decode h${l} ${name}`,
        }),
      ),
      this.keep(
        await add(gpu, {
          rows: 1,
          cols: nOut,
          out: at(out),
          b: PB(l, `${name}.bias`),
          bStrides: [0, 1],
          label: `decode h${l} ${name} +b`,
        }),
      ),
    ];
    const norm = async (xin: GPUBuffer, w: string, out: GPUBuffer, label: string) =>
      this.keep(
        await layerNormForward(gpu, {
          rows: 1,
          cols: d,
          eps,
          x: at(xin),
          weight: owner.P(`${w}.weight`),
          bias: owner.P(`${w}.bias`),
          out: at(out),
          mean: at(stats),
          rstd: at(stats, 1),
          label,
        }),
      );

    this.embed = this.keep(
      await embeddingForward(gpu, {
        B: 1,
        T: 1,
        d,
        tokens: at(this.state),
        wte: owner.P('transformer.wte.weight'),
        wpe: at(this.posRow),
        out: at(x),
        label: 'decode embedding',
      }),
    );
    for (let l = 0; l < L; l++) {
      this.kv.push(this.buf(`h${l} kv cache`, this.maxContext * 2 * d * F32));
      this.pre.push([
        await norm(x, `transformer.h.${l}.ln_1`, ln, `decode h${l} ln_1`),
        ...(await linear(ln, l, 'attn.c_attn', this.qkv, d, 3 * d)),
      ]);
      this.post.push([
        this.keep(
          await attentionDecode(gpu, {
            d,
            nHead: H,
            maxLen: this.maxContext,
            q: at(this.qkv),
            kv: at(this.kv[l]),
            length: at(this.state, 1),
            out: at(y),
            scores,
            label: `decode h${l} attn`,
          }),
        ),
        ...(await linear(y, l, 'attn.c_proj', tmp, d, d)),
        this.keep(
          await add(gpu, { rows: 1, cols: d, out: at(xm), a: at(x), b: at(tmp), label: `decode h${l} residual 1` }),
        ),
        await norm(xm, `transformer.h.${l}.ln_2`, ln, `decode h${l} ln_2`),
        ...(await linear(ln, l, 'mlp.c_fc', fc, d, 4 * d)),
        this.keep(await geluForward(gpu, { n: 4 * d, x: at(fc), out: at(act), label: `decode h${l} gelu` })),
        ...(await linear(act, l, 'mlp.c_proj', tmp, 4 * d, d)),
        this.keep(
          await add(gpu, { rows: 1, cols: d, out: at(x), a: at(xm), b: at(tmp), label: `decode h${l} residual 2` }),
        ),
      ]);
    }
    this.lnf = await norm(x, 'transformer.ln_f', this.hLast, 'decode ln_f');
  }

  /**
   * The prefill model for n tokens: T = n rounded up to a power of two (at least MIN_PREFILL), capped at maxContext.
   */
  private async prefillFor(n: number): Promise<Gpt2> {
    let T = MIN_PREFILL;
    while (T < n) T *= 2;
    T = Math.min(T, this.maxContext);
    if (this.prefillModel?.T === T) return this.prefillModel;
    this.dropPrefill();
    const { gpu, config } = this;
    const m = await Gpt2.create(gpu, config, { B: 1, T, train: false, shareWith: this.owner });
    this.prefillModel = m;
    if (this.cache) {
      // The model's qkv [T, 3d] as rows of width d: position t's k is row 3t+1, its v row 3t+2;
      // gathered in that order they are the cache's [T, 2d] layout.
      const index = Uint32Array.from({ length: 2 * T }, (_, i) => 3 * (i >> 1) + 1 + (i & 1));
      const idx = gpu.upload('prefill kv index', index);
      this.prefillGathers = [];
      for (let l = 0; l < config.n_layer; l++) {
        this.prefillGathers.push(
          await gatherRows(gpu, {
            n: 2 * T,
            d: config.n_embd,
            src: { buffer: m.qkv(l) },
            index: { buffer: idx },
            dst: { buffer: this.kv[l] },
            label: `prefill h${l} kv`,
          }),
        );
      }
      this.prefillGathers[0].owned.push(idx);
    }
    return m;
  }

  private dropPrefill(): void {
    this.gpu.release(...this.prefillGathers);
    this.prefillGathers = [];
    this.prefillModel?.destroy();
    this.prefillModel = undefined;
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
      copy: { from: m.hf, fromOffset: (seq.length - 1) * d * F32, to: this.hLast, toOffset: 0, size: d * F32 },
    };
    await this.gpu.run([...m.forward, ...(fillCache ? this.prefillGathers : []), last, ...this.head], 'prefill');
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
    const { gpu } = this;
    const d = this.config.n_embd;
    gpu.write(this.state, Uint32Array.of(token, pos + 1));
    const wpe = this.owner.P('transformer.wpe.weight').offset ?? 0;
    const commands: Command[] = [
      {
        copy: {
          from: this.owner.params,
          fromOffset: (wpe + pos * d) * F32,
          to: this.posRow,
          toOffset: 0,
          size: d * F32,
        },
      },
      this.embed,
    ];
    for (let l = 0; l < this.config.n_layer; l++) {
      commands.push(
        ...this.pre[l],
        {
          copy: { from: this.qkv, fromOffset: d * F32, to: this.kv[l], toOffset: pos * 2 * d * F32, size: 2 * d * F32 },
        },
        ...this.post[l],
      );
    }
    commands.push(this.lnf, ...this.head);
    gpu.submit(commands, 'decode step');
    await gpu.done();
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

  destroy(): void {
    this.dropPrefill();
    this.gpu.release(...this.dispatches);
    this.gpu.free(...this.own);
    this.owner.destroy();
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
  /** Seed of the sampling draws. Default 0. */
  seed?: number;
  /** Stop (without yielding it) at the end-of-text token. Default true. */
  stopAtEos?: boolean;
  /** The end-of-text id; default config.eos_token_id (none: never stops on it). */
  eosId?: number | null;
  /** Generate only ids below this (a tokenizer smaller than the model's padded vocabulary). */
  vocab?: number;
}

/**
 * Prefill the prompt, then yield up to maxTokens new tokens, each appended through the cache
 * before the next is chosen. Returns why it stopped: maxTokens reached, the end-of-text token,
 * or the context full (maxContext tokens in the sequence).
 */
export async function* generate(
  gen: Generator,
  prompt: readonly number[],
  o: GenerateOptions,
): AsyncGenerator<number, StopReason> {
  const temperature = o.temperature ?? 1;
  const topK = o.topK ?? 0;
  const seed = checkSeed(o.seed ?? 0);
  const sampling = { temperature, topK, vocab: o.vocab };
  checkSampling(sampling);
  if (!(Number.isInteger(o.maxTokens) && o.maxTokens >= 0))
    throw new HlmError(`maxTokens must be an integer ≥ 0, got ${o.maxTokens}`);
  const eos = o.stopAtEos === false ? null : o.eosId === undefined ? gen.config.eos_token_id : o.eosId;
  // The GPU argmax covers the whole vocabulary; a restricted one is taken on the host.
  const gpuGreedy = (temperature === 0 || topK === 1) && (o.vocab === undefined || o.vocab >= gen.config.vocab_size);
  const rng = new Rng(seed, 'generate');
  await gen.prefill(prompt);
  for (let i = 0; i < o.maxTokens; i++) {
    const next = gpuGreedy ? await gen.argmax() : sampleToken(await gen.logits(), sampling, rng);
    if (next === eos) return 'eos';
    yield next;
    if (i + 1 === o.maxTokens) break;
    if (gen.length >= gen.maxContext) return 'context';
    await gen.step(next);
  }
  return 'max-tokens';
}
