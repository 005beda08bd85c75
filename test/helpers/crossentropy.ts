// Shared by the fused cross-entropy head's tests.
import type { makeRandom } from './check.js';

/** `data` with `before` random values ahead of it and `after` behind (offsets inside a buffer). */
export function padded(rand: ReturnType<typeof makeRandom>, data: Float32Array, before: number, after = 3) {
  const out = rand.uniform(before + data.length + after);
  out.set(data, before);
  return out;
}

/** Each row's argmax has the row's largest float64 logit (robust to near-ties between f32 and f64). */
export function expectArgmaxMaximal(argmax: ArrayLike<number>, logits: Float64Array, N: number, V: number): void {
  for (let i = 0; i < N; i++) {
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[i * V + v]);
    const a = argmax[i];
    if (!(a < V && logits[i * V + a] >= mx - 1e-4 * (1 + Math.abs(mx))))
      throw new Error(`argmax of row ${i}: ${a} is not a maximum`);
  }
}

/**
 * Each training case on the software plan twice, with the fused forward and with matmul's (CrossEntropySpec.forward);
 * a case that forces the hardware plan as it is (the fused forward, that plan's default).
 */
export function bothForwards<C extends { hardware?: boolean; forward?: 'fused' | 'matmul' }>(
  cases: [string, C][],
): [string, C][] {
  return cases.flatMap(([name, c]): [string, C][] =>
    c.hardware
      ? [[name, c]]
      : [
          [`${name}, fused forward`, { ...c, forward: 'fused' }],
          [`${name}, matmul forward`, { ...c, forward: 'matmul' }],
        ],
  );
}
