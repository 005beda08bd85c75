// Semantic textual similarity with bag-of-words sentence vectors: a sentence is the mean of the
// vectors of its words (lowercased, punctuation replaced by spaces, words without a vector or
// frequency dropped), a pair's score the cosine, the result Spearman × 100 against gold.
// Readers: STS Benchmark (sts-*.csv, tab separated), SICK (SICK_*.txt) and SentEval's STS12–16
// layout (STS.input.<name>.txt with STS.gs.<name>.txt, blank gold lines skipped).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { HlmError } from '../errors.js';
import { spearman } from '../util/stats.js';
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
const min = Math.min;

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new HlmError(`${path}: cannot read: ${(e as Error).message}`);
  }
}

function gold(path: string, line: number, s: string): number {
  const v = Number(s);
  if (s === undefined || s.trim() === '' || !Number.isFinite(v))
    throw new HlmError(`${path}:${line}: gold score "${s}" is not a number`);
  return v;
}

/** STS Benchmark: genre, file, year, id, score, s1, s2 (some rows carry extra trailing columns). */
export function readStsBenchmark(path: string): StsPair[] {
  const pairs: StsPair[] = [];
  readText(path)
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/\r$/, '');
      if (!line.trim()) return;
      const f = line.split('\t');
      if (f.length < 7)
        throw new HlmError(
          `${path}:${i + 1}: expected at least 7 tab-separated fields (genre, file, year, id, score, s1, s2), got ` +
            `${f.length}`,
        );
      pairs.push({ a: f[5], b: f[6], gold: gold(path, i + 1, f[4]) });
    });
  return pairs;
}

/** SICK: a header naming sentence_A, sentence_B and relatedness_score. */
export function readSick(path: string): StsPair[] {
  const lines = readText(path)
    .split('\n')
    .map((l) => l.replace(/\r$/, ''));
  const head = lines[0].split('\t');
  const ia = head.indexOf('sentence_A');
  const ib = head.indexOf('sentence_B');
  const is = head.indexOf('relatedness_score');
  if (ia < 0 || ib < 0 || is < 0)
    throw new HlmError(`${path}:1: SICK header must name sentence_A, sentence_B and relatedness_score`);
  const pairs: StsPair[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    const f = lines[i].split('\t');
    if (f.length < head.length)
      throw new HlmError(`${path}:${i + 1}: ${f.length} fields, the header has ${head.length}`);
    pairs.push({ a: f[ia], b: f[ib], gold: gold(path, i + 1, f[is]) });
  }
  return pairs;
}

/** SentEval STS12–16: STS.input.<x>.txt (s1 TAB s2) with STS.gs.<x>.txt; blank gold lines are unscored pairs. */
export function readSentEval(inputPath: string, gsPath: string): StsPair[] {
  const inputs = readText(inputPath)
    .split('\n')
    .map((l) => l.replace(/\r$/, ''));
  const gs = readText(gsPath)
    .split('\n')
    .map((l) => l.replace(/\r$/, ''));
  while (inputs.length && inputs.at(-1) === '') inputs.pop();
  while (gs.length && gs.at(-1) === '') gs.pop();
  if (gs.length > inputs.length)
    throw new HlmError(`${gsPath}: ${gs.length} gold lines for ${inputs.length} sentence pairs in ${inputPath}`);
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

/**
 * Every evaluation set found under dir (recursively, two levels): sts-test.csv, SICK_test_annotated.txt,
 * STS.input.*.txt.
 */
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
  if (!out.length)
    throw new HlmError(`--eval-sts ${dir}: found no sts-test.csv, SICK_test_annotated.txt or STS.input.*.txt`);
  return out;
}

