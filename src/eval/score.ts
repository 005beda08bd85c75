// Batched log-likelihood scoring on the GPU, for LAMBADA and for `hlm serve`'s echoed prompts.
// A Scorer is one forward-only model of B rows × T positions, built once and run batch after
// batch. Each row holds one input, right-padded (the decoder is causal, so padding never
// changes earlier positions). Only the target positions go through the vocabulary head: after
// the forward, copies gather each row's last len(targets) hidden states into a packed [n, d]
// buffer (the batch's n targets back to back, no padding between rows), and the cross-entropy
// head (forward only) writes −log p(target) and the argmax for those rows alone. The head is
// built for a few sizes (powers of two up to B·maxTargets) and a batch runs the smallest that
// holds its n targets, so short or partly filled batches cost what they hold. Per batch the
// host reads back just the n losses and argmaxes.
//
// A target of −1 asks for the argmax alone (the next token after the input). With
// argmaxLogprobs, log p(argmax) is known too (OpenAI's top-1 logprob): where the target is the
// argmax it is the target's own value (so the two compare equal); elsewhere it is
// log p(target) + h·(E[argmax] − E[target]) in float64 on the host, from the n hidden states
// read back and the host's copy of the output matrix E (log p(x) = h·E[x] − lse, and the
// loss gives lse), without a second pass over the vocabulary. A −1 target scores token 0 on
// the GPU for its lse.
//
// The head is the checkpoint's output projection (outputWeight, src/model/params.ts):
// `lm_head.weight` when the model has an untied head (e.g. one fitted by head fine-tuning),
// otherwise the tied input embeddings, which is also how a headless (CWT) checkpoint is scored.
// With packed weights (ScorerOptions.weights, src/model/quantize.ts) the model and the head read them packed.
import type { Command, Dispatch, Gpu } from '../gpu/device.js';
import type { GpuScope } from '../gpu/scope.js';
import { HlmError } from '../errors.js';
import { crossEntropyHead } from '../kernels/crossentropy.js';
import type { WeightFormat } from '../kernels/matmul-q.js';
import type { ModelConfig } from '../model/config.js';
import { Gpt2 } from '../model/gpt2.js';
import { outputWeight } from '../model/params.js';
import { log } from '../log.js';
import { aggregateLambada, type LambadaMetrics, type LambadaRequest, type PassageScore } from './lambada.js';

const F32 = 4;
/** Default tokens per forward pass (B·T) when no batch size is given. */
export const DEFAULT_TOKENS_PER_BATCH = 4096;
const MAX_DEFAULT_BATCH = 64;
/** The smallest head. */
const MIN_HEAD_ROWS = 16;

/** One row of a batch: the model's input, and the tokens predicted at its last targets.length positions. */
export interface ScoreRow {
  input: readonly number[];
  /** Token ids, or −1 where only the argmax is wanted. At most input.length of them. */
  targets: readonly number[];
}

export interface RowScore {
  /** log p(target | everything before it) per target; NaN where the target is −1. */
  logprobs: number[];
  /** The model's argmax at each target position (first index on ties). */
  argmax: number[];
  /** log p(argmax) per target position; only with argmaxLogprobs. */
  argmaxLogprobs?: number[];
}

export interface ScorerShape {
  /** Rows per batch. */
  B: number;
  /** Longest input (≤ n_positions). */
  T: number;
  /** Most targets in a row (≤ T). */
  maxTargets: number;
}

export interface ScorerOptions {
  /** Allocate under this scope (default: a scope of its own). */
  scope?: GpuScope;
  /** The flat parameters on the host, for argmaxLogprobs when `weights` is a shared model. */
  hostParams?: Float32Array;
  /** How a model the scorer builds stores the parameters it is given (default f32; packed: no argmaxLogprobs). */
  weights?: WeightFormat;
}

export class Scorer {
  private readonly heads = new Map<number, Dispatch[]>();
  /** Rows the packed buffers hold: B·maxTargets. */
  private readonly capacity: number;

