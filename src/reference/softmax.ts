// Row-wise softmax and log-sum-exp, numerically stable: the row maximum is subtracted before
// exponentiating, so no exp overflows whatever the scores' scale. A row whose entries are all
// -Infinity (every key masked) has log-sum-exp -Infinity and softmax all zeros, rather than
// the NaN that -∞ − (-∞) would give.
import { type Vec, expectDims, expectLength } from './shapes.js';
import { rowMax } from './reduce.js';

export function logSumExpRows(x: Vec, rows: number, cols: number): Float64Array {
  const max = rowMax(x, rows, cols);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    if (max[r] === -Infinity) {
      out[r] = -Infinity;
      continue;
    }
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - max[r]);
    out[r] = max[r] + Math.log(s);
  }
  return out;
}

export function softmaxRows(x: Vec, rows: number, cols: number): Float64Array {
  const lse = logSumExpRows(x, rows, cols);
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    if (lse[r] === -Infinity) continue;
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.exp(x[r * cols + c] - lse[r]);
  }
  return out;
}

/** dx = y ⊙ (dOut − Σ_c dOut·y) with y = softmax(x) per row. */
export function softmaxRowsBackward(dOut: Vec, x: Vec, rows: number, cols: number): { dx: Float64Array } {
  expectDims({ rows, cols });
  expectLength('softmax dOut', dOut, rows * cols);
  const y = softmaxRows(x, rows, cols);
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dOut[r * cols + c] * y[r * cols + c];
    for (let c = 0; c < cols; c++) dx[r * cols + c] = y[r * cols + c] * (dOut[r * cols + c] - dot);
  }
  return { dx };
}

/** d lse / dx = softmax(x): dx = dOut[r] · softmax(x)[r, c]. */
export function logSumExpRowsBackward(dOut: Vec, x: Vec, rows: number, cols: number): { dx: Float64Array } {
  expectLength('logSumExp dOut', dOut, rows);
  const y = softmaxRows(x, rows, cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[r * cols + c] *= dOut[r];
  return { dx: y };
}
