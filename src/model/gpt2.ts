// GPT-2 on the GPU: every buffer allocated once for a fixed micro-batch (B x T), and the
// forward and backward passes built once as lists of dispatches (llm.c's layout, in WGSL).
//
// Per layer l, with N = B·T rows:
//   forward   ln1 = LN(x_l); qkv = ln1·Wqkv + b; y = attn(qkv); xm = x_l + y·Wo + b
//             ln2 = LN(xm);  h = gelu(ln2·Wfc + b); x_{l+1} = xm + h·Wp + b
//   backward  dres carries dL/dx through the residual stream and is accumulated into by each
//             LayerNorm backward; weight gradients accumulate (+=) into the flat gradient
//             buffer, which each step clears first. Bias gradients are column sums, done as a
//             1 x N ones-vector matmul so the same tested kernel serves.
// The head is chosen by the trainer (src/model/heads.ts): it reads the final hidden states
// `hf` and writes `dhf`, the gradient the backward starts from, plus its share of dwte.
import type { Command, Dispatch, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { add } from '../kernels/add.js';
import {
  attentionBackward,
  attentionForward,
  createAttentionBuffers,
  createAttentionScratch,
  type AttentionBuffers,
  type AttentionScratch,
} from '../kernels/attention.js';
import {
  createEmbeddingIndex,
  embeddingBackward,
  embeddingForward,
  writeEmbeddingIndex,
  type EmbeddingIndexBuffers,
} from '../kernels/embedding.js';
import { geluBackward, geluForward } from '../kernels/gelu.js';
import { layerNormBackward, layerNormForward } from '../kernels/layernorm.js';
import { matmul } from '../kernels/matmul.js';
import type { TensorRef } from '../kernels/types.js';
import type { ModelConfig } from './config.js';
import { blockTensor, findTensor, paramLayout, type BlockTensorName, type ParamLayout } from './params.js';

const F32 = 4;

interface LayerActs {
  x: GPUBuffer; // input of the block [N, d]
  ln1: GPUBuffer;
  ln1Stats: GPUBuffer; // mean [N] then rstd [N]
  qkv: GPUBuffer; // [N, 3d]
  att: AttentionBuffers;
  y: GPUBuffer; // attention output before c_proj [N, d]
  xm: GPUBuffer; // residual after attention [N, d]
  ln2: GPUBuffer;
  ln2Stats: GPUBuffer;
  fc: GPUBuffer; // [N, 4d] before GELU
  gelu: GPUBuffer; // [N, 4d]
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
}

export class Gpt2 {
  readonly layout: ParamLayout;
  readonly N: number;
  readonly params: GPUBuffer;
  readonly grads?: GPUBuffer;
  /** u32 [N] input tokens, written by setTokens. */
  readonly tokens: GPUBuffer;
  /** u32 [B] valid length of each row when built with `padding` (setLengths). */
  readonly lengths?: GPUBuffer;
  /** Final hidden states after ln_f [N, d], and their gradient (written by the head). */
  readonly hf: GPUBuffer;
  readonly dhf?: GPUBuffer;
  /** Forward up to hf. */
  forward: Command[] = [];
  /** Backward from dhf down to the embeddings (gradients accumulate; clear them first). */
  backward: Command[] = [];
  private readonly buffers: GPUBuffer[] = [];
  private readonly dispatches: Dispatch[] = [];
  private layers: LayerActs[] = [];
  private scratch!: AttentionScratch;
  private index?: EmbeddingIndexBuffers;

  private constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly B: number,
    readonly T: number,
    train: boolean,
    padding: boolean,
    shareWith?: Gpt2,
  ) {
    this.layout = paramLayout(config);
    this.N = B * T;
    if (T > config.n_positions)
      throw new HlmError(`sequence length ${T} exceeds the model's n_positions ${config.n_positions}`);
    if (shareWith) {
      if (shareWith.layout.total !== this.layout.total)
        throw new HlmError('shareWith: the models have different parameter layouts');
      if (train && !shareWith.grads)
        throw new HlmError('shareWith: a training model must share a model that has gradients');
      this.params = shareWith.params;
      this.grads = train ? shareWith.grads : undefined;
    } else {
      this.params = this.buf('params', this.layout.total);
      if (train) this.grads = this.buf('grads', this.layout.total);
    }
    this.tokens = this.buf('tokens', this.N);
    if (padding) this.lengths = this.buf('lengths', B);
    this.hf = this.buf('hf', this.N * config.n_embd);
    if (train) this.dhf = this.buf('dhf', this.N * config.n_embd);
  }

  static async create(gpu: Gpu, config: ModelConfig, opts: Gpt2Options): Promise<Gpt2> {
    const m = new Gpt2(gpu, config, opts.B, opts.T, opts.train, opts.padding ?? false, opts.shareWith);
    await m.build(opts.train);
    return m;
  }

  private buf(label: string, floats: number): GPUBuffer {
    const b = this.gpu.buffer(label, floats * F32);
    this.buffers.push(b);
    return b;
  }

  /** A parameter tensor (`p`) or its gradient (`g`) as a TensorRef into the flat buffers. */
  P(name: string): TensorRef {
    return { buffer: this.params, offset: findTensor(this.layout, name).offset };
  }
  G(name: string): TensorRef {
    if (!this.grads) throw new HlmError('this model was built without gradients');
    return { buffer: this.grads, offset: findTensor(this.layout, name).offset };
  }
  /**
   * Layer l's packed c_attn output [N, 3d] (q | k | v per row) after a forward; read it only (the KV cache copies k and
   * v from it).
   */
  qkv(l: number): GPUBuffer {
    if (!this.layers[l]) throw new HlmError(`layer ${l} out of range [0, ${this.layers.length})`);
    return this.layers[l].qkv;
  }
  private PB(l: number, name: BlockTensorName): TensorRef {
    return { buffer: this.params, offset: blockTensor(this.layout, l, name).offset };
  }
  private GB(l: number, name: BlockTensorName): TensorRef {
    return { buffer: this.grads!, offset: blockTensor(this.layout, l, name).offset };
  }

  private keep<T extends Dispatch | Dispatch[]>(d: T): T {
    this.dispatches.push(...(Array.isArray(d) ? d : [d]));
    return d;
  }

  private async build(train: boolean): Promise<void> {
    const { gpu, N, B, T } = this;
    const { n_embd: d, n_layer: L, n_head: H, layer_norm_epsilon: eps, causal } = this.config;
    this.scratch = createAttentionScratch(gpu, { B, T, d, nHead: H, label: 'attention scratch' });
    for (let l = 0; l < L; l++) {
      const n = (s: string) => `h${l}.${s}`;
      this.layers.push({
        x: this.buf(n('x'), N * d),
        ln1: this.buf(n('ln1'), N * d),
        ln1Stats: this.buf(n('ln1 stats'), 2 * N),
        qkv: this.buf(n('qkv'), N * 3 * d),
        att: createAttentionBuffers(gpu, { B, T, d, nHead: H, label: n('att') }),
        y: this.buf(n('y'), N * d),
        xm: this.buf(n('xm'), N * d),
        ln2: this.buf(n('ln2'), N * d),
        ln2Stats: this.buf(n('ln2 stats'), 2 * N),
        fc: this.buf(n('fc'), N * 4 * d),
        gelu: this.buf(n('gelu'), N * 4 * d),
      });
    }
    const xL = this.buf('x final', N * d);
    const lnfStats = this.buf('ln_f stats', 2 * N);
    const tmp = this.buf('proj out', N * d);
    const at = (buffer: GPUBuffer, offset = 0): TensorRef => ({ buffer, offset });

    // A linear layer y = x·W + b (W is [in, out], Conv1D layout).
    const linear = async (
      x: GPUBuffer,
      W: TensorRef,
      b: TensorRef,
      y: GPUBuffer,
      nIn: number,
      nOut: number,
      label: string,
    ) => [
      ...this.keep(await matmul(gpu, { M: N, N: nOut, K: nIn, a: at(x), b: W, c: at(y), label: `${label} x·W` })),
      this.keep(await add(gpu, { rows: N, cols: nOut, out: at(y), b, bStrides: [0, 1], label: `${label} +b` })),
    ];

    const f: Command[] = [];
    f.push(
      this.keep(
        await embeddingForward(gpu, {
          B,
          T,
          d,
          tokens: at(this.tokens),
          wte: this.P('transformer.wte.weight'),
          wpe: this.P('transformer.wpe.weight'),
          out: at(this.layers[0]?.x ?? xL),
        }),
      ),
    );
    for (let l = 0; l < L; l++) {
      const a = this.layers[l];
      const next = l + 1 < L ? this.layers[l + 1].x : xL;
      f.push(
        this.keep(
          await layerNormForward(gpu, {
            rows: N,
            cols: d,
            eps,
            x: at(a.x),
            weight: this.PB(l, 'ln_1.weight'),
            bias: this.PB(l, 'ln_1.bias'),
            out: at(a.ln1),
            mean: at(a.ln1Stats),
            rstd: at(a.ln1Stats, N),
            label: `h${l} ln_1`,
          }),
        ),
      );
      f.push(
        ...(await linear(
          a.ln1,
          this.PB(l, 'attn.c_attn.weight'),
          this.PB(l, 'attn.c_attn.bias'),
          a.qkv,
          d,
          3 * d,
          `h${l} c_attn`,
        )),
      );
      f.push(
        ...this.keep(
          await attentionForward(gpu, {
            B,
            T,
            d,
            nHead: H,
            causal,
            lengths: this.lengths && at(this.lengths),
            qkv: at(a.qkv),
            out: at(a.y),
            layer: a.att,
            scratch: this.scratch,
            label: `h${l} attn`,
          }),
        ),
      );
      f.push(
        ...(await linear(
          a.y,
          this.PB(l, 'attn.c_proj.weight'),
          this.PB(l, 'attn.c_proj.bias'),
          tmp,
          d,
          d,
          `h${l} attn.c_proj`,
        )),
      );
      f.push(
        this.keep(
          await add(gpu, { rows: N, cols: d, out: at(a.xm), a: at(a.x), b: at(tmp), label: `h${l} residual 1` }),
        ),
      );
      f.push(
        this.keep(
          await layerNormForward(gpu, {
            rows: N,
            cols: d,
            eps,
            x: at(a.xm),
            weight: this.PB(l, 'ln_2.weight'),
            bias: this.PB(l, 'ln_2.bias'),
            out: at(a.ln2),
            mean: at(a.ln2Stats),
            rstd: at(a.ln2Stats, N),
            label: `h${l} ln_2`,
          }),
        ),
      );
      f.push(
        ...(await linear(
          a.ln2,
          this.PB(l, 'mlp.c_fc.weight'),
          this.PB(l, 'mlp.c_fc.bias'),
          a.fc,
          d,
          4 * d,
          `h${l} c_fc`,
        )),
      );
      f.push(this.keep(await geluForward(gpu, { n: N * 4 * d, x: at(a.fc), out: at(a.gelu), label: `h${l} gelu` })));
      f.push(
        ...(await linear(
          a.gelu,
          this.PB(l, 'mlp.c_proj.weight'),
          this.PB(l, 'mlp.c_proj.bias'),
          tmp,
          4 * d,
          d,
          `h${l} mlp.c_proj`,
        )),
      );
      f.push(
        this.keep(
          await add(gpu, { rows: N, cols: d, out: at(next), a: at(a.xm), b: at(tmp), label: `h${l} residual 2` }),
        ),
      );
    }
    f.push(
      this.keep(
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
          label: 'ln_f',
        }),
      ),
    );
    this.forward = f;
    if (!train) return;

    // Backward. Scratch shared by all layers.
    const dres = this.buf('dres', N * d);
    const dln = this.buf('dln', N * d);
    const dy = this.buf('dy', N * d);
    const dqkv = this.buf('dqkv', N * 3 * d);
    const dfc = this.buf('dfc', N * 4 * d);
    const ones = this.buf('ones', N);
    gpu.write(ones, new Float32Array(N).fill(1));
    this.index = createEmbeddingIndex(gpu, N, 'embedding index');

    // Gradients of y = x·W + b given dy: dx (overwritten), dW += xᵀ·dy, db += 1ᵀ·dy.
    const linearBack = async (
      x: GPUBuffer,
      dyb: GPUBuffer,
      W: TensorRef,
      dW: TensorRef,
      db: TensorRef,
      dx: GPUBuffer,
      nIn: number,
      nOut: number,
      label: string,
    ) => [
      ...this.keep(
        await matmul(gpu, { M: N, N: nIn, K: nOut, transB: true, a: at(dyb), b: W, c: at(dx), label: `${label} dx` }),
      ),
      ...this.keep(
        await matmul(gpu, {
          M: nIn,
          N: nOut,
          K: N,
          transA: true,
          beta: 1,
          a: at(x),
          b: at(dyb),
          c: dW,
          label: `${label} dW`,
        }),
      ),
      ...this.keep(
        await matmul(gpu, { M: 1, N: nOut, K: N, beta: 1, a: at(ones), b: at(dyb), c: db, label: `${label} db` }),
      ),
    ];

    const b: Command[] = [{ clear: dres }];
    b.push(
      ...this.keep(
        await layerNormBackward(gpu, {
          rows: N,
          cols: d,
          dout: at(this.dhf!),
          x: at(xL),
          weight: this.P('transformer.ln_f.weight'),
          mean: at(lnfStats),
          rstd: at(lnfStats, N),
          dx: at(dres),
          dweight: this.G('transformer.ln_f.weight'),
          dbias: this.G('transformer.ln_f.bias'),
          label: 'ln_f backward',
        }),
      ),
    );
    for (let l = L - 1; l >= 0; l--) {
      const a = this.layers[l];
      // dres = dL/dx_{l+1}: the MLP branch's output gradient, and (unchanged) dL/dxm's residual share.
      b.push(
        ...(await linearBack(
          a.gelu,
          dres,
          this.PB(l, 'mlp.c_proj.weight'),
          this.GB(l, 'mlp.c_proj.weight'),
          this.GB(l, 'mlp.c_proj.bias'),
          dfc,
          4 * d,
          d,
          `h${l} mlp.c_proj`,
        )),
      );
      b.push(
        this.keep(
          await geluBackward(gpu, {
            n: N * 4 * d,
            x: at(a.fc),
            dout: at(dfc),
            dx: at(dfc),
            label: `h${l} gelu backward`,
          }),
        ),
      );
      b.push(
        ...(await linearBack(
          a.ln2,
          dfc,
          this.PB(l, 'mlp.c_fc.weight'),
          this.GB(l, 'mlp.c_fc.weight'),
          this.GB(l, 'mlp.c_fc.bias'),
          dln,
          d,
          4 * d,
          `h${l} c_fc`,
        )),
      );
      b.push(
        ...this.keep(
          await layerNormBackward(gpu, {
            rows: N,
            cols: d,
            dout: at(dln),
            x: at(a.xm),
            weight: this.PB(l, 'ln_2.weight'),
            mean: at(a.ln2Stats),
            rstd: at(a.ln2Stats, N),
            dx: at(dres),
            dweight: this.GB(l, 'ln_2.weight'),
            dbias: this.GB(l, 'ln_2.bias'),
            label: `h${l} ln_2 backward`,
          }),
        ),
      );
      b.push(
        ...(await linearBack(
          a.y,
          dres,
          this.PB(l, 'attn.c_proj.weight'),
          this.GB(l, 'attn.c_proj.weight'),
          this.GB(l, 'attn.c_proj.bias'),
          dy,
          d,
          d,
          `h${l} attn.c_proj`,
        )),
      );
      b.push(
        ...this.keep(
          await attentionBackward(gpu, {
            B,
            T,
            d,
            nHead: H,
            causal,
            lengths: this.lengths && at(this.lengths),
            qkv: at(a.qkv),
            dout: at(dy),
            dqkv: at(dqkv),
            layer: a.att,
            scratch: this.scratch,
            label: `h${l} attn backward`,
          }),
        ),
      );
      b.push(
        ...(await linearBack(
          a.ln1,
          dqkv,
          this.PB(l, 'attn.c_attn.weight'),
          this.GB(l, 'attn.c_attn.weight'),
          this.GB(l, 'attn.c_attn.bias'),
          dln,
          d,
          3 * d,
          `h${l} c_attn`,
        )),
      );
      b.push(
        ...this.keep(
          await layerNormBackward(gpu, {
            rows: N,
            cols: d,
            dout: at(dln),
            x: at(a.x),
            weight: this.PB(l, 'ln_1.weight'),
            mean: at(a.ln1Stats),
            rstd: at(a.ln1Stats, N),
            dx: at(dres),
            dweight: this.GB(l, 'ln_1.weight'),
            dbias: this.GB(l, 'ln_1.bias'),
            label: `h${l} ln_1 backward`,
          }),
        ),
      );
    }
    b.push(
      ...this.keep(
        await embeddingBackward(gpu, {
          B,
          T,
          d,
          dout: at(dres),
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

  async readParams(): Promise<Float32Array> {
    return this.gpu.readF32(this.params, 0, this.layout.total);
  }

  writeParams(params: Float32Array): void {
    if (params.length !== this.layout.total)
      throw new HlmError(`expected ${this.layout.total} parameters, got ${params.length}`);
    this.gpu.write(this.params, params);
  }

  async readGrads(): Promise<Float32Array> {
    if (!this.grads) throw new HlmError('this model was built without gradients');
    return this.gpu.readF32(this.grads, 0, this.layout.total);
  }

  destroy(): void {
    this.gpu.release(...this.dispatches);
    this.gpu.free(
      ...this.buffers,
      this.scratch.qkvh,
      this.scratch.dqkvh,
      this.scratch.yh,
      this.scratch.datt,
      ...this.layers.map((l) => l.att.att),
    );
    if (this.index)
      this.gpu.free(this.index.order.buffer, this.index.starts.buffer, this.index.uniq.buffer, this.index.count.buffer);
  }
}