  private constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly shape: ScorerShape,
    /** The forward model; its parameters can be shared with other models (Gpt2Options.shareWith). */
    readonly model: Gpt2,
    private readonly scope: GpuScope,
    private readonly opts: ScorerOptions,
    private readonly hK: GPUBuffer,
    private readonly targets: GPUBuffer,
    private readonly losses: GPUBuffer,
    private readonly argmax: GPUBuffer,
  ) {
    this.capacity = shape.B * shape.maxTargets;
  }

  /**
   * A scorer for a decoder. `weights`: the flat parameters (paramLayout(config) order, uploaded), or a model whose
   * parameter buffer to share (then give opts.hostParams for argmaxLogprobs).
   */
  static async create(
    gpu: Gpu,
    config: ModelConfig,
    weights: Float32Array | Gpt2,
    shape: ScorerShape,
    opts: ScorerOptions = {},
  ): Promise<Scorer> {
    if (!config.causal)
      throw new HlmError(
        'scoring next-token predictions needs a decoder: the checkpoint is an encoder (causal: false)',
      );
    const { B, T, maxTargets } = shape;
    for (const [k, v] of Object.entries(shape))
      if (!(Number.isInteger(v) && v >= 1)) throw new HlmError(`scorer: ${k} must be a positive integer, got ${v}`);
    if (T > config.n_positions) throw new HlmError(`scorer: T ${T} exceeds n_positions ${config.n_positions}`);
    if (maxTargets > T) throw new HlmError(`scorer: maxTargets ${maxTargets} exceeds T ${T}`);
    const K = B * maxTargets;
    const scope = opts.scope ? opts.scope.scope(`scorer ${B}x${T}`) : gpu.scope(`scorer ${B}x${T}`);
    try {
      const shared = weights instanceof Gpt2 ? weights : undefined;
      const model = await Gpt2.create(gpu, config, {
        B,
        T,
        train: false,
        shareWith: shared,
        scope,
        weights: opts.weights ?? shared?.weights,
      });
      if (!shared) model.writeParams(weights as Float32Array);
      const hostParams = opts.hostParams ?? (shared ? undefined : (weights as Float32Array));
      return new Scorer(
        gpu,
        config,
        { B, T, maxTargets },
        model,
        scope,
        { ...opts, hostParams },
        scope.buffer('scored hidden states', K * config.n_embd * F32),
        scope.buffer('scored targets', K * 4),
        scope.buffer('scored losses', K * 4),
        scope.buffer('scored argmax', K * 4),
      );
    } catch (e) {
      scope.release();
      throw e;
    }
  }

  /** The head over the first N packed rows (N a power of two ≥ MIN_HEAD_ROWS, or the capacity). */
  private async head(n: number): Promise<Dispatch[]> {
    let N = MIN_HEAD_ROWS;
    while (N < n) N *= 2;
    N = Math.min(N, this.capacity);
    let head = this.heads.get(N);
    if (!head) {
      const { config } = this;
      // Forward only: the fused head stores no logits, only small softmax partials per row.
      head = this.scope.keep(
        (
          await crossEntropyHead(this.gpu, {
            N,
            V: config.vocab_size,
            d: config.n_embd,
            h: { buffer: this.hK },
            wte: this.model.outputWeight(),
            targets: { buffer: this.targets },
            losses: { buffer: this.losses },
            argmax: { buffer: this.argmax },
            label: `scoring head ${N}`,
          })
        ).dispatches,
      );
      this.heads.set(N, head);
    }
    return head;
  }

  private check(rows: readonly ScoreRow[]): void {
    const { B, T, maxTargets } = this.shape;
    const V = this.config.vocab_size;
    if (rows.length < 1 || rows.length > B) throw new HlmError(`a scoring batch has 1..${B} rows, got ${rows.length}`);
    rows.forEach((r, i) => {
      const L = r.input.length;
      if (L < 1 || L > T) throw new HlmError(`row ${i}: an input of ${L} tokens; this scorer takes 1..${T}`);
      const n = r.targets.length;
      if (n < 1 || n > Math.min(L, maxTargets))
        throw new HlmError(`row ${i}: ${n} targets; 1..${Math.min(L, maxTargets)} fit`);
      for (const t of r.input)
        if (!(Number.isInteger(t) && t >= 0 && t < V))
          throw new HlmError(`row ${i}: token ${t} is outside the model's vocabulary (0..${V - 1})`);
      for (const t of r.targets)
        if (!(Number.isInteger(t) && t >= -1 && t < V))
          throw new HlmError(`row ${i}: target ${t} is outside the model's vocabulary (0..${V - 1}, or −1)`);
    });
  }

  /** Score up to B rows in one forward pass. */
  async score(rows: readonly ScoreRow[], o: { argmaxLogprobs?: boolean } = {}): Promise<RowScore[]> {
    this.check(rows);
    if (o.argmaxLogprobs && !this.opts.hostParams)
      throw new HlmError('argmaxLogprobs needs the parameters on the host (ScorerOptions.hostParams)');
    // The host's correction uses the f32 output matrix, which packed weights no longer equal.
    if (o.argmaxLogprobs && this.model.weights !== 'f32')
      throw new HlmError(`argmaxLogprobs needs f32 weights; this scorer's are ${this.model.weights}`);
    const { gpu, model } = this;
    const { B, T } = this.shape;
    const d = this.config.n_embd;
    const starts: number[] = [];
    let n = 0;
    for (const r of rows) {
      starts.push(n);
      n += r.targets.length;
    }
    const head = await this.head(n);
    const tokens = new Uint32Array(B * T);
    const tgt = new Int32Array(this.capacity).fill(-1);
    const copies: Command[] = [];
    rows.forEach((r, row) => {
      const L = r.input.length;
      const nt = r.targets.length;
      tokens.set(r.input, row * T);
      // An argmax-only position still needs a loss (for its lse) when log p(argmax) is asked for.
      tgt.set(o.argmaxLogprobs ? r.targets.map((t) => Math.max(t, 0)) : r.targets, starts[row]);
      copies.push({
        copy: {
          from: model.hf,
          fromOffset: (row * T + L - nt) * d * F32,
          to: this.hK,
          toOffset: starts[row] * d * F32,
          size: nt * d * F32,
        },
      });
    });
    model.setTokens(tokens);
    gpu.write(this.targets, tgt);
    await gpu.run([...model.forward, ...copies, ...head], 'scoring batch');
    const losses = await gpu.readF32(this.losses, 0, n);
    const amax = await gpu.read(this.argmax, Uint32Array, 0, n);
    const out: RowScore[] = rows.map((r, row) => ({
      logprobs: r.targets.map((t, j) => (t < 0 ? NaN : -losses[starts[row] + j])),
      argmax: r.targets.map((_, j) => amax[starts[row] + j]),
    }));
    if (!o.argmaxLogprobs) return out;
    const needed = rows.some((r, row) => r.targets.some((t, j) => t !== amax[starts[row] + j]));
    const h = needed ? await gpu.readF32(this.hK, 0, n * d) : undefined;
    const E = this.opts.hostParams!;
    const e0 = this.model.layout.byName.get(outputWeight(this.config))!.offset;
    rows.forEach((r, row) => {
      out[row].argmaxLogprobs = r.targets.map((t, j) => {
        const k = starts[row] + j;
        const a = amax[k];
        if (t === a) return out[row].logprobs[j];
        const anchor = Math.max(t, 0);
        let diff = 0;
        for (let c = 0; c < d; c++) diff += h![k * d + c] * (E[e0 + a * d + c] - E[e0 + anchor * d + c]);
        return -losses[k] + diff;
      });
    });
    return out;
  }

  destroy(): void {
    this.scope.release();
  }
}

