// The equal-budget comparison of the headless paper: the same preset, data, steps, batch and
// optimizer trained once with the vocabulary head (ce) and once headless (cwt), measuring
// training throughput, peak GPU memory hlm allocated, and validation loss. For decoders the
// CWT model is also scored with its tied embeddings as a vocabulary head, so both sit on one
// scale (the CE model's validation loss is that same quantity).
import { join } from 'node:path';
import type { Gpu } from '../gpu/device.js';
import type { Objective } from '../model/config.js';
import { pretrain, type PretrainOptions, type PretrainResult, type Progress } from './pretrain.js';

export interface ComparisonRow {
  objective: Objective;
  tokensPerSecond: number;
  peakGpuBytes: number;
  finalTrainLoss: number;
  /** The objective's own validation loss (CWT's is the in-batch contrastive loss). */
  valLoss: number | null;
  /** Validation cross-entropy over the vocabulary with the tied embeddings. */
  valCe: number | null;
  elapsedSeconds: number;
  checkpoint: string;
}

export interface Comparison {
  device: string;
  arch: PretrainOptions['arch'];
  preset: string;
  steps: number;
  /** Micro-batch rows, micro-batches per step, positions per row. */
  batchSize: number;
  gradAccum: number;
  seqLen: number;
  rows: ComparisonRow[];
  /** cwt tokens/s over ce tokens/s, and cwt peak memory over ce's. */
  speedup: number;
  memoryRatio: number;
}

function row(objective: Objective, r: PretrainResult): ComparisonRow {
  return {
    objective,
    tokensPerSecond: r.tokensPerSecond,
    peakGpuBytes: r.peakGpuBytes,
    finalTrainLoss: r.finalLoss,
    valLoss: r.valLoss,
    valCe: r.valCe,
    elapsedSeconds: r.elapsedSeconds,
    checkpoint: r.checkpoint,
  };
}

export async function compareObjectives(
  gpu: Gpu,
  o: PretrainOptions,
  progress?: (objective: Objective) => Progress | undefined,
): Promise<Comparison> {
  const rows: ComparisonRow[] = [];
  let shape = { batchSize: 0, gradAccum: 1, seqLen: 0 };
  for (const objective of ['ce', 'cwt'] as const) {
    gpu.resetPeak();
    const r = await pretrain(gpu, { ...o, objective, out: join(o.out, objective) }, progress?.(objective));
    shape = { batchSize: r.batchSize, gradAccum: r.gradAccum, seqLen: r.seqLen };
    rows.push(row(objective, r));
  }
  const [ce, cwt] = rows;
  return {
    device: gpu.name,
    arch: o.arch,
    preset: o.preset,
    steps: o.steps,
    ...shape,
    rows,
    speedup: cwt.tokensPerSecond / ce.tokensPerSecond,
    memoryRatio: cwt.peakGpuBytes / ce.peakGpuBytes,
  };
}

/** The comparison as a Markdown table. */
export function comparisonTable(c: Comparison): string {
  const f = (x: number | null, d = 4) => (x === null ? '—' : x.toFixed(d));
  const lines = [
    `${c.arch}, preset ${c.preset}, ${c.steps} steps of ${c.gradAccum > 1 ? `${c.gradAccum}×` : ''}` +
      `${c.batchSize}×${c.seqLen} tokens, on ${c.device}`,
    '',
    '| objective | tokens/s | peak GPU MiB | final train loss | val loss (own) | val CE (tied embeddings) |',
    '|---|---|---|---|---|---|',
    ...c.rows.map(
      (r) =>
        `| ${r.objective} | ${Math.round(r.tokensPerSecond)} | ${(r.peakGpuBytes / 2 ** 20).toFixed(1)} | ` +
        `${f(r.finalTrainLoss)} | ${f(r.valLoss)} | ${f(r.valCe)} |`,
    ),
    '',
    `cwt/ce: ${c.speedup.toFixed(2)}× tokens/s, ${c.memoryRatio.toFixed(2)}× peak memory`,
  ];
  return lines.join('\n');
}
