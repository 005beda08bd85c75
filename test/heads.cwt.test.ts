// The CWT head on its own against the float64 reference: odd K and d, many duplicate targets,
// all positions (decoder) or a gathered subset (encoder), and a row of huge scores.
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { Gpt2 } from '../src/model/gpt2.js';
import { createCwtHead } from '../src/model/heads.js';
import { preset } from '../src/model/config.js';
import { cwtLoss, cwtLossBackward } from '../src/reference/cwt.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

async function check(K: number, d: number, opts: { N?: number; V?: number; temperature?: number; hugeRow?: boolean }) {
  const N = opts.N ?? K;
  const V = opts.V ?? 11;
  const temperature = opts.temperature ?? 1;
  const nHead = d % 2 === 0 ? 2 : 1;
  const config = { ...preset('tiny'), vocab_size: V, n_positions: N, n_embd: d, n_layer: 1, n_head: nHead };
  const model = await Gpt2.create(gpu, config, { B: 1, T: N, train: true });
  const head = await createCwtHead(model, { K, temperature });
  const params = rand.normal(model.layout.total, 0.5);
  const wteOff = model.P('transformer.wte.weight').offset!;
  const hf = rand.normal(N * d);
  if (opts.hugeRow) for (let c = 0; c < d; c++) hf[c] *= 1e4;
  const targets = new Int32Array(N).fill(-1);
  const picked =
    N === K
      ? Array.from({ length: N }, (_, i) => i)
      : Array.from({ length: N }, (_, i) => i)
          .sort(() => rand.next() - 0.5)
          .slice(0, K)
          .sort((a, b) => a - b);
  for (const p of picked) targets[p] = Math.floor(rand.next() * Math.min(V, 4)); // ≤ 4 distinct tokens
  model.writeParams(params);
  gpu.write(model.hf, hf);
  head.setTargets(targets);
  await gpu.run([{ clear: model.grads! }, ...head.train]);
  const loss = (await gpu.readF32(head.loss, 0, 1))[0];
  const dhf = await gpu.readF32(model.dhf!, 0, N * d);
  const grads = await model.readGrads();

  const h = new Float64Array(K * d);
  const tk = new Int32Array(K);
  picked.forEach((p, k) => {
    h.set(hf.subarray(p * d, p * d + d), k * d);
    tk[k] = targets[p];
  });
  const E = params.subarray(wteOff, wteOff + V * d);
  const ref = cwtLoss(h, E, tk, K, d, temperature);
  const back = cwtLossBackward(1, h, E, tk, K, d, temperature);
  // Huge scores: loss_k = lse_k − s_kk cancels two numbers near 1e5, so f32 keeps only a few digits of it.
  const tol = opts.hugeRow ? 1e-2 : 1e-5;
  if (!Number.isFinite(loss)) throw new Error(`loss ${loss}`);
  expectClose([loss], [ref.loss], tol, `loss K=${K} d=${d}`);
  const dE = grads.subarray(wteOff, wteOff + V * d);
  if (opts.hugeRow) {
    // The huge row's softmax is all but one-hot, and which near-tied entry wins can differ
    // between f32 and f64, so its gradients are only required to be finite.
    for (const [name, g] of [
      ['dh', dhf],
      ['dE', dE],
    ] as const)
      g.forEach((x, i) => {
        if (!Number.isFinite(x)) throw new Error(`${name}[${i}] = ${x}`);
      });
  } else {
    const dhRef = new Float64Array(N * d);
    picked.forEach((p, k) => dhRef.set(back.dh.subarray(k * d, k * d + d), p * d));
    expectClose(dhf, dhRef, 1e-5, `dh K=${K} d=${d}`);
    expectClose(dE, back.dE, 1e-5, `dE K=${K} d=${d}`);
  }
  head.destroy();
  model.destroy();
}

test.each([
  [1, 5],
  [7, 64],
  [333, 130],
  [7, 5],
  [333, 5],
])('decoder layout: K = %i, d = %i', async (K, d) => {
  await check(K, d, { temperature: K === 7 && d === 5 ? 0.5 : 1 });
});

test('encoder layout: 7 target positions gathered out of 20, 13 of 31', async () => {
  await check(7, 64, { N: 20 });
  await check(13, 5, { N: 31, V: 40 });
});

test('a row of huge scores gives a finite loss and finite gradients', async () => {
  await check(7, 64, { hugeRow: true });
});

test('a micro-batch with a different number of targets than the head was built for is refused', async () => {
  const config = { ...preset('tiny'), vocab_size: 11, n_positions: 6, n_embd: 4, n_layer: 1, n_head: 1 };
  const model = await Gpt2.create(gpu, config, { B: 1, T: 6, train: true });
  const head = await createCwtHead(model, { K: 3, temperature: 1 });
  expect(() => head.setTargets([1, -1, 2, -1, -1, -1])).toThrow(
    /built for 3 target positions per micro-batch; this one has 2/,
  );
  head.destroy();
  model.destroy();
});