export interface ScoredPassage extends PassageScore {
  index: number;
  /** The model's argmax at each target position. */
  predicted: number[];
}

export interface ScoreOptions {
  /** Passages per forward pass; default: about DEFAULT_TOKENS_PER_BATCH tokens per pass. */
  batchSize?: number;
  /** Called after each batch with the passages scored, their total and the seconds so far. */
  onBatch?: (done: number, total: number, seconds: number) => void;
  /** How the weights are stored on the GPU (default f32). */
  weights?: WeightFormat;
}

export interface ScoreResult {
  scores: ScoredPassage[];
  B: number;
  T: number;
  /** Seconds spent in the batched forward passes (upload, GPU work and read-back). */
  seconds: number;
}

/** B and T for a set of requests: T = the longest input, B from the option or a token budget. */
export function chooseBatchShape(
  requests: readonly LambadaRequest[],
  nPositions: number,
  batchSize?: number,
): { B: number; T: number } {
  if (requests.length === 0) throw new HlmError('no passages to score');
  let T = 1;
  for (const r of requests) T = Math.max(T, r.input.length);
  if (T > nPositions) throw new HlmError(`a request of ${T} tokens exceeds n_positions ${nPositions}`);
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1))
    throw new HlmError(`batch size must be a positive integer, got ${batchSize}`);
  const B = Math.min(
    requests.length,
    batchSize ?? Math.max(1, Math.min(MAX_DEFAULT_BATCH, Math.floor(DEFAULT_TOKENS_PER_BATCH / T))),
  );
  return { B, T };
}

