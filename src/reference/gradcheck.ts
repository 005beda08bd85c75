// Central finite differences, the ground truth every backward here (and through them every
// GPU backward) is checked against. In float64 with a step h, the error is about
// h²·|f'''|/6 from truncation plus ε·|f|/h from rounding: h = 1e-5 keeps both near 1e-10
// for the O(1) functions of the tests.
import { type Vec } from './shapes.js';

/**
 * (f(x + h·e_i) − f(x − h·e_i)) / 2h for each i in indices (all of x by default), in that
 * order. x is perturbed in place and restored exactly, so f must read x itself.
 */
export function numericGrad(f: () => number, x: Float64Array, indices?: ArrayLike<number>, h = 1e-5): Float64Array {
  const idx = indices ?? Array.from({ length: x.length }, (_, i) => i);
  const out = new Float64Array(idx.length);
  for (let n = 0; n < idx.length; n++) {
    const i = idx[n];
    const saved = x[i];
    x[i] = saved + h;
    const plus = f();
    x[i] = saved - h;
    const minus = f();
    x[i] = saved;
    out[n] = (plus - minus) / (2 * h);
  }
  return out;
}

/** Σ a·b: turns a tensor-valued function into the scalar whose gradient is its backward for upstream gradient b. */
export function dot(a: Vec, b: Vec): number {
  if (a.length !== b.length) throw new RangeError(`dot: lengths ${a.length} and ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Picks x[indices] out, e.g. the analytic gradient's entries that were finite-differenced. */
export function pick(x: Vec, indices: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: indices.length }, (_, n) => x[indices[n]]);
}
