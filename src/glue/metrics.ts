// The official GLUE dev metrics, computed in float64 on the host, and the GLUE average.
//
// Every metric returns a fraction (accuracy and F1 in [0, 1], correlations in [-1, 1]); GLUE tables
// print them ×100. Degenerate inputs give a defined number, never NaN:
//   - F1 with no true positives is 0 (as scikit-learn's zero_division default).
//   - Matthews correlation is 0 when either the predictions or the labels are constant (a zero
//     denominator), as scikit-learn returns.
//   - Pearson and Spearman are 0 when either input is constant (zero variance; SciPy gives NaN).
// Inputs must have equal, non-zero lengths and finite values (a diverged model's NaN prediction
// is a RangeError, not a silent NaN score).
import { checkPairs, pearson, spearman } from '../util/stats.js';
import { GLUE_TASKS, TASKS, type GlueMetricName, type GlueSplit, type GlueTask } from './data.js';

const sqrt = Math.sqrt;
const max = Math.max;
const min = Math.min;

/** Fraction of predictions equal to their label. */
export function accuracy(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  const n = checkPairs('accuracy', pred, gold);
  let hit = 0;
  for (let i = 0; i < n; i++) if (pred[i] === gold[i]) hit++;
  return hit / n;
}

/** F1 of the positive class (default 1): 2·tp / (2·tp + fp + fn); 0 when there is no true positive. */
export function f1(pred: ArrayLike<number>, gold: ArrayLike<number>, positive = 1): number {
  const n = checkPairs('f1', pred, gold);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < n; i++) {
    const p = pred[i] === positive;
    const g = gold[i] === positive;
    if (p && g) tp++;
    else if (p) fp++;
    else if (g) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/**
 * Matthews correlation coefficient over any number of classes (Gorodkin's R_K, which is the
 * usual (tp·tn − fp·fn)/√(…) for two classes); 0 when the denominator is 0 (a constant predictor
 * or constant labels).
 */
export function matthews(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  const n = checkPairs('matthews', pred, gold);
  const predCount = new Map<number, number>();
  const goldCount = new Map<number, number>();
  let correct = 0;
  for (let i = 0; i < n; i++) {
    predCount.set(pred[i], (predCount.get(pred[i]) ?? 0) + 1);
    goldCount.set(gold[i], (goldCount.get(gold[i]) ?? 0) + 1);
    if (pred[i] === gold[i]) correct++;
  }
  let pt = 0;
  let pp = 0;
  let tt = 0;
  for (const [k, p] of predCount) {
    pp += p * p;
    pt += p * (goldCount.get(k) ?? 0);
  }
  for (const t of goldCount.values()) tt += t * t;
  const s = n;
  const den = (s * s - pp) * (s * s - tt);
  if (den === 0) return 0;
  const r = (correct * s - pt) / sqrt(den);
  return max(-1, min(1, r));
}

export interface TaskScore {
  task: GlueTask;
  /** The task's metrics as GLUE reports them (fractions), in TASKS[task].metrics order. */
  metrics: Partial<Record<GlueMetricName, number>>;
  /** The task's single number: the mean of its metrics. */
  score: number;
}

/** Predictions or labels: one array, or one per eval split (MNLI: dev_matched and dev_mismatched). */
export type SplitValues = ArrayLike<number> | Readonly<Partial<Record<GlueSplit, ArrayLike<number>>>>;

function forSplit(task: GlueTask, v: SplitValues, split: GlueSplit, what: string): ArrayLike<number> {
  if (typeof (v as ArrayLike<number>).length === 'number') {
    if (TASKS[task].evalSplits.length > 1) {
      throw new RangeError(
        `${TASKS[task].title}: ${what} must be given per split (${TASKS[task].evalSplits.join(', ')})`,
      );
    }
    return v as ArrayLike<number>;
  }
  const got = (v as Partial<Record<GlueSplit, ArrayLike<number>>>)[split];
  if (!got) throw new RangeError(`${TASKS[task].title}: no ${what} for ${split}`);
  return got;
}

/**
 * A task's dev metrics as GLUE reports them: CoLA MCC; STS-B Pearson and Spearman; MRPC and QQP
 * F1 and accuracy; MNLI matched and mismatched accuracy (pass { dev_matched, dev_mismatched });
 * accuracy for SST-2, QNLI, RTE and WNLI. `score` is the mean of those metrics.
 */
export function taskScore(task: GlueTask, predictions: SplitValues, labels: SplitValues): TaskScore {
  const spec = TASKS[task];
  const dev = (): [ArrayLike<number>, ArrayLike<number>] => [
    forSplit(task, predictions, 'dev', 'predictions'),
    forSplit(task, labels, 'dev', 'labels'),
  ];
  const metrics: Partial<Record<GlueMetricName, number>> = {};
  for (const m of spec.metrics) {
    switch (m) {
      case 'mcc':
        metrics.mcc = matthews(...dev());
        break;
      case 'accuracy':
        metrics.accuracy = accuracy(...dev());
        break;
      case 'f1':
        metrics.f1 = f1(...dev());
        break;
      case 'pearson':
        metrics.pearson = pearson(...dev());
        break;
      case 'spearman':
        metrics.spearman = spearman(...dev());
        break;
      case 'matched_accuracy':
        metrics.matched_accuracy = accuracy(
          forSplit(task, predictions, 'dev_matched', 'predictions'),
          forSplit(task, labels, 'dev_matched', 'labels'),
        );
        break;
      case 'mismatched_accuracy':
        metrics.mismatched_accuracy = accuracy(
          forSplit(task, predictions, 'dev_mismatched', 'predictions'),
          forSplit(task, labels, 'dev_mismatched', 'labels'),
        );
        break;
    }
  }
  const vals = spec.metrics.map((m) => metrics[m]!);
  return { task, metrics, score: vals.reduce((s, x) => s + x, 0) / vals.length };
}

/**
 * The GLUE average the usual way: per task the mean of its metrics (TaskScore.score), then the
 * unweighted mean over the tasks given (in GLUE's task order). Throws when none is given.
 */
export function glueAverage(scores: readonly TaskScore[]): number {
  if (scores.length === 0) throw new RangeError('glueAverage: no task scores');
  const seen = new Set<GlueTask>();
  for (const s of scores) {
    if (seen.has(s.task)) throw new RangeError(`glueAverage: ${TASKS[s.task].title} given twice`);
    seen.add(s.task);
  }
  const ordered = GLUE_TASKS.filter((t) => seen.has(t)).map((t) => scores.find((s) => s.task === t)!);
  return ordered.reduce((s, x) => s + x.score, 0) / ordered.length;
}

export interface MeanStd {
  mean: number;
  std: number;
  n: number;
}

/** Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value). */
export function meanStd(values: readonly number[]): MeanStd {
  const n = values.length;
  if (n === 0) throw new RangeError('meanStd: no values');
  for (const v of values) if (!Number.isFinite(v)) throw new RangeError(`meanStd: value ${v}`);
  let mean = 0;
  for (const v of values) mean += v;
  mean /= n;
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  return { mean, std: n > 1 ? sqrt(ss / (n - 1)) : 0, n };
}

export interface SeedSummary {
  task: GlueTask;
  /** Mean and std of each metric over the seeds. */
  metrics: Partial<Record<GlueMetricName, MeanStd>>;
  /** Mean and std of the task score over the seeds. */
  score: MeanStd;
}

/** Aggregates one task's scores from several seeds (all must be the same task). */
export function summarizeSeeds(runs: readonly TaskScore[]): SeedSummary {
  if (runs.length === 0) throw new RangeError('summarizeSeeds: no runs');
  const task = runs[0].task;
  for (const r of runs)
    if (r.task !== task) throw new RangeError(`summarizeSeeds: mixes ${TASKS[task].title} and ${TASKS[r.task].title}`);
  const metrics: Partial<Record<GlueMetricName, MeanStd>> = {};
  for (const m of TASKS[task].metrics) metrics[m] = meanStd(runs.map((r) => r.metrics[m]!));
  return { task, metrics, score: meanStd(runs.map((r) => r.score)) };
}
