// Fuzzing the readers of evaluation data and results: LAMBADA (JSONL and text), GLUE TSV files
// (each task's train/dev layout and the test.tsv layout) and `hlm bench --compare` baselines
// (hlm.bench/1 JSON lines). Valid files with mutations, and raw bytes (helpers/fuzz.ts).
import { join } from 'node:path';
import { readLambada } from '../src/eval/lambada.js';
import { GLUE_TASKS, TASKS, readGlueFile, readGlueInputs, type GlueTask } from '../src/glue/data.js';
import { readRecords } from '../src/bench/compare.js';
import { syntheticRun } from './helpers/bench-records.js';
import {
  FUZZ_RUNS,
  FUZZ_TIMEOUT_MS,
  Tally,
  badToken,
  fc,
  fuzzParameters,
  fuzzRoot,
  jsonMutated,
  mutated,
  rawBytes,
  readCase,
  word,
} from './helpers/fuzz.js';

const { root, done } = fuzzRoot('tasks');
afterAll(done);

const sentence = fc
  .array(fc.oneof({ weight: 8, arbitrary: word }, { weight: 1, arbitrary: badToken }), { minLength: 1, maxLength: 8 })
  .map((ws) => ws.join(' '));

const lambadaFile = fc.oneof(
  fc
    .array(
      sentence.map((text) => ({ text })),
      { maxLength: 5 },
    )
    .chain((docs) => jsonMutated(fc.constant(docs)))
    .map((docs) => [
      'l.jsonl',
      Array.isArray(docs) ? docs.map((d) => JSON.stringify(d)).join('\n') + '\n' : String(JSON.stringify(docs)),
    ]),
  fc.array(sentence, { maxLength: 5 }).map((lines) => ['l.txt', lines.join('\n') + '\n']),
);

test(
  `LAMBADA: ${FUZZ_RUNS} generated inputs read or fail with an hlm error naming the file`,
  async () => {
    const tally = new Tally('LAMBADA');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          lambadaFile.chain(([name, text]) => mutated(fc.constant(text)).map((bytes) => [name, bytes] as const)),
          fc.tuple(fc.constantFrom('l.jsonl', 'l.txt'), rawBytes),
        ),
        async ([name, bytes]) => {
          const outcome = await readCase(
            root,
            { [name]: bytes },
            (dir) => {
              for (const p of readLambada(join(dir, name)))
                if (typeof p.text !== 'string' || !p.text.includes(' ')) throw new Error(`passage ${p.text}`);
            },
            (dir) => join(dir, name),
          );
          tally.add(outcome);
        },
      ),
      fuzzParameters(),
    );
    tally.check();
  },
  FUZZ_TIMEOUT_MS,
);

/** A task's header names: its sentence, second sentence, label and id columns (the first name of each). */
function headerOf(task: GlueTask): { a: string; b?: string; label: string; ids: string[] } | null {
  const { header, columns } = TASKS[task];
  const first = (r: unknown) => (r as string[])[0];
  if (!header) return null;
  return {
    a: first(columns.a),
    b: columns.b === undefined ? undefined : first(columns.b),
    label: first(columns.label),
    ids: (columns.id ?? []).map(first),
  };
}

/** A GLUE TSV file for a task: its header (columns in any order, an extra one too) and rows of its labels. */
const glueFile = fc.constantFrom(...GLUE_TASKS).chain((task) => {
  const spec = TASKS[task];
  const label = spec.labelTokens
    ? fc.constantFrom(...spec.labelTokens)
    : fc.double({ min: 0, max: 5, noNaN: true }).map(String);
  const rows = fc.array(fc.tuple(sentence, sentence, label, fc.nat()), { maxLength: 5 });
  const h = headerOf(task);
  if (!h) return rows.map((rs) => ({ task, text: rs.map(([a, , l]) => `src\t${l}\t\t${a}`).join('\n') + '\n' }));
  const names = [h.a, ...(h.b ? [h.b] : []), h.label, ...h.ids];
  return fc.tuple(fc.shuffledSubarray([...names, 'extra'], { minLength: names.length }), rows).map(([columns, rs]) => {
    const cell = (c: string, [a, b, l, id]: [string, string, string, number]) =>
      c === h.a ? a : c === h.b ? b : c === h.label ? l : String(id);
    const lines = [columns.join('\t'), ...rs.map((r) => columns.map((c) => cell(c, r)).join('\t'))];
    return { task, text: lines.join('\n') + '\n' };
  });
});

test(
  `GLUE TSV: ${FUZZ_RUNS} generated inputs, each read as a task's train/dev file and as its test file`,
  async () => {
    const tallies = { file: new Tally('GLUE train/dev files'), inputs: new Tally('GLUE test files') };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          glueFile.chain(({ task, text }) => mutated(fc.constant(text)).map((bytes) => ({ task, bytes }))),
          fc.tuple(fc.constantFrom(...GLUE_TASKS), rawBytes).map(([task, bytes]) => ({ task, bytes })),
        ),
        async ({ task, bytes }) => {
          const path = (dir: string) => join(dir, 'dev.tsv');
          tallies.file.add(await readCase(root, { 'dev.tsv': bytes }, (dir) => readGlueFile(path(dir), task), path));
          tallies.inputs.add(
            await readCase(root, { 'dev.tsv': bytes }, (dir) => readGlueInputs(path(dir), task), path),
          );
        },
      ),
      fuzzParameters(),
    );
    tallies.file.check();
    tallies.inputs.check();
  },
  FUZZ_TIMEOUT_MS,
);

/** A baseline: hlm.bench/1 records, one a line, each sometimes changed structurally. */
const baseline = fc
  .array(
    fc.constantFrom(...syntheticRun()).chain((r) => fc.oneof(fc.constant(r), jsonMutated(fc.constant(r)))),
    {
      maxLength: 4,
    },
  )
  .map((records) => records.map((r) => JSON.stringify(r)).join('\n') + '\n');

test(
  `bench baselines: ${FUZZ_RUNS} generated inputs read or fail with an hlm error naming the file`,
  async () => {
    const tally = new Tally('bench baselines');
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(baseline), rawBytes), async (bytes) => {
        const outcome = await readCase(
          root,
          { 'base.jsonl': bytes },
          (dir) => readRecords(join(dir, 'base.jsonl')),
          (dir) => join(dir, 'base.jsonl'),
        );
        tally.add(outcome);
      }),
      fuzzParameters(),
    );
    tally.check();
  },
  FUZZ_TIMEOUT_MS,
);
