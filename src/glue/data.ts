// GLUE data: readers for the standard `glue_data/<TASK>/{train,dev}.tsv` layouts of the nine
// tasks, and the TASKS table that describes each one (files per split, columns, labels, metrics).
//
// GLUE TSVs are not CSV: fields are split on '\t' only and quotes are kept as they are (MRPC and
// QNLI sentences open with '"' that never closes). Lines are read with readLines (UTF-8 checked,
// BOM and a trailing '\r' removed: MRPC's header starts with a BOM, CoLA's dev.tsv has no final
// newline). Empty lines are skipped. Every row must have exactly as many fields as the header (or,
// for CoLA's headerless files, 4); columns are found by header name, so MNLI's train (12 columns)
// and dev (16 columns) layouts share one description.
//
// Labels are class indices in the order of `labelNames` (the order of the Hugging Face `glue`
// datasets), or the similarity score itself for STS-B (regression, numClasses 1).
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HlmError } from '../errors.js';
import { readLines } from '../data/corpus.js';

export type GlueTask = 'cola' | 'sst2' | 'mrpc' | 'stsb' | 'qqp' | 'mnli' | 'qnli' | 'rte' | 'wnli';
/** The nine tasks in GLUE's usual order. */
export const GLUE_TASKS: readonly GlueTask[] = ['cola', 'sst2', 'mrpc', 'stsb', 'qqp', 'mnli', 'qnli', 'rte', 'wnli'];

/** A split name: 'train', 'dev', or MNLI's 'dev_matched' / 'dev_mismatched'. */
export type GlueSplit = 'train' | 'dev' | 'dev_matched' | 'dev_mismatched';

/** The metric names taskScore reports (fractions: accuracy in [0, 1], correlations in [-1, 1]). */
export type GlueMetricName =
  'mcc' | 'accuracy' | 'f1' | 'pearson' | 'spearman' | 'matched_accuracy' | 'mismatched_accuracy';

/** A column: by position (headerless files) or by header name (the first name the header has). */
export type ColumnRef = number | readonly string[];

export interface GlueTaskSpec {
  name: GlueTask;
  /** The task's folder under glue_data. */
  dir: string;
  /** The name GLUE tables use. */
  title: string;
  /** File name per split. */
  files: Readonly<Partial<Record<GlueSplit, string>>>;
  /** The dev split(s) that evaluation reports on (MNLI has two). */
  evalSplits: readonly GlueSplit[];
  /** Whether the first line is a header; without one, every row has `columnCount` fields. */
  header: boolean;
  columnCount?: number;
  /** First sentence, second sentence (pair tasks), label, and the field(s) that make an id. */
  columns: { a: ColumnRef; b?: ColumnRef; label: ColumnRef; id?: readonly ColumnRef[] };
  /** The label as it is written in the file, per class index; null for regression (STS-B). */
  labelTokens: readonly string[] | null;
  /** Readable class names (index order); for STS-B the single output `score`. */
  labelNames: readonly string[];
  /** Classes, or 1 for regression. */
  numClasses: number;
  /** Inclusive range of a regression target. */
  scoreRange?: readonly [number, number];
  /** The metrics GLUE reports for this task, in its order. */
  metrics: readonly GlueMetricName[];
}

const SINGLE_DEV = { train: 'train.tsv', dev: 'dev.tsv' } as const;
const NLI2 = ['entailment', 'not_entailment'] as const;

