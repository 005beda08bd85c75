// lm-evaluation-harness's output files for lambada_openai, so that hlm's LAMBADA numbers sit
// beside the harness's own (lm-eval 0.4's EvaluationTracker layout):
//   <output-path>/<model name, sanitized>/results_<date>.json
//   <output-path>/<model name, sanitized>/samples_lambada_openai_<date>.jsonl   (--log-samples)
// The metrics use the harness's formulas (lm_eval/api/metrics.py):
//   acc         = mean(is_greedy);           acc_stderr = sample std / sqrt(n)  (mean_stderr: analytic)
//   perplexity  = exp(−mean(loglikelihood)); perplexity_stderr = bootstrap_stderr(perplexity, lls,
//                 iters = bootstrap_iters): iters // min(1000, iters) chunks of min(1000, iters)
//                 resamples, chunk i drawing with Python's random.Random(i).choices(lls, k=n),
//                 and the sample std of the resampled perplexities. The seeds and draws are
//                 CPython's (python-random.ts), so the value is the harness's own, repeatable.
// With bootstrap_iters 0, or fewer than two passages, the stderrs are "N/A", as in the harness.
// Sums are sequential, as Python's sum() before 3.12.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HlmError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { PyRandom } from './python-random.js';

export const TASK = 'lambada_openai';
/** The harness's default bootstrap_iters. */
export const DEFAULT_BOOTSTRAP_ITERS = 100000;

/** lambada_openai.yaml (lm-eval 0.4), as the harness reports it under `configs`. */
export const LAMBADA_OPENAI_CONFIG = {
  task: TASK,
  tag: ['lambada'],
  dataset_path: 'EleutherAI/lambada_openai',
  dataset_name: 'default',
  dataset_kwargs: { trust_remote_code: true },
  test_split: 'test',
  doc_to_text: "{{text.split(' ')[:-1]|join(' ')}}",
  doc_to_target: "{{' '+text.split(' ')[-1]}}",
  description: '',
  target_delimiter: ' ',
  fewshot_delimiter: '\n\n',
  num_fewshot: 0,
  metric_list: [
    { metric: 'perplexity', aggregation: 'perplexity', higher_is_better: false },
    { metric: 'acc', aggregation: 'mean', higher_is_better: true },
  ],
  output_type: 'loglikelihood',
  repeats: 1,
  should_decontaminate: true,
  doc_to_decontamination_query: '{{text}}',
  metadata: { version: 1.0 },
};

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** The harness's sample_stddev (Bessel's correction). */
export function sampleStddev(xs: ArrayLike<number>): number {
  const mu = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - mu) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

/** mean_stderr: the analytic standard error of a mean. */
export function meanStderr(xs: ArrayLike<number>): number {
  return sampleStddev(xs) / Math.sqrt(xs.length);
}

/** The harness's perplexity aggregation: exp(−mean log-likelihood). */
export function perplexity(lls: ArrayLike<number>): number {
  return Math.exp(-mean(lls));
}

/** bootstrap_stderr(f, xs, iters) as the harness runs it (see the header). */
export function bootstrapStderr(f: (xs: Float64Array) => number, xs: ArrayLike<number>, iters: number): number {
  if (!(Number.isInteger(iters) && iters >= 1)) throw new HlmError(`bootstrap iterations must be ≥ 1, got ${iters}`);
  const chunk = Math.min(1000, iters);
  const res: number[] = [];
  const draw = new Float64Array(xs.length);
  for (let i = 0; i < Math.floor(iters / chunk); i++) {
    const rnd = new PyRandom(i);
    for (let j = 0; j < chunk; j++) res.push(f(rnd.choices(xs, xs.length, draw)));
  }
  return sampleStddev(res);
}

/** Python's repr() of a float (what str() gives for the harness's sample records). */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  } else if (exp < 0) body = `0.${'0'.repeat(-exp - 1)}${digits}`;
  else if (digits.length <= exp + 1) body = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  else body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  return neg ? `-${body}` : body;
}

/** Python's json.dumps(v, indent=2, ensure_ascii=False) for JSON values (the harness's doc_hash input). */
export function pyJsonDumps(v: unknown, indent = ''): string {
  const inner = indent + '  ';
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) < 2 ** 53 ? String(v) : pyFloat(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + pyJsonDumps(x, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  const items = entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${pyJsonDumps(x, inner)}`);
  return `{\n${items.join(',\n')}\n${indent}}`;
}

/** The harness's hash_string: SHA-256 of the UTF-8 text, hex. */
export function hashString(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** lm-eval's model_name_sanitized. */
export function sanitizeModelName(name: string): string {
  return name.replace(/["<>:/|\\?*[\]]+/g, '__');
}

/** datetime.now().isoformat().replace(":", "-"), the harness's file-name date. */
export function harnessDate(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}-${p(d.getMinutes())}-` +
    `${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)}`
  );
}

