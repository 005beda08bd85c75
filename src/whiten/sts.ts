// Semantic textual similarity with bag-of-words sentence vectors: a sentence is the mean of the
// vectors of its words (lowercased, punctuation replaced by spaces, words without a vector or
// frequency dropped), a pair's score the cosine, the result Spearman × 100 against gold.
// Readers: STS Benchmark (sts-*.csv, tab separated), SICK (SICK_*.txt) and SentEval's STS12–16
// layout (STS.input.<name>.txt with STS.gs.<name>.txt, blank gold lines skipped).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HlmError } from '../errors.js';
import type { Embeddings } from './formats.js';

export interface StsPair {
  a: string;
  b: string;
  gold: number;
}

export interface StsDataset {
  name: string;
  pairs: StsPair[];
}

const sqrt = Math.sqrt;

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new HlmError(`${path}: cannot read: ${(e as Error).message}`);
  }
}

function gold(path: string, line: number, s: string): number {
  const v = Number(s);
  if (s === undefined || s.trim() === '' || !Number.isFinite(v)) throw new HlmError(`${path}:${line}: gold score "${s}" is not a number`);
  return v;
}

/** STS Benchmark: genre, file, year, id, score, s1, s2 (some rows carry extra trailing columns). */
export function readStsBenchmark(path: string): StsPair[] {
  const pairs: StsPair[] = [];
  readText(path).split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) return;
    const f = line.split('\t');
    if (f.length < 7) throw new HlmError(`${path}:${i + 1}: expected at least 7 tab-separated fields (genre, file, year, id, score, s1, s2), got ${f.length}`);
    pairs.push({ a: f[5], b: f[6], gold: gold(path, i + 1, f[4]) });
  });
  return pairs;
}

/** SICK: a header naming sentence_A, sentence_B and relatedness_score. */
export function readSick(path: string): StsPair[] {
  const lines = readText(path).split('\n').map((l) => l.replace(/\r$/, ''));
  const head = lines[0].split('\t');
  const ia = head.indexOf('sentence_A'), ib = head.indexOf('sentence_B'), is = head.indexOf('relatedness_score');
  if (ia < 0 || ib < 0 || is < 0) throw new HlmError(`${path}:1: SICK header must name sentence_A, sentence_B and relatedness_score`);
  const pairs: StsPair[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    const f = lines[i].split('\t');
    if (f.length < head.length) throw new HlmError(`${path}:${i + 1}: ${f.length} fields, the header has ${head.length}`);
    pairs.push({ a: f[ia], b: f[ib], gold: gold(path, i + 1, f[is]) });
  }
  return pairs;
}

/** SentEval STS12–16: STS.input.<x>.txt (s1 TAB s2) with STS.gs.<x>.txt; blank gold lines are unscored pairs. */
export function readSentEval(inputPath: string, gsPath: string): StsPair[] {
  const inputs = readText(inputPath).split('\n').map((l) => l.replace(/\r$/, ''));
  const gs = readText(gsPath).split('\n').map((l) => l.replace(/\r$/, ''));
  while (inputs.length && inputs.at(-1) === '') inputs.pop();
  while (gs.length && gs.at(-1) === '') gs.pop();
  if (gs.length > inputs.length) throw new HlmError(`${gsPath}: ${gs.length} gold lines for ${inputs.length} sentence pairs in ${inputPath}`);
  const pairs: StsPair[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const g = gs[i]?.trim() ?? '';
    if (!g) continue;
    const f = inputs[i].split('\t');
    if (f.length < 2) throw new HlmError(`${inputPath}:${i + 1}: expected two tab-separated sentences`);
    pairs.push({ a: f[0], b: f[1], gold: gold(gsPath, i + 1, g) });
  }
  return pairs;
}

/** Every evaluation set found under dir (recursively, two levels): sts-test.csv, SICK_test_annotated.txt, STS.input.*.txt. */
export function findStsDatasets(dir: string): StsDataset[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new HlmError(`--eval-sts ${dir}: not a directory`);
  const out: StsDataset[] = [];
  const visit = (d: string, depth: number) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) {
        if (depth < 2) visit(path, depth + 1);
        continue;
      }
      if (name === 'sts-test.csv') out.push({ name: 'STS-B test', pairs: readStsBenchmark(path) });
      else if (name === 'SICK_test_annotated.txt') out.push({ name: 'SICK-R test', pairs: readSick(path) });
      else {
        const m = /^STS\.input\.(.+)\.txt$/.exec(name);
        const gs = m && join(d, `STS.gs.${m[1]}.txt`);
        if (m && gs && existsSync(gs)) out.push({ name: `${basename(d)} ${m[1]}`, pairs: readSentEval(path, gs) });
      }
    }
  };
  visit(dir, 0);
  if (!out.length) throw new HlmError(`--eval-sts ${dir}: found no sts-test.csv, SICK_test_annotated.txt or STS.input.*.txt`);
  return out;
}

/** Lowercase, punctuation and symbols to spaces, split on whitespace. */
export function tokenize(s: string): string[] {
  return s.toLowerCase().replace(/[\p{P}\p{S}]+/gu, ' ').split(/\s+/).filter(Boolean);
}

/** Average ranks (1-based), ties sharing the mean of their positions. */
export function ranks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && x[idx[j + 1]] === x[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (n !== b.length) throw new HlmError(`correlation: ${n} values against ${b.length}`);
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
  ma /= n; mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma, db = b[i] - mb;
    sab += da * db; saa += da * da; sbb += db * db;
  }
  return sab / sqrt(saa * sbb);
}

/** Spearman's rho with ties (Pearson of average ranks); NaN when either side is constant. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return pearson(ranks(a), ranks(b));
}

export interface StsScore {
  name: string;
  pairs: number;
  /** Pairs where a sentence had no known word (cosine taken as 0). */
  empty: number;
  spearman: number;
}

/** Spearman × 100 of cosine similarities of mean word vectors; `known` limits the words used (default: every word with a vector). */
export function evaluateSts(emb: Embeddings, data: StsDataset, known?: Set<string>): StsScore {
  const d = emb.dim;
  const index = new Map<string, number>();
  emb.words.forEach((w, i) => { if (!known || known.has(w)) index.set(w, i); });
  const sentence = (s: string): Float64Array | undefined => {
    const v = new Float64Array(d);
    let k = 0;
    for (const t of tokenize(s)) {
      const i = index.get(t);
      if (i === undefined) continue;
      for (let c = 0; c < d; c++) v[c] += emb.vectors[i * d + c];
      k++;
    }
    return k ? v : undefined;
  };
  const sims = new Float64Array(data.pairs.length), golds = new Float64Array(data.pairs.length);
  let empty = 0;
  data.pairs.forEach((p, i) => {
    golds[i] = p.gold;
    const a = sentence(p.a), b = sentence(p.b);
    if (!a || !b) { empty++; return; }
    let ab = 0, aa = 0, bb = 0;
    for (let c = 0; c < d; c++) { ab += a[c] * b[c]; aa += a[c] * a[c]; bb += b[c] * b[c]; }
    sims[i] = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
  });
  return { name: data.name, pairs: data.pairs.length, empty, spearman: 100 * spearman(sims, golds) };
}
