// GPT-2 on the GPU: every buffer allocated once for a fixed micro-batch (B x T), and the
// forward and backward passes built once as lists of dispatches (llm.c's layout, in WGSL):
// embeddings, the blocks of src/model/block.ts, ln_f. The same class builds a decode step
// (kvCache): one row through the same blocks, attention reading a KV cache.
// For inference the weights may be packed (`weights`: f16, int8, q4; src/model/quantize.ts): the linear layers,
// the token table and the output projection then live in a packed buffer, quantized once by writeParams, and
// the f32 rest (layer norms, biases, position embeddings) in a compact float buffer.
// Mixed precision (`precision: 'f16'`): the f32 parameters stay the master copy the optimizer updates;
// the forward starts by rounding them all into an f16 copy (`half`), which every product of the
// blocks reads, with f16 copies of the activations (src/model/block.ts).
// The head is chosen by the trainer (src/model/heads.ts): it reads the final hidden states
// `hf` and writes `dhf`, the gradient the backward starts from, plus its share of dwte.
import type { Command, Copy, Gpu } from '../gpu/device.js';
import type { GpuScope } from '../gpu/scope.js';
import { HlmError } from '../errors.js';
import {
  createEmbeddingIndex,
  embeddingBackward,
  embeddingForward,
  writeEmbeddingIndex,
  type EmbeddingIndexBuffers,
} from '../kernels/embedding.js';
import { embeddingForwardQ } from '../kernels/embedding-q.js';
import { castF16 } from '../kernels/cast.js';
import { layerNormBackward, layerNormForward } from '../kernels/layernorm.js';
import { isQuantized, type QuantizedRef, type WeightFormat, type WeightRef } from '../kernels/matmul-q.js';
import type { TensorRef } from '../kernels/types.js';
import {
  blockBackward,
  blockForward,
  CachedAttention,
  createBlockActs,
  createBlockGradScratch,
  half,
  halfBytes,
  ROW_TILES,
  sequenceAttention,
  type BlockActs,
  type BlockAttention,
  type BlockSpec,
} from './block.js';
import type { ModelConfig } from './config.js';
import {
  blockTensor,
  findTensor,
  outputWeight,
  paramLayout,
  type BlockTensorName,
  type ParamLayout,
  type ParamTensor,
} from './params.js';
import { quantLayout, quantizeParams, type QuantLayout } from './quantize.js';

const F32 = 4;

/** The buffers of an embedding-gradient index, for a scope to own. */
export function embeddingIndexBuffers(index: EmbeddingIndexBuffers): GPUBuffer[] {
  return [index.order.buffer, index.starts.buffer, index.uniq.buffer, index.count.buffer];
}

export interface Gpt2Options {
  B: number;
  T: number;
  /** Allocate gradients and build the backward pass. */
  train: boolean;
  /**
   * Right-padded rows: attention hides keys at or past each row's length (setLengths), so a
   * padded batch gives every real position what it would get alone. Default off (full rows).
   */
  padding?: boolean;
  /**
   * Use this model's parameters (and gradients) instead of allocating new ones: the same
   * network at another micro-batch shape, e.g. length buckets for short fine-tuning inputs.
   */
  shareWith?: Gpt2;
  /**
   * Build the forward as one decode step (B = T = 1, no training) at a position set by setStep,
   * attention reading a KV cache of this many positions per layer (filled by the step, or by
   * copies into kvCache(l)).
   */
  kvCache?: number;
  /** Allocate under this scope (released with it, or on its own by destroy); default a scope of its own. */
  scope?: GpuScope;
  /** How the weights are stored (default f32); packed formats are for inference (no train). */
  weights?: WeightFormat;
  /** The products' operands: f32, or f16 copies of the weights and activations (mixed precision). Default f32. */
  precision?: Precision;
}

export type Precision = 'f32' | 'f16';

