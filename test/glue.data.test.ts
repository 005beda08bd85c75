import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { projectRoot } from '../src/data/corpus.js';
import {
  GLUE_TASKS,
  TASKS,
  findGlueTask,
  loadGlueTask,
  parseGlueTask,
  readGlueFile,
  type GlueTask,
} from '../src/glue/data.js';

const glue = join(projectRoot(), '..', 'shared', 'data', 'glue');
const scratch = () => mkdtempSync(join(tmpdir(), 'hlm-glue-'));

// Row counts from ../shared/data/README.md
const COUNTS: [GlueTask, number | null, number][] = [
  ['cola', 8551, 1043],
  ['sst2', 67349, 872],
  ['mrpc', 3668, 408],
  ['stsb', 5749, 1500],
  ['rte', 2490, 277],
  ['wnli', 635, 71],
  ['qnli', null, 5463],
];

test.each(COUNTS)('%s: the real train/dev files read with the README row counts', (task, nTrain, nDev) => {
  const d = loadGlueTask(glue, task);
  expect(d.splits.dev!.length).toBe(nDev);
  if (nTrain === null) expect(d.files.train).toBeUndefined();
  else expect(d.splits.train!.length).toBe(nTrain);
  expect(d.numClasses).toBe(task === 'stsb' ? 1 : 2);
  const pair = TASKS[task].columns.b !== undefined;
  // plain checks per row (an expect per row would dominate the time on SST-2's 67k rows)
  const seen = new Set<number>();
  const bad: string[] = [];
  for (const ex of [...d.splits.dev!, ...(d.splits.train ?? [])]) {
    if (typeof ex.a !== 'string' || (pair ? typeof ex.b !== 'string' : ex.b !== undefined))
      bad.push(`fields ${JSON.stringify(ex)}`);
    if (task === 'stsb' ? !(ex.label >= 0 && ex.label <= 5) : !(ex.label === 0 || ex.label === 1))
      bad.push(`label ${ex.label}`);
    seen.add(ex.label);
  }
  expect(bad.slice(0, 3)).toEqual([]);
  expect(seen.size).toBeGreaterThan(task === 'stsb' ? 20 : 1);
});

test('real files: fields read raw (quotes kept), BOM stripped, labels in labelNames order, ids', () => {
  const mrpc = readGlueFile(join(glue, 'MRPC', 'dev.tsv'), 'mrpc');
  expect(mrpc[0]).toEqual({
    a: "He said the foodservice pie business doesn't fit the company's long-term growth strategy.",
    b: '"The foodservice pie business does not fit our long-term growth strategy.',
    label: 1,
    id: '1355540-1355592',
  });
  const cola = readGlueFile(join(glue, 'CoLA', 'dev.tsv'), 'cola'); // no final newline
  expect(cola[0]).toEqual({ a: 'The sailors rode the breeze clear of the rocks.', label: 1 });
  expect(cola[cola.length - 1].a.endsWith('.')).toBe(true);
  const sst = readGlueFile(join(glue, 'SST-2', 'dev.tsv'), 'sst2');
  expect(sst[1]).toEqual({ a: 'unflinchingly bleak and desperate ', label: 0 });
  const sts = readGlueFile(join(glue, 'STS-B', 'dev.tsv'), 'stsb');
  expect(sts[1]).toEqual({
    a: 'A young child is riding a horse.',
    b: 'A child is riding a horse.',
    label: 4.75,
    id: '1',
  });
  const rte = readGlueFile(join(glue, 'RTE', 'dev.tsv'), 'rte');
  expect(rte[0].label).toBe(1); // not_entailment
  expect(TASKS.rte.labelNames[1]).toBe('not_entailment');
  const qnli = readGlueFile(join(glue, 'QNLI', 'dev.tsv'), 'qnli');
  expect(qnli[0]).toEqual({
    a: 'What came into force after the new constitution was herald?',
    b: 'As of that day, the new constitution heralding the Second Republic came into force.',
    label: 0,
    id: '0',
  });
  const wnli = readGlueFile(join(glue, 'WNLI', 'dev.tsv'), 'wnli');
  expect(wnli[0]).toMatchObject({ b: 'The hair has to be cleaned.', label: 0 });
  expect(TASKS.wnli.labelNames[1]).toBe('entailment');
  // data may also be the task's own folder
  expect(findGlueTask(join(glue, 'SST-2'), 'sst2').files.dev).toBe(join(glue, 'SST-2', 'dev.tsv'));
});

const MNLI_TRAIN_HEAD =
  'index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse' +
  '\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label';
const MNLI_DEV_HEAD =
  'index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse' +
  '\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label';
const parse = (s: string) => `( ${s} )\t( ${s} )`;
const mnliTrainRow = (i: number, s1: string, s2: string, gold: string) =>
  [i, 31193, `${31193}n`, 'government', parse(s1), `(ROOT ${s1})`, `(ROOT ${s2})`, s1, s2, gold, gold].join('\t');
