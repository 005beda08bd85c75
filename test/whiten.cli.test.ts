// hlm whiten as users run it: --json report, --out - on stdout with logs on stderr, errors.
// Needs `npm run build` (the CLI loads commands from dist/).
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm } from './helpers/cli.js';
import { makeRandom } from './helpers/check.js';
import { readEmbeddings, serializeEmbeddings } from '../src/whiten/formats.js';

const rand = makeRandom();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-whiten-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('hlm whiten --json --report --eval-sts writes the vectors and reports symmetry and STS', async () => {
  const n = 61;
  const d = 7;
  const words = Array.from({ length: n }, (_, i) => (i === 0 ? 'cat' : i === 1 ? 'dog' : `w${i}`));
  const vecs = Float32Array.from(rand.normal(n * d), (v, i) => v + (i % d === 0 ? 3 : 0));
  const emb = join(dir, 'v.txt');
  const freq = join(dir, 'f.txt');
  const out = join(dir, 'z.txt');
  writeFileSync(emb, serializeEmbeddings({ words, dim: d, vectors: vecs, format: 'word2vec' }));
  writeFileSync(
    freq,
    words
      .slice(0, n - 1)
      .map((w, i) => `${w} ${Math.round(1e5 / (i + 1))}`)
      .join('\n') + '\nunseen 5\n',
  );
  mkdirSync(join(dir, 'sts'));
  writeFileSync(
    join(dir, 'sts/sts-test.csv'),
    'g\tf\ty\t1\t5\tcat\tthe cat\ng\tf\ty\t2\t1\tcat\tdog\ng\tf\ty\t3\t3\tw5 w6\tw5\n',
  );
  const r = hlm([
    'whiten',
    '--embeddings',
    emb,
    '--frequencies',
    freq,
    '--method',
    'zipfian',
    '--out',
    out,
    '--report',
    '--eval-sts',
    join(dir, 'sts'),
    '--device',
    'cpu',
    '--json',
  ]);
  if (r.status !== 0) throw new Error(r.stderr);
  const j = JSON.parse(r.stdout);
  expect(j).toMatchObject({
    method: 'zipfian',
    kept: n - 1,
    dropped: { noFrequency: 1, noVector: 1 },
    input: { format: 'word2vec', words: n, dim: d },
  });
  expect(j.symmetry.output.p.sym2).toBeGreaterThan(1 - 1e-4);
  expect(j.symmetry.input.p.sym1).toBeLessThan(j.symmetry.output.p.sym1);
  expect(j.sts.output[0]).toMatchObject({ name: 'STS-B test', pairs: 3 });
  expect(Number.isFinite(j.sts.output[0].spearman)).toBe(true);
  const z = await readEmbeddings(out);
  expect(z.words).toEqual(words.slice(0, n - 1));
  expect(z.format).toBe('word2vec');
});

test('--out - puts only the vectors on stdout (GloVe in, GloVe out); a bad file fails with its line', () => {
  const emb = join(dir, 'g.txt');
  const freq = join(dir, 'f2.txt');
  const words = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  writeFileSync(emb, serializeEmbeddings({ words, dim: 3, vectors: rand.normal(21), format: 'glove' }));
  writeFileSync(freq, words.map((w, i) => `${w} ${10 + i}`).join('\n'));
  const r = hlm([
    'whiten',
    '--embeddings',
    emb,
    '--frequencies',
    freq,
    '--method',
    'uniform',
    '--out',
    '-',
    '--device',
    'cpu',
    '--log-level',
    'info',
  ]);
  if (r.status !== 0) throw new Error(r.stderr);
  const lines = r.stdout.trim().split('\n');
  expect(lines.length).toBe(7);
  expect(lines.every((l) => l.split(' ').length === 4)).toBe(true);
  expect(r.stderr).toMatch(/7 words kept/);
  writeFileSync(emb, readFileSync(emb, 'utf8').replace(/^b .*$/m, 'b 1 2'));
  const bad = hlm(['whiten', '--embeddings', emb, '--frequencies', freq, '--out', '-', '--device', 'cpu']);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/g\.txt:2: "b" has 2 values, expected 3/);
});

test('.npy: --format npy writes X.npy + X.vocab; .npy in with --vocab; --out - refuses npy', async () => {
  const emb = join(dir, 'n.txt');
  const freq = join(dir, 'f3.txt');
  const out = join(dir, 'n.npy');
  const words = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'];
  writeFileSync(emb, serializeEmbeddings({ words, dim: 5, vectors: rand.normal(45), format: 'word2vec' }));
  writeFileSync(freq, words.map((w, i) => `${w} ${100 / (i + 1)}`).join('\n'));
  const r = hlm([
    'whiten',
    '--embeddings',
    emb,
    '--frequencies',
    freq,
    '--method',
    'zipfian',
    '--out',
    out,
    '--format',
    'npy',
    '--device',
    'cpu',
  ]);
  if (r.status !== 0) throw new Error(r.stderr);
  const z = await readEmbeddings(out);
  expect(z.format).toBe('npy');
  expect(z.words).toEqual(words);
  expect(readFileSync(join(dir, 'n.vocab'), 'utf8')).toBe(words.join('\n') + '\n');
  writeFileSync(join(dir, 'other.words'), readFileSync(join(dir, 'n.vocab')));
  const out2 = join(dir, 'c.txt');
  const r2 = hlm([
    'whiten',
    '--embeddings',
    out,
    '--vocab',
    join(dir, 'other.words'),
    '--frequencies',
    freq,
    '--method',
    'center',
    '--out',
    out2,
    '--format',
    'word2vec',
    '--device',
    'cpu',
  ]);
  if (r2.status !== 0) throw new Error(r2.stderr);
  const c = await readEmbeddings(out2);
  expect(c.words).toEqual(words);
  // Zipfian-whitened vectors have Σ p z = 0, and center subtracts the uniform mean: the result has uniform mean 0.
  for (let k = 0; k < 5; k++) {
    let s = 0;
    for (let i = 0; i < words.length; i++) s += c.vectors[i * 5 + k];
    expect(Math.abs(s / words.length)).toBeLessThan(1e-5);
  }
  const bad = hlm(['whiten', '--embeddings', out, '--frequencies', freq, '--out', '-', '--device', 'cpu']);
  expect(bad.status).toBe(1);
  expect(bad.stderr).toMatch(/--out - cannot carry npy output/);
});
