// A synthetic experiment result: two objectives × three seeds of pretraining with curves,
// GLUE-like scores, and a whitening phase with methods × sets. Deterministic.
import type { ExperimentResult, Score, TrainingRun } from '../../src/report/experiment.js';
import { newExperimentResult } from '../../src/report/experiment.js';

export const OBJECTIVES = ['ce', 'cwt'];
export const SEEDS = [1, 2, 3];
export const METHODS = ['none', 'center', 'uniform', 'zipfian'];
export const STS_SETS = ['STS-B', 'SICK-R', 'STS12'];

function run(variant: string, seed: number, steps: number): TrainingRun {
  const rate = variant === 'ce' ? 40 : 30;
  const tps = (variant === 'ce' ? 1000 : 1300) + 17 * seed;
  const curve = Array.from({ length: steps }, (_, i) => {
    const step = i + 1;
    const loss = 2.5 + 8 * Math.exp(-step / rate) + 0.05 * Math.sin(step + seed);
    return {
      step,
      tokens: step * 2048,
      elapsed_s: (step * 2048) / tps,
      loss,
      ...(step % 20 === 0 ? { val_loss: loss + 0.2 } : {}),
    };
  });
  const last = curve[curve.length - 1];
  return {
    id: `${variant}-seed${seed}`,
    phase: 'pretrain',
    variant,
    seed,
    dir: `pretrain/${variant}-seed${seed}`,
    steps,
    tokens: last.tokens,
    seconds: last.elapsed_s,
    tokensPerSecond: tps,
    peakMemoryBytes: (variant === 'ce' ? 900 : 600) * 2 ** 20 + seed * 2 ** 18,
    finalLoss: last.loss,
    valLoss: last.loss + 0.2,
    curve,
  };
}

export function syntheticResult(steps = 100): ExperimentResult {
  const r = newExperimentResult({
    experiment: 'headless',
    title: 'Headless language modelling: CE against CWT (synthetic)',
    variantTitle: 'objective',
    build: { tool: 'hlm', version: '0.1.0', commit: 'abc1234' },
    hardware: {
      env: { os: 'Linux 6.1', arch: 'x64', cpu: 'Test CPU', cores: 2, memory_bytes: 24 * 2 ** 30, runtime: 'node v20' },
      gpu: {
        backend: 'opengl',
        vendor: 'mesa',
        architecture: 'llvmpipe',
        device: 'llvmpipe',
        kind: 'software',
        features: [],
      },
    },
    settings: { preset: 'tiny', seeds: SEEDS },
    planned: { seconds: 3600, tokens: 6 * steps * 2048 },
    phases: ['pretrain', 'glue'],
    now: new Date('2025-01-01T00:00:00Z'),
  });
  r.runs = OBJECTIVES.flatMap((o) => SEEDS.map((s) => run(o, s, steps)));
  const scores: Score[] = [];
  for (const [task, metric, base] of [
    ['CoLA', 'mcc', 20],
    ['SST-2', 'acc', 80],
    ['MRPC', 'f1', 81],
    ['STS-B', 'spearman', 70],
  ] as const)
    for (const o of OBJECTIVES)
      for (const seed of SEEDS)
        scores.push({
          phase: 'glue',
          task,
          metric,
          variant: o,
          seed,
          value: base + (o === 'cwt' ? 3 : 0) + seed * 0.7,
        });
  r.scores = scores;
  r.phases = r.phases.map((p) => ({ ...p, status: 'done', seconds: 100, finished: '2025-01-01T01:00:00Z' }));
  r.budget.used = { seconds: 3000, tokens: r.runs.reduce((a, x) => a + x.tokens, 0), steps: 6 * steps };
  r.notes = ['Synthetic numbers for tests.'];
  return r;
}

/** A whitening experiment: Spearman ×100 per method and STS set, one value per seed; no training runs. */
export function syntheticWhitening(): ExperimentResult {
  const base = syntheticResult(10);
  const r = newExperimentResult({
    experiment: 'whitening',
    title: 'Zipfian whitening (synthetic)',
    variantTitle: 'method',
    build: base.build,
    hardware: base.hardware,
    settings: {},
    planned: {},
    phases: ['whitening'],
    now: new Date('2025-01-01T00:00:00Z'),
  });
  r.scores = METHODS.flatMap((m, mi) =>
    STS_SETS.flatMap((task, ti) =>
      SEEDS.map((seed) => ({
        phase: 'whitening',
        task,
        metric: 'spearman',
        variant: m,
        seed,
        value: 40 + 5 * mi + ti + seed,
      })),
    ),
  );
  return r;
}
