// `hlm experiment whitening`: the Zipfian-whitening paper's comparison on given word vectors. The
// raw vectors, centred, uniform (PCA) whitening, Zipfian whitening, ABTT and SIF side by side on
// every STS set found, with the symmetry scores (Sym1, Sym2 under p and under the uniform measure)
// of each method's vectors. Every number is what `hlm whiten --eval-sts` (--sif, --report) gives
// on the same inputs: the same functions compute it.
import { resolve } from 'node:path';
import type { Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { buildInfo, envInfo, gpuInfo } from '../bench/record.js';
import { readEmbeddings, readFrequencies } from '../whiten/formats.js';
import { SIF_A, evaluateSts, findStsDatasets, type StsDataset, type StsScore } from '../whiten/sts.js';
import { align, whiten, type SymmetryReport, type WhitenMethod } from '../whiten/whiten.js';
import type { ExperimentResult, Score } from '../report/experiment.js';
import type { WrittenReport } from '../report/report.js';
import { ExperimentDir } from './state.js';

export interface WhiteningOptions {
  embeddings: string;
  /** The vocabulary of an .npy --embeddings. */
  vocab?: string;
  frequencies: string;
  /** Directories searched for STS sets (findStsDatasets). */
  sts: string[];
  abttK: number;
  epsilon?: number;
  out: string;
}

/** The methods compared, by the name the report uses. */
export const WHITENING_VARIANTS: readonly { name: string; method: WhitenMethod | 'raw' | 'sif' }[] = [
  { name: 'raw', method: 'raw' },
  { name: 'centred', method: 'center' },
  { name: 'uniform', method: 'uniform' },
  { name: 'Zipfian', method: 'zipfian' },
  { name: 'ABTT', method: 'abtt' },
  { name: 'SIF', method: 'sif' },
];

export interface WhiteningMethodResult {
  name: string;
  sts: StsScore[];
  /** The vectors' symmetry scores; none for SIF, which weights sentences, not vectors. */
  symmetry?: SymmetryReport;
}

export interface WhiteningResult {
  out: string;
  result: ExperimentResult;
  report: WrittenReport;
  /** Phases this invocation ran, and those it found done. */
  ran: string[];
  skipped: string[];
}

function stsSets(dirs: readonly string[]): StsDataset[] {
  if (!dirs.length) throw new HlmError('--sts: give at least one directory of STS sets');
  const sets = dirs.flatMap((d) => findStsDatasets(d));
  const seen = new Set<string>();
  for (const s of sets) {
    if (seen.has(s.name)) throw new HlmError(`--sts: two sets are named "${s.name}"; give each directory once`);
    seen.add(s.name);
  }
  return sets;
}

export async function runWhitening(gpu: Gpu, o: WhiteningOptions): Promise<WhiteningResult> {
  const sets = stsSets(o.sts);
  const exp = ExperimentDir.open({
    out: o.out,
    experiment: 'whitening',
    title: 'Zipfian whitening against uniform whitening and the baselines on STS',
    variantTitle: 'method',
    arguments: {
      embeddings: resolve(o.embeddings),
      vocab: o.vocab === undefined ? undefined : resolve(o.vocab),
      frequencies: resolve(o.frequencies),
      sts: o.sts.map((d) => resolve(d)),
      abttK: o.abttK,
      epsilon: o.epsilon,
    },
    flagNames: { abttK: 'abtt-k' },
    phases: ['whitening'],
    planned: {},
    build: buildInfo(),
    hardware: { env: envInfo(), gpu: gpuInfo(gpu) },
    notes: [
      'STS: Spearman ×100 of the cosines of mean word vectors (lowercased, punctuation removed, words without a ' +
        `vector or frequency dropped); SIF weights words by a/(a + p), a = ${SIF_A}, and removes the first ` +
        "principal component of each set's sentence vectors. p is the frequency file's, over the words kept.",
      'Symmetry: Sym1 = 1 − ‖mean‖ / mean ‖row‖ and Sym2 = the normalised entropy of the covariance spectrum, ' +
        'under p (Zipfian) and under the uniform measure; 1 is perfectly symmetric. Scores carry seed 0: nothing ' +
        'here is random.',
    ],
  });
  try {
    const ran = await exp.run('whitening', async () => {
      const emb = await readEmbeddings(o.embeddings, undefined, { vocab: o.vocab });
      const counts = await readFrequencies(o.frequencies);
      const names = { embeddings: o.embeddings, frequencies: o.frequencies };
      const aligned = align(emb, counts, names);
      exp.result.settings.words = { input: emb.words.length, kept: aligned.emb.words.length, dim: emb.dim };
      const methods: WhiteningMethodResult[] = [];
      let rawSymmetry: SymmetryReport | undefined;
      for (const v of WHITENING_VARIANTS) {
        if (v.method === 'raw') methods.push({ name: v.name, sts: sets.map((s) => evaluateSts(aligned.emb, s)) });
        else if (v.method === 'sif')
          methods.push({
            name: v.name,
            sts: sets.map((s) => evaluateSts(aligned.emb, s, { sif: { p: aligned.p, a: SIF_A } })),
          });
        else {
          const r = await whiten(gpu, emb, counts, v.method, {
            abttK: o.abttK,
            epsilon: o.epsilon,
            report: true,
            names,
          });
          rawSymmetry ??= r.symmetry!.input;
          methods.push({ name: v.name, sts: sets.map((s) => evaluateSts(r.out, s)), symmetry: r.symmetry!.output });
        }
      }
      methods[0].symmetry = rawSymmetry;
      return { scores: methods.flatMap(methodScores) };
    });
    const report = await exp.report();
    return {
      out: exp.out,
      result: exp.result,
      report,
      ran: ran ? ['whitening'] : [],
      skipped: ran ? [] : ['whitening'],
    };
  } finally {
    exp.release();
  }
}

function methodScores(m: WhiteningMethodResult): Score[] {
  const common = { phase: 'whitening', variant: m.name, seed: 0 };
  const scores: Score[] = m.sts.map((s) => ({
    ...common,
    section: 'STS',
    task: s.name,
    metric: 'Spearman ×100',
    value: s.spearman,
  }));
  for (const measure of ['p', 'uniform'] as const)
    for (const k of ['sym1', 'sym2'] as const)
      if (m.symmetry)
        scores.push({
          ...common,
          section: 'symmetry',
          task: `${k === 'sym1' ? 'Sym1' : 'Sym2'} (${measure})`,
          metric: 'score',
          value: m.symmetry[measure][k],
        });
  return scores;
}
