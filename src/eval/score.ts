// Batched LAMBADA scoring on the GPU. One forward-only model of B rows × T positions (T = the
// longest request, ≤ n_positions) scores B passages per pass: each row holds one request's
// input, right-padded (the decoder is causal, so padding never changes earlier positions).
// Only the target positions go through the vocabulary head: after the forward, copies gather
// each row's last len(target) hidden states into a compact [B·maxTarget, d] buffer, and the
// cross-entropy head (forward only) writes −log p(target) and the argmax for those rows alone.
// Per pass the host reads back just those losses and argmaxes.
//
// The head is the checkpoint's output projection (outputWeight, src/model/params.ts):
// `lm_head.weight` when the model has an untied head (e.g. one fitted by head fine-tuning),
// otherwise the tied input embeddings, which is also how a headless (CWT) checkpoint is scored.
import type { Command, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { crossEntropyHead } from '../kernels/crossentropy.js';
import type { ModelConfig } from '../model/config.js';
import { Gpt2 } from '../model/gpt2.js';
import { log } from '../log.js';
import { aggregateLambada, type LambadaMetrics, type LambadaRequest, type PassageScore } from './lambada.js';

const F32 = 4;
/** Default tokens per forward pass (B·T) when no batch size is given. */
export const DEFAULT_TOKENS_PER_BATCH = 4096;
const MAX_DEFAULT_BATCH = 64;

export interface ScoredPassage extends PassageScore {
  index: number;
  /** The model's argmax at each target position. */
  predicted: number[];
}

export interface ScoreOptions {
  /** Passages per forward pass; default: about DEFAULT_TOKENS_PER_BATCH tokens per pass. */
  batchSize?: number;
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

/** Score every request with the model (flat parameters in paramLayout(config) order). */
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
  const d = config.n_embd;
  for (const r of requests) {
    for (const t of [...r.input, ...r.targetTokens]) {
      if (!(Number.isInteger(t) && t >= 0 && t < V))
        throw new HlmError(`passage ${r.index}: token ${t} is outside the model's vocabulary (0..${V - 1})`);
    }
  }
  let maxTarget = 1;
  for (const r of requests) maxTarget = Math.max(maxTarget, r.targetTokens.length);
  const K = B * maxTarget;

  const scope = gpu.scope('lambada scoring');
  try {
    const model = await Gpt2.create(gpu, config, { B, T, train: false, scope });
    const hK = scope.buffer('lambada target hidden', K * d * F32);
    const targets = scope.buffer('lambada targets', K * 4);
    const losses = scope.buffer('lambada losses', K * 4);
    const argmax = scope.buffer('lambada argmax', K * 4);
    const head = scope.keep(
      (
        await crossEntropyHead(gpu, {
          N: K,
          V,
          d,
          h: { buffer: hK },
          wte: model.output(),
          targets: { buffer: targets },
          losses: { buffer: losses },
          argmax: { buffer: argmax },
          label: 'lambada head',
        })
      ).dispatches,
    );
    model.writeParams(params);
    const scores: ScoredPassage[] = [];
    const t0 = performance.now();
    const batches = Math.ceil(requests.length / B);
    for (let b0 = 0; b0 < requests.length; b0 += B) {
      const batch = requests.slice(b0, b0 + B);
      const tokens = new Uint32Array(B * T);
      const tgt = new Int32Array(K).fill(-1);
      const copies: Command[] = [];
      batch.forEach((r, row) => {
        const L = r.input.length;
        const nt = r.targetTokens.length;
        tokens.set(r.input, row * T);
        tgt.set(r.targetTokens, row * maxTarget);
        copies.push({
          copy: {
            from: model.hf,
            fromOffset: (row * T + L - nt) * d * F32,
            to: hK,
            toOffset: row * maxTarget * d * F32,
            size: nt * d * F32,
          },
        });
      });
      model.setTokens(tokens);
      gpu.write(targets, tgt);
      await gpu.run([...model.forward, ...copies, ...head], 'lambada batch');
      const rows = batch.length * maxTarget;
      const lossRows = await gpu.readF32(losses, 0, rows);
      const argRows = await gpu.read(argmax, Uint32Array, 0, rows);
      batch.forEach((r, row) => {
        let ll = 0;
        let greedy = true;
        const predicted: number[] = [];
        r.targetTokens.forEach((t, j) => {
          const k = row * maxTarget + j;
          ll -= lossRows[k];
          predicted.push(argRows[k]);
          if (argRows[k] !== t) greedy = false;
        });
        if (!Number.isFinite(ll))
          throw new HlmError(`passage ${r.index}: the log-likelihood is ${ll} (non-finite model output)`);
        scores.push({ index: r.index, logLikelihood: ll, greedy, predicted });
      });
      const done = b0 / B + 1;
      if (done % 10 === 0 || done === batches) log.debug(`lambada: batch ${done}/${batches}`);
    }
    return { scores, B, T, seconds: (performance.now() - t0) / 1000 };
  } finally {
    scope.release();
  }
}

export { aggregateLambada, type LambadaMetrics };