export class Gpt2 {
  readonly layout: ParamLayout;
  readonly N: number;
  /** The f32 parameters: all of them, or with packed weights the compact rest (quant.floatOffsets). */
  readonly params: GPUBuffer;
  readonly grads?: GPUBuffer;
  readonly weights: WeightFormat;
  readonly precision: Precision;
  /** Mixed precision: the f16 copy of params the products read, refreshed at the start of every forward. */
  readonly half?: GPUBuffer;
  /** With packed weights: where each tensor lives, and the packed buffer. */
  readonly quant?: QuantLayout;
  readonly packed?: GPUBuffer;
  /** u32 [N] input tokens, written by setTokens (a decode step: [token, cache length], written by setStep). */
  readonly tokens: GPUBuffer;
  /** u32 [B] valid length of each row when built with `padding` (setLengths). */
  readonly lengths?: GPUBuffer;
  /** Final hidden states after ln_f [N, d], and their gradient (written by the head). */
  readonly hf: GPUBuffer;
  readonly dhf?: GPUBuffer;
  /** Everything this model allocated and built; heads and updates built on it allocate under it too. */
  readonly scope: GpuScope;
  /** Forward up to hf. */
  forward: Command[] = [];
  /** Backward from dhf down to the embeddings (gradients accumulate; clear them first). */
  backward: Command[] = [];
  private layers: BlockActs[] = [];
  private index?: EmbeddingIndexBuffers;
  private decode?: { attention: CachedAttention; wpeRow: Copy; maxLen: number; wpeBytes: number };

