// `hlm experiment whitening` on tiny synthetic vectors (anisotropic, with Zipfian frequencies) and
// two STS sets written here: every number equals `hlm whiten --eval-sts --sif --report` on the same
// inputs, the report's files are there, and a rerun skips the finished phase.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm } from './helpers/cli.js';
import { makeRandom } from './helpers/check.js';
import { marks, parseSvg, seriesColours } from './helpers/svg.js';
import type { ExperimentCommandResult } from '../src/cli/experiment.js';
import { validateExperimentResult } from '../src/report/result-schema.js';
import { WHITENING_VARIANTS } from '../src/experiment/whitening.js';

let dir: string;
let vectors: string;
let freqs: string;
let sts: string;
const WORDS = Array.from({ length: 60 }, (_, i) => `w${i}`);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-exp-whiten-'));
  const rand = makeRandom();
  const d = 8;
  // A shared offset and a stretched first axis: the raw vectors are far from isotropic.
  const shift = rand.normal(d, 1);
  const lines = WORDS.map((w) => {
    const v = rand.normal(d, 1).map((x, c) => (c === 0 ? 4 * x : x) + 2 * shift[c]);
    return `${w} ${Array.from(v, (x) => x.toFixed(5)).join(' ')}`;
  });
  vectors = join(dir, 'vec.txt');
  writeFileSync(vectors, `${WORDS.length} ${d}\n${lines.join('\n')}\n`);
  freqs = join(dir, 'freq.txt');
  writeFileSync(freqs, WORDS.map((w, i) => `${w} ${Math.round(100000 / (i + 1))}`).join('\n') + '\n');
  // Sentences of 3–6 words; gold similarity from shared words, with noise.
  const sentence = () =>
    Array.from({ length: 3 + Math.floor(rand.next() * 4) }, () => WORDS[Math.floor(rand.next() ** 2 * 60)]);
  const pairs = Array.from({ length: 40 }, () => {
    const a = sentence();
    const b = rand.next() < 0.5 ? [...a.slice(1), WORDS[Math.floor(rand.next() * 60)]] : sentence();
    const shared = a.filter((w) => b.includes(w)).length / Math.max(a.length, b.length);
    return { a: a.join(' '), b: b.join(' '), gold: Math.min(5, 5 * shared + rand.next()).toFixed(2) };
  });
  sts = join(dir, 'sts');
  mkdirSync(join(sts, 'STSBenchmark'), { recursive: true });
  mkdirSync(join(sts, 'SICK'), { recursive: true });
  writeFileSync(
    join(sts, 'STSBenchmark', 'sts-test.csv'),
    pairs
      .slice(0, 20)
      .map((p, i) => `main-news\tf\t2020\t${i}\t${p.gold}\t${p.a}.\t${p.b}!`)
      .join('\n') + '\n',
  );
  writeFileSync(
    join(sts, 'SICK', 'SICK_test_annotated.txt'),
    'pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n' +
      pairs
        .slice(20)
        .map((p, i) => `${i}\t${p.a}\t${p.b}\t${p.gold}\tNEUTRAL`)
        .join('\n') +
      '\n',
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): unknown {
  const r = hlm([...args, '--json']);
  if (r.status !== 0) throw new Error(`hlm ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

interface WhitenJson {
  symmetry: Record<'input' | 'output', Record<'p' | 'uniform', { sym1: number; sym2: number }>>;
  sts: Record<'input' | 'output' | 'sif', { name: string; spearman: number }[]>;
}

test('every number equals hlm whiten --eval-sts on the same inputs; a rerun skips the done phase', () => {
  const out = join(dir, 'experiment');
  const args = ['experiment', 'whitening', '--embeddings', vectors, '--frequencies', freqs, '--sts', sts, '--out', out];
  const e = run(args) as ExperimentCommandResult;
  expect(validateExperimentResult(e.result)).toEqual([]);
  const score = (variant: string, section: string, task: string) => {
    const s = e.result.scores.filter((x) => x.variant === variant && x.section === section && x.task === task);
    expect(s.length).toBe(1);
    return s[0].value;
  };
  const sets = ['SICK-R test', 'STS-B test'];
  expect([...new Set(e.result.scores.filter((s) => s.section === 'STS').map((s) => s.task))].sort()).toEqual(sets);
  const name = { center: 'centred', uniform: 'uniform', zipfian: 'Zipfian', abtt: 'ABTT' } as const;
  for (const method of ['center', 'uniform', 'zipfian', 'abtt'] as const) {
    const w = run([
      'whiten',
      ...['--embeddings', vectors, '--frequencies', freqs, '--method', method, '--eval-sts', sts],
      ...['--sif', '--report'],
    ]) as WhitenJson;
    for (const s of w.sts.output) expect(score(name[method], 'STS', s.name)).toBe(s.spearman);
    for (const s of w.sts.input) expect(score('raw', 'STS', s.name)).toBe(s.spearman);
    for (const s of w.sts.sif) expect(score('SIF', 'STS', s.name)).toBe(s.spearman);
    for (const measure of ['p', 'uniform'] as const)
      for (const k of ['sym1', 'sym2'] as const) {
        const task = `${k === 'sym1' ? 'Sym1' : 'Sym2'} (${measure})`;
        expect(score(name[method], 'symmetry', task)).toBe(w.symmetry.output[measure][k]);
        expect(score('raw', 'symmetry', task)).toBe(w.symmetry.input[measure][k]);
      }
  }
  // Whitening under p makes the vectors symmetric under p: Sym1 (p) is 1 up to rounding.
  if (!(Math.abs(score('Zipfian', 'symmetry', 'Sym1 (p)') - 1) < 1e-4))
    throw new Error(`Zipfian Sym1 (p) = ${score('Zipfian', 'symmetry', 'Sym1 (p)')}`);
  expect(e.result.scores.some((s) => s.variant === 'SIF' && s.section === 'symmetry')).toBe(false);

  expect(readdirSync(out).sort()).toEqual(['plots', 'report.html', 'report.md', 'result.json']);
  for (const plot of ['STS-scores', 'symmetry-scores']) {
    const svg = readFileSync(join(out, 'plots', `${plot}.svg`), 'utf8');
    parseSvg(svg);
    const want = WHITENING_VARIANTS.map((v) => v.name).filter((v) => plot === 'STS-scores' || v !== 'SIF');
    expect([...seriesColours(marks(svg, 'bar'), 'method', 'fill').keys()].sort()).toEqual(want.sort());
  }
  const again = run(args) as ExperimentCommandResult;
  expect(again.ran).toEqual([]);
  expect(again.skipped).toEqual(['whitening']);
  expect(again.result.scores).toEqual(e.result.scores);
});

test('an STS set found twice is refused, naming it', () => {
  const r = hlm(['experiment', 'whitening', '--embeddings', vectors, '--frequencies', freqs, '--sts', sts, sts], {});
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/hlm: --sts: two sets are named "SICK-R test"; give each directory once/);
});
