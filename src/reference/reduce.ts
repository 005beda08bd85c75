// Row-wise reductions over a rows×cols matrix.
import { type Vec, expectDims, expectLength } from './shapes.js';

export function rowSum(x: Vec, rows: number, cols: number): Float64Array {
  expectDims({ rows, cols });
  expectLength('rowSum x', x, rows * cols);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r] += x[r * cols + c];
  return out;
}

export function rowSumBackward(dOut: Vec, x: Vec, rows: number, cols: number): { dx: Float64Array } {
  expectDims({ rows, cols });
  expectLength('rowSum x', x, rows * cols);
  expectLength('rowSum dOut', dOut, rows);
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) dx.fill(dOut[r], r * cols, (r + 1) * cols);
  return { dx };
}

/**
 * Column of each row's maximum; ties go to the first, as a left-to-right scan finds it. A NaN
 * wins (the first one), so that NaN propagates through max as it does in PyTorch instead of
 * being hidden by a comparison that is always false. An empty row (cols 0) has -1.
 */
export function rowArgmax(x: Vec, rows: number, cols: number): Int32Array {
  expectDims({ rows, cols });
  expectLength('rowArgmax x', x, rows * cols);
  const arg = new Int32Array(rows).fill(-1);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = x[r * cols + c];
      if (c === 0 || v > x[r * cols + arg[r]]) arg[r] = c;
      if (Number.isNaN(v)) {
        arg[r] = c;
        break;
      }
    }
  }
  return arg;
}

/** Row maxima; an empty row's maximum is -Infinity, the identity of max. */
export function rowMax(x: Vec, rows: number, cols: number): Float64Array {
  const arg = rowArgmax(x, rows, cols);
  return Float64Array.from(arg, (c, r) => (c < 0 ? -Infinity : x[r * cols + c]));
}

/** The max is piecewise the identity on its winning element: the gradient goes there alone (the first, on ties). */
export function rowMaxBackward(dOut: Vec, x: Vec, rows: number, cols: number): { dx: Float64Array } {
  expectLength('rowMax dOut', dOut, rows);
  const arg = rowArgmax(x, rows, cols);
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) if (arg[r] >= 0) dx[r * cols + arg[r]] = dOut[r];
  return { dx };
}
