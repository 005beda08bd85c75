// LayerNorm over the last dimension, PyTorch's definition: biased variance (divide by cols),
// eps inside the square root. GPT-2 uses eps 1e-5.
import { type Vec, expectDims, expectLength } from './shapes.js';

function check(x: Vec, weight: Vec, bias: Vec, rows: number, cols: number) {
  expectDims({ rows, cols });
  expectLength('layerNorm x', x, rows * cols);
  expectLength('layerNorm weight', weight, cols);
  expectLength('layerNorm bias', bias, cols);
}

/**
 * out = (x − mean)·rstd·weight + bias per row; mean and rstd = 1/√(var + eps) are per row, as kernels save them for
 * backward.
 */
export function layerNorm(
  x: Vec,
  weight: Vec,
  bias: Vec,
  rows: number,
  cols: number,
  eps = 1e-5,
): { out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  check(x, weight, bias, rows, cols);
  const out = new Float64Array(rows * cols);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) m += x[r * cols + c];
    m /= cols;
    // Two passes (mean first, then squared deviations): the one-pass E[x²]−E[x]² cancels badly.
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[r * cols + c] - m) ** 2;
    v /= cols;
    const s = 1 / Math.sqrt(v + eps);
    mean[r] = m;
    rstd[r] = s;
    for (let c = 0; c < cols; c++) out[r * cols + c] = (x[r * cols + c] - m) * s * weight[c] + bias[c];
  }
  return { out, mean, rstd };
}

/**
 * With x̂ = (x − mean)·rstd and g = dOut ⊙ weight:
 *   dx = rstd · (g − mean_c(g) − x̂ · mean_c(g ⊙ x̂)),  dweight = Σ_rows dOut ⊙ x̂,  dbias = Σ_rows dOut.
 */
export function layerNormBackward(
  dOut: Vec,
  ...args: Parameters<typeof layerNorm>
): { dx: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const [x, weight, , rows, cols] = args;
  const { mean, rstd } = layerNorm(...args); // checks the arguments
  expectLength('layerNorm dOut', dOut, rows * cols);
  const dx = new Float64Array(rows * cols);
  const dweight = new Float64Array(cols);
  const dbias = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    let gMean = 0;
    let gxMean = 0;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[r * cols + c] - mean[r]) * rstd[r];
      const g = dOut[r * cols + c] * weight[c];
      gMean += g;
      gxMean += g * xhat;
      dweight[c] += dOut[r * cols + c] * xhat;
      dbias[c] += dOut[r * cols + c];
    }
    gMean /= cols;
    gxMean /= cols;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[r * cols + c] - mean[r]) * rstd[r];
      dx[r * cols + c] = rstd[r] * (dOut[r * cols + c] * weight[c] - gMean - xhat * gxMean);
    }
  }
  return { dx, dweight, dbias };
}