export interface LambadaSample {
  index: number;
  /** The document as the data file holds it ({"text": ...}). */
  doc: Record<string, unknown>;
  context: string;
  target: string;
  logLikelihood: number;
  correct: boolean;
}

export interface HarnessMetrics {
  'acc,none': number;
  'acc_stderr,none': number | 'N/A';
  'perplexity,none': number;
  'perplexity_stderr,none': number | 'N/A';
}

/** lambada_openai's metrics and their standard errors, as the harness computes them. */
export function harnessMetrics(samples: readonly LambadaSample[], bootstrapIters: number): HarnessMetrics {
  if (samples.length === 0) throw new HlmError('no passages were scored');
  const lls = Float64Array.from(samples, (s) => s.logLikelihood);
  const acc = Float64Array.from(samples, (s) => (s.correct ? 1 : 0));
  const stderr = bootstrapIters > 0 && samples.length > 1;
  return {
    'acc,none': mean(acc),
    'acc_stderr,none': stderr ? meanStderr(acc) : 'N/A',
    'perplexity,none': perplexity(lls),
    'perplexity_stderr,none': stderr ? bootstrapStderr(perplexity, lls, bootstrapIters) : 'N/A',
  };
}

/** One line of samples_lambada_openai_<date>.jsonl (the harness's record after save_results_samples). */
export function sampleRecord(s: LambadaSample): Record<string, unknown> {
  const resp = [pyFloat(s.logLikelihood), s.correct ? 'True' : 'False'];
  return {
    doc_id: s.index,
    doc: s.doc,
    target: s.target,
    arguments: { gen_args_0: { arg_0: s.context, arg_1: s.target } },
    resps: [[resp]],
    filtered_resps: [resp],
    filter: 'none',
    metrics: ['perplexity', 'acc'],
    doc_hash: hashString(pyJsonDumps(s.doc)),
    prompt_hash: hashString(s.context),
    target_hash: hashString(s.target),
    perplexity: s.logLikelihood,
    acc: s.correct ? 1 : 0,
  };
}

export interface HarnessRun {
  model: string;
  samples: readonly LambadaSample[];
  /** Passages in the data file (before --limit). */
  total: number;
  limit?: number;
  batchSize: number;
  device: string;
  bootstrapIters: number;
  /** performance.now() seconds at the start and the end of the evaluation. */
  start: number;
  end: number;
  /** hlm's own fields (objective, head, tokenizer, ...). */
  hlm: Record<string, unknown>;
}

/** The results_<date>.json document. */
export function harnessResults(run: HarnessRun): Record<string, unknown> {
  return {
    results: { [TASK]: { alias: TASK, ...harnessMetrics(run.samples, run.bootstrapIters) } },
    group_subtasks: { [TASK]: [] },
    configs: { [TASK]: LAMBADA_OPENAI_CONFIG },
    versions: { [TASK]: LAMBADA_OPENAI_CONFIG.metadata.version },
    'n-shot': { [TASK]: 0 },
    higher_is_better: { [TASK]: { perplexity: false, acc: true } },
    'n-samples': { [TASK]: { original: run.total, effective: run.samples.length } },
    config: {
      model: 'hlm',
      model_args: `model=${run.model}`,
      batch_size: run.batchSize,
      device: run.device,
      limit: run.limit ?? null,
      bootstrap_iters: run.bootstrapIters,
    },
    date: Date.now() / 1000,
    model_name: run.model,
    model_name_sanitized: sanitizeModelName(run.model),
    start_time: run.start,
    end_time: run.end,
    total_evaluation_time_seconds: String(run.end - run.start),
    hlm: run.hlm,
  };
}

export interface HarnessFiles {
  results: string;
  samples?: string;
}

/** Write results_<date>.json (and, with logSamples, the samples file) under <dir>/<sanitized model>/. */
export function writeHarnessOutput(dir: string, run: HarnessRun, logSamples: boolean): HarnessFiles {
  const folder = join(dir, sanitizeModelName(run.model));
  try {
    mkdirSync(folder, { recursive: true });
  } catch (e) {
    throw new HlmError(`cannot create ${folder}: ${(e as Error).message}`);
  }
  const date = harnessDate();
  const results = join(folder, `results_${date}.json`);
  let samples: string | undefined;
  if (logSamples) {
    samples = join(folder, `samples_${TASK}_${date}.jsonl`);
    const lines = run.samples.map((s) => JSON.stringify(sampleRecord(s)) + '\n');
    writeFileAtomic(samples, lines.join(''), 'lm-eval samples');
  }
  writeFileAtomic(results, JSON.stringify(harnessResults(run), null, 2) + '\n', 'lm-eval results');
  return { results, samples };
}