const mnliDevRow = (i: number, s1: string, s2: string, gold: string) =>
  [
    i,
    63735,
    `${63735}n`,
    'slate',
    parse(s1),
    `(ROOT ${s1})`,
    `(ROOT ${s2})`,
    s1,
    s2,
    gold,
    gold,
    'neutral',
    gold,
    gold,
    gold,
  ].join('\t');

function writeMnli(root: string) {
  const dir = join(root, 'MNLI');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'train.tsv'),
    [
      MNLI_TRAIN_HEAD,
      mnliTrainRow(
        0,
        'Conceptually cream skimming has two basic dimensions - product and geography.',
        'Product and geography are what make cream skimming work. ',
        'neutral',
      ),
      mnliTrainRow(
        1,
        'you know during the season and i guess at at your level uh you lose them',
        'You lose the things to the following level if the people recall.',
        'entailment',
      ),
      mnliTrainRow(2, '"Fun for adults and children.', 'Fun for only children.', 'contradiction'),
    ].join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'dev_matched.tsv'),
    [
      MNLI_DEV_HEAD,
      mnliDevRow(0, 'The new rights are nice enough', 'Everyone really likes the newest benefits ', 'neutral'),
      mnliDevRow(
        1,
        'This site includes a list of all award winners.',
        'The Government Executive articles housed on the website are not able to be searched.',
        'contradiction',
      ),
    ].join('\r\n') + '\r\n',
  );
  writeFileSync(
    join(dir, 'dev_mismatched.tsv'),
    [
      MNLI_DEV_HEAD,
      mnliDevRow(
        0,
        'Your contribution helped make it possible.',
        'Your contributions were of no help.',
        'contradiction',
      ),
    ].join('\n'),
  );
  return dir;
}

test('MNLI: train (12 columns) and dev_matched / dev_mismatched (16 columns) in the GLUE layout', () => {
  const root = scratch();
  writeMnli(root);
  const d = loadGlueTask(root, 'mnli');
  expect(Object.keys(d.files).sort()).toEqual(['dev_matched', 'dev_mismatched', 'train']);
  expect(d.numClasses).toBe(3);
  expect(d.labelNames).toEqual(['entailment', 'neutral', 'contradiction']);
  expect(d.splits.train!.map((e) => e.label)).toEqual([1, 0, 2]);
  expect(d.splits.train![2]).toEqual({
    a: '"Fun for adults and children.',
    b: 'Fun for only children.',
    label: 2,
    id: '2',
  });
  expect(d.splits.dev_matched!).toEqual([
    { a: 'The new rights are nice enough', b: 'Everyone really likes the newest benefits ', label: 1, id: '0' },
    {
      a: 'This site includes a list of all award winners.',
      b: 'The Government Executive articles housed on the website are not able to be searched.',
      label: 2,
      id: '1',
    },
  ]);
  expect(d.splits.dev_mismatched!.map((e) => e.label)).toEqual([2]);
  // asking for one split reads just that one
  expect(Object.keys(loadGlueTask(root, 'mnli', ['dev_mismatched']).splits)).toEqual(['dev_mismatched']);
  expect(() => findGlueTask(root, 'mnli', ['dev'])).toThrow(
    'MNLI has no dev split (its splits: train, dev_matched, dev_mismatched)',
  );
});

test('QQP: id qid1 qid2 question1 question2 is_duplicate', () => {
  const root = scratch();
  const dir = join(root, 'QQP');
  mkdirSync(dir);
  const head = 'id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate';
  writeFileSync(
    join(dir, 'train.tsv'),
    [
      head,
      '133273\t213221\t213222\tHow is the life of a math student? Could you describe your own experiences?\tWhich ' +
        'level of prepration is enough for the exam jlpt5?\t0',
      '402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1',
    ].join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'dev.tsv'),
    [
      head,
      '201359\t303345\t303346\tWhy are African-Americans so beautiful?\tWhy are hispanics so beautiful?\t0',
      '263843\t69383\t380476\tI want to pursue PhD in Computer Science about social network,what is the open ' +
        'problem in social networks?\t"I handle social media for a non-profit. Should I start going to social media ' +
        'networking events?\t0',
      '172974\t266948\t175089\tIs there a reason why we should travel alone?\tWhat are some reasons to travel ' +
        'alone?\t1',
    ].join('\n') + '\n',
  );
  const d = loadGlueTask(root, 'qqp');
  expect(d.splits.train!.length).toBe(2);
  expect(d.splits.dev!.map((e) => e.label)).toEqual([0, 0, 1]);
  expect(d.splits.dev![1].b!.startsWith('"I handle')).toBe(true);
  expect(d.splits.train![1]).toEqual({
    a: 'How do I control my horny emotions?',
    b: 'How do you control your horniness?',
    label: 1,
    id: '402555',
  });
  expect(d.labelNames).toEqual(['not_duplicate', 'duplicate']);
});

function expectHlm(fn: () => unknown, message: string) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(HlmError);
  expect((err as Error).message).toBe(message);
  expect((err as Error).message).not.toContain('\n');
}