export const TASKS: Readonly<Record<GlueTask, GlueTaskSpec>> = {
  cola: {
    name: 'cola',
    dir: 'CoLA',
    title: 'CoLA',
    files: SINGLE_DEV,
    evalSplits: ['dev'],
    // source, label, original judgement mark ('*', '?', … or empty), sentence
    header: false,
    columnCount: 4,
    columns: { a: 3, label: 1 },
    labelTokens: ['0', '1'],
    labelNames: ['unacceptable', 'acceptable'],
    numClasses: 2,
    metrics: ['mcc'],
  },
  sst2: {
    name: 'sst2',
    dir: 'SST-2',
    title: 'SST-2',
    files: SINGLE_DEV,
    evalSplits: ['dev'],
    header: true,
    columns: { a: ['sentence'], label: ['label'] },
    labelTokens: ['0', '1'],
    labelNames: ['negative', 'positive'],
    numClasses: 2,
    metrics: ['accuracy'],
  },
  mrpc: {
    name: 'mrpc',
    dir: 'MRPC',
    title: 'MRPC',
    files: SINGLE_DEV,
    evalSplits: ['dev'],
    header: true,
    columns: { a: ['#1 String'], b: ['#2 String'], label: ['Quality'], id: [['#1 ID'], ['#2 ID']] },
    labelTokens: ['0', '1'],
    labelNames: ['not_equivalent', 'equivalent'],
    numClasses: 2,
    metrics: ['f1', 'accuracy'],
  },
  stsb: {
    name: 'stsb',
    dir: 'STS-B',
    title: 'STS-B',
    files: SINGLE_DEV,
    evalSplits: ['dev'],
    header: true,
    columns: { a: ['sentence1'], b: ['sentence2'], label: ['score'], id: [['index']] },
    labelTokens: null,
    labelNames: ['score'],
    numClasses: 1,
    scoreRange: [0, 5],
    metrics: ['pearson', 'spearman'],
  },
  qqp: {
    name: 'qqp',
    dir: 'QQP',
    title: 'QQP',
    files: SINGLE_DEV,
    evalSplits: ['dev'],
    header: true,
    columns: { a: ['question1'], b: ['question2'], label: ['is_duplicate'], id: [['id']] },
    labelTokens: ['0', '1'],
    labelNames: ['not_duplicate', 'duplicate'],
    numClasses: 2,
    metrics: ['f1', 'accuracy'],
  },
  mnli: {
    name: 'mnli',
    dir: 'MNLI',
    title: 'MNLI',
    files: { train: 'train.tsv', dev_matched: 'dev_matched.tsv', dev_mismatched: 'dev_mismatched.tsv' },
    evalSplits: ['dev_matched', 'dev_mismatched'],
    header: true,
    columns: { a: ['sentence1'], b: ['sentence2'], label: ['gold_label'], id: [['index']] },
    labelTokens: ['entailment', 'neutral', 'contradiction'],
    labelNames: ['entailment', 'neutral', 'contradiction'],
    numClasses: 3,
    metrics: ['matched_accuracy', 'mismatched_accuracy'],
  },
  qnli: {
    name: 'qnli',
    dir: 'QNLI',
    title: 'QNLI',
    files: SINGLE_DEV,
    evalSplits: ['dev'],
    header: true,
    columns: { a: ['question'], b: ['sentence'], label: ['label'], id: [['index']] },
    labelTokens: NLI2,
    labelNames: NLI2,
    numClasses: 2,
    metrics: ['accuracy'],
  },
  rte: {
    name: 'rte',
    dir: 'RTE',
    title: 'RTE',
    files: SINGLE_DEV,
    evalSplits: ['dev'],
    header: true,
    columns: { a: ['sentence1'], b: ['sentence2'], label: ['label'], id: [['index']] },
    labelTokens: NLI2,
    labelNames: NLI2,
    numClasses: 2,
    metrics: ['accuracy'],
  },
  wnli: {
    name: 'wnli',
    dir: 'WNLI',
    title: 'WNLI',
    files: SINGLE_DEV,
    evalSplits: ['dev'],
    header: true,
    columns: { a: ['sentence1'], b: ['sentence2'], label: ['label'], id: [['index']] },
    labelTokens: ['0', '1'],
    labelNames: ['not_entailment', 'entailment'],
    numClasses: 2,
    metrics: ['accuracy'],
  },
};

/** A task name as users write it: 'sst2', 'SST-2', 'sts-b', 'MNLI' … */
export function parseGlueTask(name: string): GlueTask {
  const key = name.toLowerCase().replace(/[-_\s]/g, '');
  if ((GLUE_TASKS as readonly string[]).includes(key)) return key as GlueTask;
  throw new HlmError(`unknown GLUE task "${name}" (expected one of ${GLUE_TASKS.join(', ')})`);
}

