// GELU, tanh approximation (GPT-2's "gelu_new"): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
import { type Vec } from './shapes.js';

const S = Math.sqrt(2 / Math.PI);
const A = 0.044715;

export function gelu(x: Vec): Float64Array {
  return Float64Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(S * (v + A * v * v * v))));
}

/** d/dx = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²), t = tanh(√(2/π)·(x + 0.044715·x³)). */
export function geluBackward(dOut: Vec, x: Vec): { dx: Float64Array } {
  if (dOut.length !== x.length) throw new RangeError(`gelu: dOut has ${dOut.length} elements, x ${x.length}`);
  return {
    dx: Float64Array.from(x, (v, i) => {
      const t = Math.tanh(S * (v + A * v * v * v));
      return dOut[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * S * (1 + 3 * A * v * v));
    }),
  };
}
