// Multi-head self-attention core on GPT-2's packed c_attn output. qkv is [B, T, 3d]: channels
// [0, d) are q, [d, 2d) k, [2d, 3d) v, and head h owns channels [h·hd, (h+1)·hd) of each
// (hd = d / nHead). Scores are q·k / √hd, softmax over the keys a query may see, and the
// output [B, T, d] holds the heads side by side, as GPT-2 merges them before c_proj.
//
// A query sees key j when j ≤ i (causal) or always (bidirectional), and, with a key padding
// mask, only when j < lengths[b]. Queries at padded positions still get an output (over the
// keys they may see) that callers ignore. A query that sees no key at all outputs zeros and
// passes no gradient, instead of the NaN of an empty softmax.
import { type Vec, expectDims, expectLength } from './shapes.js';

export interface AttentionOptions {
  causal: boolean;
  /** Valid length of each of the B rows (key padding mask); keys at j ≥ lengths[b] are hidden. */
  lengths?: Vec;
  /** Score scale; default 1/√(d / nHead). */
  scale?: number;
}

function setup(qkv: Vec, B: number, T: number, d: number, nHead: number, opts: AttentionOptions) {
  expectDims({ B, T, d, nHead });
  if (nHead === 0 || d % nHead !== 0) throw new RangeError(`attention: d = ${d} is not a multiple of nHead = ${nHead}`);
  expectLength('attention qkv', qkv, B * T * 3 * d);
  if (opts.lengths !== undefined) {
    expectLength('attention lengths', opts.lengths, B);
    for (let b = 0; b < B; b++) {
      const L = opts.lengths[b];
      if (!Number.isInteger(L) || L < 0 || L > T)
        throw new RangeError(`attention: lengths[${b}] = ${L} outside [0, ${T}]`);
    }
  }
  const hd = d / nHead;
  const scale = opts.scale ?? 1 / Math.sqrt(hd);
  const sees = (b: number, i: number, j: number) =>
    (!opts.causal || j <= i) && (opts.lengths === undefined || j < opts.lengths[b]);
  // Element offsets of q, k, v of head h at (b, t); channel c within the head is added by the caller.
  const q = (b: number, t: number, h: number) => (b * T + t) * 3 * d + h * hd;
  const k = (b: number, t: number, h: number) => (b * T + t) * 3 * d + d + h * hd;
  const v = (b: number, t: number, h: number) => (b * T + t) * 3 * d + 2 * d + h * hd;
  return { hd, scale, sees, q, k, v };
}

/**
 * Returns out [B, T, d]; probs [B, nHead, T, T] (attention weights, 0 where hidden) and
 * lse [B, nHead, T] (log-sum-exp of each query's scaled scores, -Infinity when it sees no
 * key) are what fused kernels keep for their backward, returned so those can be checked too.
 */
export function attention(
  qkv: Vec,
  B: number,
  T: number,
  d: number,
  nHead: number,
  opts: AttentionOptions,
): { out: Float64Array; probs: Float64Array; lse: Float64Array } {
  const { hd, scale, sees, q, k, v } = setup(qkv, B, T, d, nHead, opts);
  const out = new Float64Array(B * T * d);
  const probs = new Float64Array(B * nHead * T * T);
  const lse = new Float64Array(B * nHead * T).fill(-Infinity);
  const s = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHead; h++) {
      for (let i = 0; i < T; i++) {
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          if (!sees(b, i, j)) continue;
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += qkv[q(b, i, h) + c] * qkv[k(b, j, h) + c];
          s[j] = dot * scale;
          if (s[j] > max) max = s[j];
        }
        if (max === -Infinity) continue; // sees nothing: output stays zero
        let sum = 0;
        for (let j = 0; j < T; j++) if (sees(b, i, j)) sum += Math.exp(s[j] - max);
        const row = ((b * nHead + h) * T + i) * T;
        lse[(b * nHead + h) * T + i] = max + Math.log(sum);
        for (let j = 0; j < T; j++) {
          if (!sees(b, i, j)) continue;
          const p = Math.exp(s[j] - max) / sum;
          probs[row + j] = p;
          for (let c = 0; c < hd; c++) out[(b * T + i) * d + h * hd + c] += p * qkv[v(b, j, h) + c];
        }
      }
    }
  }
  return { out, probs, lse };
}

/**
 * dqkv [B, T, 3d] for the upstream gradient dOut [B, T, d]. With p the attention weights of
 * one query i and dp_j = dOut_i·v_j: dv_j += p_j·dOut_i; ds_j = p_j·(dp_j − Σ p·dp);
 * dq_i += scale·Σ_j ds_j·k_j; dk_j += scale·ds_j·q_i.
 */
export function attentionBackward(dOut: Vec, ...args: Parameters<typeof attention>): { dqkv: Float64Array } {
  const [qkv, B, T, d, nHead, opts] = args;
  const { hd, scale, sees, q, k, v } = setup(qkv, B, T, d, nHead, opts);
  expectLength('attention dOut', dOut, B * T * d);
  const { probs } = attention(qkv, B, T, d, nHead, opts);
  const dqkv = new Float64Array(B * T * 3 * d);
  const dp = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHead; h++) {
      for (let i = 0; i < T; i++) {
        const row = ((b * nHead + h) * T + i) * T;
        const o = (b * T + i) * d + h * hd;
        let pdp = 0;
        for (let j = 0; j < T; j++) {
          if (!sees(b, i, j)) continue;
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += dOut[o + c] * qkv[v(b, j, h) + c];
          dp[j] = dot;
          pdp += probs[row + j] * dot;
          for (let c = 0; c < hd; c++) dqkv[v(b, j, h) + c] += probs[row + j] * dOut[o + c];
        }
        for (let j = 0; j < T; j++) {
          if (!sees(b, i, j)) continue;
          const ds = probs[row + j] * (dp[j] - pdp) * scale;
          for (let c = 0; c < hd; c++) {
            dqkv[q(b, i, h) + c] += ds * qkv[k(b, j, h) + c];
            dqkv[k(b, j, h) + c] += ds * qkv[q(b, i, h) + c];
          }
        }
      }
    }
  }
  return { dqkv };
}