export interface GlueExample {
  a: string;
  b?: string;
  /** Class index (order of labelNames), or the score for STS-B. */
  label: number;
  id?: string;
}

/** Rows of one GLUE TSV file in the task's layout. */
export function readGlueFile(path: string, task: GlueTask): GlueExample[] {
  const spec = TASKS[task];
  const out: GlueExample[] = [];
  let expected = spec.columnCount ?? 0;
  let header: string[] | null = null;
  let ia = -1;
  let ib = -1;
  let il = -1;
  let iid: number[] = [];
  const resolve = (ref: ColumnRef): number => {
    if (typeof ref === 'number') return ref;
    const at = header!.findIndex((h) => ref.includes(h.trim()));
    if (at < 0) {
      throw new HlmError(
        `${path}:1: the header has no "${ref.join('" or "')}" column for ${spec.title} (header: ` +
          `${header!.join(' | ')})`,
      );
    }
    return at;
  };
  const bind = () => {
    ia = resolve(spec.columns.a);
    ib = spec.columns.b === undefined ? -1 : resolve(spec.columns.b);
    il = resolve(spec.columns.label);
    iid = (spec.columns.id ?? []).map(resolve);
  };
  if (!spec.header) bind();
  const tokens = spec.labelTokens;
  for (const { line, lineNo } of readLines(path)) {
    if (line.length === 0) continue;
    const f = line.split('\t');
    if (spec.header && header === null) {
      header = f;
      expected = f.length;
      bind();
      continue;
    }
    if (f.length !== expected) {
      throw new HlmError(
        `${path}:${lineNo}: ${f.length} tab-separated columns, expected ${expected} for ${spec.title} (GLUE TSVs ` +
          `are not quoted: a tab or newline inside a field breaks the row)`,
      );
    }
    const raw = f[il].trim();
    let label: number;
    if (tokens) {
      label = tokens.indexOf(raw);
      if (label < 0) {
        throw new HlmError(
          `${path}:${lineNo}: unknown label "${raw}" for ${spec.title} (expected ${tokens.join(', ')})`,
        );
      }
    } else {
      const [lo, hi] = spec.scoreRange!;
      label = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw) ? Number(raw) : NaN;
      if (!(label >= lo && label <= hi)) {
        throw new HlmError(
          `${path}:${lineNo}: unknown label "${raw}" for ${spec.title} (expected a similarity score from ${lo} to ` +
            `${hi})`,
        );
      }
    }
    const ex: GlueExample = { a: f[ia], label };
    if (ib >= 0) ex.b = f[ib];
    if (iid.length) ex.id = iid.map((i) => f[i]).join('-');
    out.push(ex);
  }
  if (spec.header && header === null) throw new HlmError(`${path}: empty file (expected a ${spec.title} header line)`);
  return out;
}

export interface GlueTaskFiles {
  task: GlueTask;
  /** The task folder that holds the files. */
  dir: string;
  /** The split files that exist, by split. */
  files: Partial<Record<GlueSplit, string>>;
}

/**
 * Where a task's files are: `<data>/<TaskDir>` (data being a glue_data folder), or `data` itself
 * when it is the task's own folder. Throws, listing every path it looked for, when none of the
 * task's split files exist, or when a split in `required` is missing.
 */
