#!/usr/bin/env node
// Zipfian-whitening STS experiment (issue 7). Trains skip-gram vectors on ../shared/data/corpus/enwiki
// with Debian's fasttext (cached: skipped when the .vec exists), whitens them with `hlm whiten`
// (zipfian, uniform, abtt) using enwiki_vocab_min200.txt, and prints one table: rows raw, uniform,
// zipfian, abtt, SIF; columns STS-B and SICK-R Spearman×100, Sym1 and Sym2 under p.
//
//   npm run build && node scripts/whiten-sts.mjs [--train-only]
//   env: WH_DIM (300), WH_EPOCH (3), WH_THREADS (2), WH_MINCOUNT (5), WH_OUT (runs/whiten-sts)
//
// Corpus preparation: <doc ...> and </doc> lines dropped, every other non-empty line lowercased
// and tokenised exactly as src/whiten/sts.ts does (punctuation and symbols to spaces). fasttext
// runs with -minn 0 -maxn 0 (no character n-grams: plain word2vec skip-gram).
import { execFileSync, spawnSync } from 'node:child_process';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = resolve(root, '../shared/data');
const corpusDir = join(shared, 'corpus/enwiki');
const freqs = join(shared, 'wordfreq/enwiki_vocab_min200.txt');
const stsDir = join(shared, 'sts');
const out = resolve(root, process.env.WH_OUT ?? 'runs/whiten-sts');
const dim = Number(process.env.WH_DIM ?? 300);
const epoch = Number(process.env.WH_EPOCH ?? 3);
const threads = Number(process.env.WH_THREADS ?? 2);
const minCount = Number(process.env.WH_MINCOUNT ?? 5);
mkdirSync(out, { recursive: true });

// The same tokeniser as src/whiten/sts.ts.
const tokenize = (s) =>
  s
    .toLowerCase()
    .replace(/[\p{P}\p{S}]+/gu, ' ')
    .split(/\s+/)
    .filter(Boolean);

async function prepareCorpus(path) {
  if (existsSync(path)) return;
  const tmp = path + '.tmp';
  const w = createWriteStream(tmp);
  let lines = 0;
  let tokens = 0;
  for (const name of readdirSync(corpusDir).sort()) {
    const rl = createInterface({ input: createReadStream(join(corpusDir, name), 'utf8'), crlfDelay: Infinity });
    for await (const line of rl) {
      if (line.startsWith('<doc ') || line.startsWith('</doc>')) continue;
      const t = tokenize(line);
      if (!t.length) continue;
      lines++;
      tokens += t.length;
      if (!w.write(t.join(' ') + '\n')) await new Promise((r) => w.once('drain', r));
    }
  }
  await new Promise((r) => w.end(r));
  renameSync(tmp, path);
  console.error(`corpus: ${lines} lines, ${tokens} tokens -> ${path}`);
}

function train(corpus, prefix) {
  const vec = prefix + '.vec';
  if (existsSync(vec)) {
    console.error(`${vec} exists: training skipped`);
    return;
  }
  const args = [
    'skipgram',
    '-input',
    corpus,
    '-output',
    prefix,
    '-dim',
    String(dim),
    '-epoch',
    String(epoch),
    '-minCount',
    String(minCount),
    '-thread',
    String(threads),
    '-minn',
    '0',
    '-maxn',
    '0',
    '-verbose',
    '1',
  ];
  console.error(`fasttext ${args.join(' ')}`);
  const t0 = performance.now();
  const r = spawnSync('fasttext', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`fasttext failed (status ${r.status})`);
  writeFileSync(prefix + '.train-time.txt', `${s.toFixed(1)} s: fasttext ${args.join(' ')}\n`);
  console.error(`training: ${s.toFixed(1)} s`);
}

const corpus = join(out, 'enwiki.tok.txt');
const prefix = join(out, `sg.d${dim}.e${epoch}`);
const vec = prefix + '.vec';
await prepareCorpus(corpus);
train(corpus, prefix);
if (process.argv.includes('--train-only')) process.exit(0);

const rows = [];
const runs = {};
for (const method of ['zipfian', 'uniform', 'abtt']) {
  const args = [
    'whiten',
    '--embeddings',
    vec,
    '--frequencies',
    freqs,
    '--method',
    method,
    '--report',
    '--eval-sts',
    stsDir,
    '--json',
  ];
  const t0 = performance.now();
  const stdout = execFileSync(join(root, 'bin/run.js'), args, {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 28,
  });
  console.error(`hlm whiten --method ${method}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  runs[method] = JSON.parse(stdout);
  writeFileSync(join(out, `${method}.json`), stdout);
}
const score = (list, prefix) => list.find((s) => s.name.startsWith(prefix))?.spearman ?? NaN;
const row = (name, sts, sym) => ({
  name,
  stsb: score(sts, 'STS-B'),
  sick: score(sts, 'SICK-R'),
  sym1: sym?.p.sym1 ?? NaN,
  sym2: sym?.p.sym2 ?? NaN,
});
const z = runs.zipfian;
rows.push(row('raw', z.sts.input, z.symmetry.input));
for (const m of ['uniform', 'zipfian', 'abtt']) rows.push(row(m, runs[m].sts.output, runs[m].symmetry.output));

// SIF: sentence-level, on the raw vectors of the kept words, p over the kept words.
const { readEmbeddings, readFrequencies } = await import(join(root, 'dist/src/whiten/formats.js'));
const { align } = await import(join(root, 'dist/src/whiten/whiten.js'));
const { evaluateSts, findStsDatasets } = await import(join(root, 'dist/src/whiten/sts.js'));
const aligned = align(await readEmbeddings(vec), await readFrequencies(freqs));
const sifSts = findStsDatasets(stsDir).map((ds) => evaluateSts(aligned.emb, ds, { sif: { p: aligned.p, a: 1e-3 } }));
rows.push({ ...row('SIF', sifSts, undefined), sym1: NaN, sym2: NaN });
writeFileSync(join(out, 'sif.json'), JSON.stringify(sifSts, null, 2));

const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : '—');
const g = (x) => (Number.isFinite(x) ? x.toFixed(4) : '—');
const lines = [
  `skip-gram ${dim}d × ${epoch} epochs (fasttext, minCount ${minCount}), ${z.kept} words kept of ${z.input.words}; ` +
    `device ${z.device}`,
  `| vectors | STS-B ρ×100 | SICK-R ρ×100 | Sym1 (p) | Sym2 (p) |`,
  `|---|---:|---:|---:|---:|`,
  ...rows.map((r) => `| ${r.name} | ${f(r.stsb)} | ${f(r.sick)} | ${g(r.sym1)} | ${g(r.sym2)} |`),
  `(SIF reweights sentences of the raw vectors; its word vectors are the raw ones, so Sym1/Sym2 are those of raw.)`,
  `whitening time (${z.kept} × ${dim}, ${z.device}): ` +
    ['uniform', 'zipfian', 'abtt']
      .map(
        (m) =>
          `${m} fit ${(runs[m].timings.fitMs / 1000).toFixed(2)} s + apply ` +
          `${(runs[m].timings.applyMs / 1000).toFixed(2)} s`,
      )
      .join('; '),
];
const table = lines.join('\n');
console.log(table);
writeFileSync(join(out, 'table.md'), table + '\n');
