// Token + learned position embeddings, GPT-2's input: out[b,t] = wte[tokens[b,t]] + wpe[t].
// The backward is a scatter-add: a token that occurs several times collects all its rows.
import { type Vec, expectDims, expectIndex, expectLength } from './shapes.js';

function check(wte: Vec, wpe: Vec, tokens: Vec, B: number, T: number, d: number) {
  expectDims({ B, T, d });
  if (d === 0 || wte.length % d !== 0 || wpe.length % d !== 0)
    throw new RangeError(`embedding: wte (${wte.length}) and wpe (${wpe.length}) must be multiples of d = ${d}`);
  const V = wte.length / d;
  const P = wpe.length / d;
  if (T > P) throw new RangeError(`embedding: T = ${T} exceeds the ${P} learned positions`);
  expectLength('embedding tokens', tokens, B * T);
  for (let i = 0; i < B * T; i++) expectIndex(`embedding tokens[${i}]`, tokens[i], V);
}

/** wte [V, d], wpe [P, d], tokens [B, T] → out [B, T, d]. */
export function embedding(wte: Vec, wpe: Vec, tokens: Vec, B: number, T: number, d: number): Float64Array {
  check(wte, wpe, tokens, B, T, d);
  const out = new Float64Array(B * T * d);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t];
      for (let c = 0; c < d; c++) out[(b * T + t) * d + c] = wte[tok * d + c] + wpe[t * d + c];
    }
  }
  return out;
}

/** dwte [V, d] and dwpe [P, d] for dOut [B, T, d]; rows never used get zeros. */
export function embeddingBackward(
  dOut: Vec,
  wte: Vec,
  wpe: Vec,
  tokens: Vec,
  B: number,
  T: number,
  d: number,
): { dwte: Float64Array; dwpe: Float64Array } {
  check(wte, wpe, tokens, B, T, d);
  expectLength('embedding dOut', dOut, B * T * d);
  const dwte = new Float64Array(wte.length);
  const dwpe = new Float64Array(wpe.length);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t];
      for (let c = 0; c < d; c++) {
        dwte[tok * d + c] += dOut[(b * T + t) * d + c];
        dwpe[t * d + c] += dOut[(b * T + t) * d + c];
      }
    }
  }
  return { dwte, dwpe };
}
