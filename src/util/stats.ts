// Statistics shared by GLUE's metrics, STS evaluation and the float64 checks of `hlm check` and
// `hlm bench`, computed in float64 on the host.
//
// Pearson and Spearman are 0 when either input is constant (zero variance; SciPy gives NaN).
// Inputs must have equal, non-zero lengths and finite values (a diverged model's NaN prediction
// is a RangeError, not a silent NaN score).

const sqrt = Math.sqrt;
const max = Math.max;
const min = Math.min;

/** Checks paired inputs (`what` names the metric in the RangeError) and returns their length. */
export function checkPairs(what: string, pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  const n = gold.length;
  if (pred.length !== n) throw new RangeError(`${what}: ${pred.length} predictions for ${n} labels`);
  if (n === 0) throw new RangeError(`${what}: no examples`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(pred[i])) throw new RangeError(`${what}: prediction ${i} is ${pred[i]}`);
    if (!Number.isFinite(gold[i])) throw new RangeError(`${what}: label ${i} is ${gold[i]}`);
  }
  return n;
}

/** Pearson correlation (two-pass, centred); 0 when either input is constant. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = checkPairs('pearson', x, y);
  // Exactly constant input: the rounded mean need not equal the value, so test it directly.
  const constant = (v: ArrayLike<number>) => {
    for (let i = 1; i < n; i++) if (v[i] !== v[0]) return false;
    return true;
  };
  if (constant(x) || constant(y)) return 0;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return 0;
  return max(-1, min(1, sxy / sqrt(sxx * syy)));
}

/** 1-based ranks, ties given the mean of the ranks they span (SciPy's rankdata 'average'). */
export function averageRanks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => v[i] - v[j]);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && v[order[j]] === v[order[i]]) j++;
    const r = (i + 1 + j) / 2; // mean of ranks i+1 … j
    for (let k = i; k < j; k++) ranks[order[k]] = r;
    i = j;
  }
  return ranks;
}

/** Spearman's rank correlation: Pearson of the average ranks; 0 when either input is constant. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkPairs('spearman', x, y);
  return pearson(averageRanks(x), averageRanks(y));
}

/** ‖got − ref‖₂ / ‖ref‖₂ (absolute norm when ref is all zeros); NaN anywhere gives NaN. */
export function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (got[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num) / (den > 0 ? Math.sqrt(den) : 1);
}