/** Score every LAMBADA request with the model (flat parameters in paramLayout(config) order). */
export async function scoreRequests(
  gpu: Gpu,
  config: ModelConfig,
  params: Float32Array,
  requests: readonly LambadaRequest[],
  options: ScoreOptions = {},
): Promise<ScoreResult> {
  if (!config.causal)
    throw new HlmError('LAMBADA scores next-token predictions: the checkpoint is an encoder (causal: false)');
  const { B, T } = chooseBatchShape(requests, config.n_positions, options.batchSize);
  const V = config.vocab_size;
  for (const r of requests) {
    for (const t of [...r.input, ...r.targetTokens]) {
      if (!(Number.isInteger(t) && t >= 0 && t < V))
        throw new HlmError(`passage ${r.index}: token ${t} is outside the model's vocabulary (0..${V - 1})`);
    }
  }
  let maxTargets = 1;
  for (const r of requests) maxTargets = Math.max(maxTargets, r.targetTokens.length);
  const scorer = await Scorer.create(gpu, config, params, { B, T, maxTargets }, { weights: options.weights });
  try {
    const scores: ScoredPassage[] = [];
    const t0 = performance.now();
    const batches = Math.ceil(requests.length / B);
    for (let b0 = 0; b0 < requests.length; b0 += B) {
      const batch = requests.slice(b0, b0 + B);
      const rows = await scorer.score(batch.map((r) => ({ input: r.input, targets: r.targetTokens })));
      batch.forEach((r, i) => {
        const { logprobs, argmax } = rows[i];
        let ll = 0;
        for (const lp of logprobs) ll += lp;
        if (!Number.isFinite(ll))
          throw new HlmError(`passage ${r.index}: the log-likelihood is ${ll} (non-finite model output)`);
        const greedy = argmax.every((a, j) => a === r.targetTokens[j]);
        scores.push({ index: r.index, logLikelihood: ll, greedy, predicted: argmax });
      });
      const done = b0 / B + 1;
      if (done % 10 === 0 || done === batches) log.debug(`lambada: batch ${done}/${batches}`);
      options.onBatch?.(Math.min(b0 + B, requests.length), requests.length, (performance.now() - t0) / 1000);
    }
    return { scores, B, T, seconds: (performance.now() - t0) / 1000 };
  } finally {
    scorer.destroy();
  }
}

export { aggregateLambada, type LambadaMetrics };
