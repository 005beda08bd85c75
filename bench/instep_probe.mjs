#!/usr/bin/env node
// In-step versus isolated time of one product, on an adapter without timestamp queries (llvmpipe): a training
// step's forward, head and backward are timed with and without the dispatches whose label matches --label (the
// difference over their count is their in-step time), alternating with the same product built alone and timed
// sustained (samples of back-to-back repetitions, one wait) and isolated (a wait after each). Reports medians of
// process CPU time and of wall time per repetition. Not part of the test suite. Run after `npm run build`:
//   EGL_PLATFORM=surfaceless node bench/instep_probe.mjs --label "c_fc x·W" --rounds 7 [--phase forward]
import { Gpu } from '../dist/src/gpu/device.js';
import { matmul } from '../dist/src/kernels/matmul.js';
import { preset } from '../dist/src/model/config.js';
import { Gpt2 } from '../dist/src/model/gpt2.js';
import { createCeHead } from '../dist/src/model/heads.js';
import { paramLayout } from '../dist/src/model/params.js';

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .join(' ')
    .split(' --')
    .map((s) => s.replace(/^--/, '').trim())
    .filter(Boolean)
    .map((s) => {
      const [k, ...v] = s.split(/\s+/);
      return [k, v.join(' ') || 'true'];
    }),
);
const label = args.label ?? 'c_fc x·W';
const rounds = Number(args.rounds ?? 7);
const d = Number(args.d ?? 256);
const B = Number(args.B ?? 4);
const T = Number(args.T ?? 128);
const config = {
  ...preset('tiny'),
  vocab_size: 1024,
  n_embd: d,
  n_layer: Number(args.layers ?? 4),
  n_head: 4,
  n_positions: T,
};

const gpu = await Gpu.open(args.device ?? 'auto');
console.error(`adapter: ${gpu.name}`);
const model = await Gpt2.create(gpu, config, { B, T, train: true });
const head = await createCeHead(model, { rows: B * T });
let s = 1;
const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.1;
model.writeParams(Float32Array.from({ length: paramLayout(config).total }, rnd));
model.setTokens(Int32Array.from({ length: B * T }, (_, i) => (i * 7) % config.vocab_size));
head.setTargets(Int32Array.from({ length: B * T }, (_, i) => (i * 13) % config.vocab_size));
// --phase forward: the forward pass alone (the product's share is larger, so the difference less noisy).
const full =
  args.phase === 'forward'
    ? [...model.forward]
    : [{ clear: model.grads }, ...model.forward, ...head.train, ...model.backward];
const targets = full.filter((c) => c.label?.includes(label));
if (!targets.length) throw new Error(`no dispatch label contains "${label}"`);
const without = full.filter((c) => !targets.includes(c));
console.error(`${targets.length} dispatches: ${[...new Set(targets.map((t) => t.label))].join(' | ')}`);

// The same product alone: the first target's kernel, shape and epilogue, rebuilt on buffers of its own.
const spec = JSON.parse(args.spec ?? '{"M":512,"N":1024,"K":256,"bias":true,"gelu":true}');
const buf = (n) => gpu.buffer('alone', n * 4);
const alone = await matmul(gpu, {
  M: spec.M,
  N: spec.N,
  K: spec.K,
  transA: spec.transA,
  transB: spec.transB,
  a: { buffer: buf(spec.M * spec.K) },
  b: { buffer: buf(spec.K * spec.N) },
  c: { buffer: buf(spec.M * spec.N) },
  bias: spec.bias ? { buffer: buf(spec.N) } : undefined,
  gelu: spec.gelu ? { buffer: buf(spec.M * spec.N) } : undefined,
});

async function time(cmds, reps, wait) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    gpu.submit(cmds, 'probe');
    if (wait) await gpu.done();
  }
  await gpu.done();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / reps, cpu: (c.user + c.system) / 1e3 / reps };
}
await time(full, 2, true);
await time(alone, 2, true);
const stepReps = 4;
const aloneReps = Number(args.reps ?? 16);
const runs = { full: [], without: [], sustained: [], isolated: [] };
for (let r = 0; r < rounds; r++) {
  runs.full.push(await time(full, stepReps, false));
  runs.without.push(await time(without, stepReps, false));
  runs.sustained.push(await time(alone, aloneReps, false));
  runs.isolated.push(await time(alone, aloneReps, true));
}
const med = (xs, k) => xs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const k of ['cpu', 'wall']) {
  const inStep = (med(runs.full, k) - med(runs.without, k)) / targets.length;
  console.log(
    `${k}: step ${med(runs.full, k).toFixed(2)} ms, without ${med(runs.without, k).toFixed(2)} ms → in-step ` +
      `${inStep.toFixed(3)} ms a product; alone sustained ${med(runs.sustained, k).toFixed(3)} ms, isolated ` +
      `${med(runs.isolated, k).toFixed(3)} ms (sustained/in-step ${(med(runs.sustained, k) / inStep).toFixed(2)})`,
  );
}
gpu.destroy();
