// The suite registry and test selection: which cases a `hlm bench` run measures, in order.
import { HlmError } from '../errors.js';
import { WEIGHT_FORMATS, type WeightFormat } from '../model/quantize.js';
import type { BenchCase } from './harness.js';
import { inferCases } from './infer.js';
import { kernelCases } from './kernel.js';
import type { Params, Suite } from './record.js';
import { trainCases } from './train.js';
import type { PrecisionOptions } from '../train/precision.js';

/** --size: n of the square matmul tests (default: kernelShapes'). */
export const SUITE_CASES: Record<Suite, (quick: boolean, square?: number) => BenchCase[]> = {
  kernel: kernelCases,
  train: (quick) => trainCases(quick),
  // Names, tests and params match bench/torch_bench.py's, so --compare pairs them (selectCases adds --weights).
  infer: (quick) => inferCases(quick),
};

export interface Selection {
  /** What the run measures and reports. */
  cases: BenchCase[];
  /** Peak cases the filter left out but the selected kernel cases need (measured, not reported). */
  hidden: BenchCase[];
}

/** The string --filter matches: suite/name/test. */
export function caseId(c: Pick<BenchCase, 'suite' | 'name' | 'test'>): string {
  return `${c.suite}/${c.name}/${c.test}`;
}

/** A flag's comma-separated names, each one of `known`, without repeats. */
function parseNames<T extends string>(flag: string, what: string, list: string, known: readonly string[]): T[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names)
    if (!known.includes(n)) throw new HlmError(`--${flag}: unknown ${what} "${n}"; ${what}s: ${known.join(', ')}`);
  if (!names.length) throw new HlmError(`--${flag}: no ${what} given`);
  return [...new Set(names)] as T[];
}

export function parseSuites(list: string): Suite[] {
  return parseNames('suite', 'suite', list, Object.keys(SUITE_CASES));
}

export function parseFilter(filter: string | undefined): RegExp | undefined {
  if (filter === undefined) return undefined;
  try {
    return new RegExp(filter, 'i');
  } catch (e) {
    throw new HlmError(`--filter: not a regular expression: ${(e as Error).message}`);
  }
}

/** --weights: comma-separated formats of the infer suite's weights. */
export function parseWeights(list: string): WeightFormat[] {
  return parseNames('weights', 'format', list, WEIGHT_FORMATS);
}

/**
 * The selected cases; the infer suite's repeated for each weight format (default f32 alone), the train suite's at
 * --precision.
 */
export function selectCases(
  suites: Suite[],
  quick: boolean,
  filter?: RegExp,
  weights: readonly WeightFormat[] = ['f32'],
  square?: number,
  precision: PrecisionOptions = {},
): Selection {
  const all = suites.flatMap((s) =>
    s === 'infer'
      ? inferCases(quick, weights)
      : s === 'train'
        ? trainCases(quick, precision)
        : SUITE_CASES[s](quick, square),
  );
  const cases = filter ? all.filter((c) => filter.test(caseId(c))) : all;
  const needPeaks = cases.some((c) => c.suite === 'kernel' && !c.peak);
  const hidden = needPeaks ? all.filter((c) => c.peak && !cases.includes(c)) : [];
  return { cases, hidden };
}

/** A case as --list shows it. */
export function describeCase(c: BenchCase): { suite: Suite; name: string; test: string; params: Params } {
  return { suite: c.suite, name: c.name, test: c.test, params: c.params };
}
