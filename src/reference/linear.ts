// GPT-2's Conv1D layer: y = x·W + b with W stored input-major [nIn, nOut] (the transpose of
// torch.nn.Linear's layout), as c_attn, c_proj and c_fc are in Hugging Face checkpoints.
import { type Vec, expectDims, expectLength } from './shapes.js';
import { matmul, matmulBackward } from './matmul.js';
import { addBroadcast } from './add.js';

function check(x: Vec, W: Vec, bias: Vec | null, rows: number, nIn: number, nOut: number) {
  expectDims({ rows, nIn, nOut });
  expectLength('linear x', x, rows * nIn);
  expectLength('linear W', W, nIn * nOut);
  if (bias !== null) expectLength('linear bias', bias, nOut);
}

/** x [rows, nIn], W [nIn, nOut], bias [nOut] or null → y [rows, nOut]. */
export function linear(x: Vec, W: Vec, bias: Vec | null, rows: number, nIn: number, nOut: number): Float64Array {
  check(x, W, bias, rows, nIn, nOut);
  const y = matmul(x, W, rows, nOut, nIn);
  return bias === null ? y : addBroadcast(y, bias, rows, nOut, 0, 1);
}

/** dx = dy·Wᵀ, dW = xᵀ·dy, dbias = column sums of dy (absent when bias is null). */
export function linearBackward(
  dOut: Vec,
  x: Vec,
  W: Vec,
  bias: Vec,
  rows: number,
  nIn: number,
  nOut: number,
): { dx: Float64Array; dW: Float64Array; dbias: Float64Array };
export function linearBackward(
  dOut: Vec,
  x: Vec,
  W: Vec,
  bias: null,
  rows: number,
  nIn: number,
  nOut: number,
): { dx: Float64Array; dW: Float64Array };
export function linearBackward(
  dOut: Vec,
  x: Vec,
  W: Vec,
  bias: Vec | null,
  rows: number,
  nIn: number,
  nOut: number,
): { dx: Float64Array; dW: Float64Array; dbias?: Float64Array } {
  check(x, W, bias, rows, nIn, nOut);
  expectLength('linear dOut', dOut, rows * nOut);
  const { dA: dx, dB: dW } = matmulBackward(dOut, x, W, rows, nOut, nIn);
  if (bias === null) return { dx, dW };
  const dbias = new Float64Array(nOut);
  for (let r = 0; r < rows; r++) for (let o = 0; o < nOut; o++) dbias[o] += dOut[r * nOut + o];
  return { dx, dW, dbias };
}