  private constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly B: number,
    readonly T: number,
    train: boolean,
    padding: boolean,
    shareWith: Gpt2 | undefined,
    kvCache: number | undefined,
    scope: GpuScope,
    weights: WeightFormat,
    precision: Precision,
  ) {
    this.scope = scope;
    this.layout = paramLayout(config);
    this.N = B * T;
    this.weights = weights;
    this.precision = precision;
    if (precision === 'f16' && (weights !== 'f32' || kvCache))
      throw new HlmError('mixed precision (f16) is for training and scoring a model with f32 master weights');
    if (T > config.n_positions)
      throw new HlmError(`sequence length ${T} exceeds the model's n_positions ${config.n_positions}`);
    if (weights !== 'f32' && train)
      throw new HlmError(`${weights} weights are for inference: a model that trains keeps f32 weights`);
    if (shareWith) {
      if (shareWith.layout.total !== this.layout.total)
        throw new HlmError('shareWith: the models have different parameter layouts');
      if (train && !shareWith.grads)
        throw new HlmError('shareWith: a training model must share a model that has gradients');
      if (shareWith.weights !== weights)
        throw new HlmError(`shareWith: the model's weights are ${shareWith.weights}, not ${weights}`);
      if (shareWith.precision !== precision)
        throw new HlmError(`shareWith: the model's precision is ${shareWith.precision}, not ${precision}`);
      this.params = shareWith.params;
      this.half = shareWith.half;
      this.grads = train ? shareWith.grads : undefined;
      this.quant = shareWith.quant;
      this.packed = shareWith.packed;
    } else if (weights !== 'f32') {
      this.quant = quantLayout(this.layout, weights);
      this.params = scope.buffer('params (f32 part)', this.quant.floats * F32);
      this.packed = scope.buffer(`weights (${weights})`, this.quant.words * 4);
    } else {
      this.params = scope.buffer('params', this.layout.total * F32);
      if (train) this.grads = scope.buffer('grads', this.layout.total * F32);
      if (precision === 'f16') this.half = scope.buffer('params (f16 copy)', halfBytes(this.layout.total));
    }
    this.tokens = scope.buffer('tokens', (kvCache ? 2 : this.N) * 4);
    if (padding) this.lengths = scope.buffer('lengths', B * 4);
    this.hf = scope.buffer('hf', this.N * config.n_embd * F32);
    if (train) this.dhf = scope.buffer('dhf', this.N * config.n_embd * F32);
  }

  static async create(gpu: Gpu, config: ModelConfig, opts: Gpt2Options): Promise<Gpt2> {
    const { B, T, train, kvCache } = opts;
    if (kvCache !== undefined) {
      if (B !== 1 || T !== 1 || train || opts.padding)
        throw new HlmError('a decode step (kvCache) is one row (B = T = 1), without training or padding');
      if (!(Number.isInteger(kvCache) && kvCache >= 1 && kvCache <= config.n_positions))
        throw new HlmError(`kvCache must be an integer in 1..${config.n_positions} (n_positions), got ${kvCache}`);
    }
    const scope = opts.scope ? opts.scope.scope(`gpt2 ${B}x${T}`) : gpu.scope(`gpt2 ${B}x${T}`);
    try {
      const weights = opts.weights ?? opts.shareWith?.weights ?? 'f32';
      const precision = opts.precision ?? opts.shareWith?.precision ?? 'f32';
      const m = new Gpt2(
        gpu,
        config,
        B,
        T,
        train,
        opts.padding ?? false,
        opts.shareWith,
        kvCache,
        scope,
        weights,
        precision,
      );
      await m.build(train, kvCache);
      return m;
    } catch (e) {
      scope.release();
      throw e;
    }
  }

  /** A parameter tensor (`p`) or its gradient (`g`) as a TensorRef into the flat buffers. */
  P(name: string): TensorRef {
    return this.floatRef(findTensor(this.layout, name));
  }
  G(name: string): TensorRef {
    if (!this.grads) throw new HlmError('this model was built without gradients');
    return { buffer: this.grads, offset: findTensor(this.layout, name).offset };
  }
  /** A weight as stored: f32 (a TensorRef into params), or packed. */
  weight(name: string): WeightRef {
    return this.packedRef(findTensor(this.layout, name)) ?? this.P(name);
  }
  /** The output projection [V, d] (src/model/params.ts's outputWeight), and its gradient. */
  output(): TensorRef {
    return this.P(outputWeight(this.config));
  }
  /** Mixed precision: the f16 copy of a parameter tensor. */
  PH(name: string): TensorRef {
    if (!this.half) throw new HlmError('this model keeps no f16 copy of its weights (precision f32)');
    return half(this.half, findTensor(this.layout, name).offset);
  }
  /** The output projection's f16 copy (mixed precision). */
  outputHalf(): TensorRef {
    return this.PH(outputWeight(this.config));
  }
  /** The output projection as stored (packed with quantized weights). */
  outputWeight(): WeightRef {
    return this.weight(outputWeight(this.config));
  }
  outputGrad(): TensorRef {
    return this.G(outputWeight(this.config));
  }
  /**
   * Layer l's packed c_attn output [N, 3d] (q | k | v per row) after a forward; read it only (the KV cache copies k and
   * v from it).
   */
  qkv(l: number): GPUBuffer {
    if (!this.layers[l]) throw new HlmError(`layer ${l} out of range [0, ${this.layers.length})`);
    return this.layers[l].qkv;
  }
  /** Layer l's KV cache [kvCache, 2d] of a decode step: row t = position t's keys, then its values. */
  kvCache(l: number): GPUBuffer {
    if (!this.decode) throw new HlmError('this model was built without a KV cache');
    return this.decode.attention.cache(l);
  }
  private PB(l: number, name: BlockTensorName): TensorRef {
    return this.floatRef(blockTensor(this.layout, l, name));
  }
  private floatRef(t: ParamTensor): TensorRef {
    if (!this.quant) return { buffer: this.params, offset: t.offset };
    const offset = this.quant.floatOffsets.get(t.name);
    if (offset === undefined)
      throw new HlmError(`${t.name} is stored ${this.weights} in this model: it has no f32 copy on the GPU`);
    return { buffer: this.params, offset };
  }
  private packedRef(t: ParamTensor): QuantizedRef | undefined {
    const q = this.quant?.quantized.get(t.name);
    if (!q) return undefined;
    const { rows, cols, offset, scales } = q;
    return { format: this.quant!.format, rows, cols, buffer: this.packed!, offset, scales };
  }
  private GB(l: number, name: BlockTensorName): TensorRef {
    if (!this.grads) throw new HlmError('this model was built without gradients');
    return { buffer: this.grads, offset: blockTensor(this.layout, l, name).offset };
  }

  private async build(train: boolean, kvCache?: number): Promise<void> {
    const { gpu, N, B, T, scope } = this;
    const { n_embd: d, n_layer: L, n_head: H, layer_norm_epsilon: eps, causal } = this.config;
    const f16 = this.precision === 'f16';
    for (let l = 0; l < L; l++) this.layers.push(createBlockActs(scope, N, d, `h${l}`, f16));
    const xL = scope.buffer('x final', N * d * F32);
    const lnfStats = scope.buffer('ln_f stats', 2 * N * F32);
    const at = (buffer: GPUBuffer, offset = 0): TensorRef => ({ buffer, offset });
    const f: Command[] = [];
    if (this.half) {
      const n = this.layout.total;
      f.push(scope.keep(await castF16(gpu, { n, src: at(this.params), dst: half(this.half), label: 'params to f16' })));
    }

    let wpe = this.P('transformer.wpe.weight');
    let attention: BlockAttention;
    if (kvCache) {
      // The step's position embedding: wpe[pos], copied in first (setStep points the copy at row pos).
      const posRow = scope.buffer('decode position embedding', d * F32);
      const wpeRow: Copy = {
        copy: { from: this.params, fromOffset: (wpe.offset ?? 0) * F32, to: posRow, toOffset: 0, size: d * F32 },
      };
      f.push(wpeRow);
      wpe = at(posRow);
      const cached = new CachedAttention(gpu, scope, {
        d,
        nHead: H,
        maxLen: kvCache,
        layers: L,
        length: at(this.tokens, 1),
      });
      this.decode = { attention: cached, wpeRow, maxLen: kvCache, wpeBytes: wpeRow.copy.fromOffset };
      attention = cached;
    } else {
      const lengths = this.lengths && at(this.lengths);
      attention = sequenceAttention(gpu, scope, { B, T, d, nHead: H, causal, layers: L, lengths });
    }
    const prefix = kvCache ? 'decode ' : '';
    const spec: BlockSpec = {
      gpu,
      scope,
      rows: N,
      d,
      eps,
      weights: {
        param: (l, name) => this.PB(l, name),
        grad: (l, name) => this.GB(l, name),
        packed: (l, name) => this.packedRef(blockTensor(this.layout, l, name)),
        half: this.half ? (l, name) => half(this.half!, blockTensor(this.layout, l, name).offset) : undefined,
      },
      attention,
      tile: kvCache ? ROW_TILES[gpu.adapter.kind] : undefined,
      label: prefix,
    };

    const wte = this.weight('transformer.wte.weight');
    const embed = { B, T, d, tokens: at(this.tokens), wpe, out: at(this.layers[0]?.x ?? xL) };
    const embedLabel = kvCache ? 'decode embedding' : undefined;
    f.push(
      scope.keep(
        isQuantized(wte)
          ? await embeddingForwardQ(gpu, { ...embed, wte, label: embedLabel })
          : await embeddingForward(gpu, { ...embed, wte, label: embedLabel }),
      ),
    );
    for (let l = 0; l < L; l++)
      f.push(...(await blockForward(spec, l, this.layers[l], l + 1 < L ? this.layers[l + 1].x : xL)));
    f.push(
      scope.keep(
        await layerNormForward(gpu, {
          rows: N,
          cols: d,
          eps,
          x: at(xL),
          weight: this.P('transformer.ln_f.weight'),
          bias: this.P('transformer.ln_f.bias'),
          out: at(this.hf),
          mean: at(lnfStats),
          rstd: at(lnfStats, N),
          label: `${prefix}ln_f`,
        }),
      ),
    );
    this.forward = f;
    if (!train) return;

    // Backward. Scratch shared by all layers.
    const g = createBlockGradScratch(gpu, scope, N, d, f16);
    this.index = createEmbeddingIndex(gpu, N, 'embedding index');
    scope.adopt(...embeddingIndexBuffers(this.index));

    const b: Command[] = [{ clear: g.dres }];
    b.push(
      ...scope.keep(
        await layerNormBackward(gpu, {
          rows: N,
          cols: d,
          dout: at(this.dhf!),
          x: at(xL),
          weight: this.P('transformer.ln_f.weight'),
          mean: at(lnfStats),
          rstd: at(lnfStats, N),
          dx: at(g.dres),
          dweight: this.G('transformer.ln_f.weight'),
          dbias: this.G('transformer.ln_f.bias'),
          label: 'ln_f backward',
        }),
      ),
    );
    for (let l = L - 1; l >= 0; l--) b.push(...(await blockBackward(spec, l, this.layers[l], g)));
    b.push(
      ...scope.keep(
        await embeddingBackward(gpu, {
          B,
          T,
          d,
          dout: at(g.dres),
          index: this.index,
          dwte: this.G('transformer.wte.weight'),
          dwpe: this.G('transformer.wpe.weight'),
          label: 'embedding backward',
        }),
      ),
    );
    this.backward = b;
  }

  /** Write this micro-batch's input tokens (and, when training, the embedding-gradient index). */
  setTokens(tokens: ArrayLike<number>): void {
    if (this.decode) throw new HlmError('a decode step takes its token and position from setStep');
    if (tokens.length !== this.N)
      throw new HlmError(`expected ${this.N} tokens (B=${this.B} x T=${this.T}), got ${tokens.length}`);
    const V = this.config.vocab_size;
    const u = new Uint32Array(this.N);
    for (let i = 0; i < this.N; i++) {
      const t = tokens[i];
      if (!(Number.isInteger(t) && t >= 0 && t < V))
        throw new HlmError(`token ${t} at position ${i} is outside the model's vocabulary (0..${V - 1})`);
      u[i] = t;
    }
    this.gpu.write(this.tokens, u);
    if (this.index) writeEmbeddingIndex(this.gpu, this.index, u, V);
  }

  /** Valid length of each row (1..T; positions past it are padding) for a model built with `padding`. */
  setLengths(lengths: ArrayLike<number>): void {
    if (!this.lengths) throw new HlmError('this model was built without padding');
    if (lengths.length !== this.B) throw new HlmError(`expected ${this.B} row lengths, got ${lengths.length}`);
    const u = new Uint32Array(this.B);
    for (let b = 0; b < this.B; b++) {
      const n = lengths[b];
      if (!(Number.isInteger(n) && n >= 1 && n <= this.T))
        throw new HlmError(`row ${b}: length ${n} is outside 1..${this.T}`);
      u[b] = n;
    }
    this.gpu.write(this.lengths, u);
  }

  /** A decode step's input: `token` at position `pos` (0..kvCache-1), attending over cache rows 0..pos. */
  setStep(token: number, pos: number): void {
    if (!this.decode) throw new HlmError('this model was built without a KV cache');
    const V = this.config.vocab_size;
    if (!(Number.isInteger(token) && token >= 0 && token < V))
      throw new HlmError(`token ${token} is outside the model's vocabulary (0..${V - 1})`);
    if (!(Number.isInteger(pos) && pos >= 0 && pos < this.decode.maxLen))
      throw new HlmError(`position ${pos} is outside the KV cache (0..${this.decode.maxLen - 1})`);
    this.gpu.write(this.tokens, Uint32Array.of(token, pos + 1));
    this.decode.wpeRow.copy.fromOffset = this.decode.wpeBytes + pos * this.config.n_embd * F32;
    this.decode.attention.setPosition(pos);
  }

  async readParams(): Promise<Float32Array> {
    if (this.quant) throw new HlmError(`this model's weights are ${this.weights}: there are no f32 parameters to read`);
    return this.gpu.readF32(this.params, 0, this.layout.total);
  }

  /** Write the f32 parameters (paramLayout order); with packed weights, quantize them first. */
  writeParams(params: Float32Array): void {
    if (params.length !== this.layout.total)
      throw new HlmError(`expected ${this.layout.total} parameters, got ${params.length}`);
    if (!this.quant) return this.gpu.write(this.params, params);
    const { words, floats } = quantizeParams(this.quant, this.layout, params);
    this.gpu.write(this.packed!, words);
    this.gpu.write(this.params, floats);
  }

  async readGrads(): Promise<Float32Array> {
    if (!this.grads) throw new HlmError('this model was built without gradients');
    return this.gpu.readF32(this.grads, 0, this.layout.total);
  }

  /** Free the model and everything allocated under its scope (heads and updates built on it included). */
  destroy(): void {
    this.scope.release();
  }
}
