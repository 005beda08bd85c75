// What an experiment records (`<out>/result.json`, schema hlm.experiment/1, checked by
// hlm.experiment.schema.json): every training run with its curve, every score of every seed, the
// phases with their state (so that a run can resume phase by phase), the budget planned and used,
// and the machine. The report (report.ts) is derived from it alone, so it can be written again at
// any time. Variants are what an experiment compares: objectives (ce, cwt) or whitening methods.
// Phases are the units an experiment resumes by; a run or score may name a report section that
// gathers several phases (both objectives' pretraining, every GLUE task) into one table and plot.
import type { BenchRecord } from '../bench/record.js';
import { HlmError } from '../errors.js';
export { meanStd, type MeanStd } from '../glue/metrics.js';
import { metricCurve, readMetricsFile, type MetricsRow } from './metrics.js';

export const EXPERIMENT_SCHEMA = 'hlm.experiment/1';

export type PhaseStatus = 'pending' | 'running' | 'done' | 'failed';

/** A stage of the experiment (pretrain, glue, xnli, whitening, …) and how far it got. */
export interface Phase {
  name: string;
  status: PhaseStatus;
  /** ISO 8601. */
  started?: string;
  finished?: string;
  /** Wall time spent in the phase, summed over resumptions. */
  seconds?: number;
  /** The message, when failed. */
  error?: string;
  /**
   * The machine's load averages over 1, 5 and 15 minutes (os.loadavg) when the phase last started and ended: other
   * processes slow a wall-clock budget down.
   */
  loadStart?: number[];
  loadEnd?: number[];
}

/** What an experiment may spend, or did spend. Absent fields are not limited (planned) or not measured (used). */
export interface Budget {
  seconds?: number;
  tokens?: number;
  steps?: number;
}

/** One point of a training curve, with metrics.jsonl's names (elapsed_s summed over resumptions). */
export interface CurvePoint {
  step: number;
  tokens: number;
  elapsed_s: number;
  loss?: number;
  val_loss?: number;
}

/** One training run: a variant (objective) and a seed. */
export interface TrainingRun {
  /** Unique within the experiment, e.g. "cwt-seed2". */
  id: string;
  phase: string;
  /** The report section it is shown in (default: its phase). */
  section?: string;
  variant: string;
  seed: number;
  /** The run directory (metrics.jsonl, checkpoint/), relative to the experiment's --out when inside it. */
  dir?: string;
  steps: number;
  /** When the run was interrupted: the checkpoint step its last process continued from. */
  resumedFrom?: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  /** Peak GPU memory hlm allocated during the run. */
  peakMemoryBytes: number;
  finalLoss: number;
  valLoss?: number;
  curve: CurvePoint[];
}

/** One number of one seed: a metric of a task (or data set) for a variant. */
export interface Score {
  phase: string;
  /** The report section it is shown in (default: its phase); numbers on one scale share a section. */
  section?: string;
  /** The task or data set: CoLA, STS-B, xnli-fra, SICK-R, … */
  task: string;
  /** mcc, acc, f1, pearson, spearman, … (scores ×100 where the benchmark reports them so). */
  metric: string;
  variant: string;
  seed: number;
  value: number;
}

export interface ExperimentResult {
  schema: typeof EXPERIMENT_SCHEMA;
  /** Which experiment: headless, whitening, … */
  experiment: string;
  title: string;
  /** What the variants are: "objective", "method". */
  variantTitle: string;
  /** ISO 8601: when the experiment started, and when this result was last written. */
  created: string;
  updated: string;
  build: BenchRecord['build'];
  hardware: { env: BenchRecord['env']; gpu: BenchRecord['gpu'] | null };
  /** The experiment's settings as run (its flags, presets, data paths). */
  settings: Record<string, unknown>;
  /** `scope` says what the budget covers (e.g. "each objective's pretraining"). */
  budget: { planned: Budget; used: Budget; scope?: string };
  phases: Phase[];
  runs: TrainingRun[];
  scores: Score[];
  notes: string[];
}

/** Values grouped by a key, in first-seen order of the keys. */
export function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = out.get(k);
    if (list) list.push(it);
    else out.set(k, [it]);
  }
  return out;
}

/** Tokens trained on per variant, summed over its runs (every seed), in first-seen order. */
export function tokensPerVariant(result: Pick<ExperimentResult, 'runs'>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of result.runs) out[r.variant] = (out[r.variant] ?? 0) + r.tokens;
  return out;
}

/**
 * A run's curve from its metrics.jsonl: one point a step row, with the validation loss of the
 * evaluation row at the same step where there is one. A resumed run logs again the steps that its
 * interrupted process had logged past its last checkpoint: the later rows replace those.
 */
export function curveFromMetrics(file: string): CurvePoint[] {
  const rows: MetricsRow[] = readMetricsFile(file);
  const steps = metricCurve(rows, 'step', 'loss', file).map((p) => p.x);
  const tokens = metricCurve(rows, 'tokens', 'loss', file).map((p) => p.x);
  const time = metricCurve(rows, 'time', 'loss', file);
  const val = new Map<number, number>();
  for (const r of rows) if (r.values.val_loss !== undefined) val.set(r.values.step, r.values.val_loss);
  const curve: CurvePoint[] = [];
  time.forEach((p, i) => {
    const point: CurvePoint = { step: steps[i], tokens: tokens[i], elapsed_s: p.x, loss: p.y };
    const v = val.get(steps[i]);
    if (v !== undefined) point.val_loss = v;
    while (curve.length && curve[curve.length - 1].step >= point.step) curve.pop();
    curve.push(point);
  });
  return curve;
}

/** The report section of a run or score. */
export function sectionOf(x: { phase: string; section?: string }): string {
  return x.section ?? x.phase;
}

/** A fresh result with nothing run yet; `phases` are pending. */
export function newExperimentResult(init: {
  experiment: string;
  title: string;
  variantTitle: string;
  build: ExperimentResult['build'];
  hardware: ExperimentResult['hardware'];
  settings: Record<string, unknown>;
  planned: Budget;
  phases: readonly string[];
  now?: Date;
}): ExperimentResult {
  const names = new Set(init.phases);
  if (names.size !== init.phases.length) throw new HlmError(`phase names repeat: ${init.phases.join(', ')}`);
  const now = (init.now ?? new Date()).toISOString();
  return {
    schema: EXPERIMENT_SCHEMA,
    experiment: init.experiment,
    title: init.title,
    variantTitle: init.variantTitle,
    created: now,
    updated: now,
    build: init.build,
    hardware: init.hardware,
    settings: init.settings,
    budget: { planned: init.planned, used: {} },
    phases: init.phases.map((name) => ({ name, status: 'pending' as const })),
    runs: [],
    scores: [],
    notes: [],
  };
}
