// Optimizer references against steps worked by hand from PyTorch's update rules.
import { adamwStep, sgdStep, clipGradNorm } from '../src/reference/ops.js';
import { expectClose } from './helpers/check.js';

describe('AdamW', () => {
  test('two steps worked by hand', () => {
    const lr = 0.1;
    const wd = 0.01;
    const eps = 1e-8;
    const b1 = 0.9;
    const b2 = 0.999;
    const s1 = adamwStep([1, -2], [0.5, 0.25], [0, 0], [0, 0], 1, { lr, weightDecay: wd });
    // step 1: m = 0.1·g, v = 0.001·g², m̂ = g, v̂ = g², so the update is lr·g/(|g| + eps).
    expectClose(s1.m, [0.05, 0.025], 1e-15, 'm1');
    expectClose(s1.v, [0.00025, 0.0000625], 1e-15, 'v1');
    const p1 = [1 * (1 - lr * wd) - (lr * 0.5) / (0.5 + eps), -2 * (1 - lr * wd) - (lr * 0.25) / (0.25 + eps)];
    expectClose(s1.param, p1, 1e-15, 'param1');
    // step 2 with g = [-1, 0.25]
    const s2 = adamwStep(s1.param, [-1, 0.25], s1.m, s1.v, 2, { lr, weightDecay: wd, beta1: b1, beta2: b2, eps });
    const m2 = [0.9 * 0.05 + 0.1 * -1, 0.9 * 0.025 + 0.1 * 0.25];
    const v2 = [0.999 * 0.00025 + 0.001 * 1, 0.999 * 0.0000625 + 0.001 * 0.0625];
    const bc1 = 1 - 0.81;
    const bc2 = 1 - 0.998001;
    const p2 = [0, 1].map(
      (i) => p1[i] * (1 - lr * wd) - ((lr / bc1) * m2[i]) / (Math.sqrt(v2[i]) / Math.sqrt(bc2) + eps),
    );
    expectClose(s2.m, m2, 1e-15, 'm2');
    expectClose(s2.v, v2, 1e-15, 'v2');
    expectClose(s2.param, p2, 1e-15, 'param2');
  });

  test('weight decay is decoupled: a zero gradient only shrinks the weight', () => {
    const s = adamwStep([3], [0], [0], [0], 1, { lr: 0.01, weightDecay: 0.1 });
    expectClose(s.param, [3 * (1 - 0.001)], 1e-15, 'decay');
  });

  test('inputs are left untouched', () => {
    const p = Float64Array.from([1, 2]);
    const m = new Float64Array(2);
    const v = new Float64Array(2);
    adamwStep(p, [1, 1], m, v, 1, { lr: 1 });
    expect([...p, ...m, ...v]).toEqual([1, 2, 0, 0, 0, 0]);
  });
});

describe('SGD and gradient clipping', () => {
  test('SGD: p − lr·(g + wd·p)', () => {
    expectClose(sgdStep([1, -2], [0.5, 4], { lr: 0.1 }).param, [0.95, -2.4], 1e-15, 'plain');
    expectClose(
      sgdStep([1, -2], [0.5, 4], { lr: 0.1, weightDecay: 0.5 }).param,
      [1 - 0.1 * (0.5 + 0.5), -2 - 0.1 * (4 - 1)],
      1e-15,
      'with decay',
    );
  });

  test('global norm over all tensors, scale min(1, max/(norm + 1e-6))', () => {
    const clipped = clipGradNorm([[3], [0, 4]], 1);
    expect(clipped.norm).toBe(5);
    expect(clipped.scale).toBe(1 / (5 + 1e-6));
    expectClose([...clipped.grads[0], ...clipped.grads[1]], [3 / (5 + 1e-6), 0, 4 / (5 + 1e-6)], 1e-15, 'clipped');
    const kept = clipGradNorm([[3], [0, 4]], 10);
    expect(kept.scale).toBe(1);
    expect([...kept.grads[0], ...kept.grads[1]]).toEqual([3, 0, 4]);
  });
});
