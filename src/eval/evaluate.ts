// `hlm eval-lambada` as a function: checkpoint + data file in, metrics and per-passage
// predictions out. Only the checkpoint's config.json, model.safetensors and tokenizer (its
// tokenizer.json, or GPT-2's for a GPT-2 vocabulary) are used: no hlm-only state.
import type { Gpu } from '../gpu/device.js';
import type { WeightFormat } from '../kernels/matmul-q.js';
import { tokenizerForCheckpoint, type Tokenizer } from '../data/tokenizer.js';
import { loadCheckpoint } from '../model/checkpoint.js';
import { outputWeight } from '../model/params.js';
import { weightBytes } from '../model/quantize.js';
import {
  lambadaRequest,
  readLambadaFile,
  aggregateLambada,
  type LambadaFormat,
  type LambadaMetrics,
} from './lambada.js';
import { scoreRequests } from './score.js';

export interface LambadaPrediction {
  index: number;
  /** The passage as the file holds it (the harness's doc), and its split. */
  doc: Record<string, unknown>;
  context: string;
  target: string;
  /** The argmax tokens at the target positions, decoded. */
  predicted: string;
  predictedIds: number[];
  targetIds: number[];
  logLikelihood: number;
  correct: boolean;
}

export interface EvalLambadaOptions {
  model: string;
  data: string;
  format?: LambadaFormat;
  limit?: number;
  batchSize?: number;
  /** Progress after each batch of passages (see ScoreOptions.onBatch). */
  onBatch?: (done: number, total: number, seconds: number) => void;
  /** How the weights are stored on the GPU (default f32): quantized once when loaded. */
  weights?: WeightFormat;
}

export interface EvalLambadaResult extends LambadaMetrics {
  task: 'lambada_openai';
  objective: string;
  /** The output projection used: 'lm_head.weight' or the tied 'transformer.wte.weight'. */
  head: string;
  /** The weights' format, and the bytes they take on the GPU. */
  weights: WeightFormat;
  weightBytes: number;
  tokenizer: string;
  batchSize: number;
  seqLen: number;
  /** Passages per second over tokenization and the batched forward passes (model load and pipeline builds excluded). */
  passagesPerSecond: number;
  seconds: number;
  device: string;
  /** Passages in the data file (before --limit). */
  total: number;
  /** performance.now() seconds at the start and the end of the evaluation (the harness's start/end_time). */
  start: number;
  end: number;
  predictions: LambadaPrediction[];
}

async function decodeSafe(tokenizer: Tokenizer, ids: number[]): Promise<string> {
  if (ids.every((t) => t < tokenizer.vocabSize)) return tokenizer.decode(ids);
  const parts: string[] = [];
  for (const t of ids) parts.push(t < tokenizer.vocabSize ? await tokenizer.decode([t]) : `<id ${t}>`);
  return parts.join('');
}

export async function evalLambada(gpu: Gpu, o: EvalLambadaOptions): Promise<EvalLambadaResult> {
  const start = performance.now() / 1000;
  const ck = await loadCheckpoint(o.model, { optimizer: false });
  const tokenizer = await tokenizerForCheckpoint(ck.dir, ck.config.vocab_size);
  const { passages, total: inFile } = readLambadaFile(o.data, { format: o.format, limit: o.limit });
  const t0 = performance.now();
  const requests = [];
  for (const p of passages)
    requests.push(await lambadaRequest(tokenizer, p, ck.config.n_positions, `${o.data}:${p.line}`));
  const tokenizeSeconds = (performance.now() - t0) / 1000;
  const { scores, B, T, seconds } = await scoreRequests(gpu, ck.config, ck.params, requests, {
    batchSize: o.batchSize,
    onBatch: o.onBatch,
    weights: o.weights,
  });
  const predictions: LambadaPrediction[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    const r = requests[i];
    predictions.push({
      index: s.index,
      doc: passages[i].doc ?? { text: passages[i].text },
      context: r.context,
      target: r.target,
      predicted: await decodeSafe(tokenizer, s.predicted),
      predictedIds: s.predicted,
      targetIds: r.targetTokens,
      logLikelihood: s.logLikelihood,
      correct: s.greedy,
    });
  }
  const metrics = aggregateLambada(scores);
  const total = tokenizeSeconds + seconds;
  return {
    task: 'lambada_openai',
    ...metrics,
    objective: ck.config.objective,
    head: outputWeight(ck.config),
    weights: o.weights ?? 'f32',
    weightBytes: weightBytes(ck.layout, o.weights ?? 'f32'),
    tokenizer: tokenizer.name,
    batchSize: B,
    seqLen: T,
    passagesPerSecond: metrics.n / total,
    seconds: total,
    device: gpu.name,
    total: inFile,
    start,
    end: performance.now() / 1000,
    predictions,
  };
}