export function findGlueTask(data: string, task: GlueTask, required: readonly GlueSplit[] = []): GlueTaskFiles {
  const spec = TASKS[task];
  const dirs = [join(data, spec.dir)];
  if (basename(data).toLowerCase().replace(/[-_]/g, '') === spec.dir.toLowerCase().replace(/[-_]/g, ''))
    dirs.push(data);
  const isFile = (p: string) => existsSync(p) && statSync(p).isFile();
  const splits = Object.keys(spec.files) as GlueSplit[];
  const lookedFor = (ss: readonly GlueSplit[]) => dirs.flatMap((d) => ss.map((s) => join(d, spec.files[s]!)));
  for (const s of required) {
    if (!spec.files[s]) throw new HlmError(`${spec.title} has no ${s} split (its splits: ${splits.join(', ')})`);
  }
  let best: GlueTaskFiles | null = null;
  for (const dir of dirs) {
    const files: Partial<Record<GlueSplit, string>> = {};
    for (const s of splits) {
      const p = join(dir, spec.files[s]!);
      if (isFile(p)) files[s] = p;
    }
    const n = Object.keys(files).length;
    if (n > 0 && (best === null || n > Object.keys(best.files).length)) best = { task, dir, files };
  }
  if (best === null) {
    throw new HlmError(`${spec.title}: no data files; looked for ${lookedFor(splits).join(', ')}`);
  }
  const missing = required.filter((s) => !best!.files[s]);
  if (missing.length) {
    throw new HlmError(
      `${spec.title}: missing ${missing.join(' and ')} split; looked for ${lookedFor(missing).join(', ')}`,
    );
  }
  return best;
}

export interface GlueData extends GlueTaskFiles {
  spec: GlueTaskSpec;
  labelNames: readonly string[];
  numClasses: number;
  /** The examples of each split read (every split that exists, or those asked for). */
  splits: Partial<Record<GlueSplit, GlueExample[]>>;
}

/**
 * Reads a task: the splits asked for (each must exist), or by default every split file present.
 * `data` is a glue_data folder (or the task's own folder).
 */
export function loadGlueTask(data: string, task: GlueTask, splits?: readonly GlueSplit[]): GlueData {
  const found = findGlueTask(data, task, splits ?? []);
  const spec = TASKS[task];
  const want = splits ?? (Object.keys(found.files) as GlueSplit[]);
  const out: Partial<Record<GlueSplit, GlueExample[]>> = {};
  for (const s of want) out[s] = readGlueFile(found.files[s]!, task);
  return { ...found, spec, labelNames: spec.labelNames, numClasses: spec.numClasses, splits: out };
}

/**
 * The sentences of a file to predict on: a task's train/dev layout, or GLUE's test.tsv layout
 * (an index column and the sentence columns, no label; CoLA's test.tsv has a header although
 * its train and dev files do not). Columns are found by header name when the first line names
 * the sentence column.
 */
export function readGlueInputs(path: string, task: GlueTask): { a: string; b?: string }[] {
  const spec = TASKS[task];
  const names = (ref: ColumnRef | undefined): readonly string[] =>
    ref === undefined ? [] : typeof ref === 'number' ? ['sentence'] : ref;
  const out: { a: string; b?: string }[] = [];
  let ia = -1;
  let ib = -1;
  let expected = 0;
  for (const { line, lineNo } of readLines(path)) {
    if (line.length === 0) continue;
    const f = line.split('\t');
    if (ia < 0) {
      const header = f.map((h) => h.trim());
      const find = (ref: ColumnRef | undefined) => header.findIndex((h) => names(ref).includes(h));
      if (find(spec.columns.a) >= 0) {
        ia = find(spec.columns.a);
        ib = spec.columns.b === undefined ? -1 : find(spec.columns.b);
        if (spec.columns.b !== undefined && ib < 0)
          throw new HlmError(
            `${path}:1: the header has no "${names(spec.columns.b).join('" or "')}" column for ${spec.title} ` +
              `(header: ${header.join(' | ')})`,
          );
        expected = f.length;
        continue;
      }
      if (spec.header)
        throw new HlmError(
          `${path}:1: expected a ${spec.title} header naming the "${names(spec.columns.a).join('" or "')}" column ` +
            `(got: ${header.join(' | ')})`,
        );
      ia = spec.columns.a as number;
      expected = spec.columnCount!;
    }
    if (f.length !== expected)
      throw new HlmError(
        `${path}:${lineNo}: ${f.length} tab-separated columns, expected ${expected} for ${spec.title}`,
      );
    out.push(ib >= 0 ? { a: f[ia], b: f[ib] } : { a: f[ia] });
  }
  if (out.length === 0) throw new HlmError(`${path}: no rows to predict`);
  return out;
}
