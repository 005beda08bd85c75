// `hlm experiment headless`: the headless-LM paper's comparisons on the user's machine. The same
// model pretrains with the vocabulary head (ce) and headless (cwt) on an equal budget, wall clock
// or tokens, on the same data in the same order; then
// - encoders fine-tune both on GLUE tasks over seeds, or on XNLI (src/glue/xnli.ts's protocol);
// - decoders: the CWT model also gets a short causal head fine-tuning (a fraction of the budget,
//   on top of it), and the three (CE, CWT through its tied embeddings, CWT + head FT) are scored
//   on LAMBADA and on validation cross-entropy.
// Every step is a phase of an ExperimentDir: a rerun with the same --out continues where it
// stopped, an interrupted pretraining from its last checkpoint.
import { existsSync, rmSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import type { Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { log } from '../log.js';
import { buildInfo, envInfo, gpuInfo } from '../bench/record.js';
import { projectRoot } from '../data/corpus.js';
import { evalLambada } from '../eval/evaluate.js';
import { TASKS, findGlueTask, parseGlueTask, type GlueTask } from '../glue/data.js';
import { runGlueTask } from '../glue/run.js';
import { XNLI_MODES, XNLI_PROTOCOL, loadXnli, runXnli, xnliLanguagesIn, type XnliMode } from '../glue/xnli.js';
import { preset } from '../model/config.js';
import { readCheckpointConfig } from '../model/checkpoint.js';
import { parseOverrides } from '../model/overrides.js';
import { TRAINING_KEYS, settingDefaults } from '../train/pretrain-settings.js';
import {
  RUN_SCHEMA,
  defaultEvalData,
  pretrain,
  resolveSettings,
  trainingDefaults,
  type PretrainOptions,
  type PretrainResult,
} from '../train/pretrain.js';
import { curveFromMetrics, groupBy, meanStd, type Score, type TrainingRun } from '../report/experiment.js';
import { formatMeanStd, type Section, type WrittenReport } from '../report/report.js';
import type { ExperimentResult } from '../report/experiment.js';
import { describeBudget, parseBudget, type ParsedBudget } from './budget.js';
import { ExperimentDir, type PhaseOutput } from './state.js';

export const ARCHS = ['encoder', 'decoder'] as const;
export type Arch = (typeof ARCHS)[number];
export const OBJECTIVES = ['ce', 'cwt'] as const;
export const HEAD_FT_VARIANT = 'cwt + head FT';
/** Settings the budget decides; --set may not give them. */
const BUDGET_KEYS = ['steps', 'max_time', 'schedule_steps'];
/** Pretraining saves a checkpoint this often (steps) unless --set save_every says otherwise. */
export const DEFAULT_SAVE_EVERY = 50;

export interface HeadlessOptions {
  arch: Arch;
  preset: string;
  /** Model and training keys for pretraining (n_layer=1, lr=3e-3, ...). */
  set: string[];
  data: string[];
  tokenizer?: string;
  evalData?: string;
  budget: string;
  /** GLUE task names, lambada, or xnli; default rte,mrpc,stsb,cola (encoder) or lambada (decoder). */
  tasks?: string[];
  /** Fine-tuning seeds (encoders); default 1,2,3. */
  seeds?: number[];
  /** Head fine-tuning of the CWT decoder, as a fraction of the budget (0: none). */
  headFt: number;
  /** Fine-tuning; defaults by model width (finetuneDefaults). */
  epochs?: number;
  lr?: number;
  batchSize?: number;
  glueData?: string;
  lambadaData?: string;
  xnliData?: string;
  languages?: string[];
  xnliProtocol?: XnliMode[];
  out: string;
}

export interface HeadlessResult {
  out: string;
  result: ExperimentResult;
  report: WrittenReport;
  /** Phases run by this invocation, and those found done. */
  ran: string[];
  skipped: string[];
}

/**
 * Fine-tuning defaults by model width. The paper's recipe (lr 1e-5, 10 epochs) is for base-sized
 * models; it barely moves a tiny one, which takes a higher rate and fewer epochs.
 */
export function finetuneDefaults(nEmbd: number): { epochs: number; lr: number; batchSize: number } {
  if (nEmbd <= 128) return { epochs: 3, lr: 3e-4, batchSize: 32 };
  if (nEmbd <= 512) return { epochs: 3, lr: 1e-4, batchSize: 32 };
  return { epochs: 10, lr: 1e-5, batchSize: 32 };
}

const shared = (...parts: string[]) => resolve(projectRoot(), '..', 'shared', 'data', ...parts);
export const DEFAULT_GLUE_DATA = () => shared('glue');
export const DEFAULT_LAMBADA_DATA = () => shared('lambada', 'lambada_test_sample200.jsonl');
export const DEFAULT_XNLI_DATA = () => shared('multilingual', 'xnli');
const DEFAULT_GLUE_TASKS: GlueTask[] = ['rte', 'mrpc', 'stsb', 'cola'];

type Tasks = { kind: 'glue'; tasks: GlueTask[] } | { kind: 'lambada' } | { kind: 'xnli' };

function parseTasks(arch: Arch, given: string[] | undefined): Tasks {
  const names = (given ?? []).map((t) => t.trim().toLowerCase()).filter(Boolean);
  if (arch === 'decoder') {
    if (names.length && !(names.length === 1 && names[0] === 'lambada'))
      throw new HlmError(`--tasks ${names.join(',')}: a decoder experiment evaluates on lambada`);
    return { kind: 'lambada' };
  }
  if (!names.length) return { kind: 'glue', tasks: DEFAULT_GLUE_TASKS };
  if (names.includes('lambada')) throw new HlmError('--tasks lambada: LAMBADA needs --arch decoder');
  if (names.includes('xnli')) {
    if (names.length > 1) throw new HlmError('--tasks xnli runs on its own (an experiment with its own tokenizer)');
    return { kind: 'xnli' };
  }
  const tasks = names.map(parseGlueTask);
  if (new Set(tasks).size !== tasks.length) throw new HlmError(`--tasks ${names.join(',')} repeats a task`);
  return { kind: 'glue', tasks };
}

const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(p));

/** A fresh pretraining, or the continuation of an interrupted one in the same directory. */
async function trainOrResume(gpu: Gpu, o: PretrainOptions): Promise<PretrainResult> {
  let resume = existsSync(join(o.out, 'checkpoint', 'config.json'));
  if (resume) {
    const { hlm } = await readCheckpointConfig(join(o.out, 'checkpoint'));
    // A run that reached its end but was not recorded as done trains again from the start.
    const ended =
      Number(hlm.step ?? 0) >= o.steps || (o.maxTime !== undefined && Number(hlm.train_seconds) >= o.maxTime);
    if (ended) resume = false;
    else log.info(`${o.out}: continuing from its checkpoint at step ${hlm.step}`);
  }
  // The experiment owns the directory: what an unfinished fresh start left there goes.
  if (!resume) rmSync(o.out, { recursive: true, force: true });
  gpu.resetPeak();
  return pretrain(gpu, { ...o, resume, tokenizer: resume ? undefined : o.tokenizer });
}

export async function runHeadless(gpu: Gpu, o: HeadlessOptions): Promise<HeadlessResult> {
  const out = resolve(o.out);
  const budget = parseBudget(o.budget);
  const tasks = parseTasks(o.arch, o.tasks);
  if (!(o.headFt >= 0 && o.headFt <= 1)) throw new HlmError(`--head-ft must be in 0..1, got ${o.headFt}`);
  if (o.arch === 'decoder' && o.seeds)
    throw new HlmError(
      '--seeds: a decoder experiment fine-tunes nothing over seeds (LAMBADA scoring is deterministic); the ' +
        'pretraining seed is --set seed=N',
    );
  const seeds = o.seeds ?? [1, 2, 3];
  if (!seeds.length || new Set(seeds).size !== seeds.length)
    throw new HlmError(`--seeds ${seeds.join(',')}: give distinct seeds`);
  const sets = parseOverrides(o.set, RUN_SCHEMA, '--set');
  const fixed = BUDGET_KEYS.filter((k) => k in sets);
  if (fixed.length) throw new HlmError(`--set ${fixed.join(', ')}: the experiment's --budget decides it`);

  // Pretraining settings: the defaults, the flags, then --set's training keys (kept as options, so
  // that head fine-tuning can scale them); its model keys stay in `set`.
  const { options: resolved, model } = await resolveSettings({
    ...(settingDefaults() as PretrainOptions),
    arch: o.arch,
    objective: 'ce',
    preset: o.preset,
    set: o.set,
    data: o.data,
    tokenizer: o.tokenizer,
    evalData: o.evalData,
    saveEvery: DEFAULT_SAVE_EVERY,
    out,
    resume: false,
    steps: 1,
  });
  const config = { ...preset(o.preset), causal: o.arch === 'decoder', ...model } as ReturnType<typeof preset>;
  const shape = trainingDefaults(config);
  const base: PretrainOptions = {
    ...resolved,
    set: o.set.filter((kv) => !TRAINING_KEYS.has(kv.slice(0, kv.indexOf('=')).trim())),
    batchSize: resolved.batchSize ?? shape.batchSize,
    seqLen: resolved.seqLen ?? shape.seqLen,
    lr: resolved.lr ?? shape.lr,
  };
  const tokensPerStep = base.batchSize! * base.seqLen!;
  const budgeted = (b: ParsedBudget, fraction = 1): Pick<PretrainOptions, 'steps' | 'maxTime'> =>
    b.kind === 'time'
      ? { steps: 1_000_000_000, maxTime: b.seconds * fraction }
      : { steps: Math.max(1, Math.ceil((b.tokens * fraction) / tokensPerStep)), maxTime: undefined };
  const pretrainOptions = { ...base, ...budgeted(budget) };
  const ft = finetuneDefaults(config.n_embd);
  const finetune = { epochs: o.epochs ?? ft.epochs, lr: o.lr ?? ft.lr, batchSize: o.batchSize ?? ft.batchSize };
  const glueData = abs(o.glueData) ?? DEFAULT_GLUE_DATA();
  const lambadaData = abs(o.lambadaData) ?? DEFAULT_LAMBADA_DATA();
  const xnliData = abs(o.xnliData) ?? DEFAULT_XNLI_DATA();
  const xnliProtocol = o.xnliProtocol ?? [...XNLI_MODES];
  const languages = tasks.kind === 'xnli' ? (o.languages?.length ? o.languages : xnliLanguagesIn(xnliData)) : [];
  if (tasks.kind === 'xnli' && xnliProtocol.includes('english') && !languages.includes('en'))
    throw new HlmError('--languages: the english XNLI protocol fine-tunes on en; add it');
  const headFt = o.arch === 'decoder' ? o.headFt : 0;
  // The evaluation data is checked now, not after the pretraining.
  if (tasks.kind === 'glue') for (const t of tasks.tasks) findGlueTask(glueData, t, ['train', ...TASKS[t].evalSplits]);
  if (tasks.kind === 'lambada' && !(existsSync(lambadaData) && statSync(lambadaData).isFile()))
    throw new HlmError(`--lambada-data ${lambadaData}: no such file`);
  if (tasks.kind === 'xnli') loadXnli(xnliData, languages);

  const phases = OBJECTIVES.map((obj) => `pretrain ${obj}`);
  if (tasks.kind === 'glue') for (const t of tasks.tasks) for (const obj of OBJECTIVES) phases.push(`glue ${t} ${obj}`);
  if (tasks.kind === 'xnli') {
    if (xnliProtocol.includes('english')) for (const obj of OBJECTIVES) phases.push(`xnli english ${obj}`);
    if (xnliProtocol.includes('target'))
      for (const l of languages) for (const obj of OBJECTIVES) phases.push(`xnli target ${l} ${obj}`);
  }
  if (tasks.kind === 'lambada') {
    if (headFt > 0) phases.push('head-ft');
    for (const v of [...OBJECTIVES, ...(headFt > 0 ? [HEAD_FT_VARIANT] : [])]) phases.push(`lambada ${v}`);
  }

  const args: Record<string, unknown> = {
    arch: o.arch,
    preset: o.preset,
    set: o.set,
    data: o.data.map((p) => resolve(p)),
    tokenizer: o.tokenizer && existsSync(o.tokenizer) ? resolve(o.tokenizer) : o.tokenizer,
    evalData: abs(o.evalData),
    budget: budget.kind === 'time' ? `${budget.seconds}s` : `${budget.tokens}`,
    tasks: tasks.kind === 'glue' ? tasks.tasks : [tasks.kind],
  };
  if (o.arch === 'decoder') Object.assign(args, { headFt, lambadaData });
  else Object.assign(args, { seeds, ...finetune });
  if (tasks.kind === 'glue') args.glueData = glueData;
  if (tasks.kind === 'xnli') Object.assign(args, { xnliData, languages, xnliProtocol });

  const seed = base.seed;
  const described = `${o.arch} (preset ${o.preset}${o.set.length ? `, --set ${o.set.join(' ')}` : ''})`;
  const notes = [
    `Both objectives pretrain the same ${described} ` +
      `on the same data in the same order (seed ${seed}), for ${describeBudget(budget)} each` +
      (budget.kind === 'time'
        ? ': at equal time they see different numbers of tokens (the Tokens seen table). The time counts training ' +
          'steps only (evaluation and checkpoint saves excluded); the LR decay follows the fraction of the time ' +
          'spent (warm-up in steps).'
        : '.'),
    'A wall-clock comparison is fair only when nothing else runs on the machine: each phase records the load ' +
      'average at its start and end (Phases table).',
  ];
  if (headFt > 0)
    notes.push(
      `${HEAD_FT_VARIANT}: the CWT model continued with a causal LM head (lm_head, initialised from the input ` +
        `embeddings) for ${headFt} of the budget (${describeBudget(scaled(budget, headFt))}), on top of its ` +
        'pretraining; "cwt" is the CWT model scored through its tied input embeddings.',
    );
  if (tasks.kind === 'xnli') notes.push(`XNLI protocol: ${XNLI_PROTOCOL}`);
  if (o.arch === 'encoder')
    notes.push(
      `Fine-tuning: ${finetune.epochs} epoch${finetune.epochs === 1 ? '' : 's'}, lr ${finetune.lr}, ` +
        `batch ${finetune.batchSize}, seeds ${seeds.join(', ')}; each seed's best epoch on the evaluation data counts.`,
    );

  const exp = ExperimentDir.open({
    out,
    experiment: 'headless',
    title: `Headless language modelling: ${o.arch}s with CE and CWT`,
    variantTitle: 'objective',
    arguments: args,
    flagNames: { headFt: 'head-ft', evalData: 'eval-data', glueData: 'glue-data', lambadaData: 'lambada-data' },
    settings: {
      pretrain: {
        batchSize: base.batchSize,
        seqLen: base.seqLen,
        lr: base.lr,
        warmup: base.warmup,
        schedule: base.schedule,
        seed,
        steps: budget.kind === 'tokens' ? pretrainOptions.steps : null,
        maxTime: pretrainOptions.maxTime ?? null,
        evalEvery: base.evalEvery,
        saveEvery: base.saveEvery,
      },
      ...(o.arch === 'encoder' ? { finetune } : {}),
    },
    phases,
    planned: budget.kind === 'time' ? { seconds: budget.seconds } : { tokens: budget.tokens },
    budgetScope: "each objective's pretraining; used: the larger of CE's and CWT's",
    build: buildInfo(),
    hardware: { env: envInfo(), gpu: gpuInfo(gpu) },
    notes,
  });
  const ran: string[] = [];
  const skipped: string[] = [];
  const phase = async (name: string, body: () => Promise<PhaseOutput>) =>
    ((await exp.run(name, body)) ? ran : skipped).push(name);
  const ckOf = (variant: string) =>
    join(out, variant === HEAD_FT_VARIANT ? 'head-ft' : join('pretrain', variant), 'checkpoint');
  const runRecord = (
    r: PretrainResult,
    p: Omit<
      TrainingRun,
      'steps' | 'tokens' | 'seconds' | 'tokensPerSecond' | 'peakMemoryBytes' | 'finalLoss' | 'curve' | 'dir'
    >,
  ): TrainingRun => ({
    ...p,
    dir: relative(out, r.out),
    steps: r.steps,
    ...(r.startStep > 0 ? { resumedFrom: r.startStep } : {}),
    tokens: r.tokens,
    seconds: r.trainSeconds,
    tokensPerSecond: r.tokens / r.trainSeconds,
    peakMemoryBytes: r.peakGpuBytes,
    finalLoss: r.finalLoss,
    ...(r.valLoss !== null ? { valLoss: r.valLoss } : {}),
    curve: curveFromMetrics(join(r.out, 'metrics.jsonl')),
  });
  const evalPath = base.evalData ?? defaultEvalData();
  const evalName = evalPath ? join(basename(resolve(evalPath, '..')), basename(evalPath)) : 'validation';
  const valScore = (p: string, variant: string, value: number | null): Score[] =>
    o.arch === 'decoder' && value !== null
      ? [{ phase: p, section: 'validation cross-entropy', task: evalName, metric: 'nats/token', variant, seed, value }]
      : [];

  let failure: { error: unknown } | null = null;
  try {
    for (const obj of OBJECTIVES)
      await phase(`pretrain ${obj}`, async () => {
        const r = await trainOrResume(gpu, { ...pretrainOptions, objective: obj, out: join(out, 'pretrain', obj) });
        const p = `pretrain ${obj}`;
        return {
          runs: [runRecord(r, { id: obj, phase: p, section: 'pretraining', variant: obj, seed })],
          scores: valScore(p, obj, obj === 'cwt' ? r.valCe : r.valLoss),
        };
      });
    if (tasks.kind === 'glue')
      for (const task of tasks.tasks)
        for (const obj of OBJECTIVES) {
          const p = `glue ${task} ${obj}`;
          await phase(p, async () => {
            const r = await runGlueTask(gpu, {
              model: ckOf(obj),
              task,
              data: glueData,
              ...finetune,
              seeds,
              out: join(out, 'glue', obj),
              classBalanced: false,
              warmupRatio: 0.1,
              weightDecay: 0,
              gradClip: 1,
              saveModel: false,
            });
            const scores = r.seeds.flatMap((s) =>
              TASKS[task].metrics.map((metric): Score => ({
                phase: p,
                section: 'GLUE',
                task: TASKS[task].title,
                metric,
                variant: obj,
                seed: s.seed,
                value: 100 * s.best.metrics[metric]!,
              })),
            );
            return { scores };
          });
        }
    if (tasks.kind === 'xnli') {
      const xnli = async (p: string, obj: string, mode: XnliMode, langs: string[]) =>
        phase(p, async () => {
          const r = await runXnli(gpu, {
            model: ckOf(obj),
            data: xnliData,
            languages: mode === 'english' ? languages : langs,
            modes: [mode],
            ...finetune,
            seeds,
            warmupRatio: 0.1,
            weightDecay: 0,
            gradClip: 1,
            out: join(out, 'xnli', obj, mode === 'english' ? 'english' : `target-${langs[0]}`),
          });
          const section = mode === 'english' ? 'XNLI, English fine-tuning' : 'XNLI, target-language fine-tuning';
          const scores = r.modes[0].languages.flatMap((l) =>
            l.seeds.map((s): Score => ({
              phase: p,
              section,
              task: l.language,
              metric: 'accuracy',
              variant: obj,
              seed: s.seed,
              value: 100 * s.accuracy,
            })),
          );
          return { scores };
        });
      if (xnliProtocol.includes('english'))
        for (const obj of OBJECTIVES) await xnli(`xnli english ${obj}`, obj, 'english', languages);
      if (xnliProtocol.includes('target'))
        for (const l of languages)
          for (const obj of OBJECTIVES) await xnli(`xnli target ${l} ${obj}`, obj, 'target', [l]);
    }
    if (tasks.kind === 'lambada') {
      if (headFt > 0)
        await phase('head-ft', async () => {
          const r = await trainOrResume(gpu, {
            ...base,
            ...budgeted(budget, headFt),
            objective: 'ce',
            init: ckOf('cwt'),
            untiedHead: true,
            tokenizer: undefined,
            warmup: Math.round(base.warmup * headFt),
            out: join(out, 'head-ft'),
          });
          return {
            runs: [
              runRecord(r, {
                id: 'head-ft',
                phase: 'head-ft',
                section: 'head fine-tuning',
                variant: HEAD_FT_VARIANT,
                seed,
              }),
            ],
            scores: valScore('head-ft', HEAD_FT_VARIANT, r.valLoss),
          };
        });
      for (const v of [...OBJECTIVES, ...(headFt > 0 ? [HEAD_FT_VARIANT] : [])])
        await phase(`lambada ${v}`, async () => {
          const r = await evalLambada(gpu, { model: ckOf(v), data: lambadaData });
          const common = { phase: `lambada ${v}`, task: `LAMBADA (${r.n} passages)`, variant: v, seed };
          return {
            scores: [
              { ...common, section: 'LAMBADA accuracy', metric: 'accuracy (%)', value: 100 * r.accuracy },
              { ...common, section: 'LAMBADA perplexity', metric: 'perplexity', value: r.perplexity },
            ],
          };
        });
    }
  } catch (error) {
    failure = { error };
  }
  // The report shows whatever is done, also after a failed phase (whose error is then the one thrown).
  try {
    exp.result.budget.used = budgetUsed(exp.result);
    const report = await exp.report(extraSections(exp.result)).catch((err: Error) => {
      if (!failure) throw err;
      log.error(`the report could not be written: ${err.message}`);
      return null;
    });
    if (failure) throw failure.error;
    return { out, result: exp.result, report: report!, ran, skipped };
  } finally {
    exp.release();
  }
}

function scaled(b: ParsedBudget, f: number): ParsedBudget {
  return b.kind === 'time'
    ? { kind: 'time', seconds: b.seconds * f }
    : { kind: 'tokens', tokens: Math.ceil(b.tokens * f) };
}

/** The larger of the two objectives' pretraining time, tokens and steps. */
function budgetUsed(r: ExperimentResult): ExperimentResult['budget']['used'] {
  const runs = r.runs.filter((x) => x.section === 'pretraining');
  if (!runs.length) return {};
  return {
    seconds: Math.max(...runs.map((x) => x.seconds)),
    tokens: Math.max(...runs.map((x) => x.tokens)),
    steps: Math.max(...runs.map((x) => x.steps)),
  };
}

/** Per objective, mean ± std over seeds of the per-seed mean over tasks (GLUE: each task's mean over its metrics). */
function averages(r: ExperimentResult, section: string, title: string, caption: string): Section | null {
  const scores = r.scores.filter((s) => s.section === section);
  if (!scores.length) return null;
  const rows: string[][] = [];
  for (const [variant, list] of groupBy(scores, (s) => s.variant)) {
    const tasks = [...new Set(list.map((s) => s.task))];
    const perSeed = [...groupBy(list, (s) => String(s.seed)).values()].map((seedScores) => {
      const byTask = [...groupBy(seedScores, (s) => s.task).values()].map(
        (ts) => ts.reduce((a, s) => a + s.value, 0) / ts.length,
      );
      return byTask.reduce((a, b) => a + b, 0) / byTask.length;
    });
    rows.push([variant, String(tasks.length), formatMeanStd(meanStd(perSeed))]);
  }
  return {
    title,
    tables: [{ caption, columns: ['objective', 'tasks', 'average'], rows }],
  };
}

function extraSections(r: ExperimentResult): Section[] {
  return [
    averages(
      r,
      'GLUE',
      'GLUE average',
      'Per seed the mean over tasks (each task the mean of its metrics), then mean ± std over seeds (n)',
    ),
    averages(
      r,
      'XNLI, English fine-tuning',
      'XNLI average, English fine-tuning',
      'Accuracy averaged over languages per seed, then mean ± std over seeds (n)',
    ),
    averages(
      r,
      'XNLI, target-language fine-tuning',
      'XNLI average, target-language fine-tuning',
      'Accuracy averaged over languages per seed, then mean ± std over seeds (n)',
    ),
  ].filter((s): s is Section => s !== null);
}
