// SIF sentence embeddings (Arora et al., 2017) on constructed cases: the a/(a+p) weighted mean, the
// removal of the first principal component (fit on the evaluated sentences), and evaluateSts with
// { sif } against an independent float64 reference.
import { describe, expect, test } from '@jest/globals';
import type { Embeddings } from '../src/whiten/formats.js';
import { evaluateSts, sifEmbeddings, spearman, type StsDataset } from '../src/whiten/sts.js';

const sqrt = Math.sqrt;
const cos = Math.cos;
const sin = Math.sin;
const abs = Math.abs;

function emb(words: string[], rows: number[][]): Embeddings {
  return { words, dim: rows[0].length, vectors: Float32Array.from(rows.flat()), format: 'word2vec' };
}

describe('sifEmbeddings', () => {
  test('weights a/(a+p), mean over the known words, unknown and p=0 words dropped (no PC removal)', () => {
    const e = emb(
      ['x', 'y', 'z'],
      [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ],
    );
    const p = [0.001, 0.009, 0];
    const { rows, empty } = sifEmbeddings(e, ['X, y z unknown!', 'nothing here'], { p, a: 1e-3, pcs: 0 });
    // x: 0.001/0.002 = 0.5, y: 0.001/0.01 = 0.1; mean over the 2 known words.
    const want = [0.25, 0.05, 0, 0, 0, 0];
    for (let i = 0; i < 6; i++) expect(abs(rows[i] - want[i])).toBeLessThan(1e-7);
    expect(empty).toEqual([false, true]);
  });

  test('removes the first principal component of the sentence matrix (uncentred)', () => {
    // Rows 0.5·(10 e0 ± e1), 0.5·(10 e0 ± e2): Gram = diag(100, 0.5, 0.5), top direction exactly e0.
    const e = emb(
      ['a', 'b', 'c', 'd'],
      [
        [10, 1, 0],
        [10, -1, 0],
        [10, 0, 1],
        [10, 0, -1],
      ],
    );
    const p = [1e-3, 1e-3, 1e-3, 1e-3];
    const { rows, components } = sifEmbeddings(e, ['a', 'b', 'c', 'd'], { p });
    expect(components.length).toBe(1);
    expect(abs(abs(components[0][0]) - 1)).toBeLessThan(1e-9);
    const want = [0, 0.5, 0, 0, -0.5, 0, 0, 0, 0.5, 0, 0, -0.5];
    for (let i = 0; i < 12; i++) expect(abs(rows[i] - want[i])).toBeLessThan(1e-6);
  });

  test('rejects p of the wrong length and a ≤ 0', () => {
    const e = emb(['a'], [[1, 2]]);
    expect(() => sifEmbeddings(e, ['a'], { p: [0.1, 0.2] })).toThrow(/2 probabilities for 1 words/);
    expect(() => sifEmbeddings(e, ['a'], { p: [0.1], a: 0 })).toThrow(/a must be positive/);
  });
});

describe('evaluateSts with SIF', () => {
  // Words on a circle in (e1, e2) plus a large common component along e0 + 0.3 e3, and a frequent word
  // "the" that appears in every sentence.
  const angles = [0, 0.37, 1.13, 1.71, 2.62, 3.29, 4.05, 5.23];
  const radii = [0.4, 3, 1.2, 0.7, 2.5, 0.9, 1.8, 0.5];
  const words = angles.map((_, i) => `w${i}`).concat(['the']);
  const rows = angles.map((t, i) => [8, radii[i] * cos(t), radii[i] * sin(t), 2.4]).concat([[0, 6, -8, 0]]);
  const e = emb(words, rows);
  const p = angles.map(() => 1e-4).concat([0.05]);
  const pairs: StsDataset['pairs'] = [];
  for (let i = 0; i < angles.length; i++)
    for (let j = i + 1; j < angles.length; j += 2)
      pairs.push({ a: `the ${words[i]}`, b: `${words[j]} the`, gold: cos(angles[i] - angles[j]) });
  const data: StsDataset = { name: 'constructed', pairs };

  function reference(): number {
    // Float64 reference: weighted means, top eigenvector of the Gram matrix by power iteration, removal, cosines.
    const a = 1e-3;
    const d = 4;
    const vec = (s: string) => {
      const v = new Float64Array(d);
      const ws = s.split(' ');
      for (const w of ws) {
        const i = words.indexOf(w);
        for (let c = 0; c < d; c++) v[c] += ((a / (a + p[i])) * Math.fround(rows[i][c])) / ws.length;
      }
      return v;
    };
    const S = pairs.flatMap((q) => [vec(q.a), vec(q.b)]);
    const G = Array.from({ length: d }, (_, i) =>
      Array.from({ length: d }, (_, j) => S.reduce((t, v) => t + v[i] * v[j], 0)),
    );
    let u = [1, 1, 1, 1];
    for (let it = 0; it < 2000; it++) {
      const w = G.map((g) => g.reduce((t, x, j) => t + x * u[j], 0));
      const nrm = sqrt(w.reduce((t, x) => t + x * x, 0));
      u = w.map((x) => x / nrm);
    }
    const R = S.map((v) => {
      const dot = v.reduce((t, x, c) => t + x * u[c], 0);
      return v.map((x, c) => x - dot * u[c]);
    });
    const sims = pairs.map((_, k) => {
      const x = R[2 * k];
      const y = R[2 * k + 1];
      const xy = x.reduce((t, v, c) => t + v * y[c], 0);
      const xx = x.reduce((t, v) => t + v * v, 0);
      const yy = y.reduce((t, v) => t + v * v, 0);
      return xy / sqrt(xx * yy);
    });
    return (
      100 *
      spearman(
        sims,
        pairs.map((q) => q.gold),
      )
    );
  }

  test('matches a float64 reference and beats the plain mean on a common-component case', () => {
    const sif = evaluateSts(e, data, { sif: { p, a: 1e-3 } });
    const raw = evaluateSts(e, data);
    const ref = reference();
    expect(Number.isFinite(sif.spearman)).toBe(true);
    expect(Number.isFinite(ref)).toBe(true);
    expect(abs(sif.spearman - ref)).toBeLessThan(1e-6);
    expect(sif.pairs).toBe(pairs.length);
    expect(sif.empty).toBe(0);
    expect(sif.spearman).toBeGreaterThan(raw.spearman + 5);
  });

  test('the Set form of the third argument still limits the words', () => {
    const known = new Set(words.filter((w) => w !== 'the'));
    const r = evaluateSts(e, data, known);
    const o = evaluateSts(e, data, { known });
    expect(Number.isFinite(r.spearman)).toBe(true);
    expect(o.spearman).toBe(r.spearman);
    expect(r.spearman).not.toBe(evaluateSts(e, data).spearman);
    expect(evaluateSts(e, data, new Set(['nothing'])).empty).toBe(pairs.length);
  });
});
