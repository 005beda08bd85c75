// Broadcast add over a rows×cols matrix: out[r,c] = a[r,c] + b[r·sbr + c·sbc]. The strides
// cover every broadcast a kernel does: a bias row (sbr 0, sbc 1), a per-row scalar (sbr 1,
// sbc 0), a scalar (0, 0) or a full matrix (cols, 1).
// Like every backward here, the backward takes the upstream gradient then the forward's own
// arguments, even those it does not need, so a call site reads like the forward it undoes.
import { type Vec, expectDims, expectLength } from './shapes.js';

function bNeeded(rows: number, cols: number, sbr: number, sbc: number): number {
  return rows > 0 && cols > 0 ? (rows - 1) * sbr + (cols - 1) * sbc + 1 : 0;
}

export function addBroadcast(a: Vec, b: Vec, rows: number, cols: number, sbr: number, sbc: number): Float64Array {
  expectDims({ rows, cols, sbr, sbc });
  expectLength('addBroadcast a', a, rows * cols);
  const need = bNeeded(rows, cols, sbr, sbc);
  if (b.length < need) throw new RangeError(`addBroadcast: b has ${b.length} elements, needs ${need}`);
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[r * cols + c] = a[r * cols + c] + b[r * sbr + c * sbc];
  return out;
}

/** da = dOut; db (b's length) sums dOut over every place each b[i] was broadcast to. */
export function addBroadcastBackward(
  dOut: Vec,
  a: Vec,
  b: Vec,
  rows: number,
  cols: number,
  sbr: number,
  sbc: number,
): { da: Float64Array; db: Float64Array } {
  expectDims({ rows, cols, sbr, sbc });
  expectLength('addBroadcast a', a, rows * cols);
  expectLength('addBroadcast dOut', dOut, rows * cols);
  const need = bNeeded(rows, cols, sbr, sbc);
  if (b.length < need) throw new RangeError(`addBroadcast: b has ${b.length} elements, needs ${need}`);
  const db = new Float64Array(b.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) db[r * sbr + c * sbc] += dOut[r * cols + c];
  return { da: Float64Array.from(dOut), db };
}