/** Lowercase, punctuation and symbols to spaces, split on whitespace. */
export function tokenize(s: string): string[] {
  return s
    .toLowerCase()
    .replace(/[\p{P}\p{S}]+/gu, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

// One implementation of the rank statistics for the whole project (GLUE's STS-B uses them too);
// a constant input gives 0 rather than NaN.
export { averageRanks as ranks, pearson, spearman } from '../util/stats.js';

export interface StsScore {
  name: string;
  pairs: number;
  /** Pairs where a sentence had no known word (cosine taken as 0). */
  empty: number;
  spearman: number;
}

/** SIF's smoothing a in a / (a + p(w)), the SIF paper's recommended value. */
export const SIF_A = 1e-3;

export interface SifOptions {
  /** p(w) for each row of the embeddings (e.g. `align(...).p`); words with p ≤ 0 or non-finite are dropped. */
  p: ArrayLike<number>;
  /** Smoothing a in a / (a + p(w)); default SIF_A. */
  a?: number;
  /** Leading principal components removed (default 1; 0 keeps the weighted means). */
  pcs?: number;
}

export interface EvaluateStsOptions {
  /** Limit the words used (default: every word with a vector). */
  known?: Set<string>;
  /** SIF (Arora et al., 2017): weighted mean with a / (a + p(w)), then the first principal component of the
   * evaluated set's sentence vectors removed (fit on the sentences being scored). */
  sif?: SifOptions;
}

/**
 * SIF sentence embeddings (Arora, Liang & Ma, 2017): v_s = (1/|s|) Σ_w a/(a + p(w)) x_w over the words of s
 * that have a vector and a frequency; then, with u_1..u_k the top singular vectors of the matrix whose rows are
 * the non-empty v_s (no centering, as in the reference implementation), v_s ← v_s − Σ u uᵀ v_s.
 * Returns the rows (n × d, float64) and which sentences had no known word (their row stays 0).
 */
export function sifEmbeddings(
  emb: Embeddings,
  sentences: string[],
  opts: SifOptions,
  known?: Set<string>,
): { rows: Float64Array; empty: boolean[]; components: Float64Array[] } {
  const d = emb.dim;
  const a = opts.a ?? SIF_A;
  const pcs = opts.pcs ?? 1;
  if (opts.p.length !== emb.words.length)
    throw new HlmError(`SIF: ${opts.p.length} probabilities for ${emb.words.length} words`);
  if (!(a > 0)) throw new HlmError(`SIF: a must be positive, got ${a}`);
  const index = new Map<string, number>();
  emb.words.forEach((w, i) => {
    const p = opts.p[i];
    if ((!known || known.has(w)) && Number.isFinite(p) && p > 0) index.set(w, i);
  });
  const n = sentences.length;
  const rows = new Float64Array(n * d);
  const empty: boolean[] = new Array(n).fill(false);
  sentences.forEach((s, r) => {
    let k = 0;
    for (const t of tokenize(s)) {
      const i = index.get(t);
      if (i === undefined) continue;
      const wgt = a / (a + opts.p[i]);
      for (let c = 0; c < d; c++) rows[r * d + c] += wgt * emb.vectors[i * d + c];
      k++;
    }
    if (k) for (let c = 0; c < d; c++) rows[r * d + c] /= k;
    else empty[r] = true;
  });
  const components: Float64Array[] = [];
  if (pcs > 0) {
    // Gram matrix G = Σ_s v_s v_sᵀ (empty rows are 0 and do not contribute); its top eigenvectors are the
    // top right singular vectors of the sentence matrix.
    const g: Float64Array[] = Array.from({ length: d }, () => new Float64Array(d));
    for (let r = 0; r < n; r++) {
      const o = r * d;
      for (let i = 0; i < d; i++) {
        const vi = rows[o + i];
        if (vi === 0) continue;
        const gi = g[i];
        for (let j = 0; j < d; j++) gi[j] += vi * rows[o + j];
      }
    }
    const evd = new EigenvalueDecomposition(new Matrix(g.map((x) => Array.from(x))), { assumeSymmetric: true });
    const vals = evd.realEigenvalues;
    const V = evd.eigenvectorMatrix;
    const order = vals.map((_, i) => i).sort((x, y) => vals[y] - vals[x]);
    for (let k = 0; k < min(pcs, d); k++) {
      const u = Float64Array.from(V.getColumn(order[k]));
      components.push(u);
      for (let r = 0; r < n; r++) {
        if (empty[r]) continue;
        const o = r * d;
        let dot = 0;
        for (let c = 0; c < d; c++) dot += u[c] * rows[o + c];
        for (let c = 0; c < d; c++) rows[o + c] -= dot * u[c];
      }
    }
  }
  return { rows, empty, components };
}

/** Spearman × 100 of cosine similarities of sentence vectors: mean word vectors, or SIF with `opts.sif`.
 * A pair with a sentence without known words scores cosine 0 (counted in `empty`).
 * The third argument may also be a Set of known words (the older signature). */
export function evaluateSts(emb: Embeddings, data: StsDataset, opts?: Set<string> | EvaluateStsOptions): StsScore {
  const o: EvaluateStsOptions = opts instanceof Set ? { known: opts } : (opts ?? {});
  const known = o.known;
  const d = emb.dim;
  const np = data.pairs.length;
  let vec: (r: number) => Float64Array | undefined;
  if (o.sif) {
    const sentences: string[] = [];
    for (const p of data.pairs) sentences.push(p.a, p.b);
    const { rows, empty } = sifEmbeddings(emb, sentences, o.sif, known);
    vec = (r) => (empty[r] ? undefined : rows.subarray(r * d, (r + 1) * d));
  } else {
    const index = new Map<string, number>();
    emb.words.forEach((w, i) => {
      if (!known || known.has(w)) index.set(w, i);
    });
    vec = (r) => {
      const s = r % 2 === 0 ? data.pairs[r >> 1].a : data.pairs[r >> 1].b;
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
  }
  const sims = new Float64Array(np);
  const golds = new Float64Array(np);
  let empty = 0;
  data.pairs.forEach((p, i) => {
    golds[i] = p.gold;
    const a = vec(2 * i);
    const b = vec(2 * i + 1);
    if (!a || !b) {
      empty++;
      return;
    }
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let c = 0; c < d; c++) {
      ab += a[c] * b[c];
      aa += a[c] * a[c];
      bb += b[c] * b[c];
    }
    sims[i] = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
  });
  return { name: data.name, pairs: np, empty, spearman: 100 * spearman(sims, golds) };
}