test('errors: wrong column count, unknown label, missing files — one line each, naming file and line', () => {
  const dir = scratch();
  const sst = join(dir, 'sst.tsv');
  writeFileSync(sst, 'sentence\tlabel\ngood film\t1\nbad\tfilm\t0\n');
  expectHlm(
    () => readGlueFile(sst, 'sst2'),
    `${sst}:3: 3 tab-separated columns, expected 2 for SST-2 (GLUE TSVs are not quoted: a tab or newline inside a ` +
      `field breaks the row)`,
  );
  const cola = join(dir, 'cola.tsv');
  writeFileSync(cola, 'gj04\t1\t\tFine.\ngj04\t0\tBroken row\n');
  expectHlm(
    () => readGlueFile(cola, 'cola'),
    `${cola}:2: 3 tab-separated columns, expected 4 for CoLA (GLUE TSVs are not quoted: a tab or newline inside a ` +
      `field breaks the row)`,
  );
  const rte = join(dir, 'rte.tsv');
  writeFileSync(rte, 'index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n1\tA.\tB.\tcontradiction\n');
  expectHlm(
    () => readGlueFile(rte, 'rte'),
    `${rte}:3: unknown label "contradiction" for RTE (expected entailment, not_entailment)`,
  );
  const mnli = join(dir, 'mnli.tsv');
  writeFileSync(mnli, [MNLI_DEV_HEAD, mnliDevRow(0, 'a', 'b', '-')].join('\n'));
  expectHlm(
    () => readGlueFile(mnli, 'mnli'),
    `${mnli}:2: unknown label "-" for MNLI (expected entailment, neutral, contradiction)`,
  );
  const sts = join(dir, 'sts.tsv');
  writeFileSync(
    sts,
    'index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n0\tg\tf\ty' +
      '\t0\tn\tn\tA.\tB.\t5.2\n',
  );
  expectHlm(
    () => readGlueFile(sts, 'stsb'),
    `${sts}:2: unknown label "5.2" for STS-B (expected a similarity score from 0 to 5)`,
  );
  writeFileSync(sts, 'index\tsentence1\tsentence2\tscore\n0\tA.\tB.\tabc\n');
  expectHlm(
    () => readGlueFile(sts, 'stsb'),
    `${sts}:2: unknown label "abc" for STS-B (expected a similarity score from 0 to 5)`,
  );
  const qqp = join(dir, 'qqp.tsv');
  writeFileSync(qqp, 'id\tquestion1\tquestion2\tlabel\n');
  expectHlm(
    () => readGlueFile(qqp, 'qqp'),
    `${qqp}:1: the header has no "is_duplicate" column for QQP (header: id | question1 | question2 | label)`,
  );
  writeFileSync(qqp, '');
  expectHlm(() => readGlueFile(qqp, 'qqp'), `${qqp}: empty file (expected a QQP header line)`);

  const empty = scratch();
  expectHlm(
    () => loadGlueTask(empty, 'mnli'),
    `MNLI: no data files; looked for ` +
      `${['train.tsv', 'dev_matched.tsv', 'dev_mismatched.tsv'].map((f) => join(empty, 'MNLI', f)).join(', ')}`,
  );
  expectHlm(
    () => loadGlueTask(glue, 'qqp'),
    `QQP: no data files; looked for ${join(glue, 'QQP', 'train.tsv')}, ${join(glue, 'QQP', 'dev.tsv')}`,
  );
  expectHlm(
    () => loadGlueTask(glue, 'qnli', ['train', 'dev']),
    `QNLI: missing train split; looked for ${join(glue, 'QNLI', 'train.tsv')}`,
  );
  expectHlm(
    () => parseGlueTask('squad'),
    'unknown GLUE task "squad" (expected one of cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli)',
  );
});

test('TASKS table and task names', () => {
  expect(Object.keys(TASKS)).toEqual([...GLUE_TASKS]);
  expect(parseGlueTask('SST-2')).toBe('sst2');
  expect(parseGlueTask('sts-b')).toBe('stsb');
  expect(parseGlueTask('MNLI')).toBe('mnli');
  expect(TASKS.cola.metrics).toEqual(['mcc']);
  expect(TASKS.stsb.metrics).toEqual(['pearson', 'spearman']);
  expect(TASKS.mrpc.metrics).toEqual(['f1', 'accuracy']);
  expect(TASKS.qqp.metrics).toEqual(['f1', 'accuracy']);
  expect(TASKS.mnli.metrics).toEqual(['matched_accuracy', 'mismatched_accuracy']);
  for (const t of ['sst2', 'qnli', 'rte', 'wnli'] as const) expect(TASKS[t].metrics).toEqual(['accuracy']);
  for (const t of GLUE_TASKS) {
    const s = TASKS[t];
    expect(s.labelNames.length).toBe(s.numClasses);
    if (s.labelTokens) expect(s.labelTokens.length).toBe(s.numClasses);
    for (const e of s.evalSplits) expect(s.files[e]).toBeDefined();
  }
});
