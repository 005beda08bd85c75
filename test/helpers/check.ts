import { streamRng } from '../../src/data/random.js';
import { relErr as statsRelErr } from '../../src/util/stats.js';
import { HlmError } from '../../src/errors.js';
import type { ModelConfig } from '../../src/model/config.js';
import { paramLayout } from '../../src/model/params.js';

// Shared test helpers: fresh random inputs every run (the seed is printed on failure so a
// failing draw can be replayed with HLM_TEST_SEED), and float64 comparisons written so NaN fails.

/** A seedable uniform generator in [0, 1) (the data layer's Mulberry32 stream). */
export function rng(seed: number): () => number {
  return streamRng(seed);
}

export const SEED = process.env.HLM_TEST_SEED
  ? Number(process.env.HLM_TEST_SEED)
  : (Date.now() ^ (process.pid << 8)) >>> 0;

export function makeRandom(seed = SEED) {
  const next = rng(seed);
  return {
    seed,
    /** uniform in [lo, hi) */
    uniform: (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * next()),
    /** standard normal (Box-Muller) */
    normal: (n: number, std = 1) =>
      Float32Array.from(
        { length: n },
        () => std * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
      ),
    int: (n: number, hi: number) => Uint32Array.from({ length: n }, () => Math.floor(next() * hi)),
    next,
  };
}

/** src/util/stats.ts's relErr, refusing arrays of different lengths. */
export function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) throw new Error(`length ${got.length} != reference length ${ref.length}`);
  return statsRelErr(got, ref);
}

/** Largest |got − ref|; NaN anywhere gives NaN. */
export function maxAbsErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= m)) m = d; // NaN propagates
  }
  return m;
}

/** Fails (NaN included) unless relErr(got, ref) <= tol; the message carries the seed. */
export function expectClose(got: ArrayLike<number>, ref: ArrayLike<number>, tol: number, what = ''): number {
  const err = relErr(got, ref);
  if (!(err <= tol)) throw new Error(`${what}: relative error ${err} > ${tol} (HLM_TEST_SEED=${SEED})`);
  return err;
}

/**
 * Random GPT-2 weights in the flat layout and by name (float64), larger than GPT-2's init so
 * every path carries signal; LayerNorm weights around 1.
 */
export function randomGpt2Params(
  layout: { total: number; tensors: readonly { name: string; offset: number; size: number }[] },
  rand: ReturnType<typeof makeRandom>,
) {
  const params = new Float32Array(layout.total);
  const named: Record<string, Float64Array> = {};
  for (const t of layout.tensors) {
    const v =
      t.name.includes('ln_') && t.name.endsWith('weight') ? rand.uniform(t.size, 0.5, 1.5) : rand.normal(t.size, 0.3);
    params.set(v, t.offset);
    named[t.name] = Float64Array.from(v);
  }
  return { params, named };
}

/** Every item of an async iterable (a streaming reader's output), in order. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

/** The message of the HlmError the promise rejects with (anything else fails the test). */
export async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HlmError);
    return (e as Error).message;
  }
  throw new Error('expected an HlmError');
}

/** The worst relative L2 error over tensors of the update (after − init) against the expected one. */
export function worstUpdateError(
  init: Float32Array,
  after: Float32Array,
  want: (name: string, size: number) => ArrayLike<number>,
  config: ModelConfig,
) {
  let worst = { name: '', err: 0 };
  for (const t of paramLayout(config).tensors) {
    const got = Float64Array.from(after.subarray(t.offset, t.offset + t.size), (p, i) => p - init[t.offset + i]);
    const err = relErr(got, want(t.name, t.size));
    if (!(err <= worst.err)) worst = { name: t.name, err };
  }
  return worst;
}
